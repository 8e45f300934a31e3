// The audit stream against its anchor: cut, removed, rewritten or rotated files told apart, the
// head anchored only once on disk, and the breaks recorded in the chain.
import assert from 'node:assert/strict';
import { mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { Anchorer, parseAnchor, type Anchor, type AnchorStore } from '../src/audit/anchor.js';
import { lineHash, serialiseLine } from '../src/audit/entry.js';
import { readLines, readLinesBackward } from '../src/audit/files.js';
import { AuditLog, type AuditEvent } from '../src/audit/log.js';
import { reconcile, type Expected, type Found } from '../src/audit/reconcile.js';

const START = Date.parse('2025-03-01T12:00:00.000Z');
const HASH = 'a'.repeat(64);

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-anchor-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A store of one anchor in memory; `saves` lists every anchor saved, in order. */
function memoryStore(initial?: unknown): AnchorStore & { value: unknown; saves: Anchor[] } {
  const store = {
    value: initial,
    saves: [] as Anchor[],
    load: () => store.value,
    save: async (anchor: Anchor) => {
      store.saves.push(anchor);
      store.value = anchor;
    },
  };
  return store;
}

function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { actor: 'admin', socket: 'admin', mailbox: `user${i}@example.org`, action: 'mailbox.set', result: 'ok', details: { i }, ...overrides };
}

async function lines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '');
}

type Logged = [string, string, Record<string, unknown>];

async function openWith(t: TestContext, path: string, store: AnchorStore, options: { keep?: number; maxBytes?: number; ticks?: () => number } = {}) {
  const logged: Logged[] = [];
  let now = START;
  const log = await AuditLog.open(path, { clock: () => (now += 1000), onEvent: (level, name, fields) => logged.push([level, name, fields]), anchor: store, ...options });
  t.after(() => log.close());
  return { log, logged };
}

test('readLinesBackward gives the complete lines newest first, across pieces, skipping a torn tail', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'lines');
  const written = ['', 'short', 'x'.repeat(70_000), 'é'.repeat(30_000), 'last'];
  await writeFile(path, written.join('\n') + '\n' + '{"torn');
  const handle = await open(path, 'r');
  t.after(() => handle.close());
  const size = (await handle.stat()).size;
  const backward: string[] = [];
  for await (const line of readLinesBackward(handle, size)) backward.push(line.toString('utf8'));
  assert.deepEqual(backward, [...written].reverse());
  const forward: string[] = [];
  for await (const { bytes, terminated } of readLines(handle, size)) if (terminated) forward.push(bytes.toString('utf8'));
  assert.deepEqual(forward, written);
});

test('reconcile: what is missing, and what is not', async () => {
  const lookup = (table: Record<number, string>, oldest: number) => async (seq: number) => (seq < oldest ? ('older-than-kept' as const) : table[seq] === undefined ? ('not-found' as const) : { hash: table[seq]! });
  const expected: Expected = { seq: 10, hash: HASH, floor: 3 };
  const at = (seq: number, hash = HASH, oldestSeq: number | null = 3, beyondKeep = false): Found => ({ head: { seq, hash }, oldestSeq, beyondKeep });
  assert.deepEqual(await reconcile(at(10), expected, lookup({}, 3)), { gaps: [], notes: [] });
  // The disk goes on past the anchor (a crash before the anchor was saved): fine if it passes through.
  assert.deepEqual((await reconcile(at(14, 'b'.repeat(64)), expected, lookup({ 10: HASH }, 3))).gaps, []);
  assert.equal((await reconcile(at(14, 'b'.repeat(64)), expected, lookup({ 10: 'c'.repeat(64) }, 3))).gaps[0]?.reason, 'rewritten');
  assert.equal((await reconcile(at(10, 'b'.repeat(64)), expected, lookup({}, 3))).gaps[0]?.reason, 'rewritten');
  assert.deepEqual((await reconcile(at(7), expected, lookup({}, 3))).gaps, [{ reason: 'truncated', missing: { from: 8, to: 10 }, expectedSeq: 10, foundSeq: 7 }]);
  assert.deepEqual((await reconcile({ head: null, oldestSeq: null, beyondKeep: false }, expected, lookup({}, 3))).gaps, [
    { reason: 'deleted', missing: { from: 3, to: 10 }, expectedSeq: 10, foundSeq: 0 },
  ]);
  assert.deepEqual((await reconcile(at(10, HASH, 6), expected, lookup({}, 6))).gaps, [{ reason: 'oldest-removed', missing: { from: 3, to: 5 }, expectedSeq: null, foundSeq: 10 }]);
  // Files past `keep` explain a younger oldest line: a lowered retention, not a removal.
  const lowered = await reconcile(at(10, HASH, 6, true), expected, lookup({}, 6));
  assert.deepEqual([lowered.gaps, lowered.notes.map((n) => n.event)], [[], ['audit-files-beyond-keep']]);
  // An anchor older than every kept line (an old store backup) cannot be compared: a note.
  const behind = await reconcile(at(900, HASH, 500), expected, lookup({}, 500));
  assert.deepEqual(behind.notes.map((n) => n.event), ['audit-anchor-behind']);
  assert.equal(behind.gaps[0]?.reason, 'oldest-removed');
  // keep 0 removes the current file on rotation: nothing on disk and nothing kept is no removal.
  assert.deepEqual((await reconcile({ head: null, oldestSeq: null, beyondKeep: false }, { seq: 10, hash: HASH, floor: 11 }, lookup({}, 11))).gaps, []);
});

test('parseAnchor accepts only a well-formed anchor', () => {
  assert.deepEqual(parseAnchor({ seq: 4, hash: HASH, floor: 2 }), { seq: 4, hash: HASH, floor: 2 });
  for (const bad of [null, 'x', { seq: -1, hash: HASH, floor: 1 }, { seq: 4, hash: 'zz', floor: 1 }, { seq: 4, hash: HASH, floor: 0 }, { seq: 4, hash: HASH, floor: 6 }]) {
    assert.equal(parseAnchor(bad), null, JSON.stringify(bad));
  }
});

test('the anchorer saves the head as it is when it saves, one save at a time, coalescing requests', async () => {
  let head: Anchor = { seq: 1, hash: HASH, floor: 1 };
  const saved: Anchor[] = [];
  let release: (() => void) | null = null;
  const store: AnchorStore = {
    load: () => undefined,
    save: (anchor) =>
      new Promise<void>((resolve) => {
        saved.push(anchor);
        release = resolve;
      }),
  };
  const anchorer = new Anchorer(store, () => head, () => undefined, () => 0);
  anchorer.now();
  assert.deepEqual(saved, [{ seq: 1, hash: HASH, floor: 1 }]);
  // Three requests while the save is in flight make one more save, of the head as it is then.
  for (const seq of [2, 3, 4]) {
    head = { ...head, seq };
    anchorer.now();
  }
  assert.equal(saved.length, 1);
  const flushed = anchorer.flush();
  (release as unknown as () => void)();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(saved.map((a) => a.seq), [1, 4]);
  (release as unknown as () => void)();
  await flushed;
  // Nothing new: no save.
  anchorer.now();
  await anchorer.flush();
  assert.equal(saved.length, 2);
});

test('lines nobody awaits are anchored at most once per interval, however many batches there are', async () => {
  let head: Anchor = { seq: 1, hash: HASH, floor: 1 };
  const saved: Anchor[] = [];
  const releases: (() => void)[] = [];
  const store: AnchorStore = { load: () => undefined, save: (a) => new Promise<void>((resolve) => (saved.push(a), releases.push(resolve))) };
  const anchorer = new Anchorer(store, () => head, () => undefined, () => 0, 1000);
  anchorer.soon();
  assert.equal(saved.length, 1, 'the first one at once: nothing was anchored for longer than the interval');
  for (let seq = 2; seq < 50; seq++) {
    head = { ...head, seq };
    anchorer.soon();
  }
  releases.shift()!();
  await new Promise((r) => setImmediate(r));
  // The steady clock has not moved: the next save waits for the interval (a timer), not for the store.
  assert.equal(saved.length, 1);
  const flushed = anchorer.flush();
  assert.deepEqual(saved.map((a) => a.seq), [1, 49]);
  releases.shift()!();
  await flushed;
});

test('the head is anchored once written; closing anchors the last one', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  const { log } = await openWith(t, path, store);
  await log.append(event(1));
  await log.append(event(2));
  log.record(event(3));
  await log.close();
  const onDisk = await lines(path);
  assert.deepEqual(store.value, { seq: 3, hash: lineHash(Buffer.from(onDisk[2]!)), floor: 1 });
  // Never ahead of the disk: every anchor saved names a line that is in the file.
  const hashes = new Map(onDisk.map((l, i) => [i + 1, lineHash(Buffer.from(l))]));
  for (const a of store.saves) assert.equal(a.seq === 0 ? a.hash : hashes.get(a.seq), a.hash);
});

test('lines cut from the end while closed are recorded as a break at open, and verify reports it', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  const first = await AuditLog.open(path, { anchor: store });
  for (let i = 0; i < 5; i++) await first.append(event(i));
  await first.close();
  const kept = (await lines(path)).slice(0, 3);
  await writeFile(path, kept.map((l) => l + '\n').join(''));
  const { log, logged } = await openWith(t, path, store);
  const gap = logged.find(([, name]) => name === 'audit-gap');
  assert.ok(gap !== undefined && gap[0] === 'error', JSON.stringify(logged));
  assert.deepEqual(gap[2]['missing'], { from: 4, to: 5 });
  const onDisk = await lines(path);
  const recorded = JSON.parse(onDisk[3]!) as { seq: number; action: string; reason: string; prev: string; details: Record<string, unknown> };
  // The chain goes on from the last line on disk; the break is a line of its own.
  assert.deepEqual([recorded.seq, recorded.action, recorded.reason, recorded.prev], [4, 'audit-gap', 'truncated', lineHash(Buffer.from(onDisk[2]!))]);
  assert.deepEqual([recorded.details['expectedSeq'], recorded.details['foundSeq'], recorded.details['detected']], [5, 3, 'start']);
  const check = await log.verify();
  assert.ok(!check.ok);
  assert.equal(check.line, 4);
  assert.match(check.problem, /recorded break .*lines 4-5 are missing/);
  assert.equal(log.stats().gaps, 1);
});

test('a removed file, a rewritten end and an invalid anchor are each recorded', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  const first = await AuditLog.open(path, { anchor: store });
  for (let i = 0; i < 3; i++) await first.append(event(i));
  await first.close();

  // The end rewritten: the last line replaced by another, chained properly.
  const onDisk = await lines(path);
  const forged = serialiseLine(3, { ...JSON.parse(onDisk[2]!), result: 'forged' }, lineHash(Buffer.from(onDisk[1]!)));
  await writeFile(path, [...onDisk.slice(0, 2), forged].map((l) => l + '\n').join(''));
  const second = await AuditLog.open(path, { anchor: store });
  const afterRewrite = await second.query({ action: 'audit-gap' });
  assert.deepEqual(afterRewrite.map((e) => e.reason), ['rewritten']);
  await second.close();

  await rm(path);
  const third = await AuditLog.open(path, { anchor: store });
  const [deleted] = await third.query();
  assert.deepEqual([deleted?.seq, deleted?.action, deleted?.reason, deleted?.details?.['missing']], [1, 'audit-gap', 'deleted', { from: 1, to: 4 }]);
  await third.close();

  store.value = { seq: 'nonsense' };
  const fourth = await AuditLog.open(path, { anchor: store });
  assert.deepEqual((await fourth.query({ action: 'audit-gap' })).map((e) => e.reason), ['deleted', 'anchor-invalid']);
  await fourth.close();
  assert.ok(parseAnchor(store.value) !== null, 'a valid anchor is saved again');
});

test('rotation moves the floor, anchored before the oldest file goes; a removed oldest file is a break, a rotated one is not', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  const first = await AuditLog.open(path, { anchor: store, maxBytes: 1024, keep: 2 });
  for (let i = 0; i < 30; i++) await first.append(event(i));
  const oldest = JSON.parse((await lines(`${path}.2`))[0]!) as { seq: number };
  assert.ok(oldest.seq > 1, 'files were rotated out');
  assert.ok((await first.verify()).ok, 'rotation is not removal');
  await first.close();
  assert.equal((store.value as Anchor).floor, oldest.seq);
  // The same files open cleanly.
  const second = await AuditLog.open(path, { anchor: store, maxBytes: 1024, keep: 2 });
  assert.deepEqual(await second.query({ action: 'audit-gap' }), []);
  await second.close();

  await rm(`${path}.2`);
  const { log, logged } = await openWith(t, path, store, { maxBytes: 1024, keep: 2 });
  assert.ok(logged.some(([level, name, fields]) => level === 'error' && name === 'audit-gap' && fields['reason'] === 'oldest-removed'));
  const check = await log.verify();
  assert.ok(!check.ok);
  assert.match(check.problem, /oldest files were removed/);
});

test('a lowered keep leaves older files unread, which is not a break', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  const first = await AuditLog.open(path, { anchor: store, maxBytes: 1024, keep: 4 });
  for (let i = 0; i < 30; i++) await first.append(event(i));
  await first.close();
  const { log, logged } = await openWith(t, path, store, { maxBytes: 1024, keep: 2 });
  assert.ok(logged.some(([level, name]) => level === 'warn' && name === 'audit-files-beyond-keep'));
  assert.deepEqual(await log.query({ action: 'audit-gap' }), []);
  assert.ok((await log.verify()).ok);
});

test('the current file removed or replaced while open: reported at once, then reopened with the break recorded', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'a.log');
  const store = memoryStore();
  let ticks = 0;
  const { log, logged } = await openWith(t, path, store, { ticks: () => ticks });
  for (let i = 0; i < 3; i++) await log.append(event(i));
  await rename(path, `${path}.moved`);
  const missing = await log.verify();
  assert.ok(!missing.ok && /current file is missing/.test(missing.problem));
  // Within the second after the last check the line goes to the moved file; then the log notices.
  await log.append(event(3));
  ticks += 1500;
  const next = await log.append(event(4));
  assert.ok(logged.some(([, name]) => name === 'audit-reopened'));
  const onDisk = (await lines(path)).map((l) => JSON.parse(l) as { seq: number; action: string; reason: string | null; details?: Record<string, unknown> });
  assert.deepEqual(onDisk.map((e) => [e.seq, e.action, e.reason]), [
    [1, 'audit-gap', 'deleted'],
    [2, 'mailbox.set', null],
  ]);
  assert.deepEqual(onDisk[0]!.details?.['missing'], { from: 1, to: 4 });
  assert.equal(onDisk[0]!.details?.['detected'], 'running');
  assert.equal(next.seq, 2);
  const check = await log.verify();
  assert.ok(!check.ok && /recorded break/.test(check.problem));
});
