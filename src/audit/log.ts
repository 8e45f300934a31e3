// One audit stream: append-only, one JSON line per event, each line naming the SHA-256 of the line
// before it (see entry.ts), so an edited, removed or reordered line breaks the chain.
//
// Files: <path> is written; on reaching maxBytes it becomes <path>.1, <path>.1 becomes <path>.2 …
// up to <path>.<keep>, and the oldest falls off. The chain runs across files. Before a file falls
// off, the floor (the seq of the oldest line kept) moves up and is anchored, so that a file
// rotated out is told apart from one removed (check.ts).
//
// Durability (files/append-log.ts): append resolves once its line is on disk (fdatasync). Appends
// issued while a write is in flight are queued and written together with one write and one
// fdatasync (group commit), in the order they were issued. record() queues an event the same way
// without a promise (the login fast path); nobody waits for its line, which goes out with the next
// batch. Lines are numbered and chained when their batch is written, after the last line on disk.
//
// Anchoring (given an AnchorStore; guard.ts): open compares the files with the anchored head and
// floor, records every break as an 'audit-gap' line, reports it as an error and goes on: refusing
// to start would make the removal of a log file an outage of every login, and a chain restarted
// silently would hide it. While open, the log checks at most once a second, before a write, that
// <path> is still its file; if it was removed or replaced, it reopens and records the break alike.
//
// Failed writes: a failed write is cut back, so the chain continues from the last line on disk;
// the lost events are counted (stats()), reported (onEvent, at most once a second) and recorded by
// an 'audit-lost' line in front of the next line written. A log left in an unknown state (a failed
// rotation, or a cut-back that failed) tries to reopen at most once a second.

import { AppendLog, type Batch } from '../files/append-log.js';
import { errnoCode } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import type { Anchor, AnchorStore } from './anchor.js';
import { checkFiles, type StreamCheck } from './check.js';
import { isSameFile, openStream, rotateFiles, tornTailLine, type DiskState, type FileId } from './disk.js';
import { BatchEncoder, BodyMaker, type EncodedLine } from './encode.js';
import { GENESIS_PREV, type AuditBody, type AuditEntry, type AuditEvent } from './entry.js';
import { closeAll, openFileSet, WHAT, type FileSet } from './files.js';
import { ChainGuard, type Chain } from './guard.js';
import { LossCounter, lostLine, RateLimitedEvents, type EventSink, type UnrecordedLoss } from './losses.js';
import { checkLimit, queryFiles, type AuditQuery } from './query.js';

export type { AuditActor, AuditEntry, AuditEvent, AuditSocket } from './entry.js';
export type { AnchorStore } from './anchor.js';
export type { AuditQuery } from './query.js';
export type { StreamCheck as AuditVerifyResult } from './check.js';
export { redact } from './redact.js';

/** How often, at most, the log checks that its file is still there, or retries a broken one. */
const CHECK_INTERVAL_MS = 1000;

export interface AuditLogOptions {
  /** Rotate before a write would take the current file past this size. Default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept (<path>.1 … <path>.<keep>). Default 5. 0 keeps none. */
  keep?: number;
  /** Milliseconds since the epoch, for the lines' times; injected so tests control time. */
  clock?: () => number;
  /** Milliseconds of a steady clock, for intervals (checks, reports, anchoring). Default performance.now. */
  ticks?: () => number;
  /** Where the head and floor are anchored. Without it, breaks are found only while the log is open. */
  anchor?: AnchorStore;
  /**
   * Anchor after every batch with an awaited line (default), or at most once a second whatever
   * the lines: for a stream whose volume follows the logins, so that it adds no store write per
   * login.
   */
  anchorEveryBatch?: boolean;
  /** Told of breaks found, lost writes (at most once a second per kind) and anchor failures. */
  onEvent?: EventSink;
}

export interface AuditLogStats {
  file: string;
  seq: number;
  failedWrites: number;
  droppedLines: number;
  lastError: string | null;
  /** Breaks recorded ('audit-gap' lines) since the log was opened. */
  gaps: number;
}

/** A line the log writes of its own in front of a batch: a break found, or the record of a loss. */
interface Prelude {
  event: AuditBody;
  resolve?: () => void;
  /** An 'audit-lost' line: the loss it records (its own failure is not a further loss). */
  loss?: UnrecordedLoss;
}

type CheckedOptions = { maxBytes: number; keep: number; clock: () => number; ticks: () => number; onEvent: EventSink; anchorEveryBatch: boolean };

function checkOptions(options: AuditLogOptions): CheckedOptions {
  const maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
  const keep = options.keep ?? 5;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) throw new RangeError('AuditLog: maxBytes must be an integer of at least 1024');
  if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError('AuditLog: keep must be a non-negative integer');
  const ticks = options.ticks ?? (() => performance.now());
  return { maxBytes, keep, clock: options.clock ?? Date.now, ticks, onEvent: options.onEvent ?? (() => undefined), anchorEveryBatch: options.anchorEveryBatch ?? true };
}

function storeFailed(path: string, error: unknown): MemfaError {
  if (error instanceof MemfaError) return error;
  return new MemfaError('STORE_FAILED', `${WHAT} ${path} could not be written (${errnoCode(error)})`, { data: { path }, cause: error });
}

export class AuditLog {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #clock: () => number;
  readonly #ticks: () => number;
  readonly #onEvent: EventSink;
  readonly #limited: RateLimitedEvents;
  readonly #losses = new LossCounter();
  readonly #encoder = new BatchEncoder();
  readonly #bodies: BodyMaker;
  /** The current file: group commit, and the cut-back of a failed write. */
  readonly #log: AppendLog<AuditBody, AuditEntry>;
  #id: FileId;
  /** seq and hash of the last line on disk, and the floor (the oldest line rotation keeps). */
  readonly #chain: Chain;
  readonly #guard: ChainGuard;
  #checkedAt: number;
  /** Orders writes, rotations and snapshots: a reader never sees files mid-rename. */
  #lock: Promise<unknown> = Promise.resolve();
  /** Set when the file is in an unknown state; cleared by reopening it. */
  #broken: MemfaError | null = null;
  #closed = false;

  private constructor(path: string, options: CheckedOptions, disk: DiskState, store: AnchorStore | undefined) {
    this.path = path;
    this.#maxBytes = options.maxBytes;
    this.#keep = options.keep;
    this.#clock = options.clock;
    this.#ticks = options.ticks;
    this.#onEvent = options.onEvent;
    this.#limited = new RateLimitedEvents(options.onEvent, options.ticks);
    this.#bodies = new BodyMaker(options.clock);
    this.#log = new AppendLog<AuditBody, AuditEntry>(disk.handle, disk.size, { writeBatch: (batch) => this.#exclusive(() => this.#writeBatch(batch)) });
    this.#id = disk.id;
    const seq = disk.head?.seq ?? 0;
    this.#chain = { seq, prev: disk.head?.hash ?? GENESIS_PREV, floor: disk.oldestSeq ?? seq + 1 };
    this.#guard = new ChainGuard(path, options.keep, this.#chain, options.onEvent, this.#limited, options.ticks, store, options.anchorEveryBatch);
    this.#checkedAt = options.ticks();
  }

  /**
   * Opens (creating, mode 0600) the log at `path` and continues its chain from the last line on
   * disk, recording any break against the anchor. Throws CONFIG_INVALID naming the file when it
   * cannot be opened, is readable by others or its last line is not an audit entry.
   */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const checked = checkOptions(options);
    const disk = await openStream(path, checked.keep);
    const log = new AuditLog(path, checked, disk, options.anchor);
    let lines: AuditEvent[];
    try {
      lines = await log.#guard.atOpen(disk);
    } catch (error) {
      await disk.handle.close().catch(() => undefined);
      throw error;
    }
    if (disk.torn > 0) lines.push(tornTailLine(disk.torn));
    // A line that cannot be written is counted and reported like any other lost line.
    await Promise.all(lines.map((line) => log.append(line).catch(() => undefined)));
    log.#guard.written(true);
    return log;
  }

  /**
   * Records an event. Resolves with the stored entry once it is on disk; rejects with STORE_FAILED
   * if it could not be written (then nothing of it is in the file), SHUTTING_DOWN after close().
   * `details` pass through redact(): keys that look like secrets are dropped.
   */
  append(event: AuditEvent): Promise<AuditEntry> {
    if (this.#closed) return Promise.reject(this.#lostAfterClose(event));
    return this.#log.append(this.#bodies.body(event));
  }

  /**
   * Records an event without waiting for it: it goes out with the next batch, written and synced
   * like any other. For the login fast path, where a promise per event is a measurable part of
   * the answer. A failure is counted and reported like any other.
   */
  record(event: AuditEvent): void {
    if (this.#closed) {
      this.#lostAfterClose(event);
      return;
    }
    this.#log.record(this.#bodies.body(event));
  }

  #lostAfterClose(event: AuditEvent): MemfaError {
    const error = new MemfaError('SHUTTING_DOWN', `${WHAT} ${this.path} is closed`);
    this.#losses.dropped('SHUTTING_DOWN', this.#clock());
    this.#limited.emit('error', 'audit-write-failed', { file: this.path, error: error.message, action: event.action, mailbox: event.mailbox ?? null, lines: 1 });
    return error;
  }

  /** The lines to write before a batch: breaks found by a reopen, and the record of lost lines. */
  async #prelude(): Promise<Prelude[]> {
    const now = this.#ticks();
    const lines: Prelude[] = [];
    if (now - this.#checkedAt >= CHECK_INTERVAL_MS) {
      this.#checkedAt = now;
      if (this.#broken !== null || !(await isSameFile(this.path, this.#id))) {
        for (const event of await this.#reopen()) lines.push({ event: this.#bodies.body(event) });
      }
    }
    if (this.#broken !== null) throw this.#broken;
    const loss = this.#losses.unrecorded();
    if (loss !== null) {
      const resolve = () => {
        this.#losses.recorded(loss);
        this.#onEvent('warn', 'audit-write-resumed', { file: this.path, lost: loss.lines });
      };
      lines.push({ event: this.#bodies.body(lostLine(loss)), resolve, loss });
    }
    return lines;
  }

  /** Reopens <path> after it was removed or replaced, or after the log broke; the lines to record. */
  async #reopen(): Promise<AuditEvent[]> {
    const expected: Anchor = this.#guard.anchor();
    const old = this.#log.replace(null, 0);
    await old?.close().catch(() => undefined);
    let disk: DiskState;
    try {
      disk = await openStream(this.path, this.#keep);
    } catch (error) {
      const why = error instanceof MemfaError ? error.message : errnoCode(error);
      this.#broken = new MemfaError('STORE_FAILED', `${WHAT} ${this.path} could not be reopened (${why})`, { data: { path: this.path }, cause: error });
      throw this.#broken;
    }
    this.#log.replace(disk.handle, disk.size);
    this.#id = disk.id;
    this.#broken = null;
    const lines = await this.#guard.afterReopen(disk, expected);
    if (disk.torn > 0) lines.push(tornTailLine(disk.torn));
    this.#onEvent('warn', 'audit-reopened', { file: this.path, seq: this.#chain.seq, breaks: lines.length });
    return lines;
  }

  /**
   * Writes a batch, with the log's own lines in front, rotating as needed. Never throws: settles
   * every line instead. `lines` below are the prelude's, then the batch's.
   */
  async #writeBatch(batch: Batch<AuditBody, AuditEntry>): Promise<void> {
    let prelude: Prelude[] = [];
    // How many lines are on disk (and settled): #writeChunk settles its lines in order.
    let written = 0;
    try {
      prelude = await this.#prelude();
      const bodies = prelude.length === 0 ? batch.items : [...prelude.map((p) => p.event), ...batch.items];
      const { data, lines: encoded } = this.#encoder.encode(bodies, this.#chain.seq, this.#chain.prev);
      // The chunk being gathered: lines [first, i), bytes [chunkStart, lineStart).
      let first = 0;
      let chunkStart = 0;
      for (let i = 0; i < encoded.length; i++) {
        const lineStart = i === 0 ? 0 : encoded[i - 1]!.end;
        const pendingSize = this.#log.length + (lineStart - chunkStart);
        if (pendingSize > 0 && pendingSize + (encoded[i]!.end - lineStart) > this.#maxBytes) {
          await this.#writeChunk(data.subarray(chunkStart, lineStart), encoded, first, i, prelude, batch);
          written = i;
          first = i;
          chunkStart = lineStart;
          await this.#rotate();
        }
      }
      await this.#writeChunk(data.subarray(chunkStart), encoded, first, encoded.length, prelude, batch);
      written = encoded.length;
    } catch (error) {
      const failure = storeFailed(this.path, error);
      const lostOwn = prelude.slice(written).filter((p) => p.loss === undefined);
      const lostBatch = batch.items.slice(Math.max(0, written - prelude.length));
      const lost = lostOwn.length + lostBatch.length;
      if (lost > 0) {
        const first = lostOwn[0]?.event ?? lostBatch[0]!;
        this.#losses.failed(failure.message, lost, this.#clock());
        this.#limited.emit('error', 'audit-write-failed', {
          file: this.path,
          error: failure.message,
          action: first.action,
          mailbox: first.mailbox,
          lines: lost,
          failedWrites: this.#losses.failedWrites,
          droppedLines: this.#losses.droppedLines,
        });
      }
      batch.fail(failure);
    }
    if (written > 0) {
      const fromBatch = Math.max(0, written - prelude.length);
      let awaited = prelude.slice(0, written).some((p) => p.resolve !== undefined);
      for (let i = 0; !awaited && i < fromBatch; i++) awaited = batch.isAwaited(i);
      this.#guard.written(awaited);
    }
  }

  /** Lines [from, to) of prelude + batch, as `data`: one write and one fdatasync; on failure the file is cut back. */
  async #writeChunk(data: Buffer, encoded: EncodedLine[], from: number, to: number, prelude: Prelude[], batch: Batch<AuditBody, AuditEntry>): Promise<void> {
    if (to <= from) return;
    try {
      await this.#log.write(data);
    } catch (error) {
      // The log cuts a failed write back so that the next line does not land after a torn one; if
      // even that failed, the file is in an unknown state until it is reopened.
      if (this.#log.suspect) this.#broken = new MemfaError('STORE_FAILED', `${WHAT} ${this.path} is in an unknown state after a failed write`, { data: { path: this.path } });
      throw storeFailed(this.path, error);
    }
    const last = encoded[to - 1]!;
    this.#chain.seq = last.seq;
    this.#chain.prev = last.hash;
    for (let i = from; i < Math.min(to, prelude.length); i++) prelude[i]!.resolve?.();
    const skip = prelude.length;
    // Only an awaited line needs its entry as an object; a recorded one has nobody to tell.
    if (to > skip) batch.done(to - Math.max(from, skip), (body, index) => ({ seq: encoded[skip + index]!.seq, ...body, prev: encoded[skip + index]!.prev }));
  }

  async #rotate(): Promise<void> {
    const handle = this.#log.replace(null, 0);
    try {
      await handle?.close();
      // The floor moves up, and is anchored, before the oldest file goes: a crash in between
      // leaves an older file than the anchor says, never a younger one.
      const fresh = await rotateFiles(this.path, this.#keep, async (oldestLeft) => {
        this.#chain.floor = oldestLeft ?? this.#chain.seq + 1;
        await this.#guard.flush();
      });
      this.#log.replace(fresh.handle, 0);
      this.#id = fresh.id;
    } catch (error) {
      // Reopening recovers whatever state the files are in (the chain continues from <path>.1
      // when <path> is missing or empty); #prelude retries it.
      this.#broken = new MemfaError('STORE_FAILED', `${WHAT} ${this.path} could not be rotated (${errnoCode(error)})`, { data: { path: this.path }, cause: error });
      throw this.#broken;
    }
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Opens every file, oldest first, under the lock: handles stay valid across later renames. */
  async #withFiles<T>(read: (set: FileSet, at: Anchor) => Promise<T>): Promise<T> {
    const { set, at } = await this.#exclusive(async () => ({ set: await openFileSet(this.path, this.#keep), at: this.#guard.anchor() }));
    try {
      return await read(set, at);
    } finally {
      await closeAll(set.files);
    }
  }

  /** Entries matching every given filter, oldest first, across the current and rotated files. */
  query(filter: AuditQuery = {}): Promise<AuditEntry[]> {
    checkLimit(filter.limit);
    return this.#withFiles((set) => queryFiles(set, filter));
  }

  /** Checks every kept file (see check.ts); reports the first problem with its file and line. */
  verify(): Promise<StreamCheck> {
    return this.#withFiles((set, at) => checkFiles(set, { head: { seq: at.seq, hash: at.hash }, floor: at.floor, open: !this.#closed, path: this.path }));
  }

  stats(): AuditLogStats {
    return {
      file: this.path,
      seq: this.#chain.seq,
      failedWrites: this.#losses.failedWrites,
      droppedLines: this.#losses.droppedLines,
      lastError: this.#losses.lastError,
      gaps: this.#guard.gaps,
    };
  }

  /** Waits for queued appends, anchors the head, then closes the file. Later appends reject with SHUTTING_DOWN. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#log.idle();
    await this.#guard.flush();
    await this.#exclusive(() => this.#log.close());
  }
}
