// A map that remembers the most recently touched entries: touching an entry moves it to the young
// end; past `max` entries the oldest goes, in amortized O(1) (core/map-front.ts), so that a flood of keys (addresses, sources)
// costs neither unbounded memory nor scans. `sweep` drops entries at the old end while a predicate
// says they no longer matter, stopping at the first that does: its cost is what it drops, and one.
import { MapFront } from '../core/map-front.js';

export class Recent<K, V> {
  private readonly entries = new Map<K, V>();
  private readonly front = new MapFront(this.entries);

  constructor(private readonly max: number) {}

  get(key: K): V | undefined {
    return this.entries.get(key);
  }

  /** Sets `value` as the most recently touched entry. */
  touch(key: K, value: V): void {
    this.front.leaving(key);
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.drop(this.front.oldest() as K);
  }

  /** Replaces the value without moving the entry (it was not touched by its owner). */
  replace(key: K, value: V): void {
    if (this.entries.has(key)) this.entries.set(key, value);
  }

  delete(key: K): V | undefined {
    const v = this.entries.get(key);
    this.drop(key);
    return v;
  }

  sweep(stale: (value: V, key: K) => boolean): void {
    while (this.entries.size > 0) {
      const key = this.front.oldest() as K;
      if (!stale(this.entries.get(key) as V, key)) break;
      this.drop(key);
    }
  }

  private drop(key: K): void {
    this.front.leaving(key);
    this.entries.delete(key);
  }

  values(): IterableIterator<V> {
    return this.entries.values();
  }

  get size(): number {
    return this.entries.size;
  }

  *[Symbol.iterator](): IterableIterator<[K, V]> {
    yield* this.entries;
  }
}
