// Keeping a stream's chain honest against its files being cut, removed or rewritten: the check at
// open against the anchor in the store, the same check after a reopen against the head held in
// memory, and anchoring the head and floor as lines are written (anchor.ts, reconcile.ts).

import { Anchorer, parseAnchor, type Anchor, type AnchorStore } from './anchor.js';
import { lookupLine, type DiskState } from './disk.js';
import { GENESIS_PREV, type AuditEvent } from './entry.js';
import type { EventSink, RateLimitedEvents } from './losses.js';
import { gapLine, GAP_ACTION, reconcile, type Gap } from './reconcile.js';

/** The head the next line chains to, and the floor: shared with the log, which moves them. */
export interface Chain {
  seq: number;
  prev: string;
  floor: number;
}

export class ChainGuard {
  /** Breaks recorded since the log was opened. */
  gaps = 0;
  readonly #path: string;
  readonly #keep: number;
  readonly #chain: Chain;
  readonly #onEvent: EventSink;
  readonly #store: AnchorStore | undefined;
  readonly #anchorer: Anchorer | null;
  readonly #anchorEveryBatch: boolean;

  constructor(path: string, keep: number, chain: Chain, onEvent: EventSink, limited: RateLimitedEvents, clock: () => number, store: AnchorStore | undefined, anchorEveryBatch = true) {
    this.#anchorEveryBatch = anchorEveryBatch;
    this.#path = path;
    this.#keep = keep;
    this.#chain = chain;
    this.#onEvent = onEvent;
    this.#store = store;
    const onError = (error: unknown) => limited.emit('error', 'audit-anchor-failed', { file: path, error: (error as Error).message });
    this.#anchorer = store === undefined ? null : new Anchorer(store, () => this.anchor(), onError, clock);
  }

  anchor(): Anchor {
    return { seq: this.#chain.seq, hash: this.#chain.prev, floor: this.#chain.floor };
  }

  /** At open: the lines recording breaks found against the anchor (none without a store). */
  async atOpen(disk: DiskState): Promise<AuditEvent[]> {
    if (this.#store === undefined || this.#anchorer === null) return [];
    const stored = this.#store.load();
    if (stored === undefined || stored === null) {
      // First start with this store (or with an audit log from before anchoring): the head on
      // disk is taken as it is.
      this.#onEvent('info', 'audit-anchored', { file: this.#path, seq: this.#chain.seq, floor: this.#chain.floor });
      return [];
    }
    const anchor = parseAnchor(stored);
    if (anchor === null) return [this.#gapLine({ reason: 'anchor-invalid', missing: null, expectedSeq: null, foundSeq: this.#chain.seq }, null, 'start')];
    this.#anchorer.saved = anchor;
    return this.#reconcile(disk, anchor, 'start');
  }

  /** After <path> was reopened: the lines recording breaks against the head held until then. */
  afterReopen(disk: DiskState, expected: Anchor): Promise<AuditEvent[]> {
    return this.#reconcile(disk, expected, 'running');
  }

  /** Compares the disk with `expected`; sets head and floor from the disk; the lines to record. */
  async #reconcile(disk: DiskState, expected: Anchor, when: 'start' | 'running'): Promise<AuditEvent[]> {
    const found = { head: disk.head, oldestSeq: disk.oldestSeq, beyondKeep: disk.beyondKeep };
    const { gaps, notes } = await reconcile(found, expected, (seq) => lookupLine(this.#path, this.#keep, seq));
    for (const note of notes) this.#onEvent('warn', note.event, { file: this.#path, ...note.fields });
    const chain = this.#chain;
    chain.seq = disk.head?.seq ?? 0;
    chain.prev = disk.head?.hash ?? GENESIS_PREV;
    if (disk.head === null && gaps.length === 0 && expected.seq > 0) {
      // Nothing kept (keep 0): the chain goes on from the expected head.
      chain.seq = expected.seq;
      chain.prev = expected.hash;
    }
    // After a break or a lowered retention the oldest kept line is the floor from now on.
    const reset = gaps.length > 0 || notes.some((n) => n.event === 'audit-files-beyond-keep');
    if (disk.oldestSeq === null) chain.floor = reset ? chain.seq + 1 : expected.floor;
    else chain.floor = reset ? disk.oldestSeq : Math.min(expected.floor, disk.oldestSeq);
    return gaps.map((gap) => this.#gapLine(gap, expected, when));
  }

  #gapLine(gap: Gap, expected: Anchor | null, when: 'start' | 'running'): AuditEvent {
    this.gaps += 1;
    const { line, fields } = gapLine(gap, expected?.hash ?? null, when);
    this.#onEvent('error', GAP_ACTION, { file: this.#path, ...fields });
    return line;
  }

  /** Lines were written: anchor at once if someone awaits them (and the stream says so), within a second otherwise. */
  written(awaited: boolean): void {
    if (awaited && this.#anchorEveryBatch) this.#anchorer?.now();
    else this.#anchorer?.soon();
  }

  /** Anchors the current head and floor and waits for it. */
  async flush(): Promise<void> {
    await this.#anchorer?.flush();
  }
}
