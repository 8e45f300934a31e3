// Fast-path allows (no factor needed) counted instead of written one by one: most logins are
// these, and a line each was a fifth of such a login's cost and let login volume rotate the log.
//
// Per window (a minute by default, aligned to the clock), the first allow of a mailbox, client
// address, reason, action, result and caller (actor and socket) is written at once, as a line of
// its own. The further ones are counted, and written when the window ends as one line like the first with
// details {"count": n, "first": ISO time, "last": ISO time}: n more such logins, the first and
// last of them at those times. Memory is bounded: when `maxKeys` keys are counted, the counts are
// written at once and counting starts over. Whatever is counted is written on flush() (shutdown).
//
// The keys live in fixed arrays allocated once, not in a Map of key strings and slot objects: at
// 100,000 mailboxes the keys turn over every fraction of a second, and a slot object, a key string
// and the event kept per key lived just long enough to be promoted to the old generation, where
// they made every scavenge slower and full collections of the large heap more frequent (and high
// survival made V8 promote other short-lived objects of the login with them). Now a repeat
// allocates nothing, and a new key keeps only references to the event's strings (verify passes
// the stored record's own strings where it can, which live on anyway); the event object itself is
// not kept.

import { randomBytes } from 'node:crypto';
import type { AuditActor, AuditEvent, AuditSocket } from './entry.js';

export const DEFAULT_MAX_KEYS = 10_000;
/**
 * Probes of the hash table at most per allow. With the table at most a third full, a longer run
 * is next to impossible by chance; keys made to collide end it early instead, as a flood does,
 * so that no sequence of keys can make one allow cost more than this.
 */
const MAX_PROBES = 64;

export interface FastPathCounterOptions {
  /** The window in milliseconds; 0 writes every allow as a line of its own. */
  windowMs: number;
  maxKeys?: number;
  clock: () => number;
  /** Where lines go (the log's record()). */
  write: (event: AuditEvent) => void;
  /** Seeds the key hash (tests); random by default, so that colliding keys cannot be chosen in advance. */
  seed?: number;
}

type Text = string | null | undefined;

/** FNV-1a over a string's UTF-16 units, continuing from `h`; null and undefined hash apart from any text. */
function hashText(h: number, s: Text): number {
  if (s === null || s === undefined) return Math.imul(h ^ (s === null ? 0x1_0001 : 0x1_0002), 0x0100_0193);
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x0100_0193);
  // The length ends each field: ("ab", "c") and ("a", "bc") hash apart.
  return Math.imul(h ^ (s.length | 0x2_0000), 0x0100_0193);
}

/** The hash of a counted key (exported for the tests, which make keys collide). */
export function keyHash(seed: number, mailbox: Text, ip: Text, reason: Text, actor: Text, socket: Text, action: string, result: string): number {
  return hashText(hashText(hashText(hashText(hashText(hashText(hashText(seed, mailbox), ip), reason), actor), socket), action), result);
}

export class FastPathCounter {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #clock: () => number;
  readonly #write: (event: AuditEvent) => void;
  readonly #seed: number;
  /** Open addressing, linear probing: 1 + the key's index, or 0 for an empty place. */
  readonly #table: Int32Array;
  /** The full hash of the key at each place, so that most mismatches cost no string comparison. */
  readonly #hashes: Int32Array;
  readonly #mask: number;
  // The keys, in the order they came (index 0 … #size - 1), and what is counted of each.
  readonly #mailbox: Text[];
  readonly #ip: Text[];
  readonly #reason: Text[];
  readonly #actor: AuditActor[];
  readonly #socket: (AuditSocket | undefined)[];
  readonly #action: string[];
  readonly #result: string[];
  readonly #country: Text[];
  readonly #count: Float64Array;
  readonly #first: Float64Array;
  readonly #last: Float64Array;
  #size = 0;
  #window = -1;
  #timer: NodeJS.Timeout | null = null;

  constructor(options: FastPathCounterOptions) {
    if (!Number.isSafeInteger(options.windowMs) || options.windowMs < 0) throw new RangeError('FastPathCounter: windowMs must be a non-negative integer');
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1 || maxKeys > 1 << 24) throw new RangeError('FastPathCounter: maxKeys must be an integer from 1 to 2^24');
    this.#windowMs = options.windowMs;
    this.#maxKeys = maxKeys;
    this.#clock = options.clock;
    this.#write = options.write;
    this.#seed = options.seed ?? randomBytes(4).readInt32LE(0);
    // Nothing is counted with a window of 0: no table either.
    const keys = options.windowMs === 0 ? 0 : maxKeys;
    let places = 16;
    while (places < 3 * keys) places *= 2;
    this.#table = new Int32Array(keys === 0 ? 0 : places);
    this.#hashes = new Int32Array(keys === 0 ? 0 : places);
    this.#mask = places - 1;
    // Filled, so that V8 keeps them as packed arrays of the one size they will ever have.
    this.#mailbox = new Array<Text>(keys).fill(null);
    this.#ip = new Array<Text>(keys).fill(null);
    this.#reason = new Array<Text>(keys).fill(null);
    this.#actor = new Array<AuditActor>(keys).fill('hook');
    this.#socket = new Array<AuditSocket | undefined>(keys).fill(null);
    this.#action = new Array<string>(keys).fill('');
    this.#result = new Array<string>(keys).fill('');
    this.#country = new Array<Text>(keys).fill(null);
    this.#count = new Float64Array(keys);
    this.#first = new Float64Array(keys);
    this.#last = new Float64Array(keys);
  }

  /** Keys counted in the current window. */
  get size(): number {
    return this.#size;
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
    // The action and result are part of the key: verify's allows and login.check's answers share reasons.
    const { mailbox, ip, reason, actor, socket, action, result } = event;
    const h = keyHash(this.#seed, mailbox, ip, reason, actor, socket, action, result);
    let place = h & this.#mask;
    let probes = 0;
    for (;;) {
      const at = this.#table[place]!;
      if (at === 0) break;
      const i = at - 1;
      if (this.#hashes[place] === h && this.#mailbox[i] === mailbox && this.#ip[i] === ip && this.#reason[i] === reason && this.#actor[i] === actor && this.#socket[i] === socket && this.#action[i] === action && this.#result[i] === result) {
        if (this.#count[i] === 0) this.#first[i] = now;
        this.#count[i] = this.#count[i]! + 1;
        this.#last[i] = now;
        return;
      }
      if (++probes >= MAX_PROBES) break;
      place = (place + 1) & this.#mask;
    }
    if (this.#size >= this.#maxKeys || probes >= MAX_PROBES) {
      this.flush();
      this.#window = window;
      place = h & this.#mask;
    }
    const i = this.#size++;
    this.#table[place] = i + 1;
    this.#hashes[place] = h;
    this.#mailbox[i] = mailbox;
    this.#ip[i] = ip;
    this.#reason[i] = reason;
    this.#actor[i] = actor;
    this.#socket[i] = socket;
    this.#action[i] = event.action;
    this.#result[i] = event.result;
    this.#country[i] = event.country;
    this.#count[i] = 0;
    this.#write(event);
    if (this.#timer === null) this.#arm(now);
  }

  // A method of its own: a closure in note() would make V8 allocate a context on every call.
  #arm(now: number): void {
    this.#timer = setTimeout(() => this.flush(), this.#windowMs - (now % this.#windowMs));
    this.#timer.unref();
  }

  /** Writes the counts of the current window and starts a new one. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#window = -1;
    const n = this.#size;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const count = this.#count[i]!;
      if (count === 0) continue;
      const event: AuditEvent = {
        actor: this.#actor[i]!,
        socket: this.#socket[i],
        mailbox: this.#mailbox[i],
        action: this.#action[i]!,
        result: this.#result[i]!,
        reason: this.#reason[i],
        ip: this.#ip[i],
        country: this.#country[i],
        details: { count, first: new Date(this.#first[i]!).toISOString(), last: new Date(this.#last[i]!).toISOString() },
      };
      this.#write(event);
    }
    this.#size = 0;
    this.#table.fill(0);
    // The strings are let go: a quiet daemon keeps none of the last window's logins alive.
    this.#mailbox.fill(null, 0, n);
    this.#ip.fill(null, 0, n);
    this.#reason.fill(null, 0, n);
    this.#country.fill(null, 0, n);
  }
}
