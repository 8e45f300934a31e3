// examples/webmail/memfa.php, the client for PHP webmail back ends, against the real daemon: the
// webmail login sequence (ask for a code, enrol, refuse, retry later), login.check, and the
// self-service pages for app passwords and recovery codes (issue 14). Runs php-cli; skipped
// where it is not installed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';

const phpMissing = spawnSync('sh', ['-c', 'command -v php'], { encoding: 'utf8' }).status === 0 ? null : 'php-cli is not installed (apt-get install -y php-cli)';
const DRIVER = path.join(REPO, 'test', 'fixtures', 'php', 'driver.php');
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 10 };
const PERIOD = 30_000;
const IP = '198.51.100.40';

interface Step {
  next: string;
  answer: Record<string, unknown>;
  message: string | null;
}
type Outcome<T> = { ok: T; error?: undefined } | { ok?: undefined; error: { code: string; message: string; data: Record<string, unknown>; temporary: boolean } };

describe('the PHP webmail client', { skip: phpMissing ?? false }, () => {
  let d: TestDaemon;
  let key: Buffer;
  let step = 0;
  const code = () => totpCode(key, Date.now() + step++ * PERIOD, TOTP);
  const php = <T>(op: string, args: Record<string, unknown>, sockets = { hook: d.hookSocket, self: d.selfSocket }) =>
    new Promise<Outcome<T>>((resolve, reject) => {
      const child = spawn('php', [DRIVER, sockets.hook, sockets.self, op, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      child.on('error', reject);
      child.on('close', (status) => {
        if (status !== 0 || out.trim() === '') return reject(new Error(`php ${op} exited ${status}: ${out}${err}`));
        resolve(JSON.parse(out) as Outcome<T>);
      });
    });
  const login = async (args: Record<string, unknown>) => (await php<Step>('login', args)).ok!;

  before(async () => {
    d = await startDaemon({ config: { totp: { window: 10 }, providers: { email: { enabled: true, transport: 'log' } } } });
    await d.json(['domain', 'set', 'web.example', '--challenge', 'always']);
    key = fromBase32((await d.json<{ secret: string }>(['enroll', 'amy@web.example', '--no-confirm'])).secret);
  });
  after(() => d.cleanup());

  it('the login sequence: ask for the code, then done; a wrong code refused; locked says how long', async () => {
    const first = await login({ user: 'amy@web.example', ip: IP });
    assert.deepEqual([first.next, first.answer['reason']], ['ask-code', 'always']);
    assert.match(first.message!, /authenticator app/);
    const done = await login({ user: 'amy@web.example', ip: IP, code: code() });
    assert.deepEqual([done.next, done.answer['reason']], ['done', 'code-valid']);
    const wrong = await login({ user: 'amy@web.example', ip: IP, code: '000000' });
    assert.deepEqual([wrong.next, wrong.answer['reason']], ['refused', 'code-invalid']);
    assert.match(wrong.message!, /not valid/);
    for (let i = 0; i < 5; i++) await login({ user: 'lou@web.example', ip: IP, code: '000000' });
    const locked = await login({ user: 'lou@web.example', ip: IP, code: '000000' });
    assert.deepEqual([locked.next, locked.answer['reason']], ['refused', 'locked']);
    assert.match(locked.message!, /Try again in \d+ seconds/);
  });

  it('enrolment: the QR code to show, then the first code from the app completes the login', async () => {
    const first = await login({ user: 'new@web.example', ip: IP });
    assert.equal(first.next, 'enroll');
    const uri = String(first.answer['otpauthUri']);
    const secret = fromBase32(new URL(uri).searchParams.get('secret')!);
    const done = await login({ user: 'new@web.example', ip: IP, code: totpCode(secret, Date.now(), TOTP) });
    assert.deepEqual([done.next, done.answer['reason']], ['done', 'enrolled']);
  });

  it('a code sent by email says where it went; memfa unreachable is a temporary failure, never a pass', async () => {
    await d.json(['mailbox', 'set', 'mel@web.example', '--provider', 'email', '--alt-email', 'mel@private.example']);
    const sent = await login({ user: 'mel@web.example', ip: IP });
    assert.equal(sent.next, 'ask-code');
    assert.match(sent.message!, /We sent it to m\*+@private\.example|We sent it to .*private\.example/);
    const down = await php<Step>('login', { user: 'amy@web.example', ip: IP }, { hook: path.join(d.dir, 'run', 'missing.sock'), self: d.selfSocket });
    assert.deepEqual([down.ok?.next, down.ok?.answer['error']], ['retry-later', 'DAEMON_UNAVAILABLE']);
  });

  it('self-service: an app password made with the current code, used by login.check, listed, revoked; recovery codes', async () => {
    const refused = await php('addAppPassword', { user: 'amy@web.example', name: 'phone', currentCode: '000000' });
    assert.deepEqual([refused.error?.code, refused.error?.temporary], ['FORBIDDEN', false]);
    const made = await php<{ id: string; password: string; protocols: string[] }>('addAppPassword', { user: 'amy@web.example', name: 'phone', currentCode: code(), protocols: ['imap', 'smtp'] });
    assert.deepEqual(made.ok?.protocols, ['imap', 'smtp']);
    const password = made.ok!.password;
    const check = await php<{ result: string; reason: string }>('loginCheck', { user: 'amy@web.example', ip: IP, protocol: 'imap', password });
    assert.deepEqual([check.ok?.result, check.ok?.reason], ['allow', 'app-password']);
    const dav = await php<{ result: string; reason: string }>('loginCheck', { user: 'amy@web.example', ip: IP, protocol: 'dav', password });
    assert.deepEqual([dav.ok?.result, dav.ok?.reason], ['deny', 'app-password-protocol']);
    const list = await php<{ name: string; uses: number }[]>('listAppPasswords', { user: 'amy@web.example' });
    assert.deepEqual(list.ok?.map((a) => [a.name, a.uses]), [['phone', 1]]);
    const shown = await php<{ appPasswords: { count: number } }>('selfShow', { user: 'amy@web.example' });
    assert.equal(shown.ok?.appPasswords.count, 1);
    const revoked = await php<{ revoked: { id: string }[] }>('revokeAppPassword', { user: 'amy@web.example', idOrName: 'phone' });
    assert.deepEqual(revoked.ok?.revoked.map((r) => r.id), [made.ok!.id]);
    const after = await php<{ result: string }>('loginCheck', { user: 'amy@web.example', ip: IP, protocol: 'imap', password });
    assert.equal(after.ok?.result, 'deny');
    const codes = await php<string[]>('generateRecoveryCodes', { user: 'amy@web.example', currentCode: code() });
    assert.equal(codes.ok?.length, 10);
    const recovered = await login({ user: 'amy@web.example', ip: '198.51.100.41', code: codes.ok![0] });
    assert.deepEqual([recovered.next, recovered.answer['reason']], ['done', 'recovery-code-used']);
  });
});
