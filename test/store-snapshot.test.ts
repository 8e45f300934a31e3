// Unit tests of the snapshot file as lowdb sees it: lowdb's Low over memfa's durable adapter, on
// real temporary files. A hundred concurrent writes (as lowdb's own tests fire at its adapters),
// a missing and a corrupt file, and a crash between the temp file and the rename.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { SnapshotFile } from '../src/store/snapshot.js';
import { FileStore } from '../src/store/file-store.js';
import { CURRENT_SCHEMA, snapshotJson, type SnapshotOut } from '../src/store/schema.js';
import { newMailbox, type MailboxRecord } from '../src/core/model.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir } from './helpers/daemon.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await makeTempDir('memfa-snap-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A snapshot at `seq` holding one mailbox whose phone says which write it was. */
function snapshotAt(seq: number): SnapshotOut {
  const address = 'a@example.com';
  return { schemaVersion: CURRENT_SCHEMA, seq, global: {}, domains: {}, meta: {}, mailboxes: { [address]: { ...newMailbox(address, 1_700_000_000_000), phone: `+1555${seq}` } } };
}

const EMPTY: SnapshotOut = { schemaVersion: CURRENT_SCHEMA, seq: 0, global: {}, domains: {}, mailboxes: {}, meta: {} };

test('a hundred concurrent writes through lowdb: the file holds the last, whole and private, and no temp file is left', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const db = new Low<SnapshotOut>(new SnapshotFile(file), EMPTY);
  const writes: Promise<void>[] = [];
  for (let i = 1; i <= 100; i++) {
    db.data = snapshotAt(i);
    writes.push(db.write());
  }
  await Promise.all(writes);
  const again = new Low<SnapshotOut>(new SnapshotFile(file), EMPTY);
  await again.read();
  assert.equal(again.data.seq, 100);
  assert.equal((again.data.mailboxes as ReadonlyMap<string, MailboxRecord>).get('a@example.com')?.phone, '+1555100');
  assert.equal(JSON.parse(await readFile(file, 'utf8')).seq, 100, 'one valid JSON document');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), ['memfa.json']);
});

test('writes are made one at a time: a write asked for while another runs waits, and one replaced by a later one resolves with it', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const adapter = new SnapshotFile(file);
  const order: number[] = [];
  const first = adapter.write(snapshotAt(1)).then(() => order.push(1));
  const second = adapter.write(snapshotAt(2)).then(() => order.push(2));
  const third = adapter.write(snapshotAt(3)).then(() => order.push(3));
  await Promise.all([first, second, third]);
  assert.equal(order[0], 1, 'the first write finishes first');
  assert.deepEqual(order.slice(1).sort(), [2, 3], 'the replaced write resolves when its successor is durable');
  assert.equal(JSON.parse(await readFile(file, 'utf8')).seq, 3);
  assert.equal(adapter.bytes, (await stat(file)).size);
});

test('a missing file reads as null (lowdb keeps its default data); a file that cannot be parsed is STORE_CORRUPT, left untouched', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const db = new Low<SnapshotOut>(new SnapshotFile(file), EMPTY);
  await db.read();
  assert.equal(db.data, EMPTY);
  assert.equal(await new SnapshotFile(file).read(), null);
  await writeFile(file, '{"schemaVersion":', { mode: 0o600 });
  await assert.rejects(db.read(), (err: unknown) => err instanceof MemfaError && err.code === 'STORE_CORRUPT' && err.message.includes(file));
  assert.equal(await readFile(file, 'utf8'), '{"schemaVersion":');
});

test('the layout memfa writes is revived a record at a time, with the schema version its header gives; a file parsed whole is not', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const calls: [string, unknown][] = [];
  const revive = (record: unknown, schemaVersion: unknown) => {
    const address = (record as MailboxRecord).address;
    calls.push([address, schemaVersion]);
    return { revived: address };
  };
  const addresses = ['b@example.com', 'a@example.com', 'c@example.com'];
  const mailboxes = Object.fromEntries(addresses.map((a) => [a, newMailbox(a, 1_700_000_000_000)]));
  await writeFile(file, [...snapshotJson({ ...EMPTY, schemaVersion: 2, mailboxes })].join(''), { mode: 0o600 });
  const read = (await new SnapshotFile(file, undefined, revive).read())!;
  assert.deepEqual(calls, addresses.map((a) => [a, 2]), 'once per record, in file order, with the header\'s version');
  assert.deepEqual([...(read.mailboxes as ReadonlyMap<string, unknown>)], addresses.map((a) => [a, { revived: a }]), 'the store gets the revived records');
  // A layout written by hand or by an older memfa is parsed whole and left to the store's load.
  calls.length = 0;
  await writeFile(file, JSON.stringify({ ...EMPTY, mailboxes }), { mode: 0o600 });
  const whole = (await new SnapshotFile(file, undefined, revive).read())!;
  assert.deepEqual(calls, []);
  assert.deepEqual(whole.mailboxes, mailboxes);
});

test('a large snapshot is read back whole, a record at a time: characters of several bytes across read boundaries, a header longer than a read', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  // 3,000 mailboxes of about 1 KB, each with text of 2-, 3- and 4-byte characters at varying
  // offsets; 3,000 domains with such text in the header line (about 900 KB).
  const text = (i: number) => `${'x'.repeat(i % 7)}é€𝄞 ${'ß'.repeat(i % 5)}ü—😀`;
  const mailboxes: Record<string, MailboxRecord> = {};
  for (let i = 0; i < 3000; i++) {
    const address = `u${i}@d${i % 50}.example`;
    mailboxes[address] = { ...newMailbox(address, 1_700_000_000_000), settings: { challenge: 'new-ip' }, altEmail: `${text(i)}@example.com`.repeat(8) };
  }
  const domains = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`d${i}.example`, { settings: {}, note: text(i).repeat(10) }]));
  const written: SnapshotOut = { ...EMPTY, seq: 7, domains: domains as unknown as SnapshotOut['domains'], mailboxes };
  await writeFile(file, [...snapshotJson(written)].join(''), { mode: 0o600 });
  const size = (await stat(file)).size;
  assert.ok(size > 3 * 256 * 1024, `the file spans many reads (${size} bytes)`);
  const header = (await readFile(file)).indexOf(0x0a);
  assert.ok(header > 256 * 1024, `the header line is longer than a read (${header} bytes)`);
  let revived = 0;
  const read = (await new SnapshotFile(file, undefined, (record) => (revived++, record)).read())!;
  assert.equal(revived, 3000, 'read a record at a time, not parsed whole');
  assert.deepEqual(Object.fromEntries(read.mailboxes as ReadonlyMap<string, MailboxRecord>), mailboxes);
  assert.deepEqual(read.domains, domains);
  assert.equal(read.seq, 7);
});

test('a write that fails rejects its caller and every caller waiting behind it, and leaves the old snapshot', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const adapter = new SnapshotFile(file);
  await adapter.write(snapshotAt(1));
  // A mailbox value that cannot be serialised makes the write fail part-way through the temp file.
  const bad = { ...snapshotAt(2), mailboxes: { 'b@example.com': { toJSON: () => 1n } } } as unknown as SnapshotOut;
  const failing = adapter.write(bad);
  const behind = adapter.write(bad);
  await assert.rejects(failing, TypeError);
  await assert.rejects(behind, TypeError);
  assert.equal(JSON.parse(await readFile(file, 'utf8')).seq, 1);
  assert.deepEqual(await readdir(dir), ['memfa.json'], 'the temp file is removed');
  await adapter.write(snapshotAt(3));
  assert.equal(JSON.parse(await readFile(file, 'utf8')).seq, 3, 'later writes succeed');
});

test('a crash between the temp file and the rename leaves the old snapshot, which the store opens', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'memfa.json');
  const store = await FileStore.open(file);
  await store.transact((tx) => tx.putMailbox({ ...newMailbox('old@example.com', 1_700_000_000_000), phone: '+15550001' }));
  await store.close();
  const before = await readFile(file, 'utf8');

  // A child process writes a new snapshot through lowdb and is killed (SIGKILL) the moment the
  // adapter renames its fsync'd temp file into place.
  const child = [
    "import { createRequire, syncBuiltinESMExports } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    "const fsp = require('node:fs/promises');",
    'fsp.rename = async () => { process.kill(process.pid, "SIGKILL"); await new Promise(() => {}); };',
    'syncBuiltinESMExports();',
    'const [file, snapshotModule, lowdbModule, data] = process.argv.slice(2);',
    'const { SnapshotFile } = await import(snapshotModule);',
    'const { Low } = await import(lowdbModule);',
    'const db = new Low(new SnapshotFile(file), null);',
    'db.data = JSON.parse(data);',
    'await db.write();',
    "console.log('renamed: the crash did not happen');",
  ].join('\n');
  const script = path.join(dir, 'crash.mjs');
  await writeFile(script, child);
  const next = { ...snapshotAt(9), mailboxes: { 'new@example.com': newMailbox('new@example.com', 1_700_000_000_000) } };
  const args = [script, file, new URL('../src/store/snapshot.js', import.meta.url).href, import.meta.resolve('lowdb'), JSON.stringify(next)];
  const { signal, stdout } = await new Promise<{ signal: NodeJS.Signals | null; stdout: string }>((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString()));
    p.on('error', reject);
    p.on('exit', (_code, sig) => resolve({ signal: sig, stdout: out }));
  });
  assert.equal(signal, 'SIGKILL', stdout);

  assert.equal(await readFile(file, 'utf8'), before, 'the old snapshot is untouched');
  const temps = (await readdir(dir)).filter((f) => f.startsWith('.memfa.json.tmp-'));
  assert.equal(temps.length, 1, 'the crash came after the temp file was written');
  assert.equal(JSON.parse(await readFile(path.join(dir, temps[0]!), 'utf8')).seq, 9, 'the temp file was complete');
  const reopened = await FileStore.open(file);
  t.after(() => reopened.close());
  assert.equal(reopened.getMailbox('old@example.com')?.phone, '+15550001');
  assert.equal(reopened.getMailbox('new@example.com'), undefined);
});
