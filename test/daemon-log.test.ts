// The daemon's log levels: "debug" adds one line per request (method, socket, duration, outcome)
// and never its parameters; "info" has no such lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawExchange, rpcLine, startDaemon } from './helpers/daemon.js';
import { logEvents, waitFor } from './helpers/protocol-tools.js';

test('log.level debug logs each request with its method, socket and duration, never its parameters', async (t) => {
  const d = await startDaemon({ config: { log: { level: 'debug' } } });
  t.after(() => d.cleanup());
  assert.equal((await d.cli(['status'])).code, 0);
  await d.cli(['mailbox', 'set', 'private.person@debug.example', '--challenge', 'always']);
  const verify = await d.cli(['verify', '--user', 'private.person@debug.example', '--ip', '192.0.2.44', '--code', '424242']);
  assert.equal(verify.code, 1, verify.stderr);
  await rawExchange(d.hookSocket, [rpcLine('no.such.method-private', { user: 'x' })], { untilLines: 1 });

  const requests = () => logEvents(d.log()).filter((e) => e['event'] === 'request');
  await waitFor(() => requests().length >= 4, 3000, 'four request lines');
  const [status, set, check, unknown] = requests();
  assert.deepEqual([status!['method'], status!['socket'], status!['result'], status!['level']], ['status', 'admin', 'ok', 'debug']);
  assert.deepEqual([set!['method'], set!['socket']], ['mailbox.set', 'admin']);
  // A denied login is an answer, not a failed request.
  assert.deepEqual([check!['method'], check!['socket'], check!['result']], ['verify', 'hook', 'ok']);
  assert.deepEqual([unknown!['method'], unknown!['result'], unknown!['errorCode']], ['(unknown)', 'error', 'METHOD_NOT_FOUND']);
  for (const r of requests()) assert.ok(typeof r['ms'] === 'number' && r['ms'] >= 0, `a duration: ${JSON.stringify(r)}`);
  // The refused login has its own line at notice (verify-denied, for fail2ban): with the mailbox
  // and client address, never the code. Every other line carries none of the parameters.
  const denials = logEvents(d.log()).filter((e) => e['event'] === 'verify-denied');
  assert.deepEqual(denials.map((e) => [e['ip'], e['mailbox'], e['reason']]), [['192.0.2.44', 'private.person@debug.example', 'no-open-code']]);
  assert.ok(!d.log().includes('424242'), 'the log does not contain the code');
  const others = d.log().split('\n').filter((l) => !l.includes('"event":"verify-denied"')).join('\n');
  for (const secret of ['private.person', '192.0.2.44', 'no.such.method-private']) assert.ok(!others.includes(secret), `no other line contains ${secret}`);
});

test('at log.level info there are no request lines', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  assert.equal((await d.cli(['status'])).code, 0);
  assert.equal((await d.cli(['--json', 'status'])).code, 0);
  assert.equal(logEvents(d.log()).filter((e) => e['event'] === 'request' || e['level'] === 'debug').length, 0);
});
