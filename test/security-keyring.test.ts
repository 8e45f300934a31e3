import assert from 'node:assert/strict';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MemfaError } from '../src/protocol/errors.js';
import { Keyring, secretAad } from '../src/security/keyring.js';

const POSIX = process.platform !== 'win32';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-keyring-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function freshRing(t: TestContext): Promise<{ dir: string; path: string; ring: Keyring }> {
  const dir = await tempDir(t);
  const path = join(dir, 'keys.json');
  return { dir, path, ring: await Keyring.load(path, { create: true }) };
}

function isConfigError(pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof MemfaError, `expected MemfaError, got ${String(error)}`);
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  };
}

const AAD = secretAad('totp', 'alice@example.org');
const SECRET = Buffer.from('JBSWY3DPEHPK3PXP-very-secret');

test('creates a 0600 key file of the documented format', async (t) => {
  const { path, ring } = await freshRing(t);
  const file = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(file).sort(), ['current', 'keys', 'mac', 'version']);
  assert.equal(file.version, 1);
  assert.equal(file.current, ring.currentKid);
  const keys = file.keys as Record<string, string>;
  assert.equal(Buffer.from(keys[ring.currentKid] ?? '', 'base64').length, 32);
  assert.equal(Buffer.from(String(file.mac), 'base64').length, 32);
  if (POSIX) assert.equal((await stat(path)).mode & 0o777, 0o600);
  // A second load reads the same keys instead of creating new ones.
  const again = await Keyring.load(path, { create: true });
  assert.deepEqual(again.open(ring.seal(SECRET, AAD), AAD), SECRET);
});

test('seal/open round trip, in the documented format, with a fresh IV each time', async (t) => {
  const { ring } = await freshRing(t);
  const sealed = ring.seal(SECRET, AAD);
  assert.match(sealed, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
  assert.equal(sealed.split('.')[1], ring.currentKid);
  assert.ok(!sealed.includes(SECRET.toString('base64url')));
  assert.deepEqual(ring.open(sealed, AAD), SECRET);
  assert.notEqual(ring.seal(SECRET, AAD), sealed);
  assert.deepEqual(ring.open(ring.seal(Buffer.alloc(0), AAD), AAD), Buffer.alloc(0));
});

test('a value sealed for one mailbox does not open for another', async (t) => {
  const { ring } = await freshRing(t);
  const sealed = ring.seal(SECRET, AAD);
  assert.throws(() => ring.open(sealed, secretAad('totp', 'bob@example.org')), isConfigError(/cannot be opened/));
  assert.throws(() => ring.open(sealed, secretAad('pending-totp', 'alice@example.org')), isConfigError(/cannot be opened/));
});

test('tampered ciphertext, tag or IV fails, and the error carries no secret', async (t) => {
  const { ring } = await freshRing(t);
  const sealed = ring.seal(SECRET, AAD);
  const parts = sealed.split('.');
  const flip = (b64: string): string => {
    const bytes = Buffer.from(b64, 'base64url');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    return bytes.toString('base64url');
  };
  for (const index of [2, 3, 4]) {
    const tampered = parts.slice();
    tampered[index] = flip(tampered[index] ?? '');
    assert.throws(
      () => ring.open(tampered.join('.'), AAD),
      (error: unknown) => {
        assert.ok(error instanceof MemfaError);
        assert.equal(error.message, `secret sealed with key ${ring.currentKid} cannot be opened: wrong or missing key file`);
        assert.ok(!error.message.includes(parts[4] ?? 'x'));
        return true;
      },
    );
  }
  // A truncated tag must not be accepted as a shorter tag.
  const short = parts.slice();
  short[3] = Buffer.from(parts[3] ?? '', 'base64url').subarray(0, 12).toString('base64url');
  assert.throws(() => ring.open(short.join('.'), AAD), isConfigError(/malformed/));
  assert.throws(() => ring.open('not-a-sealed-value', AAD), isConfigError(/malformed/));
  assert.throws(() => ring.open(`v2.${parts.slice(1).join('.')}`, AAD), isConfigError(/malformed/));
});

test('a value sealed under another key file fails with a clear error', async (t) => {
  const a = await freshRing(t);
  const b = await freshRing(t);
  const sealed = a.ring.seal(SECRET, AAD);
  assert.throws(() => b.ring.open(sealed, AAD), isConfigError(new RegExp(`^secret sealed with key ${a.ring.currentKid} cannot be opened: wrong or missing key file$`)));
  // Same kid, different key material: the tag check catches it.
  const forged = sealed.replace(`.${a.ring.currentKid}.`, `.${b.ring.currentKid}.`);
  assert.throws(() => b.ring.open(forged, AAD), isConfigError(/cannot be opened: wrong or missing key file/));
});

test('a missing key file without create is refused, naming the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'keys.json');
  await assert.rejects(Keyring.load(path, { create: false }), isConfigError(new RegExp(`^key file ${path} missing$`)));
});

test('a key file in a missing directory is refused, naming the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'nope', 'keys.json');
  await assert.rejects(Keyring.load(path, { create: true }), isConfigError(new RegExp(`key file ${path} cannot be created`)));
});

test('a key file readable by group or others is refused, naming the file', { skip: !POSIX }, async (t) => {
  const { path } = await freshRing(t);
  await chmod(path, 0o644);
  await assert.rejects(Keyring.load(path, { create: false }), isConfigError(new RegExp(`^key file ${path} is accessible by group or others \\(mode 0644\\)$`)));
  await chmod(path, 0o640);
  await assert.rejects(Keyring.load(path, { create: true }), isConfigError(/mode 0640/));
  await chmod(path, 0o400);
  await Keyring.load(path, { create: false });
});

test('a key file owned by another uid is refused', { skip: !POSIX || process.getuid?.() !== 0 }, async (t) => {
  const { path } = await freshRing(t);
  await chown(path, 4242, 4242);
  await assert.rejects(Keyring.load(path, { create: false }), isConfigError(new RegExp(`key file ${path} is owned by uid 4242`)));
});

test('malformed key files are refused without quoting their content', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'keys.json');
  const good = Buffer.alloc(32, 7).toString('base64');
  const cases: [string, RegExp][] = [
    ['{"version":1, "current": "SECRETSTUFF', /not valid JSON$/],
    ['[]', /not a JSON object/],
    [JSON.stringify({ version: 2, current: 'a', keys: { a: good }, mac: good }), /"version" must be 1/],
    [JSON.stringify({ version: 1, current: 'b', keys: { a: good }, mac: good }), /"current" must name one of "keys"/],
    [JSON.stringify({ version: 1, current: 'a', keys: { a: 'c2hvcnQ=' }, mac: good }), /"keys\.a" must be the base64 encoding of 32 bytes/],
    [JSON.stringify({ version: 1, current: 'a', keys: { a: good } }), /"mac" must be/],
    [JSON.stringify({ version: 1, current: 'a.b', keys: { 'a.b': good }, mac: good }), /key id/],
    [JSON.stringify({ version: 1, current: 'a', keys: { a: good }, mac: good, extra: 1 }), /unknown field "extra"/],
  ];
  for (const [text, pattern] of cases) {
    await writeFile(path, text, { mode: 0o600 });
    await assert.rejects(Keyring.load(path, { create: true }), (error: unknown) => {
      isConfigError(new RegExp(`^key file ${path} is malformed: `))(error);
      isConfigError(pattern)(error);
      assert.ok(!(error as Error).message.includes('SECRETSTUFF'));
      assert.ok(!(error as Error).message.includes(good));
      return true;
    });
  }
});

test('rotate: old values still open and need re-seal, new ones use the new key', async (t) => {
  const { path, ring } = await freshRing(t);
  const oldKid = ring.currentKid;
  const old = ring.seal(SECRET, AAD);
  assert.equal(ring.needsReseal(old), false);
  const newKid = await ring.rotate();
  assert.notEqual(newKid, oldKid);
  assert.equal(ring.currentKid, newKid);
  assert.ok(ring.kids().includes(oldKid) && ring.kids().includes(newKid));
  assert.deepEqual(ring.kids(), [oldKid, newKid]);
  assert.deepEqual(ring.open(old, AAD), SECRET);
  assert.equal(ring.needsReseal(old), true);
  const fresh = ring.seal(SECRET, AAD);
  assert.equal(fresh.split('.')[1], newKid);
  assert.equal(ring.needsReseal(fresh), false);
  const resealed = ring.reseal(old, AAD);
  assert.equal(ring.needsReseal(resealed), false);
  assert.deepEqual(ring.open(resealed, AAD), SECRET);
  // The rotation is on disk, atomically replaced and still private.
  const reloaded = await Keyring.load(path, { create: false });
  assert.equal(reloaded.currentKid, newKid);
  assert.deepEqual(reloaded.open(old, AAD), SECRET);
  if (POSIX) assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('concurrent rotations are serialised and all land in the file', async (t) => {
  const { path, ring } = await freshRing(t);
  const kids = await Promise.all([ring.rotate(), ring.rotate(), ring.rotate()]);
  assert.equal(new Set(kids).size, 3);
  const reloaded = await Keyring.load(path, { create: false });
  assert.equal(reloaded.kids().length, 4);
  assert.equal(reloaded.currentKid, ring.currentKid);
});

test('retire: values under the retired key fail with a clear error', async (t) => {
  const { path, ring } = await freshRing(t);
  const oldKid = ring.currentKid;
  const old = ring.seal(SECRET, AAD);
  await assert.rejects(ring.retire(oldKid), (error: unknown) => error instanceof MemfaError && error.code === 'CONFLICT');
  await ring.rotate();
  await ring.retire(oldKid);
  assert.equal(ring.kids().includes(oldKid), false);
  const expected = new RegExp(`^secret sealed with key ${oldKid} cannot be opened: wrong or missing key file$`);
  assert.throws(() => ring.open(old, AAD), isConfigError(expected));
  const reloaded = await Keyring.load(path, { create: false });
  assert.equal(reloaded.kids().includes(oldKid), false);
  assert.throws(() => reloaded.open(old, AAD), isConfigError(expected));
  await assert.rejects(ring.retire(oldKid), (error: unknown) => error instanceof MemfaError && error.code === 'NOT_FOUND');
});

test('MAC keys are stable across rotation and retirement, and distinct per purpose', async (t) => {
  const { path, ring } = await freshRing(t);
  const before = ring.macKey('recovery');
  assert.equal(before.length, 32);
  assert.notDeepEqual(ring.macKey('code'), before);
  const first = ring.currentKid;
  await ring.rotate();
  await ring.retire(first);
  assert.deepEqual(ring.macKey('recovery'), before);
  assert.deepEqual((await Keyring.load(path, { create: false })).macKey('recovery'), before);
  // Another key file has another seed.
  assert.notDeepEqual((await freshRing(t)).ring.macKey('recovery'), before);
  // Mutating a returned key does not change the ring's.
  ring.macKey('recovery').fill(0);
  assert.deepEqual(ring.macKey('recovery'), before);
});

test('a failed key file write leaves the ring unchanged and says STORE_FAILED', async (t) => {
  const { path, ring } = await freshRing(t);
  const kid = ring.currentKid;
  // A non-empty directory in place of the file makes the final rename fail, even for root.
  await rm(path);
  await mkdir(join(path, 'blocker'), { recursive: true });
  await assert.rejects(ring.rotate(), (error: unknown) => {
    assert.ok(error instanceof MemfaError);
    assert.equal(error.code, 'STORE_FAILED');
    assert.match(error.message, new RegExp(`^key file ${path} could not be written`));
    return true;
  });
  assert.equal(ring.currentKid, kid);
  assert.deepEqual(ring.kids(), [kid]);
  assert.deepEqual((await readdir(dirname(path))).sort(), ['keys.json']);
});
