// The daemon's security log lines (verify-denied, mailbox-locked, ip-blocked) as a real daemon
// writes them, matched by the shipped fail2ban filter through Debian's fail2ban-regex; and the
// syslog priority prefix the daemon adds when its standard error is the journal's stream.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { FAILED_FACTOR_REASONS, FAILURE_BLOCK_REASONS } from '../src/services/security-log.js';
import { BIN, makeTempDir, REPO, startDaemon, waitExit, type TestDaemon } from './helpers/daemon.js';
import { logEvents, waitFor } from './helpers/protocol-tools.js';

const FILTER = path.join(REPO, 'examples', 'fail2ban', 'filter.d', 'memfa.conf');
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const CN = '175.16.199.1';

/** The address of every line fail2ban-regex matches with the shipped filter, in order. */
function matchedAddresses(logFile: string): string[] {
  const r = spawnSync('fail2ban-regex', ['-o', 'ip', logFile, FILTER], { encoding: 'utf8' });
  assert.equal(r.status, 0, `fail2ban-regex failed (is Debian's fail2ban installed?): ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

function count(list: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** A code that is wrong for `key` now (none of the steps the window accepts). */
function wrongCode(key: Buffer): string {
  const valid = new Set([-1, 0, 1].map((s) => totpCode(key, Date.now() + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

type Admin = (method: Parameters<typeof call>[1], params: unknown) => Promise<unknown>;

async function enrolled(admin: Admin, address: string): Promise<Buffer> {
  await admin('mailbox.set', { address, settings: { challenge: 'always', provider: 'totp' } });
  const started = (await admin('enroll.start', { address })) as { secret: string };
  await admin('enroll.confirm', { address, force: true });
  return fromBase32(started.secret);
}

const LOCKOUT = { lockout: { threshold: 3, baseDelaySeconds: 60, ipMaxFailures: 6, ipDistinctMailboxes: 10 } };

test('fail2ban-regex matches the shipped filter against the lines of a real daemon: failed factors and source blocks, not policy denials', async (t) => {
  // A JOURNAL_STREAM that is not this process's stderr (a child that inherited it) adds no prefix.
  const d = await startDaemon({ config: LOCKOUT, env: { JOURNAL_STREAM: '1:1' } });
  t.after(() => d.cleanup());
  const admin: Admin = (method, params) => call(d.adminSocket, method, params as never);
  const verify = (user: string, ip: string, code?: string) => call(d.hookSocket, 'verify', (code === undefined ? { user, ip } : { user, ip, code }) as never) as Promise<{ result: string; reason: string }>;

  const keys = new Map<string, Buffer>();
  for (const m of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) keys.set(m, await enrolled(admin, `${m}@f2b.example`));
  const wrong = (m: string) => wrongCode(keys.get(m)!);
  const given: string[] = [];
  const attempt = async (m: string, ip: string, code = wrong(m)) => {
    given.push(code);
    return verify(`${m}@f2b.example`, ip, code);
  };

  // One address guesses one mailbox: three failures lock it, the fourth attempt is refused as locked.
  for (let i = 0; i < 3; i++) assert.equal((await attempt('alice', '192.0.2.10')).reason, 'code-invalid');
  assert.equal((await attempt('alice', '192.0.2.10')).reason, 'locked');
  // An IPv6 client.
  assert.equal((await attempt('bob', '2001:db8::7')).reason, 'code-invalid');
  // One address sprays: its sixth failure blocks its source; the next attempt is refused as locked.
  for (const m of ['carol', 'carol', 'dave', 'dave', 'erin', 'erin']) assert.equal((await attempt(m, '198.51.100.20')).reason, 'code-invalid');
  assert.equal((await attempt('frank', '198.51.100.20')).reason, 'locked');
  // Not for fail2ban: a right code, and a login a country rule refuses (the password was right).
  assert.equal((await attempt('frank', '203.0.113.9', totpCode(keys.get('frank')!, Date.now(), TOTP))).result, 'allow');
  await admin('global.set', { settings: { countryRule: { mode: 'block', countries: ['CN'] } } });
  assert.equal((await verify('frank@f2b.example', CN)).reason, 'country-blocked');

  await waitFor(() => logEvents(d.log()).filter((e) => e['event'] === 'verify-denied').length >= 13, 5000, 'thirteen verify-denied lines');
  const events = logEvents(d.log());
  const denied = events.filter((e) => e['event'] === 'verify-denied');
  assert.deepEqual(
    denied.map((e) => [e['ip'], e['reason'], e['level']]),
    [
      ...Array.from({ length: 3 }, () => ['192.0.2.10', 'code-invalid', 'notice']),
      ['192.0.2.10', 'locked', 'notice'],
      ['2001:db8::7', 'code-invalid', 'notice'],
      ...Array.from({ length: 6 }, () => ['198.51.100.20', 'code-invalid', 'notice']),
      ['198.51.100.20', 'locked', 'notice'],
      [CN, 'country-blocked', 'notice'],
    ],
  );
  const locked = events.filter((e) => e['event'] === 'mailbox-locked');
  assert.deepEqual(locked.map((e) => [e['ip'], e['mailbox'], e['reason'], e['kind'], e['failures']]), [['192.0.2.10', 'alice@f2b.example', 'lockout', 'elsewhere', 3]]);
  const blocked = events.filter((e) => e['event'] === 'ip-blocked');
  assert.deepEqual(blocked.map((e) => [e['ip'], e['reason'], e['source'], e['failures']]), [['198.51.100.20', 'ip-failures', '198.51.100.20', 6]]);
  for (const line of d.log().split('\n')) assert.ok(!line.startsWith('<'), `no priority prefix off the journal: ${line}`);
  // No code given, and no secret, is in any line.
  for (const code of given) assert.ok(!d.log().includes(`"${code}"`), `the log does not hold the code ${code}`);
  for (const key of keys.values()) assert.ok(!d.log().includes(key.toString('hex')), 'no secret in the log');

  const logFile = path.join(d.dir, 'daemon.log');
  await writeFile(logFile, d.log());
  assert.deepEqual(count(matchedAddresses(logFile)), { '192.0.2.10': 4, '2001:db8::7': 1, '198.51.100.20': 8 });
});

test('wrong app passwords over the mail protocols: the block of the source is a login-throttled line, which the filter matches; the block of a mailbox is not matched', async (t) => {
  // Five wrong passwords block a source, three block a mailbox (whichever addresses they come from).
  const d = await startDaemon({ config: { lockout: { ipMaxFailures: 5, ipDistinctMailboxes: 10 }, appPasswords: { mailboxMaxFailures: 3 } } });
  t.after(() => d.cleanup());
  const check = (user: string, ip: string) => call(d.hookSocket, 'login.check', { user, ip, protocol: 'imap', password: 'guessed-password' }) as Promise<{ result: string; reason: string }>;
  await call(d.adminSocket, 'domain.set', { domain: 'mail.example', settings: { challenge: 'always' } });
  // One address tries five mailboxes: the fifth failure blocks its source; the next is refused as throttled.
  for (const m of ['ann', 'ben', 'cat', 'dan', 'eve']) assert.equal((await check(`${m}@mail.example`, '198.51.100.40')).reason, 'app-password-required');
  assert.equal((await check('fay@mail.example', '198.51.100.40')).reason, 'throttled');
  // Three addresses, one failure each, on one mailbox: the mailbox is blocked from unknown addresses.
  for (const ip of ['192.0.2.41', '192.0.2.42', '192.0.2.43']) assert.equal((await check('gus@mail.example', ip)).reason, 'app-password-required');
  assert.equal((await check('gus@mail.example', '192.0.2.44')).reason, 'throttled');

  await waitFor(() => logEvents(d.log()).filter((e) => e['event'] === 'login-throttled').length === 2, 5000, 'two login-throttled lines');
  const lines = logEvents(d.log()).filter((e) => e['event'] === 'login-throttled');
  assert.deepEqual(
    lines.map((e) => [e['level'], e['ip'], e['reason'], e['by'], e['source'], e['mailbox']]),
    [
      ['notice', '198.51.100.40', 'ip-failures', 'source', '198.51.100.40', 'eve@mail.example'],
      ['notice', '192.0.2.43', 'mailbox-failures', 'mailbox', undefined, 'gus@mail.example'],
    ],
  );
  assert.ok(!d.log().includes('guessed-password'), 'no password in the log');
  const logFile = path.join(d.dir, 'daemon.log');
  await writeFile(logFile, d.log());
  assert.deepEqual(matchedAddresses(logFile), ['198.51.100.40']);
});

test("the filter's reasons are the code's: every failed-factor reason and failure block, nothing else", async () => {
  const filter = await readFile(FILTER, 'utf8');
  const alternation = (event: string) => new RegExp(`"${event}","ip":"<HOST>","reason":"\\(\\?:([a-z|-]+)\\)"`).exec(filter)?.[1]?.split('|');
  assert.deepEqual(alternation('verify-denied'), [...FAILED_FACTOR_REASONS]);
  assert.deepEqual(alternation('ip-blocked'), [...FAILURE_BLOCK_REASONS]);
  assert.deepEqual(alternation('login-throttled'), [...FAILURE_BLOCK_REASONS]);
});

/** A local port that nothing listens on (one just closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('under systemd (stderr is the JOURNAL_STREAM) every line starts with its syslog priority, a delivery failure at warn, and the filter still matches', async (t) => {
  const dir = await makeTempDir();
  const configFile = path.join(dir, 'memfa.json');
  // Email codes through an SMTP server that is not there: a delivery failure.
  const smtp = { host: '127.0.0.1', port: await closedPort(), secure: 'none', from: 'mfa@journal.example', pool: false, timeoutMs: 1000 };
  await writeFile(configFile, JSON.stringify({ dataDir: 'data', runDir: 'run', ...LOCKOUT, providers: { email: { enabled: true, transport: 'smtp' } }, smtp }));
  const logFile = path.join(dir, 'journal-stream.log');
  const fd = openSync(logFile, 'a');
  const st = fstatSync(fd, { bigint: true });
  const proc = spawn(process.execPath, [BIN, '--config', configFile, 'daemon'], { env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` }, stdio: ['ignore', 'ignore', fd] });
  closeSync(fd);
  t.after(async () => {
    proc.kill('SIGKILL');
    await waitExit(proc).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const text = () => readFile(logFile, 'utf8');
  await waitFor(async () => (await text()).includes('"event":"ready"'), 15000, 'the daemon to be ready');
  const d = { adminSocket: path.join(dir, 'run', 'admin.sock'), hookSocket: path.join(dir, 'run', 'hook.sock') } as TestDaemon;
  const admin: Admin = (method, params) => call(d.adminSocket, method, params as never);
  const key = await enrolled(admin, 'gina@journal.example');
  const answer = (await call(d.hookSocket, 'verify', { user: 'gina@journal.example', ip: '192.0.2.77', code: wrongCode(key) })) as { reason: string };
  assert.equal(answer.reason, 'code-invalid');
  await waitFor(async () => (await text()).includes('"event":"verify-denied"'), 5000, 'the verify-denied line');
  await admin('mailbox.set', { address: 'hal@journal.example', settings: { challenge: 'always', provider: 'email' }, altEmail: 'hal@elsewhere.example' });
  const undelivered = await call(d.hookSocket, 'verify', { user: 'hal@journal.example', ip: '192.0.2.78' }).then(
    () => null,
    (err: { code?: string }) => err.code,
  );
  assert.equal(undelivered, 'DELIVERY_FAILED');
  await waitFor(async () => (await text()).includes('"event":"delivery-failed"'), 5000, 'the delivery-failed line');
  proc.kill('SIGTERM');
  assert.equal(await waitExit(proc), 0);

  const lines = (await text()).split('\n').filter((l) => l !== '');
  const PRIORITY: Record<string, string> = { debug: '7', info: '6', notice: '5', warn: '4', error: '3' };
  for (const line of lines) {
    const m = /^<([0-7])>(\{.*\})$/.exec(line);
    assert.ok(m !== null, `a priority prefix and one JSON object: ${line}`);
    assert.equal(m[1], PRIORITY[(JSON.parse(m[2]!) as { level: string }).level], line);
  }
  assert.ok(lines.some((l) => l.startsWith('<6>') && l.includes('"event":"ready"')), 'ready at info, <6>');
  assert.ok(lines.some((l) => l.startsWith('<5>') && l.includes('"event":"verify-denied"')), 'the denial at notice, <5>');
  const failed = lines.filter((l) => l.includes('"event":"delivery-failed"'));
  assert.ok(failed.length === 1 && failed[0]!.startsWith('<4>') && failed[0]!.includes('"mailbox":"hal@journal.example"') && failed[0]!.includes('"to":"h***@elsewhere.example"'), `the delivery failure at warn, <4>, with the masked recipient: ${failed.join('\n')}`);
  // The code that could not be sent is in no line (codes are six digits; nothing else logs a bare six-digit string).
  assert.ok(!lines.some((l) => /"\d{6}"/.test(l)), 'no code in any line');
  assert.deepEqual(matchedAddresses(logFile), ['192.0.2.77']);
});
