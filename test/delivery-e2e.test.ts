// One-time codes by email and SMS through the real daemon, a real SMTP server and a real SMPP server.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { startSmppSink, type SmppSink } from './helpers/smpp-sink.js';
import { startSmtpSink, waitUntil, type SmtpSink } from './helpers/smtp-sink.js';

const GB = '81.2.69.142';

interface Answer {
  exit: number | null;
  result: string;
  reason?: string;
  provider?: string;
  destination?: string;
  expiresAt?: number;
  sent?: boolean;
  error?: { code: string; message: string; retryAfter?: number };
}

function codeIn(text: string): string {
  const m = /\b(\d{6})\b/.exec(text);
  assert.ok(m, `no code in: ${text}`);
  return m[1]!;
}

describe('code delivery end to end', () => {
  let smtp: SmtpSink;
  let smpp: SmppSink;
  let d: TestDaemon;
  let clockFile: string;

  before(async () => {
    smtp = await startSmtpSink();
    smpp = await startSmppSink({ systemId: 'memfa', password: 'smpp-pass' });
    const dir = await makeTempDir();
    clockFile = path.join(dir, 'clock-offset');
    await writeFile(clockFile, '0');
    await writeFile(path.join(dir, 'smpp-password'), 'smpp-pass\n', { mode: 0o600 });
    d = await startDaemon({
      dir,
      env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile },
      config: {
        providers: { sms: { enabled: true, transport: 'smpp' }, email: { enabled: true, transport: 'smtp' } },
        smtp: { host: '127.0.0.1', port: smtp.port, secure: 'none', from: 'mfa@memfa.test', pool: false, timeoutMs: 1500 },
        smpp: {
          host: '127.0.0.1',
          port: smpp.port,
          systemId: 'memfa',
          passwordFile: 'smpp-password',
          connectTimeoutMs: 1500,
          submitTimeoutMs: 1500,
          reconnectInitialMs: 50,
          reconnectMaxMs: 200,
          enquireLinkMs: 1000,
        },
        codes: { cooldownSeconds: 0, hourlyLimit: 3, ttlSeconds: 60, maxTries: 5 },
      },
    });
  });
  after(async () => {
    await d.cleanup();
    await smtp.close();
    await smpp.stop();
  });

  const verify = async (user: string, code?: string): Promise<Answer> => {
    const r = await d.cli(['--json', 'verify', '--user', user, '--ip', GB, ...(code === undefined ? [] : ['--code-stdin'])], code === undefined ? {} : { stdin: code });
    return { ...(JSON.parse(r.stdout) as Omit<Answer, 'exit'>), exit: r.code };
  };

  it('sends an email code to the alternate address and accepts it once', async () => {
    await d.json(['mailbox', 'set', 'amy@mail.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'amy.private@home.example']);
    const before = smtp.messages.length;
    const c = await verify('amy@mail.example');
    assert.equal(c.exit, 2);
    assert.equal(c.result, 'challenge');
    assert.equal(c.provider, 'email');
    assert.equal(c.destination, 'a***@home.example');
    assert.ok(c.expiresAt! > Date.now());
    await smtp.waitForMessages(before + 1);
    const mail = smtp.messages[before]!;
    assert.deepEqual(mail.to, ['amy.private@home.example'], 'never the protected mailbox');
    const code = codeIn(mail.text);
    assert.ok(mail.html.includes(code));
    assert.match(mail.text, /81\.2\.69\.142/);
    const ok = await verify('amy@mail.example', code);
    assert.deepEqual([ok.exit, ok.result, ok.reason], [0, 'allow', 'code-valid']);
    const again = await verify('amy@mail.example', code);
    assert.deepEqual([again.exit, again.reason], [1, 'no-open-code']);
  });

  it('sends an SMS code by submit_sm; a re-challenge re-sends the same code; the hourly cap refuses the next send', async () => {
    await d.json(['mailbox', 'set', 'ben@mail.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550189']);
    const before = smpp.submitted.length;
    const first = await verify('ben@mail.example');
    assert.deepEqual([first.exit, first.provider, first.destination], [2, 'sms', '+12******189']);
    await waitUntil(() => smpp.submitted.length === before + 1, 3000, 'first SMS');
    const sms = smpp.submitted[before]!;
    assert.equal(sms.destinationAddr, '12015550189');
    const code = codeIn(sms.text);
    assert.ok(sms.text.length <= 160);

    const second = await verify('ben@mail.example');
    assert.equal(second.exit, 2);
    assert.equal(second.expiresAt, first.expiresAt, 'the same open code');
    await waitUntil(() => smpp.submitted.length === before + 2, 3000, 'second SMS');
    assert.equal(codeIn(smpp.submitted[before + 1]!.text), code, 'the same code re-sent');

    await verify('ben@mail.example'); // third send: the cap is 3 an hour
    await waitUntil(() => smpp.submitted.length === before + 3, 3000, 'third SMS');
    // The cap refuses a fourth send, but the code the user has is still valid: challenge again.
    const capped = await verify('ben@mail.example');
    assert.deepEqual([capped.exit, capped.expiresAt, capped.sent], [2, first.expiresAt, false]);

    const ok = await verify('ben@mail.example', code);
    assert.equal(ok.reason, 'code-valid');
    // No code is open now: the cap refuses the challenge.
    const refused = await verify('ben@mail.example');
    assert.equal(refused.exit, 75);
    assert.equal(refused.error?.code, 'RATE_LIMITED');
    assert.match(refused.error!.message, /hourly limit of 3 codes/);
    assert.ok((refused.error?.retryAfter ?? 0) > 0);
    assert.equal(smpp.submitted.length, before + 3, 'no fourth SMS');
  });

  it('voids a code after five wrong tries', async () => {
    await d.json(['mailbox', 'set', 'cat@mail.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'cat@home.example']);
    const before = smtp.messages.length;
    await verify('cat@mail.example');
    await smtp.waitForMessages(before + 1);
    const code = codeIn(smtp.messages[before]!.text);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    for (let i = 0; i < 4; i++) assert.equal((await verify('cat@mail.example', wrong)).reason, 'code-invalid');
    const fifth = await verify('cat@mail.example', wrong);
    assert.equal(fifth.result, 'deny');
    // The code is void now: even the right one is refused (and the mailbox is locked by then).
    const right = await verify('cat@mail.example', code);
    assert.equal(right.result, 'deny');
    assert.ok(right.reason === 'no-open-code' || right.reason === 'locked', right.reason);
    await d.json(['mailbox', 'show', 'cat@mail.example']);
  });

  it('refuses an expired code', async () => {
    await d.json(['mailbox', 'set', 'dan@mail.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'dan@home.example']);
    const before = smtp.messages.length;
    await verify('dan@mail.example');
    await smtp.waitForMessages(before + 1);
    const code = codeIn(smtp.messages[before]!.text);
    await writeFile(clockFile, String(61_000));
    try {
      const late = await verify('dan@mail.example', code);
      assert.deepEqual([late.result, late.reason], ['deny', 'code-expired']);
    } finally {
      await writeFile(clockFile, '0');
    }
  });

  it('SMTP server down: exit 75, delivery-failed, no code left open; falls back to SMS when configured', async () => {
    const dir = await makeTempDir();
    await writeFile(path.join(dir, 'smpp-password'), 'smpp-pass\n', { mode: 0o600 });
    const down = await startDaemon({
      dir,
      config: {
        providers: { email: { enabled: true, transport: 'smtp' }, sms: { enabled: true, transport: 'smpp' } },
        // Nothing listens on port 1: every send fails at once.
        smtp: { host: '127.0.0.1', port: 1, secure: 'none', from: 'mfa@memfa.test', pool: false, timeoutMs: 1000 },
        smpp: { host: '127.0.0.1', port: smpp.port, systemId: 'memfa', passwordFile: 'smpp-password', connectTimeoutMs: 1500 },
      },
    });
    try {
      await down.json(['mailbox', 'set', 'eve@mail.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'eve@home.example', '--phone', '+12015550130']);
      const r = await down.cli(['--json', 'verify', '--user', 'eve@mail.example', '--ip', GB]);
      assert.equal(r.code, 75, r.stderr);
      const body = JSON.parse(r.stdout) as { result: string; reason: string; error: { code: string } };
      assert.deepEqual([body.result, body.reason, body.error.code], ['error', 'delivery-failed', 'DELIVERY_FAILED']);
      // No code is open that the user never received: a guess is answered no-open-code.
      const guess = await down.cli(['--json', 'verify', '--user', 'eve@mail.example', '--ip', GB, '--code', '123456']);
      assert.equal((JSON.parse(guess.stdout) as { reason: string }).reason, 'no-open-code');
      assert.match(down.log(), /delivery-failed/);
      // The start-up check reported the unreachable SMTP server, and the daemon started anyway.
      assert.match(down.log(), /"event":"gateway-unreachable","provider":"email"/);
      assert.equal((await down.cli(['status'])).code, 0, 'the daemon is still up');

      // With a fallback, the SMS gateway delivers instead.
      await down.json(['mailbox', 'set', 'eve@mail.example', '--fallback', 'sms']);
      const before = smpp.submitted.length;
      const c = await down.cli(['--json', 'verify', '--user', 'eve@mail.example', '--ip', GB]);
      assert.equal(c.code, 2, c.stdout + c.stderr);
      assert.equal((JSON.parse(c.stdout) as { provider: string }).provider, 'sms');
      await waitUntil(() => smpp.submitted.length === before + 1, 3000, 'fallback SMS');
      assert.equal(smpp.submitted[before]!.destinationAddr, '12015550130');
    } finally {
      await down.cleanup();
    }
  });

  it('SMPP submit_sm answered with an error status: exit 75 naming the SMPP error', async () => {
    await d.json(['mailbox', 'set', 'fay@mail.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550131']);
    smpp.submitStatus = 0x45; // ESME_RSUBMITFAIL
    try {
      const r = await verify('fay@mail.example');
      assert.equal(r.exit, 75);
      assert.equal(r.reason, 'delivery-failed');
      assert.match(r.error!.message, /ESME_RSUBMITFAIL/);
    } finally {
      smpp.submitStatus = 0;
    }
    const ok = await verify('fay@mail.example');
    assert.equal(ok.exit, 2);
  });

  it('re-binds after the SMPP server restarts and the next send works', async () => {
    await d.json(['mailbox', 'set', 'gus@mail.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550132']);
    const port = smpp.port;
    const bindsBefore = smpp.binds.length;
    await smpp.stop();
    smpp = await startSmppSink({ port, systemId: 'memfa', password: 'smpp-pass' });
    await waitUntil(() => smpp.binds.length > 0, 5000, 're-bind');
    assert.ok(bindsBefore > 0);
    const before = smpp.submitted.length;
    const r = await verify('gus@mail.example');
    assert.equal(r.exit, 2, JSON.stringify(r));
    await waitUntil(() => smpp.submitted.length === before + 1, 3000, 'SMS after re-bind');
  });

  it('provider test sends through each gateway and reports errors exactly', async () => {
    const before = smpp.submitted.length;
    const sms = await d.cli(['provider', 'test', 'sms', '--to', '+12015550199']);
    assert.equal(sms.code, 0, sms.stderr);
    assert.match(sms.stdout, /sent a test message/);
    assert.equal(smpp.submitted[before]!.destinationAddr, '12015550199');
    const mails = smtp.messages.length;
    const email = await d.json<{ ok: boolean; transport: string }>(['provider', 'test', 'email', '--to', 'admin@ops.example']);
    assert.deepEqual([email.ok, email.transport], [true, 'smtp']);
    await smtp.waitForMessages(mails + 1);
    smpp.submitStatus = 0x58;
    try {
      const bad = await d.cli(['provider', 'test', 'sms', '--to', '+12015550199']);
      assert.equal(bad.code, 75);
      assert.match(bad.stderr, /ESME_RTHROTTLED/);
    } finally {
      smpp.submitStatus = 0;
    }
    const usage = await d.cli(['provider', 'test', 'sms', '--to', 'not-a-number']);
    assert.equal(usage.code, 64);
  });

  it('never writes a code into the daemon log', async () => {
    const codes = [...smtp.messages.map((m) => m.text), ...smpp.submitted.map((s) => s.text)].map((t) => /\b(\d{6})\b/.exec(t)?.[1]).filter((c): c is string => c !== undefined);
    assert.ok(codes.length > 0);
    for (const c of codes) assert.ok(!d.log().includes(c), `code ${c} in the log`);
  });
});
