// Health: systemd readiness (READY=1 once every socket answers, STOPPING=1 at stop) through the
// real systemd-notify, received on a datagram socket as systemd would (Node cannot make one, so a
// few lines of Python do), and memfa ping on the hook socket.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { REPO, makeTempDir, runCli, startDaemon, waitExit, type TestDaemon } from './helpers/daemon.js';
import { rpc, waitFor, writeJson } from './helpers/protocol-tools.js';
import { VERSION } from '../src/version.js';

const have = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const tools = have('systemd-notify', ['--version']) && have('python3', ['--version']);
// CI has both (.ci/run); elsewhere the readiness tests are skipped with a reason, never passed unrun.
const skip = tools || process.env['CI'] ? false : 'systemd-notify (package systemd) or python3 is not installed';

/** Binds a datagram socket at `socketPath` and prints each message received on a line. */
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    # recv without room for ancillary data: the descriptor systemd-notify passes for its barrier
    # is closed on receipt, which is all the barrier waits for.
    print(s.recv(65536).decode().replace("\\n", " ").strip(), flush=True)
`;

interface Receiver {
  proc: ChildProcess;
  messages: string[];
  onMessage(fn: (m: string) => void): void;
}

async function receiver(socketPath: string): Promise<Receiver> {
  const proc = spawn('python3', ['-c', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const listeners: ((m: string) => void)[] = [];
  let buf = '';
  let bound!: () => void;
  const ready = new Promise<void>((r) => (bound = r));
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line === 'bound') bound();
      else {
        messages.push(line);
        for (const l of listeners) l(line);
      }
    }
  });
  await ready;
  return { proc, messages, onMessage: (fn) => listeners.push(fn) };
}

describe('systemd readiness (Type=notify)', { skip }, () => {
  let dir: string;
  let rx: Receiver;
  before(async () => {
    dir = await makeTempDir();
    rx = await receiver(path.join(dir, 'notify.sock'));
  });
  after(async () => {
    rx.proc.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it('READY=1 with the main pid once every socket answers, STOPPING=1 when a stop begins', async () => {
    const sockets = ['admin', 'hook', 'self'].map((k) => path.join(dir, 'd', 'run', `${k}.sock`));
    // Asked the moment READY=1 arrives: each socket must already answer.
    const atReady = new Promise<unknown[]>((resolve) =>
      rx.onMessage((m) => {
        if (m.includes('READY=1')) void Promise.all(sockets.map((s) => rpc(s, 'ping').then((r) => r['result'], (e: Error) => e.message))).then(resolve);
      }),
    );
    await mkdir(path.join(dir, 'd'));
    const d: TestDaemon = await startDaemon({ dir: path.join(dir, 'd'), env: { NOTIFY_SOCKET: path.join(dir, 'notify.sock') } });
    try {
      const answers = await Promise.race([atReady, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no READY=1 within 10 s; received: ${JSON.stringify(rx.messages)}`)), 10_000).unref())]);
      for (const a of answers) assert.equal((a as { pong?: unknown }).pong, true, `a socket answered at READY=1: ${JSON.stringify(a)}`);
      const ready = rx.messages.find((m) => m.includes('READY=1'))!;
      assert.match(ready, new RegExp(`\\bMAINPID=${d.proc.pid}\\b`));
      assert.equal(rx.messages.filter((m) => m.includes('READY=1')).length, 1);
      assert.ok(!rx.messages.some((m) => m.includes('STOPPING=1')));
      assert.doesNotMatch(d.log(), /systemd-notify-failed/);

      d.proc.kill('SIGTERM');
      assert.equal(await waitExit(d.proc), 0);
      await waitFor(() => rx.messages.some((m) => m.includes('STOPPING=1')), 5000, 'STOPPING=1');
      assert.ok(rx.messages.findIndex((m) => m.includes('STOPPING=1')) > rx.messages.indexOf(ready));
    } finally {
      await d.cleanup();
    }
  });

  it('a NOTIFY_SOCKET that cannot be reached is logged, and the daemon serves all the same', async () => {
    const d = await startDaemon({ env: { NOTIFY_SOCKET: path.join(dir, 'nobody-listens.sock') } });
    try {
      await waitFor(() => d.log().includes('"event":"systemd-notify-failed"'), 10_000, 'systemd-notify-failed in the log');
      assert.match(d.log(), /"event":"systemd-notify-failed","state":"READY=1"/);
      assert.equal((await d.cli(['ping'])).code, 0);
    } finally {
      await d.cleanup();
    }
  });
});

describe('memfa ping', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  it('answers on the hook socket with the version and uptime, exit 0', async () => {
    // The admin socket is not used: a monitoring user in the hook socket's group only is enough.
    const r = await d.cli(['ping'], { env: { MEMFA_ADMIN_SOCKET: path.join(d.dir, 'no-such.sock') } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^pong: memfa ${VERSION.replaceAll('.', '\\.')}, up \\d+ s\\n$`));
    const j = await d.json<{ pong: boolean; version: string; uptimeSeconds: number }>(['ping']);
    assert.deepEqual([j.pong, j.version, typeof j.uptimeSeconds], [true, VERSION, 'number']);
    assert.equal((await d.cli(['ping', '--timeout', '0'])).code, 64);
  });
});

test('memfa ping exits 69 when no daemon answers, and when the socket is not a daemon', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run' });
  const r = await runCli(['ping'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(r.code, 69, r.stderr);
  assert.match(r.stderr, /cannot reach the memfa daemon/);
  // Something that accepts and never answers: no pong within --timeout is unavailable too.
  // It reads (so that it sees the client go) and never writes.
  const silent = net.createServer((c) => c.resume());
  const socketPath = path.join(dir, 'silent.sock');
  await new Promise<void>((resolve) => silent.listen(socketPath, () => resolve()));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const s = await runCli(['--socket', socketPath, 'ping', '--timeout', '1'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(s.code, 69, s.stderr);
  assert.match(s.stderr, /did not answer within 1000 ms/);
});

const haveAnalyze = have('systemd-analyze', ['--version']);
const skipAnalyze = haveAnalyze || process.env['CI'] ? false : 'systemd-analyze (package systemd) is not installed';

test('examples/memfa.service waits for the readiness message, and systemd-analyze finds nothing wrong in it', { skip: skipAnalyze }, async (t) => {
  const unit = await readFile(path.join(REPO, 'examples/memfa.service'), 'utf8');
  const service = unit.slice(unit.indexOf('[Service]'), unit.indexOf('[Install]'));
  assert.match(service, /^Type=notify$/m);
  assert.match(service, /^NotifyAccess=all$/m, 'the message comes from the systemd-notify child');
  assert.match(service, /^RestrictAddressFamilies=.*\bAF_UNIX\b/m, 'NOTIFY_SOCKET is a Unix socket');
  // Checked as installed: ExecStart at this tree's memfa, the man pages left out (not installed here).
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const copy = path.join(dir, 'memfa.service');
  await writeFile(copy, unit.replace(/^ExecStart=\/usr\/bin\/memfa /m, `ExecStart=${path.join(REPO, 'bin/memfa')} `).replace(/^Documentation=.*\n/m, ''));
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // It reports what it ignores (an unknown key, a bad value) on stderr and still exits 0.
  assert.equal(r.stderr.trim(), '', 'systemd-analyze verify: no remark');
  await writeFile(copy, (await readFile(copy, 'utf8')).replace(/^Type=notify$/m, 'Type=notified'));
  assert.match(spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' }).stderr, /service type/, 'a remark would be seen');
});
