// memfa metrics and the HTTP listener through the real daemon: the text is checked by Prometheus's
// own promtool (parser and naming lint), the figures follow the answers, deliveries and gateways,
// and no mailbox address or client address appears in it.
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { call } from '../src/client/call.js';
import { makeTempDir, runCli, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { runDaemonExpectingExit, waitFor, writeJson } from './helpers/protocol-tools.js';

const havePromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
// CI installs it (.ci/run); elsewhere the parser test is skipped with a reason, never passed unrun.
const skipPromtool = havePromtool || process.env['CI'] ? false : 'promtool (Debian package prometheus) is not installed; .ci/run installs it';

/** promtool check metrics: exit 1 on a parse error, 3 with lint problems (one per line). */
function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',').filter(Boolean);
    if (have.length === want.length && want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function get(target: { socketPath: string } | { port: number }, options: { path?: string; method?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...('port' in target ? { host: '127.0.0.1', port: target.port } : target), path: options.path ?? '/metrics', method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('memfa metrics', () => {
  let d: TestDaemon;
  let closedPort: number;
  const ADDRESS = 'zelda.metrics@example.org';
  const IP = '81.2.69.142';
  before(async () => {
    closedPort = await freePort();
    d = await startDaemon({
      config: {
        providers: { sms: { enabled: true, transport: 'log' }, email: { enabled: true, transport: 'smtp' } },
        // Nothing listens there: the start-up check and every delivery fail at once.
        smtp: { host: '127.0.0.1', port: closedPort, secure: 'none', from: 'mfa@example.org', timeoutMs: 2000 },
      },
    });
  });
  after(() => d.cleanup());

  it('counts verify answers by result and reason, code deliveries by provider and outcome, and gateway checks', async () => {
    await d.json(['domain', 'set', 'sms.example', '--challenge', 'always', '--provider', 'sms']);
    await d.json(['mailbox', 'set', 'sam@sms.example', '--phone', '+12015550156']);
    await d.json(['domain', 'set', 'mail.example', '--challenge', 'always', '--provider', 'email']);
    await d.json(['mailbox', 'set', 'eve@mail.example', '--alt-email', 'eve@home.example']);
    for (let i = 0; i < 3; i++) assert.equal((await d.cli(['verify', '--user', ADDRESS, '--ip', IP])).code, 0);
    assert.equal((await d.cli(['verify', '--user', 'sam@sms.example', '--ip', IP])).code, 2, 'a code sent by sms');
    assert.equal((await d.cli(['verify', '--user', 'sam@sms.example', '--ip', IP, '--code', '000000'])).code, 1);
    assert.equal((await d.cli(['verify', '--user', 'eve@mail.example', '--ip', IP])).code, 75, 'the email could not be delivered');
    assert.equal((await d.cli(['verify', '--user', 'not an address', '--ip', IP])).code, 64);
    // Mail-protocol logins (Dovecot's passdb): mode never lets the password be checked; a mailbox
    // with MFA needs an app password (primaryPassword app-password, the default).
    for (let i = 0; i < 2; i++) assert.equal((await call(d.hookSocket, 'login.check', { user: ADDRESS, ip: IP, protocol: 'imap', password: 'pw' })).result, 'continue');
    const refused = await call(d.hookSocket, 'login.check', { user: 'sam@sms.example', ip: IP, protocol: 'smtp', password: 'not an app password' });
    assert.deepEqual([refused.result, refused.reason], ['deny', 'app-password-required']);

    const r = await d.cli(['metrics']);
    assert.equal(r.code, 0, r.stderr);
    const t = r.stdout;
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'allow', reason: 'mode-never' }), 3);
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'challenge', reason: 'always' }), 1);
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'deny', reason: 'code-invalid' }), 1);
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'error', reason: 'delivery-failed' }), 1);
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'error', reason: 'invalid-params' }), 1);
    assert.equal(sample(t, 'memfa_verify_answers_total', { result: 'deny', reason: 'locked' }), 0, 'known answers are there from the start');
    assert.equal(sample(t, 'memfa_verify_duration_seconds_count', { result: 'allow' }), 3);
    assert.equal(sample(t, 'memfa_verify_duration_seconds_bucket', { result: 'allow', le: '+Inf' }), 3);
    assert.equal(sample(t, 'memfa_login_check_answers_total', { protocol: 'imap', result: 'continue', reason: 'mode-never' }), 2);
    assert.equal(sample(t, 'memfa_login_check_answers_total', { protocol: 'smtp', result: 'deny', reason: 'app-password-required' }), 1);
    assert.equal(sample(t, 'memfa_login_check_answers_total', { protocol: 'smtp', result: 'continue', reason: 'mode-never' }), 0, 'known answers are there from the start');
    assert.equal(sample(t, 'memfa_login_check_duration_seconds_count', { result: 'continue' }), 2);
    assert.equal(sample(t, 'memfa_login_check_duration_seconds_bucket', { result: 'deny', le: '+Inf' }), 1);
    assert.equal(sample(t, 'memfa_code_deliveries_total', { provider: 'sms', outcome: 'sent' }), 1);
    assert.equal(sample(t, 'memfa_code_deliveries_total', { provider: 'email', outcome: 'failed' }), 1);
    assert.equal(sample(t, 'memfa_code_deliveries_total', { provider: 'email', outcome: 'sent' }), 0);
    assert.equal(sample(t, 'memfa_gateway_up', { provider: 'sms', transport: 'log' }), 1);
    assert.equal(sample(t, 'memfa_gateway_up', { provider: 'email', transport: 'smtp' }), 0, 'the SMTP server was unreachable at the start-up check');
    assert.ok(sample(t, 'memfa_gateway_last_check_timestamp_seconds', { provider: 'email' })! > 1.7e9);
    assert.equal(sample(t, 'memfa_store_mailboxes'), 2);
    assert.equal(sample(t, 'memfa_store_domains'), 2);
    assert.ok(sample(t, 'memfa_store_journal_bytes')! > 0);
    assert.equal(sample(t, 'memfa_locked_mailboxes', { reason: 'lockout' }), 0);
    assert.equal(sample(t, 'memfa_audit_lost_lines_total', { stream: 'logins' }), 0);
    assert.ok(sample(t, 'memfa_connections_accepted_total', { socket: 'hook' })! >= 8, 'the verify calls and this one');
    assert.ok(sample(t, 'memfa_connections_accepted_total', { socket: 'admin' })! >= 4);
    assert.ok(sample(t, 'process_resident_memory_bytes')! > 0);
    for (const secret of [ADDRESS, 'zelda', IP, 'sam@sms.example', '+12015550156', 'eve@home.example', 'example.org', 'not an app password']) assert.ok(!t.includes(secret), `no ${secret} in the metrics`);
  });

  it('is valid Prometheus text with names that pass promtool\'s lint', { skip: skipPromtool }, async () => {
    const r = await d.cli(['metrics']);
    assert.equal(r.code, 0, r.stderr);
    const check = promtool(r.stdout);
    assert.ok(check.status === 0 || check.status === 3, `promtool parsed it: exit ${check.status}\n${check.output}`);
    assert.doesNotMatch(check.output, /error/i);
    // prom-client's own nodejs_active_*_total gauges draw a lint remark; memfa's names draw none.
    const remarks = check.output.split('\n').filter(Boolean);
    assert.deepEqual(remarks.filter((l) => l.startsWith('memfa_')), []);
    assert.deepEqual(remarks.filter((l) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l)), []);
    // A broken text would be caught: promtool is not passing everything.
    assert.equal(promtool(r.stdout.replace('memfa_store_mailboxes 2', 'memfa_store_mailboxes{x="2 2')).status, 1);
  });

  it('on the hook socket and the admin socket, not the self socket; --json gives the text and its content type', async () => {
    const admin = await d.cli(['--socket', d.adminSocket, 'metrics']);
    assert.equal(admin.code, 0, admin.stderr);
    assert.match(admin.stdout, /^# HELP memfa_verify_answers_total /m);
    const self = await d.cli(['--socket', d.selfSocket, 'metrics']);
    assert.equal(self.code, 77, self.stderr);
    assert.match(self.stderr, /METHOD_NOT_ALLOWED|not available on the self socket/);
    const j = await d.json<{ contentType: string; text: string }>(['metrics']);
    assert.match(j.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(j.text, /^# TYPE memfa_verify_duration_seconds histogram$/m);
  });
});

test('memfa metrics exits 69 when no daemon answers', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run' });
  const out = await runCli(['metrics'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(out.code, 69, out.stderr);
  assert.match(out.stderr, /cannot reach the memfa daemon/);
  assert.equal(out.stdout, '');
});

describe('the HTTP listener (metrics.listen)', () => {
  it('on a loopback port: GET /metrics, HEAD; 404 elsewhere, 405 for other methods, 431 for oversized headers', async (t) => {
    const port = await freePort();
    const d = await startDaemon({ config: { metrics: { listen: `127.0.0.1:${port}` } } });
    t.after(() => d.cleanup());
    assert.match(d.log(), new RegExp(`"event":"metrics-listening","address":"127\\.0\\.0\\.1:${port}"`));
    await d.cli(['verify', '--user', 'a@example.org', '--ip', '81.2.69.142']);
    const r = await get({ port });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(r.body, 'memfa_verify_answers_total', { result: 'allow', reason: 'mode-never' }), 1);
    const byCli = (await d.cli(['metrics'])).stdout;
    const families = (text: string) => text.split('\n').filter((l) => l.startsWith('# TYPE ')).sort();
    assert.deepEqual(families(r.body), families(byCli), 'the same metrics as memfa metrics');
    const head = await get({ port }, { method: 'HEAD' });
    assert.deepEqual([head.status, head.body], [200, '']);
    assert.equal((await get({ port }, { path: '/metrics?x=1' })).status, 200);
    assert.equal((await get({ port }, { path: '/' })).status, 404);
    assert.equal((await get({ port }, { path: '/metricsx' })).status, 404);
    const post = await get({ port }, { method: 'POST' });
    assert.deepEqual([post.status, post.headers['allow']], [405, 'GET, HEAD']);
    assert.equal((await get({ port }, { headers: { 'x-big': 'a'.repeat(10_000) } })).status, 431);
    // Still serving after all that.
    assert.equal((await get({ port })).status, 200);
    // At most 8 connections: a ninth is closed unanswered; once they go, a scrape is served again.
    const held = await Promise.all(Array.from({ length: 8 }, () => new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => resolve(c));
      c.on('error', reject);
    })));
    await assert.rejects(get({ port }), /socket hang up|ECONNRESET/);
    for (const c of held) c.destroy();
    await waitFor(async () => (await get({ port }).catch(() => ({ status: 0 }))).status === 200, 5000, 'a scrape served again');
  });

  it('on a Unix socket in the run directory, mode 0660, removed at stop', async (t) => {
    const d = await startDaemon({ config: { metrics: { listen: './metrics.sock' } } });
    t.after(() => d.cleanup());
    const socketPath = path.join(d.dir, 'run', 'metrics.sock');
    const r = await get({ socketPath });
    assert.equal(r.status, 200);
    assert.match(r.body, /^memfa_build_info\{version="[^"]+"\} 1$/m);
    assert.equal(statSync(socketPath).mode & 0o777, 0o660);
    assert.equal(await d.stop(), 0);
    assert.equal(existsSync(socketPath), false);
  });

  it('a non-loopback address stops the start (exit 78, naming the key) unless metrics.allowNonLoopback', async (t) => {
    const dir = await makeTempDir();
    t.after(() => rm(dir, { recursive: true, force: true }));
    const cfg = path.join(dir, 'memfa.json');
    await writeJson(cfg, { dataDir: 'data', runDir: 'run', metrics: { listen: '0.0.0.0:9387' } });
    const r = await runDaemonExpectingExit(cfg);
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /metrics\.listen: 0\.0\.0\.0 is not a loopback address.*metrics\.allowNonLoopback/);
  });
});
