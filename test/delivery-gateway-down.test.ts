// The SMPP gateway going down and coming back, through the real daemon, a real SMPP server and a
// real SMTP server: logins do not wait for time-outs while it is down, and `status` and
// `provider test` bring it back at once instead of waiting for the reconnect backoff.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StatusResult } from '../src/protocol/results.js';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { startSmppSink, type SmppSink } from './helpers/smpp-sink.js';
import { startSmtpSink, waitUntil, type SmtpSink } from './helpers/smtp-sink.js';

const GB = '81.2.69.142';
/** The configured connect and submit time-outs: a login that waited for either would take this long. */
const TIMEOUT_MS = 10_000;
/** Well under TIMEOUT_MS, and generous for a CLI process start on a busy machine. */
const FAST_MS = 2_500;

describe('SMPP gateway down and back', () => {
  let smtp: SmtpSink;
  let smpp: SmppSink;
  let d: TestDaemon;
  let unbounds = 0;

  before(async () => {
    smtp = await startSmtpSink();
    smpp = await startSmppSink({ systemId: 'memfa', password: 'smpp-pass' });
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'smpp-password'), 'smpp-pass\n', { mode: 0o600 });
    d = await startDaemon({
      dir,
      config: {
        providers: { sms: { enabled: true, transport: 'smpp' }, email: { enabled: true, transport: 'smtp' } },
        smtp: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'mfa@memfa.test', pool: false, timeoutMs: 1500 },
        smpp: {
          host: '127.0.0.1',
          port: smpp.port,
          systemId: 'memfa',
          passwordFile: 'smpp-password',
          connectTimeoutMs: TIMEOUT_MS,
          submitTimeoutMs: TIMEOUT_MS,
          // A minute between automatic attempts: whatever comes back sooner was brought back by a check.
          reconnectInitialMs: 60_000,
          reconnectMaxMs: 60_000,
        },
        codes: { cooldownSeconds: 0, hourlyLimit: 100, ttlSeconds: 60, maxTries: 5 },
      },
    });
    await d.json(['mailbox', 'set', 'hal@mail.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550111', '--alt-email', 'hal@home.example', '--fallback', 'email']);
    await d.json(['mailbox', 'set', 'ida@mail.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550122']);
  });
  after(async () => {
    await d.cleanup();
    await smtp.close();
    await smpp.stop();
  });

  const timed = async <T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> => {
    const started = Date.now();
    const value = await run();
    return { value, ms: Date.now() - started };
  };
  const verify = async (user: string) => {
    const r = await d.cli(['--json', 'verify', '--user', user, '--ip', GB]);
    return { exit: r.code, ...(JSON.parse(r.stdout) as { result: string; reason: string; provider?: string; error?: { code: string; message: string } }) };
  };
  const smsGateway = async () => {
    const s = await d.json<StatusResult>(['status']);
    return s.providers.find((p) => p.name === 'sms')!;
  };
  /** Stops the SMSC and waits until the daemon saw its session drop. */
  const stopSmsc = async (): Promise<void> => {
    await smpp.stop();
    unbounds += 1;
    await waitUntil(() => d.log().split('"smpp.unbound"').length - 1 >= unbounds, 5000, 'the daemon to see the session drop');
  };

  it('with the SMSC stopped, a login with an email fallback gets its code by email at once', async () => {
    assert.equal((await smsGateway()).gateway, 'ok');
    await stopSmsc();
    const mails = smtp.messages.length;
    const { value: c, ms } = await timed(() => verify('hal@mail.example'));
    assert.deepEqual([c.exit, c.result, c.provider], [2, 'challenge', 'email'], JSON.stringify(c));
    assert.ok(ms < FAST_MS, `the login took ${ms} ms`);
    await smtp.waitForMessages(mails + 1);
    assert.deepEqual(smtp.messages[mails]!.to, ['hal@home.example']);
    assert.match(d.log(), /"event":"delivery-failed"[^\n]*down since/);
  });

  it('without a fallback, DELIVERY_FAILED at once, saying since when and when it retries', async () => {
    const { value: r, ms } = await timed(() => verify('ida@mail.example'));
    assert.deepEqual([r.exit, r.reason, r.error?.code], [75, 'delivery-failed', 'DELIVERY_FAILED']);
    assert.match(r.error?.message ?? '', /down since \S+, next attempt in \d+ s/);
    assert.ok(ms < FAST_MS, `the login took ${ms} ms`);
  });

  it('after the SMSC is back, status says ok at once and the next login sends by SMS', async () => {
    await smpp.start();
    const { value: gw, ms } = await timed(smsGateway);
    assert.equal(gw.gateway, 'ok', JSON.stringify(gw));
    assert.ok(ms < FAST_MS, `status took ${ms} ms`);
    const sent = smpp.submitted.length;
    const { value: c, ms: loginMs } = await timed(() => verify('ida@mail.example'));
    assert.deepEqual([c.exit, c.provider], [2, 'sms'], JSON.stringify(c));
    assert.ok(loginMs < FAST_MS, `the login took ${loginMs} ms`);
    assert.equal(smpp.submitted.length, sent + 1);
    assert.equal(smpp.submitted[sent]!.destinationAddr, '12015550122');
  });

  it('status while the SMSC is stopped says down, checked then, not remembered', async () => {
    await stopSmsc();
    const gw = await smsGateway();
    assert.equal(gw.gateway, 'down');
    assert.match(gw.detail ?? '', /^SMPP gateway not bound: .*ECONNREFUSED/);
  });

  it('provider test sms after the SMSC restarts succeeds at once', async () => {
    await smpp.start();
    const sent = smpp.submitted.length;
    const { value: r, ms } = await timed(() => d.cli(['provider', 'test', 'sms', '--to', '+12015550199']));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(ms < FAST_MS, `provider test took ${ms} ms`);
    assert.equal(smpp.submitted[sent]?.destinationAddr, '12015550199');
  });
});
