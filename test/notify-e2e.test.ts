// Security notices through a real daemon and a real SMTP server (test/helpers/smtp-sink.ts): each
// kind arrives, once, at the mailbox and its alternate address; a gateway that is down neither
// holds up nor fails the login, and the notice is retried, across a restart too; the per-level
// setting turns them off; the per-kind bound stops a flood of lock notices.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { logEvents, waitFor } from './helpers/protocol-tools.js';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from './helpers/smtp-sink.js';

const GB = '81.2.69.142';
const US = '8.8.8.8';
const SE = '89.160.20.112';
// A wide window lets a test log in several times with fresh codes without waiting for the clock.
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 4 };

type Json = Record<string, any>;

const smtpConfig = (port: number) => ({ host: '127.0.0.1', port, secure: 'none', from: 'security@memfa.test', pool: false, timeoutMs: 1000 });

function harness(d: TestDaemon) {
  const admin = (method: Parameters<typeof call>[1], params: unknown) => call(d.adminSocket, method, params as never) as Promise<Json>;
  const verify = (user: string, ip: string, code?: string) => call(d.hookSocket, 'verify', (code === undefined ? { user, ip } : { user, ip, code }) as never) as Promise<Json>;
  /** A mailbox with challenge always and an active TOTP secret (its enrolment is a notice too). */
  const enrolled = async (address: string, altEmail?: string) => {
    await admin('mailbox.set', { address, settings: { challenge: 'always', provider: 'totp' }, ...(altEmail === undefined ? {} : { altEmail }) });
    const started = await admin('enroll.start', { address });
    await admin('enroll.confirm', { address, force: true });
    const key = fromBase32(started['secret'] as string);
    let step = 0;
    // Each login takes the next step: a step once accepted cannot be used again.
    return { key, next: () => totpCode(key, Date.now() + step++ * 30_000, TOTP) };
  };
  const notifyAudit = async (mailbox: string) => (await admin('audit.query', { mailbox, action: 'notify' }))['entries'] as Json[];
  return { admin, verify, enrolled, notifyAudit };
}

const kindOf = (m: ReceivedMail) => m.headers['x-memfa-notice'];
const mailsOf = (sink: SmtpSink, kind: string, to: string) => sink.messages.filter((m) => kindOf(m) === kind && m.to.includes(to));

test('a second factor from a new country sends exactly one notice, to the mailbox and its alternate address, with no code in it', async (t) => {
  const sink = await startSmtpSink();
  const d = await startDaemon({ config: { totp: { window: TOTP.window }, smtp: smtpConfig(sink.port) } });
  t.after(async () => {
    await d.cleanup();
    await sink.close();
  });
  const { admin, verify, enrolled, notifyAudit } = harness(d);
  const alice = 'alice@notify.example';
  const { next } = await enrolled(alice, 'alice.private@elsewhere.example');
  const given: string[] = [];
  const login = async (ip: string) => {
    const code = next();
    given.push(code);
    const r = await verify(alice, ip, code);
    assert.deepEqual([r['result'], r['reason']], ['allow', 'code-valid'], JSON.stringify(r));
  };
  await login(GB); // the first login with a factor: nothing to compare with
  await login(US); // new: one notice
  await login(US); // remembered now
  await login(GB);
  // Notices go out in the order they were made: once a later one has arrived, every earlier one has.
  await admin('recovery.generate', { address: alice });
  await waitFor(() => mailsOf(sink, 'recovery-codes-generated', alice).length === 1, 10000, 'the recovery-codes notice');

  assert.equal(mailsOf(sink, 'totp-enrolled', alice).length, 1, 'the enrolment notice');
  const countries = mailsOf(sink, 'new-country', alice);
  assert.equal(countries.length, 1, `exactly one new-country notice: ${sink.messages.map(kindOf).join(', ')}`);
  const mail = countries[0]!;
  assert.deepEqual(mail.to.sort(), ['alice.private@elsewhere.example', alice]);
  assert.equal(mail.from, 'security@memfa.test');
  assert.equal(mail.headers['subject'], `New sign-in to ${alice} from US`);
  assert.equal(mail.headers['auto-submitted'], 'auto-generated');
  assert.match(mail.text, /from a country it had not been used from before/);
  assert.match(mail.text, /From: 8\.8\.8\.8 \(US\)/);
  for (const m of sink.messages) for (const code of given) assert.ok(!m.raw.includes(code), `no code in the "${kindOf(m)}" notice`);

  // The sent entry is written once the server has accepted the message, so it may follow the mail.
  await waitFor(async () => (await notifyAudit(alice)).filter((e) => e['result'] === 'sent').length === 3, 10000, 'three sent entries');
  const sent = (await notifyAudit(alice)).filter((e) => e['result'] === 'sent');
  assert.deepEqual(sent.map((e) => e['reason']), ['totp-enrolled', 'new-country', 'recovery-codes-generated']);
  assert.equal(sent[1]!['stream'], 'security');
  assert.deepEqual(sent[1]!['details']['to'], ['a***@notify.example', 'a***@elsewhere.example']);
  assert.equal(logEvents(d.log()).filter((e) => e['event'] === 'notification-sent').length, 3);
  // Sent notices leave the store: a restart finds none waiting.
  await d.stop();
  await d.restart();
  assert.ok(!logEvents(d.log()).some((e) => e['event'] === 'notifications-pending'), d.log());
});

test('SMTP down: the login does not wait for the notice and succeeds; the notice is retried, survives a restart, and goes out once SMTP is back', async (t) => {
  // First a server that greets, and never answers a message's MAIL FROM: a send to it hangs for as
  // long as smtp.timeoutMs allows (30 s here), so a login that waited for one could not answer
  // meanwhile. (The daemon's start-up check of the gateway gets its answers and ends.)
  const held: net.Socket[] = [];
  const stuck: net.Socket[] = [];
  const hanging = net.createServer((socket) => {
    held.push(socket);
    socket.on('error', () => undefined);
    socket.write('220 silent.test ESMTP\r\n');
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl !== -1; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl).toUpperCase();
        buf = buf.slice(nl + 2);
        if (line.startsWith('EHLO') || line.startsWith('HELO')) socket.write('250 silent.test\r\n');
        else if (line.startsWith('QUIT')) socket.end('221 bye\r\n');
        else if (line.startsWith('MAIL FROM')) stuck.push(socket);
      }
    });
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const port = (hanging.address() as AddressInfo).port;
  const d = await startDaemon({ config: { totp: { window: TOTP.window }, smtp: { ...smtpConfig(port), timeoutMs: 30000 }, notifications: { retryInitialSeconds: 1, retryMaxSeconds: 2 } } });
  let sink: SmtpSink | null = null;
  t.after(async () => {
    for (const socket of held) socket.destroy();
    hanging.close();
    await d.cleanup();
    await sink?.close();
  });
  const { verify, enrolled, notifyAudit } = harness(d);
  const bob = 'bob@down.example';
  const { next } = await enrolled(bob);
  await waitFor(() => stuck.length === 1, 10000, 'the enrolment notice to hang at the silent server');
  assert.deepEqual([(await verify(bob, GB, next()))['result'], (await verify(bob, SE, next()))['reason']], ['allow', 'code-valid']);
  assert.deepEqual(await notifyAudit(bob), [], 'both logins were answered while the first send still hangs: no attempt has an outcome yet');

  // The server goes away: the hanging attempt fails, and so do the next ones (connection refused).
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => hanging.close(() => resolve()));
  await waitFor(async () => new Set((await notifyAudit(bob)).filter((e) => e['result'] === 'retrying').map((e) => e['reason'])).size === 2, 15000, 'a failed attempt of each notice');
  const failed = logEvents(d.log()).filter((e) => e['event'] === 'notification-failed');
  assert.ok(failed.length >= 2 && failed.every((e) => e['level'] === 'warn' && e['mailbox'] === bob && typeof e['retryAt'] === 'string'), JSON.stringify(failed));

  // Queued notices are in the store: a restart keeps them.
  await d.stop();
  await d.restart();
  assert.ok(logEvents(d.log()).some((e) => e['event'] === 'notifications-pending' && e['notices'] === 2), 'the restarted daemon picks up both notices');
  sink = await startSmtpSink({ port });
  await waitFor(() => sink!.messages.length >= 2, 15000, 'both notices once SMTP is back');
  assert.deepEqual(sink.messages.map(kindOf).sort(), ['new-country', 'totp-enrolled']);
  await waitFor(async () => (await notifyAudit(bob)).filter((e) => e['result'] === 'sent').length === 2, 5000, 'two sent entries');
  const country = (await notifyAudit(bob)).filter((e) => e['reason'] === 'new-country').map((e) => e['result']);
  assert.ok(country.length >= 2 && country.slice(0, -1).every((r) => r === 'retrying') && country.at(-1) === 'sent', country.join(', '));
  // Sent exactly once each, whatever the retries.
  assert.equal(sink.messages.length, 2);
});

test('notices follow the notifications setting: a domain turns them off, a mailbox back on', async (t) => {
  const sink = await startSmtpSink();
  const d = await startDaemon({ config: { smtp: smtpConfig(sink.port) } });
  t.after(async () => {
    await d.cleanup();
    await sink.close();
  });
  const { admin, notifyAudit } = harness(d);
  assert.equal((await d.cli(['domain', 'set', 'quiet.example', '--notifications', 'no'])).code, 0);
  await admin('recovery.generate', { address: 'carl@quiet.example' });
  assert.equal((await d.cli(['mailbox', 'set', 'dora@quiet.example', '--notifications', 'yes'])).code, 0);
  const shown = await d.json<{ effective: { notifications: { value: boolean; source: string } } }>(['mailbox', 'show', 'dora@quiet.example']);
  assert.deepEqual(shown.effective.notifications, { value: true, source: 'mailbox' });
  await admin('recovery.generate', { address: 'dora@quiet.example' });
  await waitFor(() => mailsOf(sink, 'recovery-codes-generated', 'dora@quiet.example').length === 1, 10000, "dora's notice");
  assert.deepEqual(sink.messages.flatMap((m) => m.to), ['dora@quiet.example'], 'none for carl');
  assert.deepEqual(await notifyAudit('carl@quiet.example'), []);
  assert.match((await d.cli(['mailbox', 'show', 'carl@quiet.example'])).stdout, /notifications\s+no \(domain\)/);
});

test('each kind: reset, recovery codes, a recovery code used, a lock; lock notices are bounded per day, other kinds are not held back', async (t) => {
  const dir = await makeTempDir();
  const clockFile = path.join(dir, 'clock');
  await writeFile(clockFile, '0');
  const sink = await startSmtpSink();
  const d = await startDaemon({
    dir,
    env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile },
    config: { totp: { window: TOTP.window }, smtp: smtpConfig(sink.port), lockout: { threshold: 2, baseDelaySeconds: 60, maxDelaySeconds: 60 }, notifications: { maxPerKindPerDay: 2 } },
  });
  t.after(async () => {
    await d.cleanup();
    await sink.close();
  });
  let offset = 0;
  const shift = async (ms: number) => {
    offset += ms;
    await writeFile(clockFile, String(offset));
  };
  const { admin, verify, enrolled, notifyAudit } = harness(d);
  const eve = 'eve@kinds.example';
  const { key } = await enrolled(eve);
  const codes = (await admin('recovery.generate', { address: eve }))['codes'] as string[];
  const used = await verify(eve, GB, codes[0]);
  assert.deepEqual([used['reason'], used['recoveryCodesLeft']], ['recovery-code-used', 9]);
  // Wrong codes from elsewhere: the second locks; after the lock, each failure locks again.
  const wrong = totpCode(key, Date.now() - 3600_000, TOTP);
  const results: string[] = [];
  for (let lock = 0; lock < 3; lock++) {
    for (let i = 0; i < (lock === 0 ? 2 : 1); i++) results.push((await verify(eve, '192.0.2.66', wrong))['reason'] as string);
    assert.equal((await verify(eve, '192.0.2.66', wrong))['reason'], 'locked');
    await shift(61_000);
  }
  assert.deepEqual(results, ['code-invalid', 'code-invalid', 'code-invalid', 'code-invalid']);
  await admin('reset', { address: eve, secret: true });
  await waitFor(() => mailsOf(sink, 'totp-reset', eve).length === 1, 10000, 'the reset notice');

  const kinds = sink.messages.map(kindOf);
  assert.deepEqual(kinds, ['totp-enrolled', 'recovery-codes-generated', 'recovery-code-used', 'mailbox-locked', 'mailbox-locked', 'totp-reset']);
  assert.match(mailsOf(sink, 'recovery-code-used', eve)[0]!.text, /9 recovery codes are left\./);
  assert.match(mailsOf(sink, 'mailbox-locked', eve)[0]!.text, /From: 192\.0\.2\.66 \(unknown country\)[\s\S]*Sign-ins that need a code are refused until \d{4}-\d\d-\d\d \d\d:\d\d UTC\./);
  const audit = await notifyAudit(eve);
  assert.deepEqual(audit.filter((e) => e['result'] === 'suppressed').map((e) => [e['reason'], e['details']['why']]), [['mailbox-locked', 'rate-limited']]);
  assert.equal(logEvents(d.log()).filter((e) => e['event'] === 'mailbox-locked').length, 3, 'every lock is logged, notified or not');
});

test('an app password created, by an administrator or by the user, and recovery codes made through self-service: one notice each, without the password or the codes', async (t) => {
  const sink = await startSmtpSink();
  const d = await startDaemon({ config: { totp: { window: TOTP.window }, smtp: smtpConfig(sink.port) } });
  t.after(async () => {
    await d.cleanup();
    await sink.close();
  });
  const { admin, enrolled, notifyAudit } = harness(d);
  const self = (method: string, params: Record<string, unknown>) => call(d.selfSocket, method as 'self.show', params as never) as Promise<Json>;
  const fay = 'fay@apps.example';
  const { next } = await enrolled(fay, 'fay.home@elsewhere.example');
  const byAdmin = await admin('app-password.add', { address: fay, name: 'desktop' });
  const bySelf = await self('self.app-password.add', { user: fay, name: 'phone', currentCode: next() });
  const codes = (await self('self.recovery.generate', { user: fay, currentCode: next() }))['codes'] as string[];
  await waitFor(() => mailsOf(sink, 'recovery-codes-generated', fay).length === 1, 10000, 'the recovery-codes notice');
  await waitFor(async () => (await notifyAudit(fay)).filter((e) => e['result'] === 'sent').length === 4, 10000, 'four sent entries');

  assert.deepEqual(sink.messages.map(kindOf), ['totp-enrolled', 'app-password-created', 'app-password-created', 'recovery-codes-generated']);
  for (const m of mailsOf(sink, 'app-password-created', fay)) {
    assert.deepEqual(m.to.sort(), ['fay.home@elsewhere.example', fay]);
    assert.equal(m.headers['subject'], `An app password was created for ${fay}`);
    assert.match(m.text, /An app password was created for your mailbox\./);
  }
  const secrets = [byAdmin['password'] as string, bySelf['password'] as string, ...codes];
  for (const m of sink.messages) for (const s of secrets) assert.ok(!m.raw.includes(s) && !m.raw.includes(s.replace(/-/g, '')), `no password or code in the "${kindOf(m)}" notice`);
});

test('the SMTP gateway of the notices is checked at start even when the email provider does not use it', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Email codes through the log transport; notices through an SMTP server that is not there.
  const d = await startDaemon({ config: { providers: { email: { enabled: true, transport: 'log' } }, smtp: smtpConfig(port) } });
  t.after(() => d.cleanup());
  await waitFor(() => logEvents(d.log()).some((e) => e['event'] === 'gateway-unreachable' && e['purpose'] === 'notices'), 10000, 'the start-up check of the notices gateway');
  const line = logEvents(d.log()).find((e) => e['event'] === 'gateway-unreachable' && e['purpose'] === 'notices')!;
  assert.deepEqual([line['level'], line['transport']], ['warn', 'smtp']);
});
