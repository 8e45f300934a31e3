import assert from 'node:assert/strict';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { lineHash, serialiseEntry } from '../src/audit/entry.js';
import { AuditLog, type AuditEvent, type AuditLogOptions } from '../src/audit/log.js';
import { redact } from '../src/audit/redact.js';
import { MemfaError } from '../src/protocol/errors.js';

const POSIX = process.platform !== 'win32';
const START = Date.parse('2025-03-01T12:00:00.000Z');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-audit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A clock that advances one second per reading. */
function steppingClock(): () => number {
  let now = START;
  return () => {
    const value = now;
    now += 1000;
    return value;
  };
}

async function openLog(t: TestContext, options: AuditLogOptions = {}, dir?: string): Promise<{ log: AuditLog; path: string; dir: string }> {
  const where = dir ?? (await tempDir(t));
  const path = join(where, 'memfa-audit.log');
  const log = await AuditLog.open(path, { clock: steppingClock(), ...options });
  t.after(() => log.close());
  return { log, path, dir: where };
}

function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    actor: 'hook',
    socket: 'hook',
    mailbox: `user${i % 3}@example.org`,
    action: 'verify',
    result: i % 2 === 0 ? 'allow' : 'deny',
    reason: null,
    ip: '192.0.2.1',
    country: 'DE',
    details: { i },
    ...overrides,
  };
}

async function fileLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  assert.ok(text.endsWith('\n'));
  return text.slice(0, -1).split('\n');
}

test('1000 concurrently issued appends are all written, in order, with contiguous seq', async (t) => {
  const { log, path } = await openLog(t);
  const entries = await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append(event(i))));
  assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 1000 }, (_, i) => i + 1));
  const lines = await fileLines(path);
  assert.equal(lines.length, 1000);
  let prev = '0'.repeat(64);
  lines.forEach((line, i) => {
    const parsed = JSON.parse(line) as { seq: number; prev: string; details: { i: number } };
    assert.equal(parsed.seq, i + 1);
    assert.equal(parsed.details.i, i);
    assert.equal(parsed.prev, prev);
    prev = lineHash(Buffer.from(line));
  });
  assert.deepEqual(await log.verify(), { ok: true, lines: 1000, files: 1, lost: 0 });
  if (POSIX) assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('lines have the documented shape and key order', async (t) => {
  const { log, path } = await openLog(t);
  await log.append({ actor: 'domain-admin:example.org', socket: 'admin', mailbox: 'a@example.org', action: 'set-policy', result: 'ok', details: { key: 'challenge' } });
  await log.append({ actor: 'daemon', action: 'start', result: 'ok' });
  const [first, second] = await fileLines(path);
  const firstHash = lineHash(Buffer.from(first ?? ''));
  assert.equal(
    first,
    '{"seq":1,"time":"2025-03-01T12:00:00.000Z","actor":"domain-admin:example.org","socket":"admin","mailbox":"a@example.org",' +
      '"action":"set-policy","result":"ok","reason":null,"ip":null,"country":null,"details":{"key":"challenge"},' +
      `"prev":"${'0'.repeat(64)}"}`,
  );
  assert.equal(
    second,
    '{"seq":2,"time":"2025-03-01T12:00:01.000Z","actor":"daemon","socket":null,"mailbox":null,"action":"start","result":"ok",' +
      `"reason":null,"ip":null,"country":null,"prev":"${firstHash}"}`,
  );
});

test('an edited middle line is reported by verify', async (t) => {
  const { log, path } = await openLog(t);
  for (let i = 0; i < 10; i += 1) await log.append(event(i));
  const lines = await fileLines(path);
  lines[4] = (lines[4] ?? '').replace('"result":"allow"', '"result":"deny"');
  await writeFile(path, `${lines.join('\n')}\n`);
  const result = await log.verify();
  assert.equal(result.ok, false);
  assert.ok(!result.ok);
  assert.equal(result.file, path);
  assert.equal(result.line, 5);
  assert.match(result.problem, /changed/);
});

test('a line edited into invalid JSON is reported as such', async (t) => {
  const { log, path } = await openLog(t);
  for (let i = 0; i < 5; i += 1) await log.append(event(i));
  const lines = await fileLines(path);
  lines[1] = (lines[1] ?? '').slice(0, 20);
  await writeFile(path, `${lines.join('\n')}\n`);
  assert.deepEqual(await log.verify(), { ok: false, file: path, line: 2, problem: 'not valid JSON' });
});

test('a deleted line is reported by verify', async (t) => {
  const { log, path } = await openLog(t);
  for (let i = 0; i < 10; i += 1) await log.append(event(i));
  const lines = await fileLines(path);
  lines.splice(6, 1);
  await writeFile(path, `${lines.join('\n')}\n`);
  const result = await log.verify();
  assert.ok(!result.ok);
  assert.equal(result.file, path);
  assert.equal(result.line, 7);
  assert.match(result.problem, /seq 8 follows 6: 1 line\(s\) missing/);
});

test('an edit of the newest line is caught against the head held in memory', async (t) => {
  const { log, path } = await openLog(t);
  for (let i = 0; i < 3; i += 1) await log.append(event(i));
  const lines = await fileLines(path);
  lines[2] = (lines[2] ?? '').replace('"ip":"192.0.2.1"', '"ip":"192.0.2.9"');
  await writeFile(path, `${lines.join('\n')}\n`);
  const result = await log.verify();
  assert.ok(!result.ok);
  assert.equal(result.line, 3);
  assert.match(result.problem, /not the line the daemon last wrote/);
  // Removing the newest line is caught too.
  await writeFile(path, `${lines.slice(0, 2).join('\n')}\n`);
  const truncated = await log.verify();
  assert.ok(!truncated.ok);
  assert.equal(truncated.line, 2);
});

test('rotation keeps `keep` files, each within maxBytes, chained across files', async (t) => {
  const { log, path } = await openLog(t, { maxBytes: 2048, keep: 3 });
  for (let i = 0; i < 120; i += 1) await log.append(event(i));
  const files = [`${path}.3`, `${path}.2`, `${path}.1`, path];
  const contents = await Promise.all(files.map((file) => fileLines(file)));
  for (const file of files) {
    assert.ok((await stat(file)).size <= 2048, `${file} exceeds maxBytes`);
    if (POSIX) assert.equal((await stat(file)).mode & 0o777, 0o600);
  }
  await assert.rejects(stat(`${path}.4`), { code: 'ENOENT' });
  // Each file's first line names the hash of the previous file's last line.
  for (let i = 1; i < contents.length; i += 1) {
    const before = contents[i - 1]?.at(-1) ?? '';
    const first = JSON.parse(contents[i]?.[0] ?? '') as { prev: string };
    assert.equal(first.prev, lineHash(Buffer.from(before)));
  }
  const kept = contents.reduce((sum, lines) => sum + lines.length, 0);
  assert.deepEqual(await log.verify(), { ok: true, lines: kept, files: 4, lost: 0 });
  // The oldest file was dropped: the oldest kept line is not seq 1, and query still reads in order.
  const all = await log.query();
  assert.equal(all.length, kept);
  assert.ok((all[0]?.seq ?? 0) > 1);
  assert.equal(all.at(-1)?.seq, 120);
  all.forEach((entry, i) => assert.equal(entry.seq, (all[0]?.seq ?? 0) + i));
});

test('a group of concurrent appends larger than maxBytes is split across files', async (t) => {
  const { log } = await openLog(t, { maxBytes: 4096, keep: 100 });
  await Promise.all(Array.from({ length: 300 }, (_, i) => log.append(event(i))));
  const result = await log.verify();
  assert.ok(result.ok);
  assert.equal(result.lines, 300);
  assert.ok(result.files > 5);
});

test('tampering in a rotated file is reported with that file', async (t) => {
  const { log, path } = await openLog(t, { maxBytes: 2048, keep: 3 });
  for (let i = 0; i < 60; i += 1) await log.append(event(i));
  const rotated = `${path}.2`;
  const lines = await fileLines(rotated);
  lines[2] = (lines[2] ?? '').replace('"country":"DE"', '"country":"FR"');
  await writeFile(rotated, `${lines.join('\n')}\n`);
  const result = await log.verify();
  assert.ok(!result.ok);
  assert.equal(result.file, rotated);
  assert.equal(result.line, 3);
});

test('reopening continues the chain', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const first = await AuditLog.open(path, { clock: steppingClock() });
  for (let i = 0; i < 5; i += 1) await first.append(event(i));
  await first.close();
  await assert.rejects(first.append(event(99)), (error: unknown) => error instanceof MemfaError && error.code === 'SHUTTING_DOWN');
  const second = await AuditLog.open(path, { clock: steppingClock() });
  t.after(() => second.close());
  assert.equal((await second.append(event(5))).seq, 6);
  assert.deepEqual(await second.verify(), { ok: true, lines: 6, files: 1, lost: 0 });
});

test('reopening after a crash between rotation and the first write continues from <path>.1', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const first = await AuditLog.open(path, { clock: steppingClock() });
  for (let i = 0; i < 4; i += 1) await first.append(event(i));
  await first.close();
  await rename(path, `${path}.1`);
  const second = await AuditLog.open(path, { clock: steppingClock() });
  t.after(() => second.close());
  assert.equal((await second.append(event(4))).seq, 5);
  assert.deepEqual(await second.verify(), { ok: true, lines: 5, files: 2, lost: 0 });
});

test('a torn last line is cut off and the recovery is recorded', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const first = await AuditLog.open(path, { clock: steppingClock() });
  for (let i = 0; i < 3; i += 1) await first.append(event(i));
  await first.close();
  const torn = '{"seq":4,"time":"2025-03-01T12:00:03.000Z","actor":"ho';
  await appendFile(path, torn);
  const second = await AuditLog.open(path, { clock: steppingClock() });
  t.after(() => second.close());
  const lines = await fileLines(path);
  assert.equal(lines.length, 4);
  const recovered = JSON.parse(lines[3] ?? '') as Record<string, unknown>;
  assert.equal(recovered.seq, 4);
  assert.equal(recovered.actor, 'daemon');
  assert.equal(recovered.action, 'audit-recovered');
  assert.equal(recovered.reason, 'torn-tail');
  assert.deepEqual(recovered.details, { droppedBytes: Buffer.byteLength(torn) });
  assert.equal((await second.append(event(4))).seq, 5);
  assert.deepEqual(await second.verify(), { ok: true, lines: 5, files: 1, lost: 0 });
});

test('a file that is one torn line only is recovered to a fresh chain', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  await writeFile(path, '{"seq":1,"ti', { mode: 0o600 });
  const log = await AuditLog.open(path, { clock: steppingClock() });
  t.after(() => log.close());
  const [line] = await fileLines(path);
  const entry = JSON.parse(line ?? '') as { seq: number; prev: string; action: string };
  assert.deepEqual([entry.seq, entry.prev, entry.action], [1, '0'.repeat(64), 'audit-recovered']);
  assert.deepEqual(await log.verify(), { ok: true, lines: 1, files: 1, lost: 0 });
});

test('verify reports a torn line', async (t) => {
  const { log, path } = await openLog(t);
  await log.append(event(0));
  await appendFile(path, '{"seq":2');
  const result = await log.verify();
  assert.ok(!result.ok);
  assert.equal(result.line, 2);
  assert.match(result.problem, /torn line/);
});

test('a last line that is complete but not an entry stops the open, naming the file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  await writeFile(path, 'garbage\n', { mode: 0o600 });
  await assert.rejects(AuditLog.open(path), (error: unknown) => {
    assert.ok(error instanceof MemfaError);
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.match(error.message, new RegExp(`^audit log ${path}: the last line is not an audit entry`));
    return true;
  });
});

test('an unreadable rotated file stops the open, naming that file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  await mkdir(`${path}.1`);
  await assert.rejects(AuditLog.open(path), (error: unknown) => {
    assert.ok(error instanceof MemfaError);
    assert.equal(error.code, 'CONFIG_INVALID');
    assert.match(error.message, new RegExp(`^audit log ${path}\\.1 cannot be read \\(EISDIR\\)`));
    return true;
  });
});

test('an audit log readable by others is refused; a missing directory is named', { skip: !POSIX }, async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  await writeFile(path, '', { mode: 0o644 });
  await chmod(path, 0o644);
  await assert.rejects(AuditLog.open(path), (error: unknown) => error instanceof MemfaError && error.code === 'CONFIG_INVALID' && error.message.includes(path));
  const missing = join(dir, 'nope', 'memfa-audit.log');
  await assert.rejects(AuditLog.open(missing), (error: unknown) => error instanceof MemfaError && error.code === 'CONFIG_INVALID' && error.message.includes(missing));
});

test('query filters by mailbox, action, result, time range and limit', async (t) => {
  const { log } = await openLog(t, { maxBytes: 2048, keep: 50 });
  for (let i = 0; i < 30; i += 1) await log.append(event(i, { action: i % 5 === 0 ? 'reset' : 'verify' }));
  const seqs = (entries: { seq: number }[]): number[] => entries.map((e) => e.seq);
  assert.equal((await log.query()).length, 30);
  assert.deepEqual(seqs(await log.query({ mailbox: 'user1@example.org' })), [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]);
  assert.deepEqual(seqs(await log.query({ action: 'reset' })), [1, 6, 11, 16, 21, 26]);
  assert.deepEqual(seqs(await log.query({ action: 'reset', result: 'deny' })), [6, 16, 26]);
  // Entry i was written at START + i seconds; since is inclusive, until exclusive.
  const at = (i: number): Date => new Date(START + i * 1000);
  assert.deepEqual(seqs(await log.query({ since: at(10), until: at(13) })), [11, 12, 13]);
  assert.deepEqual(seqs(await log.query({ mailbox: 'user0@example.org', limit: 2 })), [25, 28]);
  assert.deepEqual(await log.query({ limit: 0 }), []);
  assert.deepEqual(await log.query({ mailbox: 'nobody@example.org' }), []);
});

test('secrets in details never reach the file', async (t) => {
  const { log, path } = await openLog(t);
  const secrets = ['481516', 'JBSWY3DPEHPK3PXP', 'hunter2', 'tok-abcdef', 'sms-pass-1', 'recov-9999', 'raw-bytes-key'];
  await log.append({
    actor: 'self',
    socket: 'hook',
    mailbox: 'alice@example.org',
    action: 'enrol-totp',
    result: 'ok',
    details: {
      code: secrets[0],
      nested: { totpSecret: secrets[1], list: [{ Password: secrets[2] }, { note: 'kept-in-list' }] },
      adminToken: secrets[3],
      smtp: { PASS: secrets[4] },
      recoveryCodes: [secrets[5]],
      blob: Buffer.from(secrets[6] ?? ''),
      note: 'kept',
    },
  });
  const text = await readFile(path, 'utf8');
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `secret ${secret} leaked`);
    assert.ok(!text.includes(Buffer.from(secret).toString('base64')));
  }
  const [entry] = await log.query();
  assert.deepEqual(entry?.details, { nested: { list: [{}, { note: 'kept-in-list' }] }, smtp: {}, note: 'kept' });
});

test('redact drops secret-looking keys at any depth and makes a JSON-safe copy', () => {
  const cyclic: Record<string, unknown> = { name: 'x' };
  cyclic.self = cyclic;
  const input = {
    Secret: 1,
    otp: 2,
    apiKey: 3,
    kept: { when: new Date(START), big: 10n, fn: () => 1, arr: [1, undefined, { passphrase: 'p' }] },
    cyclic,
  };
  assert.deepEqual(redact(input), {
    kept: { when: '2025-03-01T12:00:00.000Z', big: '10', arr: [1, null, {}] },
    cyclic: { name: 'x', self: '[circular]' },
  });
  assert.equal(redact('plain'), 'plain');
  assert.equal(redact(null), null);
});

test('oversized details are replaced by a marker', async (t) => {
  const { log } = await openLog(t);
  const entry = await log.append(event(0, { details: { blob: 'x'.repeat(40000) } }));
  assert.deepEqual(entry.details, { omitted: 'details too large' });
  assert.ok((await log.verify()).ok);
});

test('one batch of multi-byte lines, larger than the encoding buffer, is written as serialised and chains', async (t) => {
  const { log, path } = await openLog(t);
  const awkward = ['é ü 漢字', 'emoji 😀', 'lone \ud800 high', 'quote" back\\slash', '\u2028\u2029', 'x'.repeat(5000) + '漢'];
  // Issued in one turn, so that they are one batch: 400 lines of 1.5-15 KB, 3 MB in all.
  const entries = Promise.all(
    Array.from({ length: 400 }, (_, i) => {
      const s = awkward[i % awkward.length]!;
      // Lines of mostly 3-byte characters, of varied lengths, so that some end past where their
      // UTF-16 length alone would put them: encoding must never cut one at the buffer's end.
      return log.append(event(i, { mailbox: s, reason: s, details: { note: '漢'.repeat(500 + ((i * 389) % 4500)), i } }));
    }),
  );
  log.record(event(400, { details: { blob: '漢'.repeat(6000) } }));
  const written = await entries;
  const lines = await fileLines(path);
  assert.equal(lines.length, 401);
  written.forEach((entry, i) => {
    assert.equal(entry.seq, i + 1);
    assert.equal(lines[i], serialiseEntry(entry));
    assert.equal(entry.prev, i === 0 ? '0'.repeat(64) : lineHash(Buffer.from(lines[i - 1]!, 'utf8')));
  });
  // 18,000 bytes of UTF-8 is over the line limit, though only 6,000 UTF-16 units.
  assert.deepEqual(JSON.parse(lines[400]!).details, { omitted: 'details too large' });
  assert.deepEqual(await log.verify(), { ok: true, lines: 401, files: 1, lost: 0 });
});

test('a batch of 10,000 lines (a window of counted allows, flushed at shutdown) is written whole and chained, a slice at a time', async (t) => {
  const { log } = await openLog(t, { maxBytes: 256 * 1024, keep: 100 });
  // Every buffer asked for while the batch is encoded and written: one per slice, reused, not one
  // buffer of the whole batch grown by doubling (2.5 MB of lines here).
  const allocUnsafe = Buffer.allocUnsafe;
  let largest = 0;
  Buffer.allocUnsafe = (size: number) => {
    largest = Math.max(largest, size);
    return allocUnsafe(size);
  };
  let last;
  try {
    // Issued in one turn: one batch, as the counter's flush makes it.
    for (let i = 0; i < 9999; i++) log.record(event(i, { mailbox: `user${i}@example.org`, details: { count: 2 + (i % 50), first: '2025-03-01T12:00:00.000Z', last: '2025-03-01T12:00:59.999Z' } }));
    last = await log.append(event(9999));
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
  }
  assert.equal(last.seq, 10_000);
  assert.ok(largest <= 1024 * 1024, `an encoding buffer of ${largest} bytes`);
  const result = await log.verify();
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.lines, 10_000);
  assert.ok(result.files > 5, 'rotations fell inside slices and between them');
  const all = await log.query({ limit: 10_000 });
  assert.deepEqual(all.map((e) => e.seq), Array.from({ length: 10_000 }, (_, i) => i + 1));
  assert.deepEqual(all.map((e) => e.mailbox).slice(0, 3), ['user0@example.org', 'user1@example.org', 'user2@example.org']);
});

test('a failed rotation rejects with STORE_FAILED, keeps what was written, and a reopen recovers', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const log = await AuditLog.open(path, { maxBytes: 1024, keep: 1, clock: steppingClock() });
  // A non-empty directory where the oldest rotated file goes makes the rotation fail, even for root.
  await mkdir(join(`${path}.1`, 'blocker'), { recursive: true });
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(event(i))));
  const written = results.filter((r) => r.status === 'fulfilled').length;
  assert.ok(written > 0 && written < 10);
  for (const r of results.slice(written)) {
    assert.equal(r.status, 'rejected');
    const reason: unknown = r.status === 'rejected' ? r.reason : null;
    assert.ok(reason instanceof MemfaError);
    assert.equal(reason.code, 'STORE_FAILED');
    assert.match(reason.message, new RegExp(`^audit log ${path} could not be rotated`));
  }
  await assert.rejects(log.append(event(10)), (error: unknown) => error instanceof MemfaError && error.code === 'STORE_FAILED');
  await log.close();
  assert.equal((await fileLines(path)).length, written);
  await rm(`${path}.1`, { recursive: true });
  const reopened = await AuditLog.open(path, { maxBytes: 1024, keep: 1, clock: steppingClock() });
  t.after(() => reopened.close());
  assert.equal((await reopened.append(event(11))).seq, written + 1);
  assert.ok((await reopened.verify()).ok);
});

test('record() writes lines nobody awaits, in issue order with awaited ones, and a query sees them', async (t) => {
  const { log, path } = await openLog(t);
  log.record(event(0));
  const awaited = log.append(event(1));
  log.record(event(2));
  assert.equal((await awaited).seq, 2);
  const entries = await log.query({});
  assert.deepEqual(
    entries.map((e) => [e.seq, e.details]),
    [
      [1, { i: 0 }],
      [2, { i: 1 }],
      [3, { i: 2 }],
    ],
  );
  assert.equal((await fileLines(path)).length, 3);
  assert.deepEqual(await log.verify(), { ok: true, lines: 3, files: 1, lost: 0 });
});

test('close() writes recorded lines still queued; a line recorded after close is counted and reported', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const events: [string, string, Record<string, unknown>][] = [];
  const log = await AuditLog.open(path, { clock: steppingClock(), onEvent: (level, name, fields) => events.push([level, name, fields]) });
  for (let i = 0; i < 50; i++) log.record(event(i));
  await log.close();
  assert.equal((await fileLines(path)).length, 50);
  log.record(event(50, { action: 'late' }));
  await assert.rejects(log.append(event(51)), (error: unknown) => error instanceof MemfaError && error.code === 'SHUTTING_DOWN');
  assert.equal(log.stats().droppedLines, 2);
  const reported = events.filter(([level, name]) => level === 'error' && name === 'audit-write-failed');
  assert.ok(reported.length >= 1);
  assert.equal(reported[0]![2]['action'], 'late');
});

test('a recorded line that cannot be written is counted, reported at most once a second, and never an unhandled rejection', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  const reported: Record<string, unknown>[] = [];
  // The steady clock stands still: every failure falls in the same second.
  const log = await AuditLog.open(path, { maxBytes: 1024, keep: 1, clock: steppingClock(), ticks: () => 0, onEvent: (_level, name, fields) => name === 'audit-write-failed' && reported.push(fields) });
  t.after(() => log.close());
  // The rotation fails (see the test above): lines past the first file cannot be written.
  await mkdir(join(`${path}.1`, 'blocker'), { recursive: true });
  for (let i = 0; i < 20; i++) log.record(event(i));
  await assert.rejects(log.append(event(20)), (error: unknown) => error instanceof MemfaError && error.code === 'STORE_FAILED');
  const written = (await fileLines(path)).length;
  assert.ok(written > 0 && written < 20);
  const stats = log.stats();
  assert.equal(stats.droppedLines, 21 - written);
  assert.ok(stats.failedWrites >= 1);
  assert.match(stats.lastError ?? '', /could not be rotated|EISDIR|EPERM/);
  assert.equal(reported.length, 1, 'one report per second, however many lines fail');
  assert.equal(reported[0]!['lines'], 21 - written);
});

test('after lost lines, the next line written is an audit-lost record, and the chain goes on unbroken', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'memfa-audit.log');
  let now = 0;
  const log = await AuditLog.open(path, { maxBytes: 1024, keep: 1, clock: steppingClock(), ticks: () => now });
  t.after(() => log.close());
  await mkdir(join(`${path}.1`, 'blocker'), { recursive: true });
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(event(i))));
  const lost = results.filter((r) => r.status === 'rejected').length;
  assert.ok(lost > 0);
  await rm(`${path}.1`, { recursive: true });
  now += 1500; // the broken log retries at most once a second
  const next = await log.append(event(10));
  const entries = await log.query();
  const record = entries.find((e) => e.action === 'audit-lost');
  assert.ok(record !== undefined, 'the loss is recorded');
  assert.equal(record.seq, next.seq - 1);
  assert.deepEqual([record.actor, record.result, record.details?.['lines']], ['daemon', 'error', lost]);
  const check = await log.verify();
  assert.ok(check.ok, JSON.stringify(check));
  assert.equal(check.lost, lost);
});

test('a line is the same text JSON.stringify gives, whatever the strings hold', () => {
  const awkward = ['plain', 'quote"d', 'back\\slash', 'tab\there', 'nl\nx', '\u0000\u001f', 'é ü 漢字', 'emoji 😀', 'lone \ud800 high', 'lone \udc00 low', '\u2028\u2029', 'del\u007f', ''];
  for (const s of awkward) {
    const entry = { seq: 7, time: '2025-03-01T12:00:00.000Z', actor: 'hook' as const, socket: 'hook' as const, mailbox: s, action: s, result: 'allow', reason: s, ip: null, country: s, details: { note: s }, prev: '0'.repeat(64) };
    assert.equal(serialiseEntry(entry), JSON.stringify(entry), JSON.stringify(s));
  }
});
