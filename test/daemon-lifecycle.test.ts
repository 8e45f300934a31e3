// Daemon lifecycle through the real process: graceful stop with requests in flight, restart after a
// crash, refusal of a second daemon, and the modes of what it creates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, rpcLine, startDaemon, waitExit } from './helpers/daemon.js';
import { LineClient, assertStatusOk, logEvents, rpc, runDaemonExpectingExit, writeJson, type Json } from './helpers/protocol-tools.js';
import { rm } from 'node:fs/promises';

test('SIGTERM with 50 requests in flight: answered writes survive, exit 0, sockets and pid file removed', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const n = 50;
  const clients = Array.from({ length: n }, () => new LineClient(d.adminSocket));
  await Promise.all(clients.map((c) => c.connected));
  // Fire every request, then SIGTERM at once, without waiting for a single answer.
  const writes = clients.map((c, i) => c.write(rpcLine('mailbox.set', { address: `user${i}@example.com`, settings: { challenge: 'always' } }, i)));
  await Promise.all(writes);
  d.proc.kill('SIGTERM');
  const code = await waitExit(d.proc, 10000);
  assert.equal(code, 0, `daemon exit code\n${d.log()}`);
  await Promise.all(clients.map((c) => c.waitClosed(3000)));

  const answered: string[] = [];
  let refused = 0;
  for (const [i, c] of clients.entries()) {
    assert.ok(c.lines.length <= 1, `at most one answer per request: ${JSON.stringify(c.lines)}`);
    const line = c.lines[0];
    if (line === undefined) continue;
    assert.equal(line['id'], i);
    if (line['result'] !== undefined) answered.push(`user${i}@example.com`);
    else {
      // The only acceptable failure for a stopping daemon.
      assert.equal((line['error'] as Json)['data']['code'], 'SHUTTING_DOWN', JSON.stringify(line));
      refused++;
    }
  }
  t.diagnostic(`${answered.length} answered, ${refused} refused while stopping, ${n - answered.length - refused} unanswered`);

  const events = logEvents(d.log()).map((e) => e['event']);
  assert.ok(events.includes('stopping') && events.includes('stopped'), events.join(','));
  assert.equal(existsSync(d.adminSocket), false, 'admin socket removed');
  assert.equal(existsSync(d.hookSocket), false, 'hook socket removed');
  assert.equal(existsSync(d.selfSocket), false, 'self socket removed');
  assert.equal(existsSync(path.join(d.dataDir, 'memfa.pid')), false, 'pid file removed');

  await d.restart();
  const list = await d.json<{ total: number; mailboxes: { address: string; challenge: string }[] }>(['mailbox', 'list']);
  const stored = new Map(list.mailboxes.map((m) => [m.address, m]));
  for (const a of answered) {
    assert.ok(stored.has(a), `${a} was acknowledged but is missing after restart`);
    assert.equal(stored.get(a)!.challenge, 'always');
  }
  // Nothing appears that was never asked for.
  for (const a of stored.keys()) assert.match(a, /^user\d+@example\.com$/);
  t.diagnostic(`${stored.size} stored after restart`);
  await assertStatusOk(d);
});

test('restart after kill -9: stale sockets and pid file are cleaned up, data is kept', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const set = await d.cli(['mailbox', 'set', 'crash@example.com', '--challenge', 'always']);
  assert.equal(set.code, 0, set.stderr);
  await d.stop('SIGKILL');
  assert.equal(existsSync(d.adminSocket), true, 'the crash left the admin socket file');
  assert.equal(existsSync(path.join(d.dataDir, 'memfa.pid')), true, 'the crash left the pid file');
  const down = await d.cli(['status']);
  assert.equal(down.code, 69, 'nothing listens on the stale socket');

  await d.restart();
  const removed = logEvents(d.log()).filter((e) => e['event'] === 'stale-socket-removed');
  assert.deepEqual(removed.map((e) => e['socket']).sort(), [d.adminSocket, d.hookSocket, d.selfSocket].sort());
  await assertStatusOk(d);
  const shown = await d.json<{ stored: boolean; effective: { challenge: { value: string } } }>(['mailbox', 'show', 'crash@example.com']);
  assert.equal(shown.stored, true, 'the acknowledged write survived kill -9 (journal replay)');
  assert.equal(shown.effective.challenge.value, 'always');
});

test('a second daemon with the same configuration is refused; the first keeps working', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const second = await runDaemonExpectingExit(d.configFile);
  assert.notEqual(second.code, 0);
  assert.ok(second.stderr.includes(d.dataDir) || second.stderr.includes(d.adminSocket), `names the data dir or socket:\n${second.stderr}`);
  assert.match(second.stderr, /another memfa daemon/);
  assert.equal(existsSync(d.adminSocket), true, 'the refused daemon did not remove the live socket');
  assert.equal(existsSync(path.join(d.dataDir, 'memfa.pid')), true, 'nor the live pid file');
  await assertStatusOk(d);
  assert.equal((await rpc(d.hookSocket, 'ping'))['result'] !== undefined, true);
});

test('a second daemon on another run dir but the same data dir is refused by the pid lock', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const other = await makeTempDir();
  t.after(() => rm(other, { recursive: true, force: true }));
  const cfg = path.join(other, 'memfa.json');
  await writeJson(cfg, { dataDir: d.dataDir, runDir: path.join(other, 'run') });
  const second = await runDaemonExpectingExit(cfg);
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /another memfa daemon \(pid \d+\)/);
  assert.ok(second.stderr.includes(d.dataDir), second.stderr);
  assert.equal(existsSync(path.join(other, 'run', 'admin.sock')), false, 'it never listened');
  await assertStatusOk(d);
});

test('a second daemon on the same sockets but another data dir is refused naming the socket', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const other = await makeTempDir();
  t.after(() => rm(other, { recursive: true, force: true }));
  const cfg = path.join(other, 'memfa.json');
  await writeJson(cfg, { dataDir: path.join(other, 'data'), runDir: path.join(d.dir, 'run') });
  const second = await runDaemonExpectingExit(cfg);
  assert.notEqual(second.code, 0);
  assert.ok(second.stderr.includes(d.adminSocket), `names the socket:\n${second.stderr}`);
  assert.equal(existsSync(d.adminSocket), true, 'the live socket was not removed');
  assert.equal(existsSync(path.join(other, 'data', 'memfa.pid')), false, 'the refused daemon released its lock');
  await assertStatusOk(d);
});

test('modes: data dir 0700, run dir 0750, sockets as configured (admin default 0660), store and journal 0600', async (t) => {
  const d = await startDaemon({ config: { sockets: { hook: { mode: '0666', allowWideMode: true }, self: { mode: '0600' } } } });
  t.after(() => d.cleanup());
  const set = await d.cli(['mailbox', 'set', 'modes@example.com', '--challenge', 'always']);
  assert.equal(set.code, 0, set.stderr);
  const mode = async (p: string) => (await stat(p)).mode & 0o777;
  assert.equal(await mode(d.dataDir), 0o700, 'data dir');
  assert.equal(await mode(path.join(d.dir, 'run')), 0o750, 'run dir');
  const admin = await stat(d.adminSocket);
  assert.equal(admin.isSocket(), true);
  assert.equal(admin.mode & 0o777, 0o660, 'admin socket');
  assert.equal(await mode(d.hookSocket), 0o666, 'hook socket as configured');
  assert.equal(await mode(d.selfSocket), 0o600, 'self socket as configured');
  for (const f of ['memfa.json', 'memfa.json.journal', 'memfa.pid', 'memfa.key', 'audit.log']) {
    assert.equal(await mode(path.join(d.dataDir, f)), 0o600, f);
  }
  // A store rewritten by compaction at stop keeps its mode.
  assert.equal(await d.stop(), 0);
  assert.equal(await mode(path.join(d.dataDir, 'memfa.json')), 0o600, 'store after compaction');
});

test('pre-existing data and run dirs are reused; SIGINT stops the daemon cleanly', async (t) => {
  const dir = await makeTempDir();
  await mkdir(path.join(dir, 'data'), { mode: 0o700 });
  await mkdir(path.join(dir, 'run'), { mode: 0o750 });
  const d = await startDaemon({ dir });
  t.after(async () => {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  });
  await assertStatusOk(d);
  assert.equal(await d.stop('SIGINT'), 0, 'SIGINT stops it cleanly too');
  assert.equal(existsSync(d.adminSocket), false);
});

test('a socket path that names a regular file is refused, and the file is left alone', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const precious = path.join(dir, 'precious.txt');
  await writeFile(precious, 'do not delete me');
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', sockets: { hook: { path: precious } } });
  const r = await runDaemonExpectingExit(cfg);
  assert.equal(r.code, 78, r.stderr);
  assert.ok(r.stderr.includes(precious), r.stderr);
  assert.equal(await readFile(precious, 'utf8'), 'do not delete me');
  assert.equal(existsSync(path.join(dir, 'run', 'admin.sock')), false, 'the admin socket it had opened was removed again');
  assert.equal(existsSync(path.join(dir, 'data', 'memfa.pid')), false, 'and the lock released');
});

test('a failed start (a socket group that does not exist) exits at once with 78 and leaves no socket behind', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  // The admin socket is the first one opened, so nothing of the daemon is listening when it fails.
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', sockets: { hook: { group: 'nosuchgroup-memfa' } } });
  const r = await runDaemonExpectingExit(cfg, { timeoutMs: 8000 });
  assert.equal(r.code, 78, r.stderr);
  assert.match(r.stderr, /"event":"start-failed"/);
  assert.match(r.stderr, /nosuchgroup-memfa/);
  for (const s of ['admin.sock', 'hook.sock', 'self.sock']) assert.equal(existsSync(path.join(dir, 'run', s)), false, `${s} was removed`);
  assert.equal(existsSync(path.join(dir, 'data', 'memfa.pid')), false, 'and the lock released');
});
