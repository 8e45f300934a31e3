// The audit trail's two streams, routing and merging, and the counting of fast-path allows.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FastPathCounter, keyHash } from '../src/audit/aggregate.js';
import type { AuditEvent } from '../src/audit/entry.js';
import { AuditTrail, streamOf } from '../src/audit/trail.js';
import { MemfaError } from '../src/protocol/errors.js';

const MINUTE = 60_000;
const START = Date.parse('2025-03-01T12:00:00.000Z');

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-trail-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const allow = (mailbox: string, ip = '192.0.2.1', reason = 'known-ip'): AuditEvent => ({ actor: 'hook', socket: 'hook', mailbox, action: 'verify', result: 'allow', reason, ip, country: 'DE' });

function counter(options: { windowMs?: number; maxKeys?: number; seed?: number } = {}) {
  let now = START;
  const written: AuditEvent[] = [];
  const c = new FastPathCounter({
    windowMs: options.windowMs ?? MINUTE,
    clock: () => now,
    write: (e) => written.push(e),
    ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
  });
  return { c, written, advance: (ms: number) => (now += ms) };
}

test('fast-path allows: the first of a minute at once, the rest as one counted line', () => {
  const { c, written, advance } = counter();
  c.note(allow('a@example.org'));
  assert.equal(written.length, 1, 'the first is written at once');
  assert.equal(written[0]!.details, undefined);
  for (let i = 0; i < 99; i++) {
    advance(100);
    c.note(allow('a@example.org'));
  }
  c.note(allow('a@example.org', '192.0.2.2'));
  c.note(allow('a@example.org', '192.0.2.1', 'trusted-network'));
  assert.equal(written.length, 3, 'another address or reason is another key');
  c.flush();
  assert.equal(written.length, 4);
  assert.deepEqual(written[3], { ...allow('a@example.org'), details: { count: 99, first: new Date(START + 100).toISOString(), last: new Date(START + 9900).toISOString() } });
});

test('a new minute writes the counts of the last one and starts again', () => {
  const { c, written, advance } = counter();
  c.note(allow('a@example.org'));
  c.note(allow('a@example.org'));
  advance(MINUTE);
  c.note(allow('a@example.org'));
  assert.deepEqual(written.map((e) => e.details?.['count'] ?? 1), [1, 1, 1]);
  c.flush();
  assert.equal(written.length, 3, 'nothing counted in the new minute yet');
});

test('a flood of distinct keys is bounded: the counts are written early and counting starts over', () => {
  const { c, written } = counter({ maxKeys: 100 });
  for (let i = 0; i < 1000; i++) {
    c.note(allow(`u${i}@example.org`));
    c.note(allow(`u${i}@example.org`));
    assert.ok(c.size <= 100);
  }
  c.flush();
  // Every login is accounted for: 1000 first lines plus 1000 repeats in counted lines.
  const total = written.reduce((sum, e) => sum + (typeof e.details?.['count'] === 'number' ? e.details['count'] : 1), 0);
  assert.equal(total, 2000);
});

test("login.check's allows and continues are counted apart from verify's allows with the same reason", () => {
  const { c, written } = counter();
  const check = (result: string): AuditEvent => ({ ...allow('a@example.org', '192.0.2.1', 'trusted-network'), action: 'login.check', result });
  for (const e of [allow('a@example.org', '192.0.2.1', 'trusted-network'), check('continue'), check('continue'), check('allow')]) c.note(e);
  assert.deepEqual(written.map((e) => `${e.action}:${e.result}`), ['verify:allow', 'login.check:continue', 'login.check:allow'], 'another action or result is another key');
  c.flush();
  assert.deepEqual(written[3], { ...check('continue'), details: { count: 1, first: new Date(START).toISOString(), last: new Date(START).toISOString() } });
  assert.equal(streamOf(check('continue')), 'logins');
  assert.equal(streamOf({ ...check('deny'), reason: 'throttled' }), 'logins');
});

/** Every allow in `written`: a line without a count is one, a counted line is its count. */
const accounted = (written: AuditEvent[]) => written.reduce((sum, e) => sum + (typeof e.details?.['count'] === 'number' ? e.details['count'] : 1), 0);

test('the counter writes what a plain map of keys would, in the same order, over random logins', () => {
  // The documented rules, kept in a Map: the reference the fixed-size table must agree with.
  const model = (maxKeys: number) => {
    const written: AuditEvent[] = [];
    const slots = new Map<string, { event: AuditEvent; count: number; first: number; last: number }>();
    let window = -1;
    const flush = () => {
      for (const { event, count, first, last } of slots.values()) {
        if (count > 0) written.push({ ...event, details: { count, first: new Date(first).toISOString(), last: new Date(last).toISOString() } });
      }
      slots.clear();
    };
    const note = (e: AuditEvent, now: number) => {
      if (Math.floor(now / MINUTE) !== window) {
        flush();
        window = Math.floor(now / MINUTE);
      }
      const key = JSON.stringify([e.mailbox, e.ip, e.reason, e.actor, e.socket, e.action, e.result]);
      const slot = slots.get(key);
      if (slot !== undefined) {
        if (slot.count === 0) slot.first = now;
        slot.count += 1;
        slot.last = now;
        return;
      }
      if (slots.size >= maxKeys) flush();
      slots.set(key, { event: e, count: 0, first: 0, last: 0 });
      written.push(e);
    };
    return { written, note, flush };
  };
  let seed = 12345;
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (const maxKeys of [1, 7, 100]) {
    const { c, written, advance } = counter({ maxKeys });
    const ref = model(maxKeys);
    let now = START;
    let notes = 0;
    for (let i = 0; i < 20_000; i++) {
      const e = allow(`u${random(3 * maxKeys + 5)}@example.org`, `192.0.2.${random(3)}`, random(10) === 0 ? 'trusted-network' : 'known-ip');
      if (random(50) === 0) {
        const ms = random(3) === 0 ? MINUTE : random(2000);
        advance(ms);
        now += ms;
      }
      c.note(e);
      ref.note(e, now);
      notes++;
      assert.ok(c.size <= maxKeys);
    }
    c.flush();
    ref.flush();
    assert.equal(accounted(written), notes, `maxKeys ${maxKeys}: every allow is a line or in a count`);
    assert.deepEqual(written, ref.written, `maxKeys ${maxKeys}`);
  }
});

test('keys made to collide in the table cost a bounded search: their counts are written early, none lost', () => {
  // maxKeys 100 gives a table of 512 places; these keys all hash to place 0 under seed 7.
  const colliding: string[] = [];
  for (let i = 0; colliding.length < 200; i++) {
    const mailbox = `c${i}@example.org`;
    if ((keyHash(7, mailbox, '192.0.2.1', 'known-ip', 'hook', 'hook', 'verify', 'allow') & 511) === 0) colliding.push(mailbox);
  }
  const { c, written } = counter({ maxKeys: 100, seed: 7 });
  let notes = 0;
  for (const mailbox of colliding) {
    c.note(allow(mailbox));
    c.note(allow(mailbox));
    notes += 2;
    // A run of 64 places is the most one allow searches; at the 65th key the counts go out.
    assert.ok(c.size <= 64, `size ${c.size}`);
  }
  assert.ok(written.some((e) => e.details !== undefined), 'counts were written before the end of the window');
  c.flush();
  assert.equal(accounted(written), notes);
  assert.equal(written.filter((e) => e.details === undefined).length, colliding.length, 'each key\'s first allow is a line of its own');
});

test('a counted allow keeps no reference to the event it was given', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const c = new FastPathCounter({ windowMs: MINUTE, clock: () => START, write: () => undefined });
  // In a function of its own, so that no variable of this frame still holds the last event.
  const noteAll = () => {
    const refs: WeakRef<AuditEvent>[] = [];
    for (let i = 0; i < 100; i++) {
      const e = allow(`u${i % 10}@example.org`);
      c.note(e);
      refs.push(new WeakRef(e));
    }
    return refs;
  };
  const refs = noteAll();
  assert.equal(c.size, 10);
  // WeakRefs hold their target until the current job ends.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(refs.filter((r) => r.deref() !== undefined).length, 0);
  c.flush();
});

test('windowMs 0 writes every allow as a line of its own', () => {
  const { c, written } = counter({ windowMs: 0 });
  for (let i = 0; i < 5; i++) c.note(allow('a@example.org'));
  assert.equal(written.length, 5);
  assert.equal(c.size, 0);
});

test('streams: changes and factor changes apart from the logins', () => {
  assert.equal(streamOf(allow('a@example.org')), 'logins');
  assert.equal(streamOf({ ...allow('a@example.org'), result: 'deny', reason: 'code-invalid' }), 'logins');
  assert.equal(streamOf({ ...allow('a@example.org'), reason: 'enrolled' }), 'security');
  assert.equal(streamOf({ ...allow('a@example.org'), reason: 'recovery-code-used' }), 'security');
  for (const action of ['mailbox.set', 'unlock', 'key.rotate', 'enroll.confirm', 'admin.add', 'audit-gap']) {
    assert.equal(streamOf({ actor: 'admin', action, result: 'ok' }), 'security', action);
  }
});

test('the trail writes each stream to its own file, queries both merged by time, verifies both and counts losses', async (t) => {
  const dir = await tempDir(t);
  let now = START;
  const trail = await AuditTrail.open({
    streams: { security: { file: join(dir, 'sec.log'), maxBytes: 4096, keep: 2 }, logins: { file: join(dir, 'logins.log'), maxBytes: 4096, keep: 2 } },
    aggregateMs: MINUTE,
    clock: () => (now += 1000),
  });
  t.after(() => trail.close());
  await trail.append({ actor: 'admin', socket: 'admin', mailbox: 'a@example.org', action: 'mailbox.set', result: 'ok' });
  await trail.append({ ...allow('a@example.org'), result: 'challenge', reason: 'new-ip' });
  await trail.append({ actor: 'admin', socket: 'admin', mailbox: null, action: 'key.rotate', result: 'ok' });
  for (let i = 0; i < 3; i++) trail.recordAllow(allow('a@example.org'));
  await trail.close();
  const security = (await readFile(join(dir, 'sec.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string });
  const logins = (await readFile(join(dir, 'logins.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { action: string; details?: { count?: number } });
  assert.deepEqual(security.map((e) => e.action), ['mailbox.set', 'key.rotate']);
  assert.deepEqual(logins.map((e) => [e.action, e.details?.count ?? 1]), [['verify', 1], ['verify', 1], ['verify', 2]]);

  const reopened = await AuditTrail.open({
    streams: { security: { file: join(dir, 'sec.log'), maxBytes: 4096, keep: 2 }, logins: { file: join(dir, 'logins.log'), maxBytes: 4096, keep: 2 } },
    aggregateMs: MINUTE,
  });
  t.after(() => reopened.close());
  const merged = await reopened.query();
  assert.deepEqual(merged.map((e) => `${e.stream}:${e.action}:${e.result}`), ['security:mailbox.set:ok', 'logins:verify:challenge', 'security:key.rotate:ok', 'logins:verify:allow', 'logins:verify:allow']);
  assert.deepEqual((await reopened.query({ limit: 2 })).map((e) => e.stream), ['logins', 'logins']);
  const check = await reopened.verify();
  assert.ok(check.ok);
  assert.deepEqual([check.lines, check.streams.map((s) => s.stream)], [5, ['security', 'logins']]);
  assert.deepEqual(reopened.status().streams.map((s) => [s.name, s.seq, s.failedWrites]), [['security', 2], ['logins', 3]].map(([n, s]) => [n, s, 0]));
});

test('the two streams must be different files, neither named like the other\'s rotated files', async (t) => {
  const dir = await tempDir(t);
  for (const [security, logins] of [['a.log', 'a.log'], ['a.log.1', 'a.log'], ['a.log', 'a.log.3']]) {
    await assert.rejects(
      AuditTrail.open({ streams: { security: { file: join(dir, security!), maxBytes: 4096, keep: 1 }, logins: { file: join(dir, logins!), maxBytes: 4096, keep: 1 } }, aggregateMs: 0 }),
      (error: unknown) => error instanceof MemfaError && error.code === 'CONFIG_INVALID' && /audit\.security\.file/.test(error.message),
    );
  }
});
