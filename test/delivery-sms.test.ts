import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemfaError } from '../src/protocol/errors.js';
import { createSmppSender } from '../src/delivery/sms.js';
import { DEFAULT_SMS_TEMPLATE, type DeliveryLogger, type Sender, type SmppConfig } from '../src/delivery/types.js';
import { startSmppSink, type SmppSink } from './helpers/smpp-sink.js';
import { waitUntil } from './helpers/smtp-sink.js';

type LogLine = { level: string; event: string; fields: Record<string, unknown> };

function captureLogger(): DeliveryLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (event, fields) => lines.push({ level: 'info', event, fields }),
    warn: (event, fields) => lines.push({ level: 'warn', event, fields }),
    error: (event, fields) => lines.push({ level: 'error', event, fields }),
  };
}

function smppConfig(port: number, overrides: Partial<SmppConfig> = {}): SmppConfig {
  return {
    host: '127.0.0.1',
    port,
    tls: false,
    rejectUnauthorized: true,
    systemId: 'memfa',
    password: 'secret9',
    systemType: '',
    bindMode: 'transceiver',
    sourceAddr: 'memfa',
    sourceTon: 5,
    sourceNpi: 0,
    destTon: 1,
    destNpi: 1,
    dataCoding: 0,
    enquireLinkMs: 5000,
    connectTimeoutMs: 500,
    submitTimeoutMs: 300,
    reconnect: { initialMs: 50, maxMs: 200 },
    template: DEFAULT_SMS_TEMPLATE,
    ...overrides,
  };
}

const CODE = '5550123';
const MSG = {
  kind: 'code' as const,
  to: '+447700900789',
  code: CODE,
  mailbox: 'john@example.org',
  expiresAt: Date.UTC(2030, 0, 1, 8, 5),
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

async function sinkAndSender(
  t: { after(fn: () => Promise<void> | void): void },
  overrides: Partial<SmppConfig> = {},
  sinkOptions: Parameters<typeof startSmppSink>[0] = {},
): Promise<{ sink: SmppSink; sender: Sender; logger: ReturnType<typeof captureLogger> }> {
  const sink = await startSmppSink(sinkOptions);
  const logger = captureLogger();
  const sender = createSmppSender(smppConfig(sink.port, overrides), logger);
  t.after(async () => {
    await sender.close();
    await sink.stop();
  });
  return { sink, sender, logger };
}

test('submits the code as one GSM message with the configured addressing', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t);
  assert.deepEqual(await sender.check(), { ok: true });
  const result = await sender.send(MSG);
  assert.equal(result.messageId, 'sink-1');
  assert.equal(sink.submitted.length, 1);
  const sms = sink.submitted[0]!;
  assert.equal(sms.text, 'memfa code 5550123 for john@example.org. Valid until 08:05 UTC. Never share it.');
  assert.equal(sms.destinationAddr, '447700900789');
  assert.deepEqual([sms.destTon, sms.destNpi, sms.sourceTon, sms.sourceNpi], [1, 1, 5, 0]);
  assert.equal(sms.sourceAddr, 'memfa');
  assert.equal(sms.dataCoding, 0);
  assert.equal(sms.field, 'short_message');
  assert.deepEqual(sink.binds, [{ command: 'bind_transceiver', systemId: 'memfa', interfaceVersion: 0x34 }]);

  const logged = JSON.stringify(logger.lines);
  assert.ok(!logged.includes(CODE), 'the code must not be logged');
  assert.ok(!logged.includes('secret9'), 'the password must not be logged');
  assert.match(logged, /\+44\*\*\*\*\*\*\*789/);
});

test('transmitter bind, UCS-2 fallback and long texts in message_payload', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t, { bindMode: 'transmitter', template: '{code} für {mailbox}' });
  await sender.send({ ...MSG, mailbox: 'иван@example.org' });
  await sender.send({ ...MSG, mailbox: `${'ж'.repeat(140)}@example.org` });
  assert.equal(sink.binds[0]?.command, 'bind_transmitter');
  assert.equal(sink.submitted[0]?.dataCoding, 8);
  assert.equal(sink.submitted[0]?.text, '5550123 für иван@example.org');
  assert.equal(sink.submitted[1]?.field, 'message_payload');
  assert.match(sink.submitted[1]?.text ?? '', /^5550123 für ж+@example\.org$/);
  assert.ok(logger.lines.some((l) => l.event === 'smpp.data_coding_switched'));
});

test('a submit_sm error status fails with DELIVERY_FAILED naming the ESME status', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  sink.submitStatus = 0x58;
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.equal(err.message, 'SMPP submit_sm refused: ESME_RTHROTTLED (0x58)');
  assert.deepEqual(err.data, { provider: 'sms', transport: 'smpp', smppStatus: 0x58, smppError: 'ESME_RTHROTTLED' });

  sink.submitStatus = 0x45;
  assert.match((await rejection(sender.send(MSG))).message, /ESME_RSUBMITFAIL \(0x45\)/);
  sink.submitStatus = 0;
  await sender.send(MSG);
});

test('a submit_sm without an answer fails after submitTimeoutMs', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  await sender.check();
  sink.answerSubmits = false;
  const started = Date.now();
  const err = await rejection(sender.send(MSG));
  assert.equal(err.code, 'DELIVERY_FAILED');
  assert.match(err.message, /did not answer submit_sm within 300 ms/);
  assert.ok(Date.now() - started < 600);
});

test('a refused bind is reported by check() and by sends', async (t) => {
  const { sink, sender } = await sinkAndSender(t, {}, { password: 'other' });
  const check = await sender.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /^SMPP gateway not bound: bind refused: ESME_RINVPASWD \(0x0E\)$/);
  const err = await rejection(sender.send(MSG));
  assert.match(err.message, /SMPP gateway not bound: bind refused: ESME_RINVPASWD/);
  assert.ok(!err.message.includes('secret9'));
  assert.equal(sink.submitted.length, 0);
});

test('the gateway restarting on the same port: the sender re-binds and the next send works', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t, { connectTimeoutMs: 5000 });
  await sender.send(MSG);
  await sink.stop();
  await waitUntil(() => logger.lines.some((l) => l.event === 'smpp.unbound'), 1000, 'the sender to notice');

  // While the gateway is known down a send fails at once, not after connectTimeoutMs.
  const started = Date.now();
  const down = await rejection(sender.send(MSG));
  const waited = Date.now() - started;
  assert.equal(down.code, 'DELIVERY_FAILED');
  assert.match(down.message, /^SMPP gateway not bound: /);
  assert.match(down.message, /ECONNREFUSED|closed by the gateway/);
  assert.ok(waited < 1000, `waited ${waited} ms`);
  const check = await sender.check();
  assert.equal(check.ok, false);
  // The send no longer waits, so let the backoff run through a few failures before the restart.
  const scheduled = (): number => logger.lines.filter((l) => l.event === 'smpp.reconnect_scheduled').length;
  await waitUntil(() => scheduled() >= 4, 2000, 'four reconnects scheduled');

  await sink.start();
  await waitUntil(() => sink.binds.length === 2, 2000, 're-bind');
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 2);
  assert.deepEqual(await sender.check(), { ok: true });

  const reconnects = logger.lines.filter((l) => l.event === 'smpp.reconnect_scheduled').map((l) => l.fields.inMs);
  assert.deepEqual(reconnects.slice(0, 4), [50, 100, 200, 200], 'backoff doubles up to maxMs');
});

test('a session the gateway drops after serving a while is bound again at once; sends wait for it', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t, { connectTimeoutMs: 5000, reconnect: { initialMs: 50, maxMs: 200 } });
  await sender.send(MSG);
  await new Promise((r) => setTimeout(r, 100)); // bound for longer than reconnect.initialMs
  for (const session of sink.sessions) session.destroy(); // e.g. the gateway's idle time-out
  await waitUntil(() => logger.lines.some((l) => l.event === 'smpp.unbound'), 1000, 'the sender to notice');
  // Not known down: this send waits for the re-bind instead of failing over to the fallback.
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 2);
  assert.equal(sink.binds.length, 2);
  assert.equal(logger.lines.filter((l) => l.event === 'smpp.reconnect_scheduled').length, 0, 'no backoff for a drop after service');
});

test('a send waiting for the first bind goes through once bound', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  // No check() first: the bind is still in flight when send() is called.
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 1);
});

test('enquire_link keeps the session alive, and one left unanswered drops it', async (t) => {
  const { sink, sender } = await sinkAndSender(t, { enquireLinkMs: 50 });
  await sender.check();
  await waitUntil(() => sink.enquireLinks >= 3, 1000, 'three enquire_link');
  assert.equal(sink.binds.length, 1);

  // A gateway that stops answering (a half-open connection) is noticed and re-bound.
  const silent = createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => silent.close(() => resolve())));
  const logger = captureLogger();
  const stuck = createSmppSender(smppConfig((silent.address() as AddressInfo).port, { connectTimeoutMs: 150 }), logger);
  t.after(() => stuck.close());
  const check = await stuck.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /did not complete within 150 ms/);
});

test('the sender answers the gateway\'s enquire_link and deliver_sm', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  await sender.check();
  const [session] = sink.sessions;
  assert.ok(session !== undefined);
  const answer = await new Promise<number>((resolve) => {
    session.enquire_link({}, (pdu) => resolve(pdu.command_status));
  });
  assert.equal(answer, 0);
  const receipt = await new Promise<string>((resolve) => {
    session.deliver_sm({ source_addr: '447700900789', destination_addr: 'memfa', short_message: 'id:1 stat:DELIVRD' }, (pdu) =>
      resolve(pdu.command),
    );
  });
  assert.equal(receipt, 'deliver_sm_resp');
});

test('close() unbinds, stops reconnecting and fails later sends', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  await sender.check();
  await sender.close();
  assert.equal(sink.unbinds, 1);
  await waitUntil(() => sink.sessionCount === 0, 1000, 'the session to end');
  const err = await rejection(sender.send(MSG));
  assert.match(err.message, /closed/);

  // Closing while the gateway is down must also stop the retry timer (the process would hang).
  const port = sink.port;
  await sink.stop();
  const orphan = createSmppSender(smppConfig(port), captureLogger());
  await new Promise((resolve) => setTimeout(resolve, 120));
  await orphan.close();
  const binds = sink.binds.length;
  await sink.start();
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(sink.binds.length, binds, 'no bind after close()');
});

test('a password file is read at bind time', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-smpp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const passwordFile = join(dir, 'smpp.pass');
  await writeFile(passwordFile, 'fromfile\n', { mode: 0o600 });
  const { sink, sender } = await sinkAndSender(t, { password: undefined, passwordFile }, { password: 'fromfile' });
  assert.deepEqual(await sender.check(), { ok: true });
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 1);
});

test('tls: binds with rejectUnauthorized false, refuses a self-signed certificate otherwise', async (t) => {
  const { sink, sender } = await sinkAndSender(t, { tls: true, rejectUnauthorized: false }, { tls: true });
  assert.deepEqual(await sender.check(), { ok: true });
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 1);

  const strict = createSmppSender(smppConfig(sink.port, { tls: true }), captureLogger());
  t.after(() => strict.close());
  const check = await strict.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /certificate/i);
});

test('a malformed phone number is refused before anything is sent', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  const err = await rejection(sender.send({ ...MSG, to: '07700900789' }));
  assert.equal(err.code, 'INVALID_PARAMS');
  assert.ok(!err.message.includes('07700900789'));
  assert.equal(sink.submitted.length, 0);
});

/** A TCP server that accepts connections and never answers (a hung gateway), counting them. */
async function silentGateway(t: { after(fn: () => Promise<void> | void): void }): Promise<{ port: number; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count += 1;
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

const DOWN_SINCE = /; down since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z, next attempt in (\d+) s$/;

test('while the gateway is known down, sends fail at once and start no attempt of their own', async (t) => {
  const long = { initialMs: 60_000, maxMs: 60_000 };
  const { sink, sender, logger } = await sinkAndSender(t, { connectTimeoutMs: 5000, submitTimeoutMs: 5000, reconnect: long });
  await sender.send(MSG);
  await sink.stop();
  await waitUntil(() => logger.lines.some((l) => l.event === 'smpp.unbound'), 1000, 'the sender to notice');

  const started = Date.now();
  for (let i = 0; i < 5; i++) {
    const err = await rejection(sender.send(MSG));
    assert.equal(err.code, 'DELIVERY_FAILED');
    assert.match(err.message, /^SMPP gateway not bound: connection closed by the gateway; down since /);
    const inS = Number(DOWN_SINCE.exec(err.message)?.[1]);
    assert.ok(inS > 50 && inS <= 60, err.message);
    assert.equal(err.data?.smppState, 'down');
  }
  const took = Date.now() - started;
  assert.ok(took < 2000, `five sends took ${took} ms (each would wait 5000 ms for a bind)`);

  // The gateway is back, but nothing asked for a check: the sends did not reconnect by themselves.
  await sink.start();
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(sink.binds.length, 1, 'a send while down must not start an attempt');
});

test('a check while down binds now when the gateway is back; a failed one keeps the backoff schedule', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t, { connectTimeoutMs: 5000, reconnect: { initialMs: 20_000, maxMs: 60_000 } });
  await sender.send(MSG);
  await sink.stop();
  await waitUntil(() => logger.lines.some((l) => l.event === 'smpp.unbound'), 1000, 'the sender to notice');
  const scheduled = (): unknown[] => logger.lines.filter((l) => l.event === 'smpp.reconnect_scheduled').map((l) => l.fields.inMs);
  assert.deepEqual(scheduled(), [20_000]);

  // Each check tries now and reports the fresh failure; none moves or doubles the automatic retry.
  for (let i = 0; i < 3; i++) {
    const check = await sender.check();
    assert.equal(check.ok, false);
    assert.match(check.ok ? '' : check.error, /^SMPP gateway not bound: .*ECONNREFUSED/);
  }
  assert.deepEqual(scheduled(), [20_000], 'failed checks leave the schedule alone');
  const err = await rejection(sender.send(MSG));
  const inS = Number(DOWN_SINCE.exec(err.message)?.[1]);
  assert.ok(inS > 15 && inS <= 20, err.message);

  await sink.start();
  assert.deepEqual(await sender.check(), { ok: true });
  assert.equal(sink.binds.length, 2, 'the check bound at once');
  await sender.send(MSG);
  assert.equal(sink.submitted.length, 2);

  // The check's bind reset the backoff: the next drop waits initialMs again, not 40 s.
  await sink.stop();
  await waitUntil(() => scheduled().length === 2, 1000, 'the second drop');
  assert.deepEqual(scheduled(), [20_000, 20_000]);
});

test('concurrent checks share one attempt; sends while it runs wait for it, then fail with it', async (t) => {
  const gateway = await silentGateway(t);
  const sender = createSmppSender(smppConfig(gateway.port, { connectTimeoutMs: 300, reconnect: { initialMs: 60_000, maxMs: 60_000 } }), captureLogger());
  t.after(() => sender.close());
  const first = await sender.check();
  assert.match(first.ok ? '' : first.error, /did not complete within 300 ms/);
  assert.equal(gateway.connections(), 1);

  const checks = Array.from({ length: 20 }, () => sender.check());
  const send = rejection(sender.send(MSG));
  const results = await Promise.all(checks);
  assert.ok(results.every((r) => !r.ok && /did not complete within 300 ms/.test(r.error)), JSON.stringify(results[0]));
  assert.equal(gateway.connections(), 2, 'twenty checks at once made one attempt');
  assert.match((await send).message, /did not complete within 300 ms/);
  assert.equal(gateway.connections(), 2);
});

test('a check on a bound session asks the gateway, and drops a session that does not answer', async (t) => {
  const { sink, sender, logger } = await sinkAndSender(t, { connectTimeoutMs: 300 });
  assert.deepEqual(await sender.check(), { ok: true });
  const before = sink.enquireLinks;
  assert.deepEqual(await sender.check(), { ok: true });
  assert.equal(sink.enquireLinks, before + 1, 'one enquire_link per check');

  sink.answerEnquireLinks = false;
  const hung = await sender.check();
  assert.deepEqual(hung, { ok: false, error: 'SMPP gateway not bound: enquire_link not answered within 300 ms' });
  await waitUntil(() => logger.lines.some((l) => l.event === 'smpp.unbound'), 1000, 'the hung session to be dropped');
  sink.answerEnquireLinks = true;
  await waitUntil(() => sink.binds.length === 2, 2000, 're-bind');
  await sender.send(MSG);
});

test('phone numbers follow the one E.164 rule of core/validate.ts', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  // Seven digits passed the sender's own, looser pattern; the shared rule wants eight or more.
  const short = await rejection(sender.send({ ...MSG, to: '+4477009' }));
  assert.equal(short.code, 'INVALID_PARAMS');
  assert.equal(short.data?.param, 'to');
  assert.ok(!short.message.includes('4477009'));
  // What the rule accepts it normalises; the gateway gets its digits.
  await sender.send({ ...MSG, to: '+44 7700 900-789' });
  assert.equal(sink.submitted.at(-1)?.destinationAddr, '447700900789');
});

test('a number stored before the numbering plans were checked is sent as it was stored', async (t) => {
  const { sink, sender } = await sinkAndSender(t);
  // The old rule kept a trunk 0 after the country code; such numbers are in the store.
  await sender.send({ ...MSG, to: '+4402079460958' });
  assert.equal(sink.submitted.at(-1)?.destinationAddr, '4402079460958');
});
