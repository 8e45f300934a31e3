// The anchor: a stream's head (seq and hash of the last line written) and floor (seq of the oldest
// line rotation has kept), saved outside the audit files (in the store), so that lines cut from
// the end, files removed or a rewritten end are found after a restart too.
//
// The anchor is saved only after the lines it names are on disk, so it is never ahead of the
// files: a crash leaves it behind at worst, which the start check accepts when the disk passes
// through it. Saves never hold up an answer: after a batch with an awaited line the head is saved
// at once (one save in flight, the next coalesced behind it, so they share the store's group
// commits); after lines nobody awaits (the login fast path) at most once per interval. The lines
// written after the last save are the ones a crash plus a removal could take undetected.

export interface Anchor {
  seq: number;
  hash: string;
  floor: number;
}

/** Where anchors are kept (the daemon's store). */
export interface AnchorStore {
  load(): unknown;
  save(anchor: Anchor): Promise<unknown>;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The anchor in `value`, or null when it is not one (absent values are the caller's business). */
export function parseAnchor(value: unknown): Anchor | null {
  if (typeof value !== 'object' || value === null) return null;
  const { seq, hash, floor } = value as Record<string, unknown>;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return null;
  if (typeof hash !== 'string' || !HEX64.test(hash)) return null;
  if (typeof floor !== 'number' || !Number.isSafeInteger(floor) || floor < 1 || floor > seq + 1) return null;
  return { seq, hash, floor };
}

function same(a: Anchor | null, b: Anchor): boolean {
  return a !== null && a.seq === b.seq && a.hash === b.hash && a.floor === b.floor;
}

export class Anchorer {
  readonly #store: AnchorStore;
  readonly #current: () => Anchor;
  readonly #onError: (error: unknown) => void;
  readonly #clock: () => number;
  readonly #intervalMs: number;
  #saved: Anchor | null = null;
  #savedAt = -Infinity;
  #saving: Promise<void> | null = null;
  /** Saves asked for while one was in flight: at once after it (now) or within the interval (soon). */
  #again = false;
  #later = false;
  #timer: NodeJS.Timeout | null = null;

  /** `current` gives the head and floor as they are on disk now; `clock` is a steady clock. */
  constructor(store: AnchorStore, current: () => Anchor, onError: (error: unknown) => void, clock: () => number, intervalMs = 1000) {
    this.#store = store;
    this.#current = current;
    this.#onError = onError;
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  /** The anchor as last saved (or loaded). */
  set saved(anchor: Anchor | null) {
    this.#saved = anchor;
  }

  /** Saves the current head as soon as the save in flight (if any) is done. */
  now(): void {
    if (this.#saving !== null) this.#again = true;
    else this.#start();
  }

  /** Saves the current head within the interval of the last save (lines nobody awaits). */
  soon(): void {
    if (this.#timer !== null) return;
    if (this.#saving !== null) {
      this.#later = true;
      return;
    }
    const wait = this.#savedAt + this.#intervalMs - this.#clock();
    if (wait <= 0) {
      this.#start();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.now();
    }, wait);
    this.#timer.unref();
  }

  /** Saves the current head (if not saved yet) and waits for it. */
  async flush(): Promise<void> {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#later = false;
    this.now();
    while (this.#saving !== null) await this.#saving;
  }

  #start(): void {
    this.#again = false;
    // Cleared in a callback, which runs after this assignment even when the save ends at once.
    this.#saving = this.#saveOnce().finally(() => {
      this.#saving = null;
      if (this.#again) this.#start();
      else if (this.#later) {
        this.#later = false;
        this.soon();
      }
    });
  }

  async #saveOnce(): Promise<void> {
    const anchor = this.#current();
    if (same(this.#saved, anchor)) return;
    try {
      await this.#store.save(anchor);
      this.#saved = anchor;
      this.#savedAt = this.#clock();
    } catch (error) {
      // The next batch tries again; a failed save leaves the anchor behind, never ahead.
      this.#onError(error);
    }
  }
}
