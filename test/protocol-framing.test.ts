// Pure tests of the wire layer: LineDecoder framing, classification of an incoming line, and the
// parameter schemas' refusal of hostile shapes. No daemon involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineDecoder, encodeFrame, DEFAULT_MAX_FRAME_BYTES } from '../src/protocol/framing.js';
import { classify, errorObject, errorFromObject } from '../src/protocol/jsonrpc.js';
import { ERRORS, MemfaError } from '../src/protocol/errors.js';
import { METHODS } from '../src/protocol/methods.js';

const lines = (events: ReturnType<LineDecoder['push']>) => events.filter((e) => e.kind === 'line').map((e) => (e as { line: string }).line);

test('LineDecoder: one chunk with several lines yields each line, blank lines skipped, CR stripped', () => {
  const d = new LineDecoder(1024);
  const ev = d.push(Buffer.from('a\nb\r\n\n  \nc\n'));
  assert.deepEqual(lines(ev), ['a', 'b', 'c']);
  assert.equal(d.hasPartial, false);
});

test('LineDecoder: a line split into 1-byte chunks is assembled once its newline arrives', () => {
  const d = new LineDecoder(1024);
  const text = '{"jsonrpc":"2.0","id":1,"method":"ping"}\n';
  const out: string[] = [];
  for (let i = 0; i < text.length; i++) {
    out.push(...lines(d.push(Buffer.from(text[i]!))));
    if (i < text.length - 1) {
      assert.equal(out.length, 0, 'no line before the newline');
      assert.equal(d.hasPartial, true);
    }
  }
  assert.deepEqual(out, [text.trimEnd()]);
  assert.equal(d.hasPartial, false);
});

test('LineDecoder: any split of a stream into chunks gives the same frames as one chunk', () => {
  // Whole lines inside a chunk take a fast path; lines across chunks are assembled: both must agree,
  // oversize lines included (maxBytes 16 here).
  const stream = ['{"id":1}', 'short', 'x'.repeat(16), 'y'.repeat(17), 'é漢字😀', '  ', 'last\r', 'z'.repeat(40), 'ok'].join('\n') + '\n';
  const bytes = Buffer.from(stream);
  const expected = new LineDecoder(16).push(bytes);
  assert.deepEqual(
    expected.map((e) => (e.kind === 'line' ? e.line : `oversize ${e.bytes}`)),
    ['{"id":1}', 'short', 'x'.repeat(16), 'oversize 17', 'é漢字😀', 'last', 'oversize 40', 'ok'],
  );
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 1000) / 1000;
  for (let run = 0; run < 300; run++) {
    const d = new LineDecoder(16);
    const got: ReturnType<LineDecoder['push']> = [];
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + Math.floor(rand() * 12);
      got.push(...d.push(bytes.subarray(at, at + size)));
      at += size;
    }
    // An oversize line's size is reported when it crosses the limit, so only its presence is compared.
    const shape = (events: typeof got) => events.map((e) => (e.kind === 'line' ? e.line : 'oversize'));
    assert.deepEqual(shape(got), shape(expected), `run ${run}`);
    assert.equal(d.hasPartial, false);
  }
});

test('LineDecoder: a multi-byte UTF-8 character split across chunks is decoded intact', () => {
  const d = new LineDecoder(1024);
  const bytes = Buffer.from('é€😀\n', 'utf8');
  const out: string[] = [];
  for (const b of bytes) out.push(...lines(d.push(Buffer.from([b]))));
  assert.deepEqual(out, ['é€😀']);
});

test('LineDecoder: exactly maxBytes is accepted, one more byte is oversize (reported once per frame)', () => {
  const d = new LineDecoder(10);
  assert.deepEqual(lines(d.push(Buffer.from('x'.repeat(10) + '\n'))), ['x'.repeat(10)]);
  const ev = d.push(Buffer.from('y'.repeat(6)));
  assert.deepEqual(ev, []);
  const ev2 = d.push(Buffer.from('y'.repeat(5)));
  assert.deepEqual(ev2, [{ kind: 'oversize', bytes: 11 }]);
  // The rest of the oversize frame is discarded without another event, and nothing is buffered.
  assert.deepEqual(d.push(Buffer.from('z'.repeat(100))), []);
  assert.equal(d.hasPartial, false);
  // After its newline, framing resumes with the next line.
  assert.deepEqual(lines(d.push(Buffer.from('zz\nok\n'))), ['ok']);
});

test('LineDecoder: an oversize line in the middle of a chunk does not swallow its neighbours', () => {
  const d = new LineDecoder(8);
  const ev = d.push(Buffer.from('one\n' + 'x'.repeat(50) + '\ntwo\n'));
  assert.deepEqual(ev, [
    { kind: 'line', line: 'one' },
    { kind: 'oversize', bytes: 50 },
    { kind: 'line', line: 'two' },
  ]);
});

test('LineDecoder: memory stays bounded while an endless line streams in', () => {
  const d = new LineDecoder(1024);
  let events = 0;
  for (let i = 0; i < 1000; i++) events += d.push(Buffer.alloc(4096, 0x41)).length;
  assert.equal(events, 1, 'one oversize event for the whole frame');
  assert.equal(d.hasPartial, false, 'nothing of the oversize frame is kept');
});

test('LineDecoder: frames taken one at a time; a reader may stop mid-chunk and go on later', () => {
  const d = new LineDecoder(16);
  d.feed(Buffer.from('one\n\ntwo\n' + 'x'.repeat(20) + '\nthr'));
  assert.deepEqual(d.next(), { kind: 'line', line: 'one' });
  // Stopped here: the rest is held as bytes, nothing decoded ahead.
  assert.equal(d.unread, Buffer.byteLength('\ntwo\n' + 'x'.repeat(20) + '\nthr'));
  assert.equal(d.hasPartial, false);
  assert.deepEqual(d.next(), { kind: 'line', line: 'two' });
  assert.deepEqual(d.next(), { kind: 'oversize', bytes: 20 });
  assert.equal(d.next(), null, 'the chunk is used up; "thr" waits for its newline');
  assert.equal(d.unread, 0);
  assert.equal(d.hasPartial, true);
  d.feed(Buffer.from('ee\nfour\n'));
  assert.deepEqual(d.next(), { kind: 'line', line: 'three' });
  assert.deepEqual(d.next(), { kind: 'line', line: 'four' });
  assert.equal(d.next(), null);
  assert.equal(d.hasPartial, false);
});

test('LineDecoder: a chunk fed before the last one is used up is queued behind it, in order', () => {
  const d = new LineDecoder(64);
  d.feed(Buffer.from('a\nb\nc'));
  assert.deepEqual(d.next(), { kind: 'line', line: 'a' });
  d.feed(Buffer.from('d\ne\n'));
  assert.deepEqual(lines(d.push(Buffer.alloc(0))), ['b', 'cd', 'e']);
});

test('LineDecoder: default limit is 64 KiB and encodeFrame emits exactly one line', () => {
  assert.equal(DEFAULT_MAX_FRAME_BYTES, 65536);
  const frame = encodeFrame({ text: 'a\nb\r\nc', n: 1 });
  assert.equal(frame.indexOf('\n'), frame.length - 1);
  const d = new LineDecoder();
  assert.deepEqual(JSON.parse(lines(d.push(Buffer.from(frame)))[0]!), { text: 'a\nb\r\nc', n: 1 });
});

test('classify: parse error, invalid request, invalid params, notification and request', () => {
  const perr = classify('{not json');
  assert.equal(perr.kind, 'invalid');
  assert.equal(perr.kind === 'invalid' && perr.error.rpcCode, -32700);

  for (const line of ['[]', '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', '42', '"ping"', 'null', '{"id":1,"method":"ping"}', '{"jsonrpc":"1.0","id":1,"method":"ping"}', '{"jsonrpc":"2.0","id":1,"method":7}', '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', `{"jsonrpc":"2.0","id":"${'x'.repeat(129)}","method":"ping"}`]) {
    const r = classify(line);
    assert.equal(r.kind, 'invalid', line);
    assert.equal(r.kind === 'invalid' && r.error.code, 'INVALID_REQUEST', line);
  }

  const badParams = classify('{"jsonrpc":"2.0","id":5,"method":"ping","params":[1]}');
  assert.equal(badParams.kind === 'invalid' && badParams.error.code, 'INVALID_PARAMS');
  assert.equal(badParams.kind === 'invalid' && badParams.id, 5, 'the id is kept for an answer');

  const deep = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + '['.repeat(5000) + ']'.repeat(5000) + '}}';
  const deepR = classify(deep);
  assert.equal(deepR.kind === 'invalid' && deepR.error.code, 'INVALID_PARAMS');

  const note = classify('{"jsonrpc":"2.0","method":"ping"}');
  assert.equal(note.kind, 'request');
  assert.equal(note.kind === 'request' && note.notification, true);

  const req = classify('{"jsonrpc":"2.0","id":"abc","method":"status","params":{}}');
  assert.equal(req.kind, 'request');
  assert.equal(req.kind === 'request' && req.request.id, 'abc');
  assert.equal(req.kind === 'request' && req.notification, false);
});

test('schema: unknown keys, wrong types, __proto__ and constructor keys are INVALID_PARAMS naming the parameter', () => {
  const set = METHODS['mailbox.set'].params;
  const expectInvalid = (value: unknown, param: string) => {
    assert.throws(
      () => set.parse(value, 'params'),
      (err: unknown) => err instanceof MemfaError && err.code === 'INVALID_PARAMS' && err.data?.['param'] === param,
      JSON.stringify(value),
    );
  };
  expectInvalid({ address: 'a@example.com', colour: 'red' }, 'colour');
  expectInvalid({ address: 42 }, 'address');
  expectInvalid({}, 'address');
  expectInvalid({ address: 'a@example.com', phone: 12 }, 'phone');
  expectInvalid(JSON.parse('{"address":"a@example.com","__proto__":{"polluted":true}}'), 'params');
  expectInvalid(JSON.parse('{"address":"a@example.com","constructor":{"prototype":{}}}'), 'params');
  expectInvalid({ address: 'a\u0000@example.com' }, 'address');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype untouched');

  const ok = set.parse({ address: 'a@example.com', phone: null }, 'params');
  assert.equal(Object.getPrototypeOf(ok), null, 'parsed params have a null prototype');
  assert.deepEqual({ ...ok }, { address: 'a@example.com', phone: null });
});

test('errors: a MemfaError survives the round trip through the wire form', () => {
  const e = new MemfaError('STORE_FAILED', 'disk full', { data: { file: '/x' }, hint: 'free space' });
  const wire = JSON.parse(JSON.stringify(errorObject(e)));
  assert.equal(wire.code, ERRORS.STORE_FAILED.rpc);
  assert.equal(wire.data.code, 'STORE_FAILED');
  const back = errorFromObject(wire);
  assert.equal(back.code, 'STORE_FAILED');
  assert.equal(back.exitCode, 75);
  assert.equal(back.hint, 'free space');
  assert.deepEqual(back.data, { file: '/x' });
  // An unknown string code falls back on the JSON-RPC number.
  assert.equal(errorFromObject({ code: -32601, message: 'x', data: { code: 'NOPE' as never } }).code, 'METHOD_NOT_FOUND');
});
