// A durable append-only file of lines, shared by the store's journal and each audit stream: one
// file handle opened O_APPEND, group commit, the rule for a failed write, and reading lines back.
//
// Group commit: appends issued while a batch is being written (write + fdatasync) wait in a queue
// and go out together as the next batch, in the order they were issued, so that a busy daemon
// pays one fdatasync per batch, not per line. What a batch's bytes are is the owner's business
// (writeBatch): the journal's lines are made when a transaction runs, an audit stream's when the
// batch is written, because each line names the hash of the line on disk before it.
//
// A failed write: the file may hold part of the batch (a short write, or a write whose fdatasync
// failed). Its callers are told it failed, so those bytes must never be read back as if it had
// not: the file is cut back to its last good length at once and, if that fails too, before the
// next write, which fails if it still cannot be cut.
//
// Reading back: a line is written with its newline in one write, so a crash can leave only a torn
// last line, without a newline. Readers say which line is torn; what to do about it (cut it off,
// refuse the file) is the owner's business.

import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

const NEWLINE = 0x0a;

/** Opens `path` for appending (write only), creating it with mode 0600. */
export function openForAppend(path: string): Promise<FileHandle> {
  return open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
}

interface Waiter<R> {
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/** The appends that go out together, handed to the owner's writeBatch; their callers are told through it. */
export class Batch<T, R> {
  readonly items: readonly T[];
  readonly #waiters: readonly (Waiter<R> | undefined)[];
  #settled = 0;

  constructor(items: readonly T[], waiters: readonly (Waiter<R> | undefined)[]) {
    this.items = items;
    this.#waiters = waiters;
  }

  /** Whether someone awaits item `index` (append), or nobody does (record). */
  isAwaited(index: number): boolean {
    return this.#waiters[index] !== undefined;
  }

  /** How many items, from the first, are done or failed. */
  get settled(): number {
    return this.#settled;
  }

  /** The next `count` items are on disk: each caller gets `result` of its item (made only for those awaited). */
  done(count: number, result: (item: T, index: number) => R): void {
    const end = Math.min(this.#settled + count, this.items.length);
    for (let i = this.#settled; i < end; i++) this.#waiters[i]?.resolve(result(this.items[i]!, i));
    this.#settled = end;
  }

  /** Every item not done yet failed: their callers are rejected with `error`. */
  fail(error: unknown): void {
    for (let i = this.#settled; i < this.items.length; i++) this.#waiters[i]?.reject(error);
    this.#settled = this.items.length;
  }
}

export interface AppendLogOptions<T, R> {
  /**
   * Writes one batch through write() (once, or in parts with the file replaced in between) and
   * tells its callers with done() and fail(). Whatever it throws fails every item not done yet.
   * The next batch waits for it: what it does after done() runs with no write in flight.
   */
  writeBatch: (batch: Batch<T, R>) => Promise<void>;
}

export class AppendLog<T, R = void> {
  readonly #writeBatch: (batch: Batch<T, R>) => Promise<void>;
  #handle: FileHandle | null;
  /** The length of the file as far as complete, durable batches go. */
  #length: number;
  /** A failed write may have left bytes past #length that are not cut off yet. */
  #suspect = false;
  /** Queued appends, in order; a waiter is undefined for a recorded item. */
  #items: T[] = [];
  #waiters: (Waiter<R> | undefined)[] = [];
  #flushing: Promise<void> | null = null;

  /** `handle` is the file opened for appending, `length` its size (the log owns the handle from now on). */
  constructor(handle: FileHandle | null, length: number, options: AppendLogOptions<T, R>) {
    this.#handle = handle;
    this.#length = length;
    this.#writeBatch = options.writeBatch;
  }

  /** Bytes in the file that belong to complete, durable writes. */
  get length(): number {
    return this.#length;
  }

  /** A failed write left the file in a state not cut back yet (the next write tries again). */
  get suspect(): boolean {
    return this.#suspect;
  }

  /** Queues `item` for the next batch; resolves with what the batch writer gives it once it is on disk. */
  append(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#items.push(item);
      this.#waiters.push({ resolve, reject });
      this.#kick();
    });
  }

  /** Queues `item` for the next batch with nobody waiting for it (a failure is the writer's to count). */
  record(item: T): void {
    this.#items.push(item);
    this.#waiters.push(undefined);
    this.#kick();
  }

  /** The items queued behind the batch being written (not to be kept: the array changes). */
  get queued(): readonly T[] {
    return this.#items;
  }

  /** Rejects every queued item with `error` and returns them, oldest first. */
  failQueued(error: unknown): T[] {
    const items = this.#items.splice(0);
    const waiters = this.#waiters.splice(0);
    for (const waiter of waiters) waiter?.reject(error);
    return items;
  }

  /** Starts the write loop unless it runs. */
  #kick(): void {
    if (this.#flushing !== null || this.#items.length === 0) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      // An append queued after the loop's last look at the queue but before this callback (by code
      // resuming from the loop's last resolve) would otherwise wait forever.
      this.#kick();
    });
  }

  async #flush(): Promise<void> {
    while (this.#items.length > 0) {
      const batch = new Batch<T, R>(this.#items.splice(0), this.#waiters.splice(0));
      try {
        await this.#writeBatch(batch);
      } catch (error) {
        batch.fail(error);
      }
      // A writer that forgot an item must not leave its caller waiting for ever.
      if (batch.settled < batch.items.length) batch.fail(new Error('the batch writer settled no outcome for this line'));
    }
  }

  /**
   * Appends `data` (whole lines) and waits for fdatasync. On failure the file is cut back to its
   * last good length (now, or before the next write) and the error is thrown.
   */
  async write(data: Buffer): Promise<void> {
    const handle = this.#handle;
    if (handle === null) throw Object.assign(new Error('the file is not open'), { code: 'EBADF' });
    await this.cutBack();
    try {
      let done = 0;
      while (done < data.length) done += (await handle.write(data, done, data.length - done)).bytesWritten;
      await handle.datasync();
    } catch (error) {
      this.#suspect = true;
      await this.cutBack().catch(() => undefined); // tried again before the next write
      throw error;
    }
    this.#length += data.length;
  }

  /** After a failed write: cuts the file back to its last good length. Throws if that fails. */
  async cutBack(): Promise<void> {
    if (!this.#suspect || this.#handle === null) return;
    await this.#handle.truncate(this.#length);
    await this.#handle.datasync();
    this.#suspect = false;
  }

  /** Empties the file (its content is held elsewhere now, e.g. in a snapshot). */
  async empty(): Promise<void> {
    if (this.#handle === null) return;
    await this.#handle.truncate(0);
    await this.#handle.sync();
    this.#length = 0;
    this.#suspect = false;
  }

  /**
   * Appends go on into `handle` (of `length` bytes) from now on; returns the previous handle, for
   * the caller to close. Only inside writeBatch, or with nothing queued.
   */
  replace(handle: FileHandle | null, length: number): FileHandle | null {
    const previous = this.#handle;
    this.#handle = handle;
    this.#length = length;
    this.#suspect = false;
    return previous;
  }

  /** A batch is being written (or about to be). */
  get busy(): boolean {
    return this.#flushing !== null;
  }

  /** Resolves once nothing is queued or being written. */
  async idle(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
  }

  /** Closes the file (callers wait for idle() first: what is queued then fails). */
  async close(): Promise<void> {
    const handle = this.replace(null, this.#length);
    await handle?.close();
  }
}

/** A line read back: its bytes (newline excluded) and where it starts in the file. */
export interface Line {
  bytes: Buffer;
  start: number;
  /** False only for a last line with no newline: torn by a crash mid-write (or still being written). */
  terminated: boolean;
}

/**
 * The lines of the first `size` bytes, a piece of the file at a time (as many lines as one read
 * of `pieceBytes` completes): a large file is never held whole, and a caller replaying a million
 * lines loops over each piece without an await per line. Lines stay valid after the next piece.
 */
export async function* readLinePieces(handle: FileHandle, size: number, pieceBytes = 64 * 1024): AsyncGenerator<Line[]> {
  let carry: Buffer = Buffer.alloc(0); // the start of a line whose end is in the next piece
  let carryStart = 0;
  let pos = 0;
  while (pos < size) {
    // A fresh buffer per piece: the lines handed out point into it.
    const buffer = Buffer.allocUnsafe(Math.min(pieceBytes, size - pos));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const data = carry.length === 0 ? buffer.subarray(0, bytesRead) : Buffer.concat([carry, buffer.subarray(0, bytesRead)]);
    const lines: Line[] = [];
    let from = 0;
    for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, from)) {
      lines.push({ bytes: data.subarray(from, nl), start: carryStart + from, terminated: true });
      from = nl + 1;
    }
    carry = data.subarray(from);
    carryStart += from;
    if (lines.length > 0) yield lines;
  }
  if (carry.length > 0) yield [{ bytes: carry, start: carryStart, terminated: false }];
}

/** The lines of the first `size` bytes, one at a time (see readLinePieces). */
export async function* readLines(handle: FileHandle, size: number, pieceBytes = 64 * 1024): AsyncGenerator<Line> {
  for await (const piece of readLinePieces(handle, size, pieceBytes)) yield* piece;
}

export interface Tail {
  /** Offset just past the last newline: everything after it is a torn line. */
  end: number;
  /** The last complete line, newline excluded. */
  lastLine: Buffer | null;
}

/** The last complete line of the first `size` bytes and where the torn tail starts, read from the end. */
export async function readTail(handle: FileHandle, size: number, pieceBytes = 64 * 1024): Promise<Tail> {
  let collected = Buffer.alloc(0);
  let pos = size;
  while (pos > 0) {
    const length = Math.min(pieceBytes, pos);
    pos -= length;
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, pos);
    collected = Buffer.concat([buffer.subarray(0, bytesRead), collected]);
    const last = collected.lastIndexOf(NEWLINE);
    if (last === -1) continue;
    // A negative offset would make lastIndexOf search from the end again.
    const before = last === 0 ? -1 : collected.lastIndexOf(NEWLINE, last - 1);
    if (before !== -1 || pos === 0) {
      return { end: pos + last + 1, lastLine: collected.subarray(before + 1, last) };
    }
  }
  return { end: 0, lastLine: null };
}

/** Cuts a torn tail off: the file of `handle` (opened for writing) ends at `end` from now on, durably. */
export async function cutTail(handle: FileHandle, end: number): Promise<void> {
  await handle.truncate(end);
  await handle.sync();
}
