// The bounded maps: the keys in placement order (core/key-queue.ts), whose oldest current key is
// the least recently placed whatever was placed, moved, deleted or cleared; Recent's order of its
// own; the read cache refreshing a key it holds where it is. Their costs at their bound are in
// `npm run bench` (bench/structures.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyQueue } from '../src/core/key-queue.js';
import { Recent } from '../src/store/recent.js';
import { MISS, ReadCache } from '../src/store/postgres/cache.js';

/** A small deterministic generator (xorshift32), so that a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

test('a key queue: the oldest current key, stale items dropped on the way, compacted, cleared', () => {
  const q = new KeyQueue<string>();
  const stamp = new Map<string, number>();
  const live = (k: string, s: number) => stamp.get(k) === s;
  assert.equal(q.oldest(live), undefined);
  for (const [k, s] of [['a', 1], ['b', 2], ['c', 3]] as const) {
    stamp.set(k, s);
    q.push(k, s);
  }
  assert.equal(q.oldest(live), 'a');
  // a moved to the young end: its first item is stale now.
  stamp.set('a', 4);
  q.push('a', 4);
  assert.equal(q.oldest(live), 'b');
  assert.equal(q.length, 3, 'the stale item of a was dropped on the way');
  stamp.delete('b');
  q.shift();
  assert.equal(q.oldest(live), 'c');
  stamp.set('c', 5);
  q.push('c', 5);
  q.compact(live);
  assert.equal(q.length, 2);
  assert.equal(q.oldest(live), 'a');
  q.clear();
  assert.equal(q.length, 0);
  assert.equal(q.oldest(live), undefined);
});

test('random placements, moves, deletes, evictions and clears: always the least recently placed key', () => {
  const random = rng(0x5eed);
  // The reference: a Map whose own order is the placement order (a move deletes and sets again).
  const ref = new Map<number, true>();
  const stamp = new Map<number, number>();
  const q = new KeyQueue<number>();
  const live = (k: number, s: number) => stamp.get(k) === s;
  let next = 0;
  let placed = 0;
  const place = (k: number) => {
    ref.delete(k);
    ref.set(k, true);
    stamp.set(k, ++placed);
    q.push(k, placed);
  };
  for (let step = 0; step < 50_000; step++) {
    const r = random();
    const keys = ref.size;
    if (r < 0.45 || keys === 0) place(next++);
    else if (r < 0.6) place([...ref.keys()][Math.floor(random() * keys)]!);
    else if (r < 0.65) {
      // Deleted from anywhere: its items go stale.
      const k = [...ref.keys()][Math.floor(random() * keys)]!;
      ref.delete(k);
      stamp.delete(k);
    } else if (r < 0.9995) {
      const k = q.oldest(live)!;
      ref.delete(k);
      stamp.delete(k);
      q.shift();
    } else {
      ref.clear();
      stamp.clear();
      q.clear();
    }
    if (q.length > 2 * ref.size + 64) q.compact(live);
    assert.equal(q.oldest(live), ref.keys().next().value, `step ${step}`);
    while (ref.size > 200) {
      const k = q.oldest(live)!;
      ref.delete(k);
      stamp.delete(k);
      q.shift();
    }
  }
});

test('Recent at its bound drops the least recently touched, and sweep stops at the first that matters', () => {
  const r = new Recent<string, number>(3);
  r.touch('a', 1);
  r.touch('b', 2);
  r.touch('c', 3);
  r.touch('a', 4);
  r.touch('d', 5);
  assert.deepEqual([...r].map(([k]) => k), ['c', 'a', 'd'], 'b, the least recently touched, went');
  r.delete('c');
  r.touch('e', 6);
  r.touch('f', 7);
  assert.deepEqual([...r].map(([k]) => k), ['d', 'e', 'f']);
  r.replace('d', 1);
  r.sweep((v) => v < 6);
  assert.deepEqual([...r].map(([k]) => k), ['e', 'f'], 'd (1) swept; e (6) stops the sweep');
  r.sweep(() => true);
  assert.equal(r.size, 0);
  r.touch('g', 8);
  assert.deepEqual([...r].map(([k]) => k), ['g']);
});

test('Recent against a reference list: random touches, replaces, deletes and sweeps', () => {
  const random = rng(0xbead);
  const r = new Recent<number, number>(50);
  let ref: [number, number][] = [];
  for (let step = 0; step < 20_000; step++) {
    const key = Math.floor(random() * 120);
    const op = random();
    if (op < 0.6) {
      ref = ref.filter(([k]) => k !== key);
      ref.push([key, step]);
      if (ref.length > 50) ref.shift();
      r.touch(key, step);
    } else if (op < 0.75) {
      ref = ref.map(([k, v]) => [k, k === key ? -step : v]);
      r.replace(key, -step);
    } else if (op < 0.9) {
      const had = ref.find(([k]) => k === key);
      ref = ref.filter(([k]) => k !== key);
      assert.equal(r.delete(key), had?.[1]);
    } else {
      const cut = step - 200;
      while (ref.length > 0 && Math.abs(ref[0]![1]) < cut) ref.shift();
      r.sweep((v) => Math.abs(v) < cut);
    }
    assert.deepEqual([...r], ref, `step ${step}`);
    assert.equal(r.size, ref.length);
  }
});

test('one key touched again and again keeps its one entry, the youngest', () => {
  const r = new Recent<string, number>(1000);
  for (let i = 0; i < 999; i++) r.touch(`s${i}`, i);
  for (let i = 0; i < 50_000; i++) r.touch('again', i);
  assert.equal(r.size, 1000);
  assert.equal(r.get('again'), 49_999);
  assert.deepEqual([...r].at(-1), ['again', 49_999]);
  assert.deepEqual([...r][0], ['s0', 0]);
});

test('the read cache refreshes a key it holds where it is: value and time-to-live', () => {
  let t = 0;
  const c = new ReadCache({ ttlMs: 100, entries: 4, clock: () => t });
  c.setActive(true);
  for (const k of ['g', 'a', 'b']) c.fill(k, c.ticket(), k);
  t = 90;
  c.fill('g', c.ticket(), 'g2');
  t = 150;
  assert.equal(c.get('a'), MISS, 'past its time');
  assert.equal(c.get('g'), 'g2', 'the refresh gave it a new time-to-live');
  // Filled again and again, it stays one entry, and the bound still drops the least recently used.
  for (let i = 0; i < 1000; i++) c.fill('g', c.ticket(), i);
  for (const k of ['c', 'd', 'e', 'f']) c.fill(k, c.ticket(), k);
  assert.equal(c.size, 4);
  assert.equal(c.get('g'), MISS, 'g was not used since c, d, e and f came');
  // The same key invalidated again and again: reads that started before the last one still lose.
  const before = c.ticket();
  for (let i = 0; i < 100; i++) c.invalidate('k');
  c.fill('k', before, 1);
  assert.equal(c.get('k'), MISS);
  c.fill('k', c.ticket(), 2);
  assert.equal(c.get('k'), 2);
});

test('a flood of new keys through Recent keeps exactly the newest, at any length', () => {
  const r = new Recent<string, number>(1000);
  for (let i = 0; i < 50_000; i++) r.touch(`s${i}`, i);
  assert.equal(r.size, 1000);
  assert.deepEqual([...r.values()], Array.from({ length: 1000 }, (_, i) => 49_000 + i));
});

test('the read cache at its bound, filled with new keys again and again: the newest kept, the invalidations bounded', () => {
  const c = new ReadCache({ ttlMs: 60_000, entries: 100 });
  c.setActive(true);
  for (let i = 0; i < 20_000; i++) c.fill(`m:${i}`, c.ticket(), i);
  assert.equal(c.size, 100);
  for (let i = 19_900; i < 20_000; i++) assert.equal(c.get(`m:${i}`), i);
  assert.equal(c.get('m:19899'), MISS);
  // Past the invalidations kept (10,000), the oldest are forgotten and an older ticket loses
  // whatever its key; a ticket taken after them still fills.
  const old = c.ticket();
  for (let i = 0; i < 10_001; i++) c.invalidate(`k:${i}`);
  c.fill('m:old-ticket', old, 1);
  assert.equal(c.get('m:old-ticket'), MISS);
  c.fill('m:new-ticket', c.ticket(), 2);
  assert.equal(c.get('m:new-ticket'), 2);
  assert.equal(c.size, 100);
});
