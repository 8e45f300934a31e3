import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemfaError } from '../src/protocol/errors.js';
import { createSmtpSender } from '../src/delivery/smtp.js';
import { DEFAULT_SMTP_TEMPLATES, type DeliveryLogger, type SmtpConfig } from '../src/delivery/types.js';
import { startSmtpSink } from './helpers/smtp-sink.js';

function captureLogger(): DeliveryLogger & { lines: Array<{ level: string; event: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ level: string; event: string; fields: Record<string, unknown> }> = [];
  return {
    lines,
    info: (event, fields) => lines.push({ level: 'info', event, fields }),
    warn: (event, fields) => lines.push({ level: 'warn', event, fields }),
    error: (event, fields) => lines.push({ level: 'error', event, fields }),
  };
}

function smtpConfig(port: number, overrides: Partial<SmtpConfig> = {}): SmtpConfig {
  return {
    host: '127.0.0.1',
    port,
    secure: 'none',
    rejectUnauthorized: true,
    from: '"memfa" <mfa@example.org>',
    pool: false,
    maxConnections: 2,
    timeoutMs: 1000,
    ...DEFAULT_SMTP_TEMPLATES,
    ...overrides,
  };
}

const CODE = '918273';
const MSG = {
  kind: 'code' as const,
  to: 'john@example.org',
  code: CODE,
  mailbox: 'john@example.org',
  ip: '198.51.100.23',
  country: 'NL',
  expiresAt: Date.UTC(2030, 5, 1, 12, 30),
};

async function rejection(promise: Promise<unknown>): Promise<MemfaError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MemfaError, `expected a MemfaError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

for (const pool of [false, true]) {
  test(`delivers the code in the text and html parts (pool: ${pool})`, async (t) => {
    const sink = await startSmtpSink();
    t.after(() => sink.close());
    const logger = captureLogger();
    const sender = createSmtpSender(smtpConfig(sink.port, { pool }), logger);
    t.after(() => sender.close());

    const result = await sender.send(MSG);
    assert.match(result.messageId ?? '', /^<.+>$/);
    assert.equal(sink.messages.length, 1);
    const mail = sink.messages[0]!;
    assert.equal(mail.from, 'mfa@example.org');
    assert.deepEqual(mail.to, ['john@example.org']);
    assert.match(mail.headers.subject ?? '', /login code for john@example.org/);
    assert.equal(mail.headers['auto-submitted'], 'auto-generated');
    assert.match(mail.text, /is: 918273/);
    assert.match(mail.text, /valid until 12:30 UTC/);
    assert.match(mail.text, /Requested from 198\.51\.100\.23 \(NL\)/);
    assert.match(mail.html, /<b>918273<\/b>/);

    const logged = JSON.stringify(logger.lines);
    assert.ok(!logged.includes(CODE), 'the code must not be logged');
    assert.match(logged, /"to":"j\*\*\*@example.org"/);
    assert.deepEqual(await sender.check(), { ok: true });
  });
}

test('custom templates, escaped html, test messages and the OTP-Token header', async (t) => {
  const sink = await startSmtpSink();
  t.after(() => sink.close());
  const sender = createSmtpSender(
    smtpConfig(sink.port, {
      subject: 'Code for {mailbox}',
      text: 'code={code} ip={ip} country={country} mailbox={mailbox}',
      html: '<p>{mailbox}: {code}</p>',
      otpOrigin: 'https://webmail.example.org/login',
    }),
    captureLogger(),
  );
  t.after(() => sender.close());

  await sender.send({ ...MSG, mailbox: 'a<b>&c@example.org', country: null, ip: undefined });
  await sender.send({ kind: 'test', to: 'john@example.org', mailbox: 'john@example.org' });
  const [code, probe] = sink.messages;
  assert.equal(code?.text.trim(), 'code=918273 ip=unknown address country=unknown country mailbox=a<b>&c@example.org');
  assert.match(code?.html ?? '', /<p>a&lt;b&gt;&amp;c@example.org: 918273<\/p>/);
  assert.equal(code?.headers['otp-token'], '"918273"; origin="https://webmail.example.org"');
  assert.equal(probe?.headers.subject, '[test] Code for john@example.org');
  assert.match(probe?.text ?? '', /code=TEST/);
  assert.equal(probe?.headers['otp-token'], undefined);
});

test('server down: DELIVERY_FAILED quickly, naming the connection error', async (t) => {
  const port = await closedPort();
  const sender = createSmtpSender(smtpConfig(port), captureLogger());
  t.after(() => sender.close());
  const started = Date.now();
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /ECONNREFUSED/);
  assert.equal(err.data?.provider, 'email');
  assert.ok(Date.now() - started < 1500);
  const check = await sender.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /ECONNREFUSED/);
});

test('a server that never greets: DELIVERY_FAILED after the timeout', async (t) => {
  const silent = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const { port } = silent.address() as AddressInfo;
  const sender = createSmtpSender(smtpConfig(port, { timeoutMs: 200 }), captureLogger());
  t.after(() => sender.close());
  const started = Date.now();
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /ETIMEDOUT|timed out/);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
});

test('authentication: the right password delivers, a wrong one fails naming the reply but not the password', async (t) => {
  const sink = await startSmtpSink({ auth: { user: 'relay', pass: 'right-horse-battery' } });
  t.after(() => sink.close());
  const dir = await mkdtemp(join(tmpdir(), 'memfa-smtp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passFile = join(dir, 'smtp.pass');
  await writeFile(passFile, 'right-horse-battery\n', { mode: 0o600 });

  const good = createSmtpSender(smtpConfig(sink.port, { auth: { user: 'relay', passFile } }), captureLogger());
  t.after(() => good.close());
  await good.send(MSG);
  assert.equal(sink.messages.length, 1);

  const logger = captureLogger();
  const bad = createSmtpSender(smtpConfig(sink.port, { auth: { user: 'relay', pass: 'wrong-password' } }), logger);
  t.after(() => bad.close());
  const err = await rejection(bad.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /535/);
  assert.match(err.message, /EAUTH/);
  assert.equal(err.data?.smtpError, 'EAUTH');
  assert.equal(err.data?.smtpResponseCode, 535);
  for (const text of [err.message, JSON.stringify(err.data), JSON.stringify(logger.lines)]) {
    assert.ok(!text.includes('wrong-password'), 'the password must not leak');
    assert.ok(!text.includes(CODE), 'the code must not leak');
  }
  assert.equal(sink.messages.length, 1);

  const noAuth = createSmtpSender(smtpConfig(sink.port), captureLogger());
  t.after(() => noAuth.close());
  const refused = await rejection(noAuth.send(MSG));
  assert.equal(refused.code, 'DELIVERY_FAILED');
  assert.match(refused.message, /53\d/);
});

test('a missing password file fails the send and the check, naming the key', async (t) => {
  const sink = await startSmtpSink({ auth: { user: 'relay', pass: 'x' } });
  t.after(() => sink.close());
  const sender = createSmtpSender(
    smtpConfig(sink.port, { auth: { user: 'relay', passFile: '/nonexistent/memfa/smtp.pass' } }),
    captureLogger(),
  );
  t.after(() => sender.close());
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /smtp\.auth\.passFile .*ENOENT/);
  const check = await sender.check();
  assert.equal(check.ok, false);
});

test('a rejected recipient fails naming the reply', async (t) => {
  const sink = await startSmtpSink({ rejectRcpt: { code: 550, message: 'No such user' } });
  t.after(() => sink.close());
  const sender = createSmtpSender(smtpConfig(sink.port), captureLogger());
  t.after(() => sender.close());
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /550 No such user/);
  assert.equal(err.data?.permanent, true);
});

test('starttls: required upgrade works with rejectUnauthorized false and fails on a self-signed certificate otherwise', async (t) => {
  const sink = await startSmtpSink({ tls: 'starttls' });
  t.after(() => sink.close());
  const lax = createSmtpSender(smtpConfig(sink.port, { secure: 'starttls', rejectUnauthorized: false }), captureLogger());
  t.after(() => lax.close());
  await lax.send(MSG);
  assert.equal(sink.messages.length, 1);

  const strict = createSmtpSender(smtpConfig(sink.port, { secure: 'starttls' }), captureLogger());
  t.after(() => strict.close());
  const err = await rejection(strict.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /ETLS|certificate/i);

  // 'starttls' against a server that does not offer it must not fall back to plain text.
  const plain = await startSmtpSink();
  t.after(() => plain.close());
  const required = createSmtpSender(smtpConfig(plain.port, { secure: 'starttls', rejectUnauthorized: false }), captureLogger());
  t.after(() => required.close());
  const noTls = await rejection(required.send(MSG));
  assert.equal(noTls.code, 'DELIVERY_FAILED');
  assert.equal(plain.messages.length, 0);
});

test('tls: implicit TLS delivers with rejectUnauthorized false', async (t) => {
  const sink = await startSmtpSink({ tls: 'implicit' });
  t.after(() => sink.close());
  const sender = createSmtpSender(smtpConfig(sink.port, { secure: 'tls', rejectUnauthorized: false }), captureLogger());
  t.after(() => sender.close());
  await sender.send(MSG);
  assert.match(sink.messages[0]?.text ?? '', /918273/);
  const strict = createSmtpSender(smtpConfig(sink.port, { secure: 'tls' }), captureLogger());
  t.after(() => strict.close());
  const check = await strict.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /certificate/i);
});

test('a closed sender refuses to send', async (t) => {
  const sink = await startSmtpSink();
  t.after(() => sink.close());
  const sender = createSmtpSender(smtpConfig(sink.port, { pool: true }), captureLogger());
  await sender.send(MSG);
  await sender.close();
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.deepEqual(await sender.check(), { ok: false, error: 'SMTP sender is closed' });
});

test('checks ask the server now; concurrent ones share one connection, each bounded by timeoutMs', async (t) => {
  let connections = 0;
  const silent = createServer((socket) => {
    connections += 1;
    socket.resume();
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const { port } = silent.address() as AddressInfo;
  const sender = createSmtpSender(smtpConfig(port, { timeoutMs: 300 }), captureLogger());
  t.after(() => sender.close());

  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 10 }, () => sender.check()));
  const took = Date.now() - started;
  for (const r of results) {
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, new RegExp(`^SMTP check of 127\\.0\\.0\\.1:${port} (timed out after 300 ms|failed: ETIMEDOUT)`));
  }
  assert.equal(connections, 1, 'ten checks at once opened one connection');
  assert.ok(took < 2000, `took ${took} ms`);

  // Once that connection has ended (nodemailer's greeting timeout), a later check is a new one:
  // it does not reuse the last answer.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await sender.check();
  assert.equal(connections, 2);
});
