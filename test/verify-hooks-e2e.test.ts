// Hooks that cannot answer a challenge (issue 14): verify --no-send decides without sending,
// enrolling or counting; a code given is checked even where no factor is needed (an OTP passdb
// must not take 000000 from a known address); the shipped PAM hook never passes a mail password
// to memfa as a code.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { MemfaError } from '../src/protocol/errors.js';
import type { MailboxView, VerifyResult } from '../src/protocol/results.js';
import { BIN, REPO, startDaemon, type TestDaemon } from './helpers/daemon.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 10 };
const PERIOD = 30_000;
const HOME = '192.0.2.10';
const CAFE = '198.51.100.20';

describe('verify for hooks that cannot answer a challenge', () => {
  let d: TestDaemon;
  const keys = new Map<string, Buffer>();
  const steps = new Map<string, number>();
  const nextCode = (user: string) => {
    const k = steps.get(user) ?? 0;
    steps.set(user, k + 1);
    return totpCode(keys.get(user)!, Date.now() + k * PERIOD, TOTP);
  };
  const wrongCode = (user: string) => {
    const valid = new Set([...Array(21).keys()].map((k) => totpCode(keys.get(user)!, Date.now() + (k - 10) * PERIOD, TOTP)));
    for (let n = 0; ; n++) {
      const c = String(n).padStart(6, '0');
      if (!valid.has(c)) return c;
    }
  };
  const enrolled = async (user: string) => {
    const e = await d.json<{ secret: string }>(['enroll', user, '--no-confirm']);
    keys.set(user, fromBase32(e.secret));
  };
  const verify = (params: Record<string, unknown>) => call(d.hookSocket, 'verify', params as never) as Promise<VerifyResult>;
  const outbox = () => readFile(path.join(d.dataDir, 'outbox.log'), 'utf8').catch(() => '');
  const failures = async (user: string) => {
    const m = await d.json<MailboxView>(['mailbox', 'show', user]);
    return m.lock.known.failures + m.lock.elsewhere.failures;
  };

  before(async () => {
    d = await startDaemon({ config: { totp: { window: 10 }, providers: { email: { enabled: true, transport: 'log' } } } });
    await d.json(['domain', 'set', 'hk.example', '--challenge', 'new-ip']);
  });
  after(() => d.cleanup());

  it('a code given from a remembered address is checked: 000000 is refused and counted, a right one accepted', async () => {
    await enrolled('otp@hk.example');
    assert.equal((await verify({ user: 'otp@hk.example', ip: HOME, code: nextCode('otp@hk.example') })).reason, 'code-valid');
    assert.deepEqual(await verify({ user: 'otp@hk.example', ip: HOME }).then((r) => [r.result, r.reason]), ['allow', 'known-ip'], 'no code: no factor needed');
    const wrong = await verify({ user: 'otp@hk.example', ip: HOME, code: wrongCode('otp@hk.example') });
    assert.deepEqual([wrong.result, wrong.reason], ['deny', 'code-invalid']);
    assert.equal(await failures('otp@hk.example'), 1);
    const right = await verify({ user: 'otp@hk.example', ip: HOME, code: nextCode('otp@hk.example') });
    assert.deepEqual([right.result, right.reason], ['allow', 'code-valid']);
    // From a trusted network, and in mode never, the same.
    await d.json(['global', 'set', '--trusted-networks', '198.51.100.0/24']);
    assert.equal((await verify({ user: 'otp@hk.example', ip: CAFE, code: wrongCode('otp@hk.example') })).reason, 'code-invalid');
    await d.json(['global', 'set', '--trusted-networks', 'inherit']);
    // A mailbox without a factor, in mode never, has nothing a code could match.
    await d.json(['mailbox', 'set', 'plain@hk.example', '--challenge', 'never']);
    const none = await verify({ user: 'plain@hk.example', ip: HOME, code: '000000' });
    assert.deepEqual([none.result, none.reason], ['deny', 'no-open-code']);
  });

  it('--no-send: challenge and enroll answered without a code sent, a secret pending or anything counted', async () => {
    await d.json(['mailbox', 'set', 'mail@hk.example', '--provider', 'email', '--alt-email', 'mail@private.example']);
    const r = await d.cli(['--json', 'verify', '--user', 'mail@hk.example', '--ip', CAFE, '--no-send']);
    assert.equal(r.code, 2, r.stderr);
    const answer = JSON.parse(r.stdout) as VerifyResult;
    assert.deepEqual([answer.result, answer.reason, answer.provider, answer.destination], ['challenge', 'new-ip', 'email', undefined]);
    for (let i = 0; i < 8; i++) assert.equal((await verify({ user: 'mail@hk.example', ip: CAFE, send: false })).result, 'challenge');
    assert.equal(await outbox(), '', 'nothing sent');
    // Unconfigured and stored mailboxes that must enrol: no URI, no pending secret, no record.
    const fresh = await verify({ user: 'new@hk.example', ip: CAFE, send: false });
    assert.deepEqual([fresh.result, fresh.otpauthUri], ['enroll', undefined]);
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'new@hk.example'])).stored, false);
    await d.json(['mailbox', 'set', 'stored@hk.example', '--challenge', 'always']);
    assert.equal((await verify({ user: 'stored@hk.example', ip: CAFE, send: false })).result, 'enroll');
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'stored@hk.example'])).totp, 'none', 'no pending secret');
    // An allow is an allow; no code can be given with it.
    await enrolled('known@hk.example');
    await verify({ user: 'known@hk.example', ip: HOME, code: nextCode('known@hk.example') });
    assert.equal((await d.cli(['verify', '--user', 'known@hk.example', '--ip', HOME, '--no-send'])).code, 0);
    assert.equal((await d.cli(['verify', '--user', 'known@hk.example', '--ip', HOME, '--no-send', '--code', '123456'])).code, 64);
    const e = await verify({ user: 'known@hk.example', ip: HOME, send: false, code: '123456' }).catch((err: MemfaError) => err);
    assert.equal((e as MemfaError).code, 'INVALID_PARAMS');
    // The email challenge still works for webmail.
    assert.equal((await verify({ user: 'mail@hk.example', ip: CAFE })).destination !== undefined, true);
    assert.match(await outbox(), /mail@private\.example/);
  });

  describe('the shipped PAM hook', () => {
    let hook: string;
    before(async () => {
      // The shipped script, with its memfa command pointed at this repository and daemon.
      const wrapper = path.join(d.dir, 'memfa-wrapper');
      await writeFile(wrapper, `#!/bin/sh\nMEMFA_CONFIG='${d.configFile}' exec '${process.execPath}' '${BIN}' "$@"\n`);
      await chmod(wrapper, 0o755);
      const shipped = await readFile(path.join(REPO, 'examples', 'pam-memfa-hook.sh'), 'utf8');
      assert.match(shipped, /^MEMFA=\/usr\/bin\/memfa$/m);
      hook = path.join(d.dir, 'pam-hook.sh');
      await writeFile(hook, shipped.replace(/^MEMFA=\/usr\/bin\/memfa$/m, `MEMFA='${wrapper}'`));
      await chmod(hook, 0o755);
    });
    const runHook = (mode: string[], user: string, ip: string, token: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('/bin/sh', [hook, ...mode], { env: { PAM_TYPE: 'auth', PAM_USER: user, PAM_RHOST: ip }, stdio: ['pipe', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
        child.on('close', (code) => resolve({ code, stderr }));
        // A hook that refuses before reading its token (an unknown mode) closes the pipe first:
        // the write then fails with EPIPE, which is that refusal, not an error of the test.
        child.stdin.on('error', () => undefined);
        // pam_exec with expose_authtok: the token and a NUL.
        child.stdin.end(token + '\0');
      });

    it('password mode: the token is never a code; only a login that needs no factor passes, and nothing is sent', async () => {
      await enrolled('pam@hk.example');
      await verify({ user: 'pam@hk.example', ip: HOME, code: nextCode('pam@hk.example') });
      assert.equal((await runHook(['password'], 'pam@hk.example', HOME, 'the mail password')).code, 0, 'a remembered address');
      const away = await runHook(['password'], 'pam@hk.example', CAFE, 'the mail password');
      assert.equal(away.code, 1);
      assert.match(away.stderr, /second factor needed/);
      await d.json(['mailbox', 'set', 'pam@hk.example', '--provider', 'email', '--alt-email', 'pam@private.example']);
      assert.equal((await runHook(['password'], 'pam@hk.example', CAFE, 'the mail password')).code, 1);
      assert.ok(!(await outbox()).includes('pam@private.example'), 'no code sent for a mail login');
      assert.equal(await failures('pam@hk.example'), 0, 'nothing counted');
      await d.json(['mailbox', 'set', 'pam@hk.example', '--provider', 'inherit']);
    });

    it('code mode: a code is checked (a wrong one refused even from a remembered address), a password refused', async () => {
      assert.equal((await runHook(['code'], 'pam@hk.example', HOME, nextCode('pam@hk.example'))).code, 0);
      assert.equal((await runHook([], 'pam@hk.example', HOME, wrongCode('pam@hk.example'))).code, 1, 'the default mode is code');
      const pw = await runHook(['code'], 'pam@hk.example', HOME, 'the mail password');
      assert.equal(pw.code, 1);
      assert.match(pw.stderr, /status 64/);
      assert.equal((await runHook(['other'], 'pam@hk.example', HOME, 'x')).code, 1);
    });
  });
});
