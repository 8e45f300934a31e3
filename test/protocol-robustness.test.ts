// Protocol robustness against the real daemon: hostile and clumsy clients on the admin and hook
// sockets. After each case the daemon must still answer `memfa status` through the real CLI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rawExchange, rpcLine, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { LineClient, assertStatusOk, rpc, type Json } from './helpers/protocol-tools.js';

const MAX_FRAME = 4096;
let d: TestDaemon;

before(async () => {
  d = await startDaemon({ config: { limits: { maxFrameBytes: MAX_FRAME, idleTimeoutMs: 1000, requestTimeoutMs: 5000, maxConnections: 512 } } });
});
after(async () => {
  await d?.cleanup();
});

function errorOf(line: Json | undefined): { code: number; message: string; data?: Json } {
  assert.ok(line, 'an answer arrived');
  assert.equal(line['jsonrpc'], '2.0');
  assert.ok(line['error'], `expected an error, got ${JSON.stringify(line)}`);
  return line['error'] as { code: number; message: string; data?: Json };
}

test('garbage bytes (binary, NULs, invalid UTF-8) get parse errors, never a crash', async () => {
  const garbage = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x80, 0x01, 0x7f, 0x0a, 0xde, 0xad, 0xbe, 0xef, 0x0a]);
  const r = await rawExchange(d.adminSocket, [garbage, rpcLine('ping', {}, 'after')], { untilLines: 3 });
  assert.equal(r.lines.length, 3, JSON.stringify(r.lines));
  assert.equal(errorOf(r.lines[0]).code, -32700);
  assert.equal(errorOf(r.lines[0]).data?.['code'], 'PARSE_ERROR');
  assert.equal(r.lines[0]!['id'], null);
  assert.equal(errorOf(r.lines[1]).code, -32700);
  // The connection stays usable: a good request after garbage is answered.
  assert.deepEqual(r.lines[2], { jsonrpc: '2.0', id: 'after', result: r.lines[2]!['result'] });
  assert.ok(r.lines[2]!['result'], 'ping answered after the garbage');

  // Invalid UTF-8 inside an otherwise valid request: decoded with replacement characters and
  // refused by parameter validation, not by a crash.
  const bad = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":9,"method":"mailbox.show","params":{"address":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('@example.com"}}\n')]);
  const r2 = await rawExchange(d.adminSocket, [bad], { untilLines: 1 });
  assert.equal(r2.lines[0]!['id'], 9);
  assert.equal(errorOf(r2.lines[0]).code, -32602);
  await assertStatusOk(d);
});

test('malformed JSON → -32700; valid JSON that is not a request → -32600', async () => {
  const r = await rawExchange(d.adminSocket, ['{"jsonrpc":"2.0","id":1,"method":"ping"\n', '{"a":\n', 'nul\n'], { untilLines: 3 });
  for (const line of r.lines) {
    assert.equal(errorOf(line).code, -32700);
    assert.equal(errorOf(line).data?.['code'], 'PARSE_ERROR');
  }
  const notRequests = ['[]', '42', '"ping"', 'null', '{"id":2,"method":"ping"}', '{"jsonrpc":"2.0","id":3}', '{"jsonrpc":"2.0","id":4,"method":["ping"]}', '{"jsonrpc":"2.0","id":true,"method":"ping"}', '[{"jsonrpc":"2.0","id":5,"method":"ping"}]'];
  const r2 = await rawExchange(d.adminSocket, notRequests.map((l) => l + '\n'), { untilLines: notRequests.length });
  assert.equal(r2.lines.length, notRequests.length);
  for (const [i, line] of r2.lines.entries()) {
    assert.equal(errorOf(line).code, -32600, notRequests[i]);
    assert.equal(errorOf(line).data?.['code'], 'INVALID_REQUEST');
  }
  // The id is echoed when it could be read.
  assert.deepEqual(
    r2.lines.map((l) => l['id']),
    [null, null, null, null, 2, 3, 4, null, null],
  );
  await assertStatusOk(d);
});

test('unknown methods → -32601, including names of Object.prototype members', async () => {
  const names = ['bogus', 'toString', '__proto__', 'constructor', 'hasOwnProperty', 'mailbox', ''];
  const r = await rawExchange(d.adminSocket, names.map((m, i) => rpcLine(m, {}, i)), { untilLines: names.length });
  assert.equal(r.lines.length, names.length);
  for (const line of r.lines) {
    assert.equal(errorOf(line).code, -32601, JSON.stringify(line));
    assert.equal(errorOf(line).data?.['code'], 'METHOD_NOT_FOUND');
  }
  assert.deepEqual(r.lines.map((l) => l['id']).sort(), names.map((_, i) => i).sort());
  await assertStatusOk(d);
});

test('params of the wrong shape → -32602 with data.code INVALID_PARAMS and the parameter named', async () => {
  const deep = '{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"a":' + '['.repeat(1500) + ']'.repeat(1500) + '}}\n';
  // [id, line, the parameter the error must name (null: not checked)]
  const cases: [string, string, string | null][] = [
    ['unknown', rpcLine('ping', { colour: 'red' }, 'unknown'), 'colour'],
    ['type', rpcLine('mailbox.show', { address: 42 }, 'type'), 'address'],
    ['missing', rpcLine('mailbox.show', {}, 'missing'), 'address'],
    ['int', rpcLine('mailbox.list', { limit: 'ten' }, 'int'), 'limit'],
    ['proto', '{"jsonrpc":"2.0","id":"proto","method":"mailbox.show","params":{"address":"a@example.com","__proto__":{"admin":true}}}\n', null],
    ['array', rpcLine('ping', [1, 2], 'array'), null],
    ['string', rpcLine('ping', 'x', 'string'), null],
    ['deep', deep, null],
  ];
  const r = await rawExchange(
    d.adminSocket,
    cases.map(([, l]) => l),
    { untilLines: cases.length },
  );
  assert.equal(r.lines.length, cases.length, JSON.stringify(r.lines));
  const byId = new Map(r.lines.map((l) => [l['id'], l]));
  for (const [id, , param] of cases) {
    const e = errorOf(byId.get(id));
    assert.equal(e.code, -32602, `${id}: ${JSON.stringify(e)}`);
    assert.equal(e.data?.['code'], 'INVALID_PARAMS', id);
    if (param !== null) assert.equal(e.data?.['param'], param, `${id} names its parameter`);
  }
  await assertStatusOk(d);
});

test('a frame over the limit gets FRAME_TOO_LARGE and the connection is closed; nothing after it runs', async () => {
  const c = new LineClient(d.adminSocket);
  await c.connected;
  await c.write('x'.repeat(MAX_FRAME + 100));
  assert.equal(await c.waitClosed(2000), true, 'the daemon closes the connection');
  assert.equal(c.lines.length, 1, JSON.stringify(c.lines));
  const e = errorOf(c.lines[0]);
  assert.equal(e.code, -32001);
  assert.equal(e.data?.['code'], 'FRAME_TOO_LARGE');

  // A complete oversize request followed by a request in a later write: the later request must not
  // be executed on a connection the daemon has refused.
  const c2 = new LineClient(d.adminSocket, { allowHalfOpen: true });
  await c2.connected;
  const big = rpcLine('mailbox.set', { address: 'big@example.com', settings: { pad: 'p'.repeat(MAX_FRAME) } }, 1);
  await c2.write(big);
  await new Promise((r) => setTimeout(r, 50));
  await c2.write(rpcLine('mailbox.set', { address: 'sneaky@example.com' }, 2)).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 100));
  c2.socket.end();
  await c2.waitClosed(2000);
  assert.equal(errorOf(c2.lines[0]).data?.['code'], 'FRAME_TOO_LARGE');
  assert.equal(c2.lines.length, 1, `only the refusal is sent: ${JSON.stringify(c2.lines)}`);
  const list = await d.json<{ total: number; mailboxes: { address: string }[] }>(['mailbox', 'list']);
  assert.deepEqual(
    list.mailboxes.map((m) => m.address).filter((a) => a === 'sneaky@example.com' || a === 'big@example.com'),
    [],
    'neither request was executed',
  );
  await assertStatusOk(d);
});

test('a request just under the limit is answered', async () => {
  const base = rpcLine('ping', {}, 'fits');
  // Pad with insignificant whitespace inside the JSON so that the line is exactly MAX_FRAME bytes.
  const line = base.slice(0, 1) + ' '.repeat(MAX_FRAME - base.length + 1) + base.slice(1);
  assert.equal(Buffer.byteLength(line) - 1, MAX_FRAME);
  const r = await rawExchange(d.adminSocket, [line], { untilLines: 1 });
  assert.equal(r.lines[0]!['id'], 'fits');
  assert.ok(r.lines[0]!['result'], JSON.stringify(r.lines[0]));
  await assertStatusOk(d);
});

test('a request split into 1-byte writes is answered', async () => {
  const line = Buffer.from(rpcLine('ping', {}, 'split'));
  const chunks = [...line].map((b) => Buffer.from([b]));
  const c = new LineClient(d.adminSocket);
  await c.connected;
  c.socket.setNoDelay?.(true);
  for (const ch of chunks) {
    await c.write(ch);
    await new Promise((r) => setImmediate(r));
  }
  const [answer] = await c.waitLines(1);
  c.destroy();
  assert.equal(answer!['id'], 'split');
  assert.ok(answer!['result']);
  // Also with real gaps between the bytes (shorter than the idle time-out).
  const slow = await rawExchange(d.hookSocket, [...Buffer.from(rpcLine('ping', {}, 'slow'))].map((b) => Buffer.from([b])), { untilLines: 1, gapMs: 2, timeoutMs: 5000 });
  assert.equal(slow.lines[0]!['id'], 'slow');
  assert.ok(slow.lines[0]!['result']);
  await assertStatusOk(d);
});

test('several requests in one write are all answered', async () => {
  const n = 40; // more than the per-connection in-flight bound (32)
  const blob = Array.from({ length: n }, (_, i) => rpcLine(i % 2 === 0 ? 'ping' : 'status', {}, i)).join('');
  const r = await rawExchange(d.adminSocket, [blob], { untilLines: n, timeoutMs: 5000 });
  assert.equal(r.lines.length, n);
  assert.deepEqual(
    r.lines.map((l) => l['id'] as number).sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i),
  );
  for (const l of r.lines) assert.ok(l['result'], JSON.stringify(l));
  await assertStatusOk(d);
});

test('a notification (no id) gets no answer but the request after it does', async () => {
  const r = await rawExchange(d.adminSocket, ['{"jsonrpc":"2.0","method":"ping"}\n' + rpcLine('ping', {}, 'second')], { untilLines: 1, timeoutMs: 1000 });
  assert.equal(r.lines.length, 1);
  assert.equal(r.lines[0]!['id'], 'second');
  // Wait a little: nothing else may arrive for the notification.
  const r2 = await rawExchange(d.adminSocket, ['{"jsonrpc":"2.0","method":"ping"}\n'], { timeoutMs: 200 });
  assert.deepEqual(r2.lines, []);
  await assertStatusOk(d);
});

test('200 concurrent connections each doing ping are all answered', async () => {
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => rpc(i % 2 === 0 ? d.adminSocket : d.hookSocket, 'ping', {}, i, 8000)));
  assert.equal(results.length, 200);
  results.forEach((r, i) => {
    assert.equal(r['id'], i);
    assert.ok(r['result'], JSON.stringify(r));
  });
  await assertStatusOk(d);
});

test('clients that disconnect mid-request do not disturb the daemon', async () => {
  // Half a line, then gone.
  for (let i = 0; i < 10; i++) {
    const c = new LineClient(d.adminSocket);
    await c.connected;
    await c.write(rpcLine('mailbox.set', { address: `half${i}@example.com` }, i).slice(0, 20));
    c.destroy();
  }
  // A full request, then gone before the answer (the write may or may not be applied).
  for (let i = 0; i < 10; i++) {
    const c = new LineClient(d.adminSocket);
    await c.connected;
    c.socket.write(rpcLine('mailbox.set', { address: `gone${i}@example.com`, settings: { challenge: 'always' } }, i));
    c.destroy();
  }
  await new Promise((r) => setTimeout(r, 200));
  await assertStatusOk(d);
  const list = await d.json<{ mailboxes: { address: string }[] }>(['mailbox', 'list']);
  assert.equal(list.mailboxes.filter((m) => m.address.startsWith('half')).length, 0, 'half requests never ran');
  // And a mailbox written by an abandoned request is whole if it is there.
  for (const m of list.mailboxes.filter((x) => x.address.startsWith('gone'))) {
    const shown = await rpc(d.adminSocket, 'mailbox.show', { address: m.address });
    assert.equal(shown['result'].effective.challenge.value, 'always', JSON.stringify(shown));
  }
});

test('admin methods on the hook socket → METHOD_NOT_ALLOWED (-32002); ping and verify are allowed there', async () => {
  const admin = ['status', 'mailbox.set', 'mailbox.show', 'mailbox.list', 'global.set', 'enroll.start', 'reset', 'explain', 'domain.remove'];
  const params: Record<string, Json> = { 'mailbox.set': { address: 'hook@example.com', settings: { challenge: 'always' } } };
  const r = await rawExchange(d.hookSocket, admin.map((m, i) => rpcLine(m, params[m] ?? {}, i)), { untilLines: admin.length });
  assert.equal(r.lines.length, admin.length);
  for (const line of r.lines) {
    const e = errorOf(line);
    assert.equal(e.code, -32002, JSON.stringify(line));
    assert.equal(e.data?.['code'], 'METHOD_NOT_ALLOWED');
    assert.match(e.message, /hook socket/);
  }
  const ping = await rpc(d.hookSocket, 'ping');
  assert.ok(ping['result']);
  const verify = await rpc(d.hookSocket, 'verify', { user: 'someone@example.com', ip: '192.0.2.1' });
  assert.ok(verify['result'], `verify is answered on the hook socket: ${JSON.stringify(verify)}`);
  // The refused mailbox.set changed nothing.
  const shown = await d.json<{ stored: boolean }>(['mailbox', 'show', 'hook@example.com']);
  assert.equal(shown.stored, false);

  const cli = await d.cli(['--socket', d.hookSocket, 'status']);
  assert.equal(cli.code, 77, cli.stderr);
  assert.match(cli.stderr, /not available on the hook socket/);
  assert.match(cli.stderr, /hint: .*admin socket/);
  assert.equal(cli.stdout, '');
  await assertStatusOk(d);
});

test('an idle connection is closed after limits.idleTimeoutMs', async () => {
  const start = Date.now();
  const c = new LineClient(d.hookSocket);
  await c.connected;
  assert.equal(await c.waitClosed(3000), true, 'idle connection closed');
  const took = Date.now() - start;
  assert.ok(took >= 900 && took < 2900, `closed after ${took} ms (idle time-out 1000 ms)`);

  // After an answered request, idleness counts again.
  const c2 = new LineClient(d.adminSocket);
  await c2.connected;
  await c2.write(rpcLine('ping', {}, 1));
  await c2.waitLines(1);
  assert.equal(await c2.waitClosed(3000), true);

  // A half-received message that never completes is dropped too.
  const c3 = new LineClient(d.adminSocket);
  await c3.connected;
  await c3.write('{"jsonrpc":"2.0","id":1,');
  assert.equal(await c3.waitClosed(3000), true);
  assert.deepEqual(c3.lines, []);
  await assertStatusOk(d);
});
