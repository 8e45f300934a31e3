// The bounded maps, in this process, against touches of keys already there in the same run:
// - a new key each time at the bound (a flood of client addresses, a full read cache being
//   filled): the oldest entry goes, and finding it must not cost a scan of the entries dropped
//   before it (core/key-queue.ts);
// - one key touched again and again (one client's every attempt; the global settings filled
//   again with each mailbox a cold cache reads): no key of the Map may be deleted and set again
//   for it, since V8 keeps deleted entries in their key's hash chain until the table is rebuilt
//   (store/recent.ts, store/postgres/cache.ts).
// Each ratio stays near 1 whatever the bound; the report shows the largest.
import { Recent } from '../src/store/recent.js';
import { ReadCache } from '../src/store/postgres/cache.js';
import { median, round } from './stats.js';

interface Size {
  bound: number;
  touches: number;
}
const FULL: Size = { bound: 100_000, touches: 100_000 };
const QUICK: Size = { bound: 10_000, touches: 10_000 };
const RUNS = 3;

function nsPerOp(run: () => void, ops: number): number {
  const t = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t) / ops;
}

interface Costs {
  /** A new key at the bound. */
  flood: number;
  /** A key already there, in an order of its own. */
  repeat: number;
  /** One key again and again (Recent), or a cold cache's fill of the global entry with each new key (per fill). */
  same: number;
}

function recentRun({ bound, touches }: Size): Costs {
  const r = new Recent<string, number>(bound);
  const keys = Array.from({ length: bound + touches }, (_, i) => `198.51.${i >> 8}.${i & 255}`);
  for (let i = 0; i < bound; i++) r.touch(keys[i]!, i);
  const flood = nsPerOp(() => {
    for (let i = bound; i < bound + touches; i++) r.touch(keys[i]!, i);
  }, touches);
  // The keys held now are the last bound of the flood.
  const repeat = nsPerOp(() => {
    for (let i = 0; i < touches; i++) r.touch(keys[touches + ((i * 7919) % bound)]!, i);
  }, touches);
  const same = nsPerOp(() => {
    for (let i = 0; i < touches; i++) r.touch(keys[touches]!, i);
  }, touches);
  return { flood, repeat, same };
}

function cacheRun({ bound, touches }: Size): Costs {
  const keys = Array.from({ length: bound + touches }, (_, i) => `m:u${i}@example.org`);
  // A cold cache as the logins of a first pass fill it: the global and domain entries, then the mailbox's.
  const cold = new ReadCache({ ttlMs: 3_600_000, entries: bound + 1000 });
  cold.setActive(true);
  const same = nsPerOp(() => {
    for (let i = 0; i < bound; i++) {
      const ticket = cold.ticket();
      cold.fill('g', ticket, 0);
      cold.fill('d:example.org', ticket, 0);
      cold.fill(keys[i]!, ticket, i);
    }
  }, 3 * bound);
  const c = new ReadCache({ ttlMs: 3_600_000, entries: bound });
  c.setActive(true);
  for (let i = 0; i < bound; i++) c.fill(keys[i]!, c.ticket(), i);
  const flood = nsPerOp(() => {
    for (let i = bound; i < bound + touches; i++) c.fill(keys[i]!, c.ticket(), i);
  }, touches);
  const repeat = nsPerOp(() => {
    for (let i = 0; i < touches; i++) c.fill(keys[touches + ((i * 7919) % bound)]!, c.ticket(), i);
  }, touches);
  return { flood, repeat, same };
}

export function structuresPhase(out: Record<string, number>, quick: boolean): string {
  const size = quick ? QUICK : FULL;
  const recent: Costs[] = [];
  const cache: Costs[] = [];
  for (let i = 0; i < RUNS; i++) {
    recent.push(recentRun(size));
    cache.push(cacheRun(size));
  }
  const med = (runs: Costs[], k: keyof Costs) => median(runs.map((r) => r[k]));
  for (const [name, runs] of [['recent', recent], ['cache', cache]] as const) {
    for (const k of ['flood', 'repeat', 'same'] as const) out[`bounded_${name}_${k}_ns`] = round(med(runs, k), 0);
  }
  const ratios = [recent, cache].flatMap((runs) => [med(runs, 'flood') / med(runs, 'repeat'), med(runs, 'same') / med(runs, 'repeat')]);
  out['bounded_flood_ratio'] = round(Math.max(...ratios));
  const f = (name: string) => `new key ${out[`bounded_${name}_flood_ns`]} ns, one key again ${out[`bounded_${name}_same_ns`]} ns, against a key already there ${out[`bounded_${name}_repeat_ns`]} ns`;
  return `bounded maps at ${size.bound} entries: Recent: ${f('recent')}; read cache fill: ${f('cache')}`;
}
