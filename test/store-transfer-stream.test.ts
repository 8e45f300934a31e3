// The export stream's reader on its own (store/transfer/stream.ts): lines bounded however the
// input is cut into chunks, the order that stands in for duplicate checks, the audit chain's seq,
// and stable JSON. The whole commands are tested end to end in store-transfer-e2e.test.ts.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { GENESIS_PREV, serialiseLine } from '../src/audit/entry.js';
import type { MailboxRecord } from '../src/core/model.js';
import { stableJson } from '../src/store/transfer/format.js';
import { boundedLines, readStream, StreamWriter, type Item } from '../src/store/transfer/stream.js';

function mailbox(address: string): MailboxRecord {
  return {
    address, settings: {}, userSettings: {}, phone: null, altEmail: null, totp: null, pendingTotp: null, openCode: null, ips: [], countries: [],
    failures: { known: null, elsewhere: null }, recoveryCodeHashes: [], appPasswords: [], createdAt: 1, updatedAt: 2,
  };
}

const auditLine = (seq: number) => serialiseLine(seq, { time: '2026-01-01T00:00:00.000Z', actor: 'admin', socket: 'admin', mailbox: null, action: 'global.set', result: 'ok', reason: null, ip: null, country: null }, GENESIS_PREV);

/** A stream written by StreamWriter (so with a right checksum) from `write`, as text. */
async function written(write: (w: StreamWriter) => Promise<void>, counts: { mailboxes: number; security?: number }): Promise<string> {
  const chunks: string[] = [];
  const out = new (await import('node:stream')).Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c.toString()), cb()) });
  const w = new StreamWriter(out);
  await w.header('file', 'test', { domains: 0, meta: 0, mailboxes: counts.mailboxes, audit: { security: counts.security ?? 0, logins: 0 } }, new Date(0));
  await w.global({});
  await write(w);
  await w.end();
  return chunks.join('');
}

async function read(text: string, chunk = 7): Promise<Item[]> {
  const pieces: Buffer[] = [];
  const all = Buffer.from(text);
  for (let i = 0; i < all.length; i += chunk) pieces.push(all.subarray(i, i + chunk));
  const items: Item[] = [];
  for await (const item of readStream(Readable.from(pieces), () => undefined)) items.push(item);
  return items;
}

test('lines are cut at newlines whatever the chunks, and a line past the bound is refused before it is held', async () => {
  const lines: string[] = [];
  for await (const { no, bytes } of boundedLines(Readable.from([Buffer.from('ab\ncd'), Buffer.from('e\n\nf'), Buffer.from('g\n')]), 16)) lines.push(`${no}:${bytes.toString()}`);
  assert.deepEqual(lines, ['1:ab', '2:cde', '3:', '4:fg']);
  // No newline at all: refused once the bound is passed, not at the end of the input.
  let pulled = 0;
  const endless = new Readable({ read() { pulled++; this.push(Buffer.alloc(8, 0x61)); } });
  await assert.rejects(async () => {
    for await (const _ of boundedLines(endless, 64));
  }, /line 1: longer than 64 bytes/);
  assert.ok(pulled < 20, `stopped after ${pulled} chunks`);
  await assert.rejects(async () => {
    for await (const _ of boundedLines(Readable.from([Buffer.from('{}\n{"a"')])));
  }, /line 2: the stream ends in the middle of a line/);
});

test('a stream written by the writer reads back, in any chunking', async () => {
  const text = await written(async (w) => {
    await w.mailbox(mailbox('a@x.example'));
    await w.mailbox(mailbox('b@x.example'));
    await w.audit('security', auditLine(7));
    await w.audit('security', auditLine(8));
  }, { mailboxes: 2, security: 2 });
  for (const chunk of [1, 7, 1 << 20]) {
    const items = await read(text, chunk);
    assert.deepEqual(items.map((i) => i.kind), ['global', 'mailbox', 'mailbox', 'audit', 'audit']);
  }
});

test('a mailbox twice, or out of order, is refused naming its line', async () => {
  const twice = await written(async (w) => {
    await w.mailbox(mailbox('b@x.example'));
    await w.mailbox(mailbox('b@x.example'));
  }, { mailboxes: 2 });
  await assert.rejects(read(twice), /line 4: record\.address: "b@x\.example" does not come after "b@x\.example"/);
  const backwards = await written(async (w) => {
    await w.mailbox(mailbox('b@x.example'));
    await w.mailbox(mailbox('a@x.example'));
  }, { mailboxes: 2 });
  await assert.rejects(read(backwards), /line 4: record\.address/);
});

test('an audit stream must rise by one; its first line may be any', async () => {
  const gap = await written(async (w) => {
    await w.audit('security', auditLine(3));
    await w.audit('security', auditLine(5));
  }, { mailboxes: 0, security: 2 });
  await assert.rejects(read(gap), /line 4: line: seq 5 does not follow 3/);
});

test('a field of the wrong type or one the model lacks is named', async () => {
  const extra = await written((w) => w.mailbox({ ...mailbox('a@x.example'), password: 'x' } as unknown as MailboxRecord), { mailboxes: 1 });
  await assert.rejects(read(extra), /line 3: record\.password: not a field of this record/);
  const badIp = await written((w) => w.mailbox({ ...mailbox('a@x.example'), ips: [{ ip: 1, firstSeen: 1, lastSeen: 1 }] } as unknown as MailboxRecord), { mailboxes: 1 });
  await assert.rejects(read(badIp), /line 3: record\.ips\[0\]\.ip: not a string/);
});

test('stable JSON sorts keys at every depth and keeps arrays in order', () => {
  assert.equal(stableJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
  assert.equal(stableJson({ a: undefined, b: 'x' }), '{"b":"x"}');
});
