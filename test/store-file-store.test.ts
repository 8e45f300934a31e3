// Unit tests of the default store (snapshot + journal) on temporary directories: durability of
// concurrent transactions, rollback on a throwing change or a failed write, compaction, migration,
// and refusal of files it cannot trust.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import path from 'node:path';
import { FileStore, type FileStoreOptions } from '../src/store/file-store.js';
import { CURRENT_SCHEMA, snapshotJson } from '../src/store/schema.js';
import { newMailbox, type MailboxRecord } from '../src/core/model.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir } from './helpers/daemon.js';

/** Stores opened by the running test, closed before its directory is removed. */
let opened: FileStore[] = [];
async function openStore(file: string, options?: FileStoreOptions): Promise<FileStore> {
  const s = await FileStore.open(file, options);
  opened.push(s);
  return s;
}

async function tempStore(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await makeTempDir('memfa-store-');
  opened = [];
  t.after(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  return path.join(dir, 'memfa.json');
}

const mb = (address: string, extra: Partial<MailboxRecord> = {}): MailboxRecord => ({ ...newMailbox(address, 1_700_000_000_000), ...extra });

/** A journal handle whose write/datasync can be made to fail, counting what reaches the file. */
class FaultyJournal {
  writes = 0;
  failWrites = 0;
  failSyncs = 0;
  /** Write this many bytes of the next failing write before failing (a short write). */
  partialBytes = 0;
  handle!: FileHandle;

  readonly open: NonNullable<FileStoreOptions['openJournal']> = async (file) => {
    const real = await open(file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    this.handle = real;
    const self = this;
    return new Proxy(real, {
      get(target, prop) {
        if (prop === 'write') {
          return async (data: Buffer) => {
            if (self.failWrites > 0) {
              self.failWrites--;
              if (self.partialBytes > 0) await target.write(data.subarray(0, self.partialBytes));
              throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
            }
            self.writes++;
            return target.write(data);
          };
        }
        if (prop === 'datasync') {
          return async () => {
            if (self.failSyncs > 0) {
              self.failSyncs--;
              throw Object.assign(new Error('input/output error'), { code: 'EIO' });
            }
            return target.datasync();
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
}

function isStoreError(code: string) {
  return (err: unknown) => err instanceof MemfaError && err.code === code;
}

test('100 concurrent transactions are all durable, with far fewer journal writes (group commit)', async (t) => {
  const file = await tempStore(t);
  const j = new FaultyJournal();
  const s = await openStore(file, { openJournal: j.open });
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => s.transact((tx) => (tx.putMailbox(mb(`u${i}@example.com`, { phone: `+1555000${i}` })), i))));
  assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i), 'each resolves with its own result');
  assert.equal(s.countMailboxes(), 100);
  assert.ok(j.writes < 10, `${j.writes} journal writes for 100 transactions`);
  // Reopen without close(): what was acknowledged is in the journal.
  const again = await openStore(file);
  assert.equal(again.countMailboxes(), 100);
  for (let i = 0; i < 100; i++) assert.equal(again.getMailbox(`u${i}@example.com`)?.phone, `+1555000${i}`);
  await s.close();
});

test('a transaction issued the moment the previous one resolves is written (no lost wake-up)', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  // Each await resumes inside the flush loop's last resolve; the next transact must still be flushed.
  const chain = (async () => {
    for (let i = 0; i < 20; i++) await s.transact((tx) => tx.putMeta('n', i));
  })();
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('a transaction was never flushed')), 2000)));
  await Promise.race([chain, stuck]);
  clearTimeout(timer);
  assert.equal(s.getMeta('n'), 19);
  const again = await openStore(file);
  assert.equal(again.getMeta('n'), 19);
});

test('while the disk keeps failing, every write is refused and reads serve the last durable state', async (t) => {
  const file = await tempStore(t);
  const j = new FaultyJournal();
  const s = await openStore(file, { openJournal: j.open });
  await s.transact((tx) => tx.putMailbox(mb('a@example.com')));
  j.failWrites = 5;
  for (let i = 0; i < 5; i++) {
    await assert.rejects(
      s.transact((tx) => tx.putMailbox(mb(`x${i}@example.com`))),
      isStoreError('STORE_FAILED'),
    );
    assert.equal(s.countMailboxes(), 1);
    assert.equal(s.getMailbox('a@example.com')?.address, 'a@example.com');
  }
  await s.transact((tx) => tx.putMailbox(mb('b@example.com')));
  assert.deepEqual(
    s.listMailboxes().map((m) => m.address),
    ['a@example.com', 'b@example.com'],
  );
});

test('a change that throws leaves nothing changed, in memory or on disk', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  await s.transact((tx) => {
    tx.putMailbox(mb('keep@example.com', { phone: '+15550001' }));
    tx.putDomain({ domain: 'example.com', settings: { challenge: 'always' }, updatedAt: 1 });
    tx.putGlobal({ challenge: 'new-ip' });
    tx.putMeta('k', 1);
  });
  const journalBefore = await readFile(file + '.journal');
  await assert.rejects(
    s.transact((tx) => {
      tx.putMailbox(mb('keep@example.com', { phone: '+15559999' }));
      tx.putMailbox(mb('new@example.com'));
      assert.equal(tx.deleteDomain('example.com'), true);
      tx.putGlobal({ challenge: 'always' });
      tx.putMeta('k', 2);
      assert.equal(tx.getMailbox('new@example.com')?.address, 'new@example.com', 'reads see own writes');
      throw new Error('changed my mind');
    }),
    /changed my mind/,
  );
  assert.equal(s.getMailbox('keep@example.com')?.phone, '+15550001');
  assert.equal(s.getMailbox('new@example.com'), undefined);
  assert.equal(s.getDomain('example.com')?.settings.challenge, 'always');
  assert.deepEqual(s.getGlobal(), { challenge: 'new-ip' });
  assert.equal(s.getMeta('k'), 1);
  assert.equal(s.countMailboxes(), 1);
  assert.deepEqual(await readFile(file + '.journal'), journalBefore, 'nothing journalled');
  // Records handed out are frozen: nobody can change the state behind the store's back.
  assert.throws(() => {
    (s.getMailbox('keep@example.com') as { phone: string }).phone = 'x';
  });
  await s.close();
});

test('a failed journal write rejects with STORE_FAILED, rolls memory back, reads keep working, later writes succeed', async (t) => {
  const file = await tempStore(t);
  const j = new FaultyJournal();
  const events: string[] = [];
  const s = await openStore(file, { openJournal: j.open, onEvent: (e) => events.push(e) });
  await s.transact((tx) => tx.putMailbox(mb('a@example.com', { phone: '+15550001' })));

  j.failWrites = 1;
  j.partialBytes = 7; // a short write leaves half a line in the file
  const first = s.transact((tx) => tx.putMailbox(mb('a@example.com', { phone: '+15550002' })));
  // Queued behind the failing batch, and built on top of its change: must be undone too.
  const second = s.transact((tx) => {
    tx.putMailbox({ ...tx.getMailbox('a@example.com')!, altEmail: 'alt@example.org' });
    tx.putMailbox(mb('b@example.com'));
  });
  await assert.rejects(first, isStoreError('STORE_FAILED'));
  await assert.rejects(second, (err: unknown) => err instanceof MemfaError && (err.code === 'STORE_FAILED' || err.code === 'SHUTTING_DOWN'));
  assert.ok(events.includes('store-write-failed'));
  // Rolled back to the last durable state; reads keep working.
  assert.equal(s.getMailbox('a@example.com')?.phone, '+15550001');
  assert.equal(s.getMailbox('a@example.com')?.altEmail, null);
  assert.equal(s.getMailbox('b@example.com'), undefined);
  assert.equal(s.countMailboxes(), 1);
  assert.equal(s.listMailboxes().length, 1);

  // The disk recovers: the next change is written after the torn bytes are cut off.
  await s.transact((tx) => tx.putMailbox(mb('c@example.com')));
  assert.equal(s.getMailbox('c@example.com')?.address, 'c@example.com');
  const journal = await readFile(file + '.journal', 'utf8');
  for (const line of journal.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(line), `journal line is whole: ${line}`);

  const again = await openStore(file);
  assert.equal(again.getMailbox('a@example.com')?.phone, '+15550001', 'the failed change is not resurrected');
  assert.equal(again.getMailbox('b@example.com'), undefined);
  assert.equal(again.getMailbox('c@example.com')?.address, 'c@example.com');
  await s.close();
});

test('a failed fsync rejects with STORE_FAILED, and the rejected change does not come back after close and reopen', async (t) => {
  const file = await tempStore(t);
  const j = new FaultyJournal();
  const s = await openStore(file, { openJournal: j.open });
  await s.transact((tx) => tx.putMailbox(mb('a@example.com', { phone: '+15550001' })));
  j.failSyncs = 1;
  await assert.rejects(
    s.transact((tx) => tx.putMailbox(mb('a@example.com', { phone: '+15550002' }))),
    (err: unknown) => isStoreError('STORE_FAILED')(err) && /EIO/.test((err as Error).message),
  );
  assert.equal(s.getMailbox('a@example.com')?.phone, '+15550001');
  await s.close();
  const again = await openStore(file);
  assert.equal(again.getMailbox('a@example.com')?.phone, '+15550001', 'a change reported as failed must stay failed');
});

test('compaction folds the journal into the snapshot; reopening (with or without close) gives the same data', async (t) => {
  const file = await tempStore(t);
  const events: string[] = [];
  const s = await openStore(file, { compactJournalBytes: 2048, onEvent: (e) => events.push(e) });
  for (let i = 0; i < 40; i++) await s.transact((tx) => tx.putMailbox(mb(`c${i}@example.com`, { phone: `+1555100${i}` })));
  await s.transact((tx) => {
    tx.deleteMailbox('c0@example.com');
    tx.putDomain({ domain: 'example.com', settings: { provider: 'totp' }, updatedAt: 2 });
    tx.putMeta('m', { nested: [1, 2] });
  });
  await s.drain(); // background snapshot writes finish
  assert.ok(events.includes('store-compacted'), events.join(','));
  // Compaction waits until the journal reaches the threshold or the snapshot's size, whichever is larger.
  const limit = Math.max(2048, (await stat(file)).size) + 512;
  assert.ok((await stat(file + '.journal')).size < limit, 'journal stays near the threshold');
  const snap = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(snap.schemaVersion, CURRENT_SCHEMA);
  assert.ok(Object.keys(snap.mailboxes).length >= 10, 'compaction moved changes into the snapshot');
  // Every change is in the snapshot or in the journal after it: nothing fell between the two.
  const journalled = new Set(
    (await readFile(file + '.journal', 'utf8'))
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => (JSON.parse(l) as { o: [string, string, unknown][] }).o.map((op) => op[1])),
  );
  for (let i = 1; i < 40; i++) assert.ok(`c${i}@example.com` in snap.mailboxes || journalled.has(`c${i}@example.com`), `c${i} lost between snapshot and journal`);
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  const snapshotOf = (x: FileStore) => ({
    mailboxes: x.listMailboxes().map((m) => [m.address, m.phone]),
    domains: x.listDomains(),
    meta: x.getMeta('m'),
  });
  const before = snapshotOf(s);
  assert.equal(before.mailboxes.length, 39);
  const crashed = await openStore(file); // as after a crash: snapshot + journal replay
  assert.deepEqual(snapshotOf(crashed), before);
  await crashed.close();
  await s.close();
  assert.equal((await stat(file + '.journal')).size, 0, 'close folds the journal in');
  const reopened = await openStore(file);
  assert.deepEqual(snapshotOf(reopened), before);
});

test('migration: a store without schemaVersion is brought up to date', async (t) => {
  const file = await tempStore(t);
  const v0 = { mailboxes: { 'old@example.com': { phone: '+15550001', settings: { challenge: 'always' } }, 'bare@example.com': {} }, domains: { 'example.com': { domain: 'example.com', settings: {}, updatedAt: 1 } } };
  await writeFile(file, JSON.stringify(v0), { mode: 0o600 });
  const s = await openStore(file);
  const old = s.getMailbox('old@example.com')!;
  assert.equal(old.address, 'old@example.com');
  assert.equal(old.phone, '+15550001');
  assert.deepEqual(old.settings, { challenge: 'always' });
  assert.deepEqual(old.ips, []);
  assert.deepEqual(old.failures, { known: null, elsewhere: null });
  assert.equal(old.totp, null);
  assert.equal(typeof old.createdAt, 'number');
  assert.equal(s.getMailbox('bare@example.com')?.altEmail, null);
  assert.equal(s.getDomain('example.com')?.domain, 'example.com');
  assert.deepEqual(s.getGlobal(), {});
  await s.transact((tx) => tx.putMeta('touched', true));
  await s.close();
  const written = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(written.schemaVersion, CURRENT_SCHEMA, 'the next compaction writes the current schema');
  assert.equal(written.mailboxes['bare@example.com'].address, 'bare@example.com');
  const again = await openStore(file);
  assert.equal(again.getMailbox('old@example.com')?.phone, '+15550001');
});

test('migration: a version 1 store loads, its mailbox settings kept as the administrators\' and no user choices', async (t) => {
  const file = await tempStore(t);
  const rec1 = (address: string, settings: Record<string, unknown>) => {
    const { userSettings: _none, ...v1 } = mb(address, { settings: settings as MailboxRecord['settings'] });
    return v1;
  };
  const v1 = {
    schemaVersion: 1,
    seq: 1,
    global: { challenge: 'new-ip' },
    domains: { 'example.com': { domain: 'example.com', settings: { challenge: 'always' }, updatedAt: 1 } },
    mailboxes: { 'mixed@example.com': rec1('mixed@example.com', { challenge: 'always', provider: 'sms' }), 'plain@example.com': rec1('plain@example.com', {}) },
    meta: {},
  };
  assert.equal('userSettings' in v1.mailboxes['plain@example.com'], false, 'the fixture is a version 1 record');
  await writeFile(file, JSON.stringify(v1), { mode: 0o600 });
  // A journal line written by the version 1 daemon after that snapshot, replayed after an upgrade.
  await writeFile(file + '.journal', JSON.stringify({ s: 2, o: [['m', 'late@example.com', rec1('late@example.com', { challenge: 'never' })]] }) + '\n', { mode: 0o600 });
  const s = await openStore(file);
  const mixed = s.getMailbox('mixed@example.com')!;
  assert.deepEqual(mixed.settings, { challenge: 'always', provider: 'sms' });
  assert.deepEqual(mixed.userSettings, {});
  assert.deepEqual(s.getMailbox('plain@example.com')!.userSettings, {});
  const late = s.getMailbox('late@example.com')!;
  assert.deepEqual([late.settings, late.userSettings], [{ challenge: 'never' }, {}]);
  assert.deepEqual(s.getGlobal(), { challenge: 'new-ip' });
  await s.close();
  const written = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(written.schemaVersion, CURRENT_SCHEMA);
  assert.deepEqual(written.mailboxes['late@example.com'].userSettings, {});
  const again = await openStore(file);
  assert.deepEqual(again.getMailbox('mixed@example.com')!.userSettings, {});
});

test('migration: a version 1 store, and the journal beside it, count their old failures on both sides', async (t) => {
  const file = await tempStore(t);
  const oldFailures = (consecutive: number, lockedUntil: number | null, hardLocked = false) => ({ consecutive, lockedUntil, hardLocked, lastFailureAt: consecutive === 0 ? null : 1_700_000_000_000 });
  const v1 = (address: string, failures: unknown) => ({ ...newMailbox(address, 1_700_000_000_000), failures });
  const snapshot = {
    schemaVersion: 1,
    seq: 1,
    global: {},
    domains: {},
    meta: {},
    mailboxes: { 'clean@example.com': v1('clean@example.com', oldFailures(0, null)), 'hard@example.com': v1('hard@example.com', oldFailures(100, 1_700_000_060_000, true)) },
  };
  await writeFile(file, JSON.stringify(snapshot), { mode: 0o600 });
  // As a version 1 daemon that crashed leaves it: entries after the snapshot, in the old shape.
  const entry = { s: 2, o: [['m', 'late@example.com', v1('late@example.com', oldFailures(5, 1_700_000_060_000))]] };
  await writeFile(file + '.journal', JSON.stringify(entry) + '\n', { mode: 0o600 });
  const s = await openStore(file);
  assert.deepEqual(s.getMailbox('clean@example.com')!.failures, { known: null, elsewhere: null });
  const hard = oldFailures(100, 1_700_000_060_000, true);
  assert.deepEqual(s.getMailbox('hard@example.com')!.failures, { known: hard, elsewhere: hard }, 'a hard lock stays a hard lock for every login');
  const late = oldFailures(5, 1_700_000_060_000);
  assert.deepEqual(s.getMailbox('late@example.com')!.failures, { known: late, elsewhere: late });
  // Opening wrote the current schema at once, so that no journal holds records of two shapes.
  const written = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(written.schemaVersion, CURRENT_SCHEMA);
  assert.deepEqual(written.mailboxes['late@example.com'].failures, { known: late, elsewhere: late });
  assert.equal((await stat(file + '.journal')).size, 0);
  await s.close();
  const again = await openStore(file);
  assert.deepEqual(again.getMailbox('hard@example.com')!.failures, { known: hard, elsewhere: hard });
});

test('a snapshot in the line layout loads as its records, frozen with shared values; one of an older schema in that layout is migrated first', async (t) => {
  const file = await tempStore(t);
  const settings = { challenge: 'always' } as const;
  const current = { schemaVersion: CURRENT_SCHEMA, seq: 1, global: {}, domains: {}, meta: {}, mailboxes: { 'a@example.com': mb('a@example.com', { settings: { ...settings } }), 'b@example.com': mb('b@example.com', { settings: { ...settings }, phone: '+15550002' }) } };
  await writeFile(file, [...snapshotJson(current)].join(''), { mode: 0o600 });
  const s = await openStore(file);
  const [a, b] = [s.getMailbox('a@example.com')!, s.getMailbox('b@example.com')!];
  assert.deepEqual([a, b], [current.mailboxes['a@example.com'], current.mailboxes['b@example.com']]);
  const frozenThroughout = (v: unknown): boolean => v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v as object).every(frozenThroughout));
  assert.ok(frozenThroughout(a) && frozenThroughout(b));
  assert.equal(a.settings, b.settings, 'equal settings are held once');
  assert.equal(a.failures, b.failures, 'so is the failure state of mailboxes that never failed');
  await s.close();

  // Version 2 records (no app passwords) in the layout memfa writes: brought up to date, not taken as they are.
  const { appPasswords: _none, ...v2 } = mb('old@example.com', { settings: { ...settings } });
  await writeFile(file, [...snapshotJson({ schemaVersion: 2, seq: 1, global: {}, domains: {}, meta: {}, mailboxes: { 'old@example.com': v2 as MailboxRecord } })].join(''), { mode: 0o600 });
  assert.equal('appPasswords' in JSON.parse(await readFile(file, 'utf8')).mailboxes['old@example.com'], false, 'the fixture is a version 2 record');
  const old = await openStore(file);
  assert.deepEqual(old.getMailbox('old@example.com'), mb('old@example.com', { settings }));
  await old.close();
  assert.equal(JSON.parse(await readFile(file, 'utf8')).schemaVersion, CURRENT_SCHEMA);
});

test('a newer schemaVersion, invalid JSON or a wrong shape is STORE_CORRUPT naming the file, which is left untouched', async (t) => {
  const file = await tempStore(t);
  const newer = CURRENT_SCHEMA + 1;
  for (const text of [`{"schemaVersion":${newer},"seq":0,"global":{},"domains":{},"mailboxes":{},"meta":{}}`, '{"schemaVersion":1,', '"just a string"', '{"schemaVersion":1,"mailboxes":null}', '{"schemaVersion":-1}']) {
    await writeFile(file, text, { mode: 0o600 });
    await assert.rejects(FileStore.open(file), (err: unknown) => {
      assert.ok(err instanceof MemfaError, String(err));
      assert.equal(err.code, 'STORE_CORRUPT', `${text}: ${err.message}`);
      assert.ok(err.message.includes(file), err.message);
      assert.equal(err.data?.['file'], file);
      return true;
    });
    assert.equal(await readFile(file, 'utf8'), text, 'untouched');
  }
  await writeFile(file, `{"schemaVersion":${newer}}`, { mode: 0o600 });
  await assert.rejects(FileStore.open(file), /newer than this memfa understands/);
});

test('journal: a torn tail is dropped, a corrupt middle line is refused, entries already in the snapshot are skipped', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  await s.transact((tx) => tx.putMailbox(mb('a@example.com', { phone: '+15550001' })));
  await s.close(); // snapshot seq 1, empty journal
  const entry = (seq: number, phone: string) => JSON.stringify({ s: seq, o: [['m', 'a@example.com', mb('a@example.com', { phone })]] }) + '\n';
  const journal = file + '.journal';

  // An entry the snapshot already holds (seq 1) is skipped; seq 2 applies; the torn seq 3 is dropped.
  const torn = entry(3, '+15550003');
  await writeFile(journal, entry(1, '+15550000') + entry(2, '+15550002') + torn.slice(0, 20), { mode: 0o600 });
  const events: string[] = [];
  const s2 = await openStore(file, { onEvent: (e) => events.push(e) });
  assert.equal(s2.getMailbox('a@example.com')?.phone, '+15550002');
  assert.ok(events.includes('store-journal-torn-tail'));
  await s2.transact((tx) => tx.putMeta('after', 1));
  // Crash (no close): the new entry must start on a clean line.
  const s3 = await openStore(file);
  assert.equal(s3.getMeta('after'), 1);
  assert.equal(s3.getMailbox('a@example.com')?.phone, '+15550002');
  await s3.close();
  await s2.close().catch(() => undefined);

  const corrupt = Buffer.from(entry(5, '+15550005') + 'this is not json\n' + entry(6, '+15550006'));
  await writeFile(journal, corrupt, { mode: 0o600 });
  await assert.rejects(FileStore.open(file), (err: unknown) => err instanceof MemfaError && err.code === 'STORE_CORRUPT' && err.message.includes(journal));
  assert.deepEqual(await readFile(journal), corrupt, 'journal untouched');
});

test('files readable by group or others are refused (CONFIG_INVALID naming the file)', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  await s.close();
  assert.equal((await stat(file)).mode & 0o777, 0o600, 'a new store is created 0600');
  assert.equal((await stat(file + '.journal')).mode & 0o777, 0o600, 'and its journal 0600');
  await chmod(file, 0o644);
  await assert.rejects(FileStore.open(file), (err: unknown) => err instanceof MemfaError && err.code === 'CONFIG_INVALID' && err.message.includes(file) && err.hint === `chmod 600 ${file}`);
  await chmod(file, 0o600);
  await chmod(file + '.journal', 0o640);
  await assert.rejects(FileStore.open(file), (err: unknown) => err instanceof MemfaError && err.message.includes(file + '.journal'));
  await chmod(file + '.journal', 0o600);
  const ok = await openStore(file);
  await ok.close();
});

test('close drains queued writes; transact after close is refused', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  const pending = Array.from({ length: 20 }, (_, i) => s.transact((tx) => tx.putMailbox(mb(`d${i}@example.com`))));
  await s.close();
  await Promise.all(pending);
  await assert.rejects(
    s.transact((tx) => tx.putMeta('late', 1)),
    isStoreError('SHUTTING_DOWN'),
  );
  const again = await openStore(file);
  assert.equal(again.countMailboxes(), 20);
  assert.deepEqual(
    again.listMailboxes({ limit: 3, after: 'd1@example.com' }).map((m) => m.address),
    ['d2@example.com', 'd3@example.com', 'd4@example.com'], // plain string order: 'd10@' sorts before 'd1@'
  );
  assert.equal(again.countMailboxes('example.com'), 20);
  assert.equal(again.countMailboxes('other.example'), 0);
});

test('a compaction cut short by a crash: the old journal is replayed, then folded in at the next start', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  await s.transact((tx) => tx.putMailbox(mb('a1@example.com')));
  await s.transact((tx) => tx.putMailbox(mb('a2@example.com')));
  // As if the daemon died right after setting the journal aside and appending one more change to
  // the fresh one, before the snapshot was written.
  const entries = await readFile(file + '.journal', 'utf8');
  await writeFile(file + '.journal.old', entries, { mode: 0o600 });
  const third = { s: 3, o: [['m', 'a3@example.com', mb('a3@example.com')]] };
  await writeFile(file + '.journal', JSON.stringify(third) + '\n', { mode: 0o600 });
  const events: string[] = [];
  const reopened = await openStore(file, { onEvent: (e) => events.push(e) });
  assert.deepEqual(reopened.listMailboxes().map((m) => m.address), ['a1@example.com', 'a2@example.com', 'a3@example.com']);
  assert.ok(events.includes('store-compacted'), 'the unfinished compaction is finished at start');
  await assert.rejects(stat(file + '.journal.old'), 'the old journal is gone once the snapshot holds it');
  assert.equal((await stat(file + '.journal')).size, 0);
  const snap = JSON.parse(await readFile(file, 'utf8')) as { seq: number; mailboxes: Record<string, unknown> };
  assert.deepEqual(Object.keys(snap.mailboxes).sort(), ['a1@example.com', 'a2@example.com', 'a3@example.com']);
  assert.equal(snap.seq, 3);
  await reopened.close();
});

test('compaction runs beside writes: appends continue into a fresh journal while the snapshot is written', async (t) => {
  const file = await tempStore(t);
  const events: string[] = [];
  const s = await openStore(file, { compactJournalBytes: 4096, onEvent: (e) => events.push(e) });
  t.after(() => s.close());
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 300; i++) writes.push(s.transact((tx) => tx.putMailbox(mb(`w${i}@example.com`))));
  await Promise.all(writes);
  await s.drain();
  assert.ok(events.filter((e) => e === 'store-compacted').length >= 2, events.join(','));
  await assert.rejects(stat(file + '.journal.old'), 'no old journal left once compactions finished');
  const copy = await openStore(file);
  assert.equal(copy.countMailboxes(), 300);
  await copy.close();
});

test('the snapshot is one JSON document read back a record at a time; a truncated one is refused untouched', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  for (let i = 0; i < 5; i++) await s.transact((tx) => tx.putMailbox(mb(`r${i}@example.com`, { phone: `+1555200000${i}` })));
  await s.close();
  const text = await readFile(file, 'utf8');
  const doc = JSON.parse(text) as { mailboxes: Record<string, MailboxRecord> };
  assert.equal(Object.keys(doc.mailboxes).length, 5, 'valid JSON as a whole');
  assert.equal(text.split('\n').length, 5 + 3, 'a header line, one line per mailbox, the closing line');
  const again = await openStore(file);
  assert.deepEqual(again.listMailboxes().map((m) => m.phone), ['+15552000000', '+15552000001', '+15552000002', '+15552000003', '+15552000004']);
  await again.close();
  const cut = text.slice(0, text.lastIndexOf('\n"r4'));
  await writeFile(file, cut, { mode: 0o600 });
  await assert.rejects(FileStore.open(file), (err: unknown) => err instanceof MemfaError && err.code === 'STORE_CORRUPT' && err.message.includes(file));
  assert.equal(await readFile(file, 'utf8'), cut, 'left untouched');
});

test('a compaction that cannot open a fresh journal puts the old one back: no acknowledged write is lost', async (t) => {
  const file = await tempStore(t);
  let opens = 0;
  const openJournal = async (f: string): Promise<FileHandle> => {
    opens++;
    if (opens === 2) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    return open(f, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
  };
  const events: string[] = [];
  const s = await openStore(file, { compactJournalBytes: 4096, openJournal, onEvent: (e) => events.push(e) });
  for (let i = 0; i < 40; i++) await s.transact((tx) => tx.putMailbox(mb(`k${i}@example.com`)));
  await s.drain();
  assert.ok(events.includes('store-compact-failed'), 'the failed attempt was reported');
  assert.ok(opens >= 3, 'a later compaction tried again');
  // Reopen as after a crash, without close(): every acknowledged mailbox is there.
  const copy = await openStore(file);
  assert.equal(copy.countMailboxes(), 40);
});

test("the store keeps its own frozen copy of a record: the caller's object stays the caller's, shared values are held once, the files hold the record as given", async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  const ips = [{ ip: '192.0.2.1', firstSeen: 1_700_000_000_001, lastSeen: 1_700_000_000_002 }];
  const countries = [{ country: 'DE', firstSeen: 1_700_000_000_001, lastSeen: 1_700_000_000_002 }];
  const totp = { sealedSecret: 'v1.k.iv.tag.ct', activatedAt: 1_700_000_000_000, lastAcceptedStep: 56_666_666 };
  const a = mb('a@example.com', { settings: { challenge: 'always', provider: 'totp' }, ips, countries, totp });
  const b = mb('b@example.com', { settings: { challenge: 'always', provider: 'totp' }, phone: '+15550001' });
  const expectA = structuredClone(a);
  await s.transact((tx) => {
    tx.putMailbox(a);
    tx.putMailbox(b);
  });
  const storedA = s.getMailbox('a@example.com')!;
  assert.deepEqual(storedA, expectA);
  assert.notEqual(storedA, a, 'a copy');
  a.phone = '+15559999'; // the caller's object is still the caller's to change
  a.ips.push({ ip: '192.0.2.9', firstSeen: 1, lastSeen: 1 });
  assert.deepEqual(s.getMailbox('a@example.com'), expectA, 'the store did not change with it');
  const frozenThroughout = (v: unknown): boolean =>
    v === null || typeof v !== 'object' || (Object.isFrozen(v) && Object.values(v as object).every(frozenThroughout));
  assert.ok(frozenThroughout(storedA));
  const storedB = s.getMailbox('b@example.com')!;
  assert.equal(storedA.settings, storedB.settings, 'equal settings are held once');
  assert.equal(storedA.failures, storedB.failures, 'the failure state of a mailbox that never failed is held once');
  assert.equal(storedA.recoveryCodeHashes, storedB.recoveryCodeHashes, 'empty lists are held once');
  // A record handed out unchanged goes back as it is.
  await s.transact((tx) => tx.putMailbox(tx.getMailbox('b@example.com')!));
  assert.equal(s.getMailbox('b@example.com'), storedB);

  const journalled = (await readFile(file + '.journal', 'utf8'))
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => (JSON.parse(l) as { o: [string, string, unknown][] }).o);
  assert.deepEqual(journalled[0], ['m', 'a@example.com', expectA], 'the journal holds the record as given');
  const replayed = await openStore(file); // as after a crash: journal replay
  assert.deepEqual(replayed.getMailbox('a@example.com'), expectA);
  assert.ok(frozenThroughout(replayed.getMailbox('a@example.com')));
  await replayed.close();
  await s.close();
  const reopened = await openStore(file); // from the snapshot
  assert.deepEqual(reopened.getMailbox('a@example.com'), expectA);
  assert.deepEqual(reopened.getMailbox('b@example.com'), structuredClone(b));
  assert.equal(reopened.getMailbox('a@example.com')!.settings, reopened.getMailbox('b@example.com')!.settings);
  assert.ok(frozenThroughout(reopened.getMailbox('b@example.com')));
});

test('a record with fields or values the model does not have is kept whole, through the journal and the snapshot', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  const odd = {
    ...mb('odd@example.com'),
    ips: [{ ip: '192.0.2.1', firstSeen: 1, lastSeen: 2, note: 'kept' }],
    failures: { consecutive: 0, lockedUntil: null, hardLocked: false, lastFailureAt: null, extra: true },
    settings: { challenge: 'always', countryRule: { mode: 'block', countries: ['XX'] } },
  } as unknown as MailboxRecord;
  const extra = { ...mb('extra@example.com'), future: { list: [1, { x: 'y' }] } } as unknown as MailboxRecord;
  const expected = structuredClone([odd, extra]);
  await s.transact((tx) => {
    tx.putMailbox(odd);
    tx.putMailbox(extra);
  });
  const read = (x: FileStore) => [x.getMailbox('odd@example.com'), x.getMailbox('extra@example.com')];
  assert.deepEqual(read(s), expected);
  assert.ok(read(s).every((r) => Object.isFrozen(r) && Object.isFrozen(r!.ips) && Object.isFrozen(r!.settings)));
  const replayed = await openStore(file);
  assert.deepEqual(read(replayed), expected);
  await replayed.close();
  await s.close();
  const reopened = await openStore(file);
  assert.deepEqual(read(reopened), expected);
});

test('content written in pieces is the pieces joined, whatever their sizes and characters', async (t) => {
  const file = await tempStore(t);
  const { writeFileAtomic } = await import('../src/files/durable.js');
  // Pieces around and beyond the write buffer (256 KiB), with multi-byte characters at its edges.
  const pieces = ['{"a":"', 'é'.repeat(131_000), '€'.repeat(1), 'x'.repeat(300_000), '😀'.repeat(40_000), '"}', '', 'ü'.repeat(70_000)];
  await writeFileAtomic(file, pieces);
  assert.equal(await readFile(file, 'utf8'), pieces.join(''));
  assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('a paced write (cpuShare) writes the same content and leaves the event loop the rest of the time', async (t) => {
  const file = await tempStore(t);
  const { writeFileAtomic } = await import('../src/files/durable.js');
  // Eight pieces that each fill the 256 KiB buffer and take 20 ms of busy work to make.
  let busyMs = 0;
  function* slowPieces() {
    for (let i = 0; i < 8; i++) {
      const start = performance.now();
      while (performance.now() - start < 20);
      busyMs += performance.now() - start;
      yield String.fromCharCode(97 + i).repeat(256 * 1024);
    }
  }
  // A timer that should fire every 5 ms: while pieces are made flat out it is late by 20 ms each
  // time; paced at a quarter, it gets its turns between buffers.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  t.after(() => clearInterval(timer));
  const started = performance.now();
  await writeFileAtomic(file, slowPieces(), { cpuShare: 0.25 });
  const elapsed = performance.now() - started;
  clearInterval(timer);
  assert.equal(await readFile(file, 'utf8'), [...'abcdefgh'].map((c) => c.repeat(256 * 1024)).join(''));
  assert.ok(elapsed >= busyMs * 3, `paced: ${elapsed.toFixed(0)} ms for ${busyMs.toFixed(0)} ms of busy work`);
  assert.ok(ticks >= 20, `the event loop ran in between (${ticks} ticks)`);
});

test('journal larger than a read piece: lines across piece edges apply, a garbage last line over zeros is torn, a corrupt line names its byte', async (t) => {
  const file = await tempStore(t);
  const s = await openStore(file);
  await s.close(); // an empty snapshot at seq 0
  const journal = file + '.journal';
  const lines: string[] = [];
  // ~2.5 MiB of entries of uneven length, so that lines straddle the 1 MiB pieces.
  for (let i = 1; i <= 3000; i++) lines.push(JSON.stringify({ s: i, o: [['m', `j${i % 700}@example.com`, mb(`j${i % 700}@example.com`, { phone: `+1555${i}`, altEmail: `${'x'.repeat(i % 997)}@example.org` })]] }) + '\n');
  const good = Buffer.from(lines.join(''));
  assert.ok(good.length > 2 * 1024 * 1024);
  const tail = Buffer.concat([Buffer.from('{"s":3001,"o":[["m"\n'), Buffer.alloc(3000)]);
  await writeFile(journal, Buffer.concat([good, tail]), { mode: 0o600 });
  const events: { e: string; f: Record<string, unknown> }[] = [];
  const s2 = await openStore(file, { onEvent: (e, f) => events.push({ e, f }) });
  assert.equal(s2.countMailboxes(), 700);
  assert.equal(s2.getMailbox('j100@example.com')?.phone, '+15552900');
  assert.equal(s2.getMailbox('j99@example.com')?.altEmail, `${'x'.repeat(2899 % 997)}@example.org`);
  assert.deepEqual(events.find((x) => x.e === 'store-journal-torn-tail')?.f, { file: journal, droppedBytes: tail.length });
  assert.equal((await stat(journal)).size, good.length, 'cut back to the last good line');
  await s2.close();

  // A corrupt line in the middle of the second piece is refused, naming its byte offset.
  const at = lines.slice(0, 2000).join('').length;
  assert.ok(at > 1024 * 1024);
  const corrupt = Buffer.from(lines.slice(0, 2000).join('') + 'not json\n' + lines.slice(2000).join(''));
  await writeFile(file + '.journal', corrupt, { mode: 0o600 });
  await assert.rejects(FileStore.open(file), (err: unknown) => err instanceof MemfaError && err.code === 'STORE_CORRUPT' && err.message.includes(`at byte ${at} `));
  assert.deepEqual(await readFile(journal), corrupt, 'journal untouched');
});

test('migration: a version 2 store, and the journal beside it, load with no app passwords', async (t) => {
  const file = await tempStore(t);
  const v2 = (address: string, settings: MailboxRecord['settings'] = {}) => {
    const { appPasswords: _none, ...rest } = mb(address, { settings });
    return rest;
  };
  const snapshot = { schemaVersion: 2, seq: 1, global: {}, domains: {}, meta: {}, mailboxes: { 'old@example.com': v2('old@example.com', { challenge: 'always' }) } };
  assert.equal('appPasswords' in snapshot.mailboxes['old@example.com'], false, 'the fixture is a version 2 record');
  await writeFile(file, JSON.stringify(snapshot), { mode: 0o600 });
  await writeFile(file + '.journal', JSON.stringify({ s: 2, o: [['m', 'late@example.com', v2('late@example.com')]] }) + '\n', { mode: 0o600 });
  const s = await openStore(file);
  assert.deepEqual(s.getMailbox('old@example.com')!.appPasswords, []);
  assert.deepEqual(s.getMailbox('old@example.com')!.settings, { challenge: 'always' });
  assert.deepEqual(s.getMailbox('late@example.com')!.appPasswords, []);
  const written = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(written.schemaVersion, CURRENT_SCHEMA);
  assert.deepEqual(written.mailboxes['late@example.com'].appPasswords, []);
  await s.close();
  const again = await openStore(file);
  assert.deepEqual(again.getMailbox('late@example.com')!.appPasswords, []);
});

test('migration: a version 3 store loads with its open codes as they were, without a sealed code', async (t) => {
  const file = await tempStore(t);
  const open = { hash: 'h1:abc', provider: 'email', destination: 'x@home.example', createdAt: 1_700_000_000_000, expiresAt: 1_700_000_600_000, failedTries: 1, sends: 2, lastSentAt: 1_700_000_030_000 };
  const snapshot = { schemaVersion: 3, seq: 1, global: {}, domains: {}, meta: {}, mailboxes: { 'old@example.com': mb('old@example.com', { openCode: open as MailboxRecord['openCode'] }) } };
  await writeFile(file, JSON.stringify(snapshot), { mode: 0o600 });
  await writeFile(file + '.journal', JSON.stringify({ s: 2, o: [['m', 'late@example.com', mb('late@example.com', { openCode: { ...open, hash: 'h1:def' } as MailboxRecord['openCode'] })]] }) + '\n', { mode: 0o600 });
  const s = await openStore(file);
  assert.deepEqual(s.getMailbox('old@example.com')!.openCode, open);
  assert.equal('sealedCode' in s.getMailbox('old@example.com')!.openCode!, false, 'nothing to send again: a new code is sent instead');
  assert.equal(s.getMailbox('late@example.com')!.openCode!.hash, 'h1:def');
  const written = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(written.schemaVersion, CURRENT_SCHEMA);
  assert.equal(CURRENT_SCHEMA, 4);
  assert.deepEqual(written.mailboxes['old@example.com'].openCode, open);
  await s.close();
});
