// The daemon and its store file: a corrupt or unsafe store makes it refuse to start, naming the
// file and leaving it byte for byte as it was; a torn journal tail (a crash mid-append) does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { assertStatusOk, logEvents, rpc, runDaemonExpectingExit } from './helpers/protocol-tools.js';

/** A daemon that was started, given one mailbox, and stopped cleanly (journal folded into the store). */
async function preparedStore(t: { after: (fn: () => Promise<void>) => void }): Promise<{ d: TestDaemon; store: string; journal: string }> {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const r = await d.cli(['mailbox', 'set', 'kept@example.com', '--challenge', 'always']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await d.stop(), 0);
  return { d, store: path.join(d.dataDir, 'memfa.json'), journal: path.join(d.dataDir, 'memfa.json.journal') };
}

test('a store file with garbage: refused with exit 65 (STORE_CORRUPT), the file named and left untouched', async (t) => {
  const { d, store, journal } = await preparedStore(t);
  const garbage = Buffer.concat([Buffer.from('{"schemaVersion":1,"mailboxes":'), Buffer.from([0xff, 0x00, 0x13]), Buffer.from(' not json')]);
  await writeFile(store, garbage);
  const journalBefore = await readFile(journal);
  const r = await runDaemonExpectingExit(d.configFile);
  assert.equal(r.code, 65, r.stderr);
  assert.ok(r.stderr.includes(store), `names ${store}:\n${r.stderr}`);
  const failed = logEvents(r.stderr).find((e) => e['event'] === 'start-failed');
  assert.equal(failed?.['errorCode'], 'STORE_CORRUPT');
  assert.deepEqual(await readFile(store), garbage, 'store bytes unchanged');
  assert.deepEqual(await readFile(journal), journalBefore, 'journal unchanged');
  // It also did not leave a lock or sockets behind, so that a fixed store starts at once.
  assert.equal((await readFile(path.join(d.dataDir, 'memfa.pid')).catch(() => null)), null, 'no pid file left');

  // The CLI meanwhile says the daemon is not running.
  const status = await d.cli(['status']);
  assert.equal(status.code, 69);
});

test('a store holding valid JSON of the wrong shape or a newer schema is refused the same way', async (t) => {
  const { d, store } = await preparedStore(t);
  for (const text of ['[1,2,3]', '{"schemaVersion":1,"seq":0,"global":{},"domains":{},"mailboxes":[],"meta":{}}', '{"schemaVersion":99,"mailboxes":{}}', '{"schemaVersion":"one"}']) {
    await writeFile(store, text);
    const r = await runDaemonExpectingExit(d.configFile);
    assert.equal(r.code, 65, `${text}\n${r.stderr}`);
    assert.ok(r.stderr.includes(store), r.stderr);
    assert.equal(await readFile(store, 'utf8'), text, 'left untouched');
  }
});

test('a journal with a corrupt middle line is refused naming the journal, untouched', async (t) => {
  const { d, store, journal } = await preparedStore(t);
  const snap = JSON.parse(await readFile(store, 'utf8'));
  const rec = snap.mailboxes['kept@example.com'];
  assert.ok(rec, 'the prepared store holds the mailbox');
  const line = (s: number, phone: string) => JSON.stringify({ s, o: [['m', 'kept@example.com', { ...rec, phone }]] }) + '\n';
  const bytes = Buffer.from(line(snap.seq + 1, '+15550001') + '{"s": garbage\n' + line(snap.seq + 3, '+15550003'));
  await writeFile(journal, bytes, { mode: 0o600 });
  const r = await runDaemonExpectingExit(d.configFile);
  assert.equal(r.code, 65, r.stderr);
  assert.ok(r.stderr.includes(journal), `names ${journal}:\n${r.stderr}`);
  assert.deepEqual(await readFile(journal), bytes, 'journal bytes unchanged');
});

test('a torn last journal line (no newline) is ignored: the daemon starts with the entries before it', async (t) => {
  const { d, store, journal } = await preparedStore(t);
  const snap = JSON.parse(await readFile(store, 'utf8'));
  const rec = snap.mailboxes['kept@example.com'];
  const line = (s: number, phone: string) => JSON.stringify({ s, o: [['m', 'kept@example.com', { ...rec, phone }]] });
  const torn = line(snap.seq + 2, '+15550002');
  await writeFile(journal, line(snap.seq + 1, '+15550001') + '\n' + torn.slice(0, Math.floor(torn.length / 2)), { mode: 0o600 });
  await d.restart();
  const events = logEvents(d.log());
  assert.ok(events.some((e) => e['event'] === 'store-journal-torn-tail'), 'the torn tail is logged');
  const shown = await rpc(d.adminSocket, 'mailbox.show', { address: 'kept@example.com' });
  assert.equal(shown['result'].phone, '+15550001', 'the complete entry was replayed, the torn one ignored');
  await assertStatusOk(d);
  // New writes after the truncated tail are durable and replay cleanly.
  const set = await d.cli(['mailbox', 'set', 'kept@example.com', '--phone', '+12015550109']);
  assert.equal(set.code, 0, set.stderr);
  await d.stop('SIGKILL');
  await d.restart();
  const again = await rpc(d.adminSocket, 'mailbox.show', { address: 'kept@example.com' });
  assert.equal(again['result'].phone, '+12015550109');
});

test('a store file readable by others (0644) is refused naming the file', async (t) => {
  const { d, store } = await preparedStore(t);
  await chmod(store, 0o644);
  const before = await readFile(store);
  const r = await runDaemonExpectingExit(d.configFile);
  assert.notEqual(r.code, 0);
  assert.equal(r.code, 78, r.stderr);
  assert.ok(r.stderr.includes(store), r.stderr);
  assert.match(r.stderr, /chmod 600/);
  assert.deepEqual(await readFile(store), before);
});
