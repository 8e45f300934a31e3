// The bounded maps at their bound, in this process: a new key each time (a flood of client
// addresses, a read cache being filled) against touches of keys already there, in the same run.
// A new key drops the oldest entry, and finding the oldest must not cost a scan of the entries
// dropped before it (core/map-front.ts): the ratio of the two stays near 1 whatever the bound.
import { Recent } from '../src/store/recent.js';
import { ReadCache } from '../src/store/postgres/cache.js';
import { median, round } from './stats.js';

const BOUND = 100_000;
const TOUCHES = 200_000;
const RUNS = 5;

function nsPerOp(run: () => void): number {
  const t = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t) / TOUCHES;
}

/** ns per touch of Recent: [new keys, keys already there]. */
function recentRun(): [number, number] {
  const r = new Recent<string, number>(BOUND);
  const keys = Array.from({ length: BOUND + 2 * TOUCHES }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
  for (let i = 0; i < BOUND; i++) r.touch(keys[i]!, i);
  const flood = nsPerOp(() => {
    for (let i = BOUND; i < BOUND + TOUCHES; i++) r.touch(keys[i]!, i);
  });
  // The keys held now are the last BOUND of the flood: touched again, in an order of their own.
  const repeat = nsPerOp(() => {
    for (let i = 0; i < TOUCHES; i++) r.touch(keys[TOUCHES + ((i * 7919) % BOUND)]!, i);
  });
  return [flood, repeat];
}

/** ns per fill of the read cache: [new keys, keys already there]. */
function cacheRun(): [number, number] {
  const c = new ReadCache({ ttlMs: 3_600_000, entries: BOUND });
  c.setActive(true);
  const keys = Array.from({ length: BOUND + TOUCHES }, (_, i) => `m:u${i}@example.org`);
  for (let i = 0; i < BOUND; i++) c.fill(keys[i]!, c.ticket(), i);
  const flood = nsPerOp(() => {
    for (let i = BOUND; i < BOUND + TOUCHES; i++) c.fill(keys[i]!, c.ticket(), i);
  });
  const repeat = nsPerOp(() => {
    for (let i = 0; i < TOUCHES; i++) c.fill(keys[TOUCHES + ((i * 7919) % BOUND)]!, c.ticket(), i);
  });
  return [flood, repeat];
}

export function structuresPhase(out: Record<string, number>): string {
  const recent: [number, number][] = [];
  const cache: [number, number][] = [];
  for (let i = 0; i < RUNS; i++) {
    recent.push(recentRun());
    cache.push(cacheRun());
  }
  const med = (runs: [number, number][], k: 0 | 1) => median(runs.map((r) => r[k]));
  out['bounded_recent_new_ns'] = round(med(recent, 0), 0);
  out['bounded_recent_repeat_ns'] = round(med(recent, 1), 0);
  out['bounded_cache_new_ns'] = round(med(cache, 0), 0);
  out['bounded_cache_repeat_ns'] = round(med(cache, 1), 0);
  out['bounded_flood_ratio'] = round(Math.max(med(recent, 0) / med(recent, 1), med(cache, 0) / med(cache, 1)));
  return `bounded maps at ${BOUND} entries: a new key ${out['bounded_recent_new_ns']} ns against a repeat ${out['bounded_recent_repeat_ns']} ns (Recent), a fill ${out['bounded_cache_new_ns']} against ${out['bounded_cache_repeat_ns']} ns (read cache)`;
}
