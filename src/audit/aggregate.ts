// Fast-path allows (no factor needed) counted instead of written one by one: most logins are
// these, and a line each was a fifth of such a login's cost and let login volume rotate the log.
//
// Per window (a minute by default, aligned to the clock), the first allow of a mailbox, client
// address, reason, action, result and caller (actor and socket) is written at once, as a line of
// its own. The further ones are counted, and written when the window ends as one line like the first with
// details {"count": n, "first": ISO time, "last": ISO time}: n more such logins, the first and
// last of them at those times. Memory is bounded: when `maxKeys` keys are counted, the counts are
// written at once and counting starts over. Whatever is counted is written on flush() (shutdown).

import type { AuditEvent } from './entry.js';

export const DEFAULT_MAX_KEYS = 10_000;

interface Slot {
  event: AuditEvent;
  count: number;
  first: number;
  last: number;
}

export interface FastPathCounterOptions {
  /** The window in milliseconds; 0 writes every allow as a line of its own. */
  windowMs: number;
  maxKeys?: number;
  clock: () => number;
  /** Where lines go (the log's record()). */
  write: (event: AuditEvent) => void;
}

export class FastPathCounter {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #clock: () => number;
  readonly #write: (event: AuditEvent) => void;
  readonly #slots = new Map<string, Slot>();
  #window = -1;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: FastPathCounterOptions) {
    if (!Number.isSafeInteger(options.windowMs) || options.windowMs < 0) throw new RangeError('FastPathCounter: windowMs must be a non-negative integer');
    this.#windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    this.#clock = options.clock;
    this.#write = options.write;
  }

  /** Keys counted in the current window. */
  get size(): number {
    return this.#slots.size;
  }

  note(event: AuditEvent): void {
    if (this.#windowMs === 0) {
      this.#write(event);
      return;
    }
    const now = this.#clock();
    const window = Math.floor(now / this.#windowMs);
    if (window !== this.#window) {
      this.flush();
      this.#window = window;
    }
    // A newline is in no normalised address, IP address, reason or actor. The action and result
    // are part of the key: verify's allows and login.check's answers share reasons.
    const key = `${event.mailbox}\n${event.ip}\n${event.reason}\n${event.actor}\n${event.socket}\n${event.action}\n${event.result}`;
    const slot = this.#slots.get(key);
    if (slot !== undefined) {
      if (slot.count === 0) slot.first = now;
      slot.count += 1;
      slot.last = now;
      return;
    }
    if (this.#slots.size >= this.#maxKeys) {
      this.flush();
      this.#window = window;
    }
    this.#slots.set(key, { event, count: 0, first: 0, last: 0 });
    this.#write(event);
    if (this.#timer === null) {
      this.#timer = setTimeout(() => this.flush(), this.#windowMs - (now % this.#windowMs));
      this.#timer.unref();
    }
  }

  /** Writes the counts of the current window and starts a new one. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#window = -1;
    for (const { event, count, first, last } of this.#slots.values()) {
      if (count === 0) continue;
      this.#write({ ...event, details: { count, first: new Date(first).toISOString(), last: new Date(last).toISOString() } });
    }
    this.#slots.clear();
  }
}
