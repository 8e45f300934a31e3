// The key file shared by several keyrings (as by the daemons of several hosts, or by a daemon and
// a key file installed while it runs): a key added before it is current, the key file read again
// when a value names a key the ring lacks, and what a key file read again may not change.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { MemfaError } from '../src/protocol/errors.js';
import { MAX_KEY_FILE_BYTES } from '../src/security/key-file.js';
import { Keyring, secretAad, type KeyFileReread } from '../src/security/keyring.js';

const AAD = secretAad('totp', 'alice@example.org');
const SECRET = Buffer.from('JBSWY3DPEHPK3PXP-very-secret');

interface FileJson {
  version: 1;
  current: string;
  keys: Record<string, string>;
  mac: string;
}

async function keyFile(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-rotation-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return join(dir, 'keys.json');
}

/** A ring on `path` that records each time it takes the file again. */
async function watched(path: string, create = false): Promise<{ ring: Keyring; rereads: KeyFileReread[] }> {
  const rereads: KeyFileReread[] = [];
  return { ring: await Keyring.load(path, { create, onReread: (e) => rereads.push(e) }), rereads };
}

const readJson = async (path: string): Promise<FileJson> => JSON.parse(await readFile(path, 'utf8')) as FileJson;
const writeJson = (path: string, file: FileJson): Promise<void> => writeFile(path, JSON.stringify(file), { mode: 0o600 });
const sealedKid = (sealed: string): string => sealed.split('.')[1] ?? '';

function isError(code: string, pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof MemfaError, `expected MemfaError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

test('an added key is in the file but seals nothing and changes no answer until rotate makes it current', async (t) => {
  const path = await keyFile(t);
  const ring = await Keyring.load(path, { create: true });
  const first = ring.currentKid;
  const before = ring.seal(SECRET, AAD);

  const added = await ring.add();
  assert.notEqual(added, first);
  assert.equal(ring.currentKid, first);
  assert.deepEqual(ring.kids(), [first, added]);
  const file = await readJson(path);
  assert.equal(file.current, first);
  assert.deepEqual(Object.keys(file.keys), [first, added]);

  // Sealing, opening and the re-seal sweep go on exactly as before the key was added.
  assert.equal(sealedKid(ring.seal(SECRET, AAD)), first);
  assert.deepEqual(ring.open(before, AAD), SECRET);
  assert.equal(ring.needsReseal(before), false);
  assert.equal(ring.reseal(before, AAD), before);
  const reloaded = await Keyring.load(path, { create: false });
  assert.equal(reloaded.currentKid, first);
  assert.equal(sealedKid(reloaded.seal(SECRET, AAD)), first);

  // One added key at a time: a second would make it unclear which one rotate takes.
  await assert.rejects(ring.add(), isError('CONFLICT', new RegExp(`^key ${added} was added and is not current yet$`)));
  assert.deepEqual(Object.keys((await readJson(path)).keys), [first, added]);

  // rotate takes the added key instead of making another; the next rotate makes a fresh one.
  assert.equal(await ring.rotate(), added);
  assert.equal(ring.currentKid, added);
  assert.deepEqual(ring.kids(), [first, added]);
  assert.equal(sealedKid(ring.seal(SECRET, AAD)), added);
  assert.equal(ring.needsReseal(before), true);
  assert.deepEqual(ring.open(ring.reseal(before, AAD), AAD), SECRET);
  assert.equal((await readJson(path)).current, added);
  const fresh = await ring.rotate();
  assert.ok(![first, added].includes(fresh));
  assert.deepEqual(ring.kids(), [first, added, fresh]);
});

test('a value sealed with a key the ring lacks: the key file is read again, once, and the value opens', async (t) => {
  const path = await keyFile(t);
  const { ring: here, rereads } = await watched(path, true);
  const first = here.currentKid;
  // Another daemon with the same key file rotates and seals under its new key.
  const there = await Keyring.load(path, { create: false });
  const second = await there.rotate();
  const sealed = there.seal(SECRET, AAD);

  assert.deepEqual(here.open(sealed, AAD), SECRET);
  assert.deepEqual(rereads, [{ why: 'unknown-kid', kid: second, current: second, kids: [first, second] }]);
  // The file names the current key for every daemon that reads it.
  assert.equal(here.currentKid, second);
  assert.equal(sealedKid(here.seal(SECRET, AAD)), second);
  assert.deepEqual(here.open(sealed, AAD), SECRET);
  assert.equal(rereads.length, 1);
});

test('a key in no key file: read again only when the file changed, then the same error as ever', async (t) => {
  const path = await keyFile(t);
  const { ring, rereads } = await watched(path, true);
  const first = ring.currentKid;
  const foreign = await Keyring.load(await keyFile(t), { create: true });
  const sealed = foreign.seal(SECRET, AAD);
  const exact = new RegExp(`^secret sealed with key ${foreign.currentKid} cannot be opened: wrong or missing key file$`);

  // Unchanged since it was read: not taken again, however often the value is met.
  for (let i = 0; i < 3; i++) assert.throws(() => ring.open(sealed, AAD), isError('CONFIG_INVALID', exact));
  assert.equal(rereads.length, 0);

  // Changed (another daemon added a key): taken once, and the value still fails the same way.
  const added = await (await Keyring.load(path, { create: false })).add();
  for (let i = 0; i < 3; i++) assert.throws(() => ring.open(sealed, AAD), isError('CONFIG_INVALID', exact));
  assert.equal(rereads.length, 1);
  assert.equal(rereads[0]?.kid, foreign.currentKid);
  assert.deepEqual(ring.kids(), [first, added]);
});

test('a change to the key file starts from the file on disk, so a key installed meanwhile is kept', async (t) => {
  const path = await keyFile(t);
  const { ring: here, rereads } = await watched(path, true);
  const first = here.currentKid;
  const there = await Keyring.load(path, { create: false });

  // Added elsewhere: this ring's rotate makes that key current rather than writing its own file.
  const added = await there.add();
  assert.equal(await here.rotate(), added);
  assert.deepEqual(rereads, [{ why: 'before-write', current: first, kids: [first, added] }]);
  const rotated = await readJson(path);
  assert.equal(rotated.current, added);
  assert.deepEqual(Object.keys(rotated.keys), [first, added]);

  // Rotated elsewhere: this ring's add goes after the key made current there.
  const third = await there.rotate();
  assert.equal(third, (await readJson(path)).current);
  const fourth = await here.add();
  const file = await readJson(path);
  assert.equal(file.current, third);
  assert.deepEqual(Object.keys(file.keys), [first, added, third, fourth]);
  assert.equal(here.currentKid, third);
  // Its own writes are not read back.
  assert.equal(rereads.length, 2);
  await here.retire(first);
  assert.equal(rereads.length, 2);
});

test('a key file larger than the bound is refused unread, at start and when read again', async (t) => {
  const path = await keyFile(t);
  const ring = await Keyring.load(path, { create: true });
  const original = await readFile(path, 'utf8');
  // Valid JSON with the right fields, padded past the bound with whitespace.
  await writeFile(path, original + ' '.repeat(MAX_KEY_FILE_BYTES), { mode: 0o600 });
  const tooLarge = new RegExp(`^key file ${path} is malformed: larger than ${MAX_KEY_FILE_BYTES} bytes$`);
  await assert.rejects(Keyring.load(path, { create: false }), isError('CONFIG_INVALID', tooLarge));
  await assert.rejects(ring.add(), isError('CONFIG_INVALID', tooLarge));
  await writeFile(path, original, { mode: 0o600 });
  await Keyring.load(path, { create: false });
});

test('a key file read again may not change the MAC key, nor drop or change a key the ring holds', async (t) => {
  const path = await keyFile(t);
  const ring = await Keyring.load(path, { create: true });
  const kid = ring.currentKid;
  const mine = ring.seal(SECRET, AAD);
  const macBefore = ring.macKey('recovery');
  const original = await readJson(path);
  const other = Buffer.alloc(32, 9).toString('base64');
  // A value under a kid this ring lacks is what makes it read the file again.
  const stranger = (await Keyring.load(await keyFile(t), { create: true })).seal(SECRET, AAD);

  const cases: [FileJson, RegExp][] = [
    [{ ...original, mac: other }, new RegExp(`^key file ${path} now holds another MAC key than the one the daemon holds; it was not taken$`)],
    [{ ...original, current: 'new', keys: { new: other } }, new RegExp(`^key file ${path} no longer holds key ${kid}, which the daemon holds; it was not taken$`)],
    [{ ...original, keys: { [kid]: other } }, new RegExp(`^key file ${path} now holds another key under the id ${kid}; it was not taken$`)],
  ];
  for (const [file, message] of cases) {
    await writeJson(path, file);
    assert.throws(() => ring.open(stranger, AAD), isError('CONFIG_INVALID', message));
    await assert.rejects(ring.rotate(), isError('CONFIG_INVALID', message));
    await assert.rejects(ring.add(), isError('CONFIG_INVALID', message));
    // Nothing was taken and nothing was written over the file.
    assert.deepEqual(await readJson(path), file);
    assert.equal(ring.currentKid, kid);
    assert.deepEqual(ring.kids(), [kid]);
    assert.deepEqual(ring.open(mine, AAD), SECRET);
    assert.deepEqual(ring.macKey('recovery'), macBefore);
  }
  // The file put back is taken again (it changed), and changes go on.
  await writeJson(path, original);
  assert.notEqual(await ring.rotate(), kid);
});
