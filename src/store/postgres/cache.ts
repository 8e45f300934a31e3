// The read-mostly data a daemon keeps from the shared database, so that verify's fast path (most
// logins) is answered without a round trip: the global settings ('g'), a domain's ('d:<domain>'),
// named documents of CACHED_META ('k:<key>') and a mailbox's read-mostly part ('m:<address>': what
// the fast path decides on, cached-reads.ts; never its failures, last accepted step, open code,
// pending secret, recovery codes, app passwords or notices).
// The keys are the payloads of migrations/005_change_notices.sql: the writing transaction
// announces each change on CACHE_CHANNEL, the listener (listener.ts) drops the entry.
//
// Three nets under that, since a notice can be late or lost:
// - an entry lives at most ttlMs (the safety net for a listener that hangs without a word);
// - nothing is served or kept while the listener is not listening, and everything is flushed
//   when it starts (again): notices sent meanwhile were lost;
// - a read that started before a change was announced does not put what it read into the cache
//   (tickets below), so a notice that overtakes the read cannot be undone by it.
// Bounded: at most `entries` entries, the least recently used going first (nearly: below); a
// daemon never loads more of the store than the logins it answers ask for.
import { KeyQueue } from '../../core/key-queue.js';
import { POLICY_KEY } from '../../services/policy.js';

export const CACHE_CHANNEL = 'memfa_cache';

/** The named documents worth caching: read on every request that needs the provider policy. */
export const CACHED_META: ReadonlySet<string> = new Set([POLICY_KEY]);

/** What a key holds: its read-mostly value, or null for an object known not to exist (a mailbox or domain not stored). */
export type Cached = unknown;

/** A cache miss; a stored null (known absent) is a hit. */
export const MISS: unique symbol = Symbol('miss');

export interface CacheOptions {
  /** How long an entry may be served, in ms (store.postgres.cacheTtlMs). */
  ttlMs: number;
  /** At most this many entries (store.postgres.cacheEntries). */
  entries: number;
  /** A monotonic clock in ms. */
  clock?: () => number;
}

/** Expired entries a fill drops at most, besides those over the bound. */
const SWEEP_PER_FILL = 2;
/** Invalidations remembered for the tickets of reads in flight; past it, older tickets all lose. */
const DROPPED_KEPT = 10_000;

interface Entry {
  value: Cached;
  until: number;
  /** `placed` when the entry last went to the young end of the map. */
  placed: number;
}

export class ReadCache {
  private readonly map = new Map<string, Entry>();
  /** The keys in the order they were placed (core/key-queue.ts): an item is current while its stamp is its entry's `placed`. */
  private readonly order = new KeyQueue<string>();
  private readonly current = (key: string, placed: number): boolean => this.map.get(key)?.placed === placed;
  /** Counts placements at the young end of `order` (new entries and the moves of keepYoung). */
  private placed = 0;
  /** Bumped by every invalidation and flush: a read's ticket is the value when it started. */
  private seq = 0;
  /** key -> seq of its last invalidation, for reads still in flight (bounded: DROPPED_KEPT). */
  private readonly dropped = new Map<string, number>();
  /** The keys of `dropped` in the order they came (each once: a key dropped again keeps its place). */
  private readonly droppedOrder = new KeyQueue<string>();
  /** A ticket below this loses whatever its key: a flush, or invalidations forgotten. */
  private floor = 0;
  private active = false;
  private readonly clock: () => number;
  readonly ttlMs: number;
  readonly maxEntries: number;

  constructor(options: CacheOptions) {
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.entries;
    this.clock = options.clock ?? (() => performance.now());
  }

  get size(): number {
    return this.map.size;
  }

  /** Whether entries are served: only while the listener is listening. */
  get serving(): boolean {
    return this.active;
  }

  /** The listener started (true) or lost (false) its channel: either way nothing cached holds. */
  setActive(active: boolean): void {
    this.flush();
    this.active = active;
  }

  /** Taken before a read whose result may go into the cache (fill). */
  ticket(): number {
    return this.seq;
  }

  /** The value of `key`, or MISS (expired, never read, dropped, or not serving). */
  get(key: string): Cached | typeof MISS {
    if (!this.active) return MISS;
    const e = this.map.get(key);
    // Past its time (or invalidated): left where it is, for a fill to refresh in place or the
    // sweep of fill to drop (see keepYoung for why keys are not deleted and set again).
    if (e === undefined || this.clock() >= e.until) return MISS;
    this.keepYoung(key, e);
    return e.value;
  }

  /**
   * Most recently used last, in `order`: the oldest current item is the eviction's. An entry among
   * the younger half is left where it is: a move on every hit (several per login) cost the fast
   * path more than all of its decision, and an entry used again before half the bound has been
   * placed after it is still far from eviction. No key of the Map is deleted and set again for
   * it: V8 keeps a deleted entry in its key's hash chain until the table is rebuilt, and the keys
   * every login reads (the global settings, a domain's) would grow chains that every lookup walks.
   */
  private keepYoung(key: string, e: Entry): void {
    if (this.placed - e.placed > this.maxEntries >> 1) this.place(key, e);
  }

  private place(key: string, e: Entry): void {
    e.placed = ++this.placed;
    this.order.push(key, e.placed);
    // Each move leaves a stale item behind; while nothing is evicted nothing drops them.
    if (this.order.length > 2 * this.map.size + 1024) this.order.compact(this.current);
  }

  /** Keeps what a read that started at `ticket` found for `key`, unless `key` changed since. */
  fill(key: string, ticket: number, value: Cached): void {
    if (!this.active || ticket < this.floor || (this.dropped.get(key) ?? -1) > ticket) return;
    const now = this.clock();
    // A key held already is refreshed where it is (keepYoung): each miss of a mailbox fills the
    // global and domain entries again.
    const held = this.map.get(key);
    if (held !== undefined) {
      held.value = value;
      held.until = now + this.ttlMs;
      this.keepYoung(key, held);
    } else {
      const e: Entry = { value, until: now + this.ttlMs, placed: 0 };
      this.map.set(key, e);
      this.place(key, e);
    }
    // The least recently used first: past the bound, and (a few per fill) those past their time,
    // so that a quiet daemon does not keep a burst's entries until the bound pushes them out.
    for (let swept = 0; ; swept++) {
      const oldest = this.order.oldest(this.current);
      if (oldest === undefined) break;
      if (this.map.size <= this.maxEntries && (swept >= SWEEP_PER_FILL || this.map.get(oldest)!.until > now)) break;
      this.map.delete(oldest);
      this.order.shift();
    }
  }

  /** `key` changed (announced, or written by this daemon): dropped, and reads in flight lose. */
  invalidate(key: string): void {
    this.seq++;
    // Marked, not deleted: a mailbox checked again and again (each check invalidates it, each read
    // of its view fills it) would otherwise be deleted and set once per check.
    const e = this.map.get(key);
    if (e !== undefined) {
      e.until = -Infinity;
      e.value = undefined;
    }
    // A key dropped before keeps its place, with its new seq (no delete and set: see keepYoung).
    // So the one forgotten first may not have the lowest seq, and the floor may rise further than
    // it must: reads in flight then lose, which costs a miss, never a stale entry.
    const again = this.dropped.has(key);
    this.dropped.set(key, this.seq);
    if (again) return;
    this.droppedOrder.push(key);
    if (this.dropped.size > DROPPED_KEPT) {
      const oldest = this.droppedOrder.take()!;
      this.floor = Math.max(this.floor, this.dropped.get(oldest)!);
      this.dropped.delete(oldest);
    }
  }

  /** Everything dropped, and every read in flight loses. */
  flush(): void {
    this.seq++;
    this.floor = this.seq;
    this.map.clear();
    this.order.clear();
    this.dropped.clear();
    this.droppedOrder.clear();
  }
}
