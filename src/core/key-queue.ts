// The keys of a bounded map in the order they were placed, so that the map can drop its oldest
// entry in amortized constant time.
//
// Not the Map's own order: `map.keys().next()` scans from the first place of V8's table, and a
// deleted entry's place stays empty until the table is next rebuilt. A map that drops its oldest
// entry for each new one (a bounded cache being filled) soon has tens of thousands of empty places
// at its front, and every such call scans them all: measured at 100,000 entries, 60 µs a call. Nor
// a Map iterator kept between calls: an iterator holds the table it was made on, and a rebuilt
// table links to its successor, so an iterator that stands still while the map grows or is
// rebuilt keeps every table since alive (measured: 27 MB for a map of 111,000 keys).
//
// Each key is pushed with a stamp when placed. An owner that moves entries (pushes a key again)
// says which stamp is current (`live`); an item whose stamp is no longer its key's is stale and
// is dropped when met, or by `compact` when stale items pile up.

export class KeyQueue<K> {
  private keys: (K | undefined)[] = [];
  private stamps: number[] = [];
  private head = 0;

  /** Items held, stale ones included. */
  get length(): number {
    return this.keys.length - this.head;
  }

  push(key: K, stamp = 0): void {
    this.keys.push(key);
    this.stamps.push(stamp);
  }

  /** The oldest key `live` says is current, stale items before it dropped; undefined when none is left. */
  oldest(live: (key: K, stamp: number) => boolean): K | undefined {
    while (this.head < this.keys.length) {
      const key = this.keys[this.head] as K;
      if (live(key, this.stamps[this.head]!)) return key;
      this.shift();
    }
    return undefined;
  }

  /** Removes and answers the oldest item, current or not: for an owner that never pushes a key twice. */
  take(): K | undefined {
    const key = this.keys[this.head];
    this.shift();
    return key;
  }

  /** Drops the oldest item (the key `oldest` answered, once its owner has deleted it). */
  shift(): void {
    if (this.head >= this.keys.length) return;
    this.keys[this.head] = undefined;
    this.head++;
    if (this.head === this.keys.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.keys.length) this.rebuild(() => true);
  }

  /** Keeps only the items `live` says are current, in their order: O(length), for an owner whose stale items piled up. */
  compact(live: (key: K, stamp: number) => boolean): void {
    this.rebuild(live);
  }

  clear(): void {
    this.keys = [];
    this.stamps = [];
    this.head = 0;
  }

  private rebuild(keep: (key: K, stamp: number) => boolean): void {
    const keys: K[] = [];
    const stamps: number[] = [];
    for (let i = this.head; i < this.keys.length; i++) {
      const key = this.keys[i] as K;
      if (keep(key, this.stamps[i]!)) {
        keys.push(key);
        stamps.push(this.stamps[i]!);
      }
    }
    this.keys = keys;
    this.stamps = stamps;
    this.head = 0;
  }
}
