// The journal: one line per transaction, {"s": seq, "o": [ops]}, appended and fdatasync'd before
// the transaction resolves (group commit through files/append-log.ts). A write that fails undoes
// its transactions in memory, and every transaction queued behind them, which were applied on top.
//
// Files: <store>.journal is appended to; <store>.journal.old is a journal set aside by a compaction
// whose snapshot is not durable yet (compactor.ts). At start both are replayed after the snapshot,
// skipping entries whose sequence number the snapshot already holds.
import { rename, unlink, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AppendLog, cutTail, openForAppend, readLinePieces, type Batch, type Line } from '../files/append-log.js';
import { fsyncDir } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import type { MemoryState, Op, Undoable } from './memory.js';

/** The journal is read in pieces of this size at start. */
const JOURNAL_READ_BYTES = 1024 * 1024;

/** A transaction waiting for its line to be durable. */
interface Pending extends Undoable {
  line: string;
  /** What the transaction's promise resolves with. */
  result: unknown;
}

/** What replaying the journals at start found. */
export interface Replayed {
  /** The good length of <store>.journal (a torn tail cut off). */
  length: number;
  /** <store>.journal.old exists. */
  oldExists: boolean;
}

export interface JournalOptions {
  /** Opens the journal for appending (test seam: a handle whose write/datasync fail on demand). */
  openJournal?: (file: string) => Promise<FileHandle>;
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  /**
   * Runs after each batch written, once its transactions are resolved and before the next batch,
   * so while no append is in flight (compaction starts there). Must not throw.
   */
  afterWrite?: () => Promise<void>;
}

export class Journal {
  readonly file: string;
  readonly oldFile: string;
  private readonly log: AppendLog<Pending, unknown>;
  /** Set when the store can no longer promise durability; every write then fails. */
  private broken: MemfaError | null = null;
  /** <store>.journal.old exists: set aside by a compaction whose snapshot is not durable yet. */
  private old: boolean;

  private constructor(
    private readonly storeFile: string,
    handle: FileHandle,
    replayed: Replayed,
    private readonly memory: MemoryState,
    private readonly options: JournalOptions,
  ) {
    this.old = replayed.oldExists;
    this.file = storeFile + '.journal';
    this.oldFile = storeFile + '.journal.old';
    this.log = new AppendLog<Pending, unknown>(handle, replayed.length, { writeBatch: (batch) => this.writeBatch(batch) });
  }

  /** Opens <storeFile>.journal for appending, once both journals are replayed into `memory`. */
  static async open(storeFile: string, replayed: Replayed, memory: MemoryState, options: JournalOptions): Promise<Journal> {
    const handle = await (options.openJournal ?? openForAppend)(storeFile + '.journal');
    return new Journal(storeFile, handle, replayed, memory, options);
  }

  /** <store>.journal.old exists: set aside by a compaction whose snapshot is not durable yet. */
  get oldExists(): boolean {
    return this.old;
  }

  /** A batch is being written, or queued. */
  get busy(): boolean {
    return this.log.busy;
  }

  /** Bytes of durable entries in the journal. */
  get bytes(): number {
    return this.log.length;
  }

  /** Transactions applied in memory whose lines are not being written yet, oldest first. */
  get queued(): readonly Undoable[] {
    return this.log.queued;
  }

  /** A failed write left bytes not cut off yet: the journal cannot be trusted to be folded in. */
  get suspect(): boolean {
    return this.log.suspect;
  }

  /** Appends a transaction applied in memory as `seq`; resolves with `result` once it is durable. */
  append(seq: number, ops: Op[], undo: Op[], result: unknown): Promise<unknown> {
    return this.log.append({ seq, line: JSON.stringify({ s: seq, o: ops }) + '\n', undo, result });
  }

  private async writeBatch(batch: Batch<Pending, unknown>): Promise<void> {
    try {
      if (this.broken !== null) throw this.broken;
      await this.log.write(Buffer.from(batch.items.map((p) => p.line).join(''), 'utf8'));
    } catch (err) {
      const failure = new MemfaError('STORE_FAILED', `the store could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was changed`, {
        data: { file: this.file },
        hint: 'check free disk space and the data directory; the daemon keeps serving reads',
      });
      // Undo newest first: later transactions were applied on top of this batch.
      const failed = [...batch.items, ...this.log.failQueued(failure)];
      for (let i = failed.length - 1; i >= 0; i--) this.memory.undo(failed[i]!.undo);
      this.options.onEvent?.('store-write-failed', { file: this.file, error: (err as Error).message });
      throw failure;
    }
    batch.done(batch.items.length, (p) => p.result);
    await this.options.afterWrite?.();
  }

  /**
   * Sets the journal aside as <store>.journal.old and goes on in a fresh one. Only from
   * afterWrite, or with nothing queued, so that no append is in progress.
   */
  async setAside(): Promise<void> {
    await rename(this.file, this.oldFile);
    let next: FileHandle;
    try {
      next = await (this.options.openJournal ?? openForAppend)(this.file);
    } catch (err) {
      // Without a fresh journal, appends must go on into the one just set aside: put it back.
      await rename(this.oldFile, this.file);
      throw err;
    }
    const previous = this.log.replace(next, 0);
    this.old = true;
    await previous?.close().catch(() => undefined);
    try {
      await fsyncDir(path.dirname(this.file));
    } catch (err) {
      // The new journal's name may not survive a crash: take no more writes until a restart
      // (everything acknowledged so far is in the journal set aside, whichever name it has).
      this.broken = new MemfaError('STORE_FAILED', `the store directory could not be synced (${(err as Error).message}); restart the daemon`, {
        data: { file: this.storeFile },
      });
      throw err;
    }
  }

  /** Deletes the journal set aside, once a durable snapshot holds all it held. */
  async dropOld(): Promise<void> {
    if (!this.old) return;
    await unlink(this.oldFile).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    this.old = false;
    await fsyncDir(path.dirname(this.file));
  }

  /** Empties the journal, once a durable snapshot holds all it held; only with no append running. */
  empty(): Promise<void> {
    return this.log.empty();
  }

  /** Waits for queued appends. */
  idle(): Promise<void> {
    return this.log.idle();
  }

  /** Tries once more to cut a failed write off (best effort: close then keeps the journal as it is). */
  cutBack(): Promise<void> {
    return this.log.cutBack();
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

/**
 * Applies the entries of journal `file` newer than `memory`'s state, whose records have the shape
 * of schema `schema`; returns whether the file exists and the length of its good entries. The file
 * is read a piece at a time: a journal may be as large as the snapshot (~70 MB at 100,000
 * mailboxes) when a crash leaves it, and holding it whole would add that much to the start.
 *
 * A last line without a newline is torn (a crash mid-append), and so is a garbage last line
 * followed by nothing but zeros (what file systems that extend the file before writing it leave).
 * The current journal (`repair`) has a torn tail cut off, so that the next append starts on a
 * line boundary; the old one is deleted, not mended, once the snapshot holds it. Any other line
 * that is not an entry is STORE_CORRUPT, naming its byte, and leaves the file untouched.
 */
export async function replayJournal(
  file: string,
  memory: MemoryState,
  schema: number,
  repair: boolean,
  onEvent?: (event: string, fields: Record<string, unknown>) => void,
): Promise<{ exists: boolean; length: number }> {
  const unreadable = (err: unknown) => new MemfaError('STORE_CORRUPT', `cannot read store journal ${file}: ${(err as Error).message}`, { data: { file } });
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false, length: 0 };
    throw unreadable(err);
  }
  let size: number;
  /** Where the first line not yet applied starts; at the end, the length of the good journal. */
  let good = 0;
  let applied = 0;
  try {
    try {
      size = (await handle.stat()).size;
    } catch (err) {
      throw unreadable(err);
    }
    const pieces = readLinePieces(handle, size, JOURNAL_READ_BYTES);
    reading: for (;;) {
      let piece: IteratorResult<Line[], void>;
      try {
        piece = await pieces.next();
      } catch (err) {
        throw unreadable(err);
      }
      if (piece.done === true) break;
      for (const { bytes, start, terminated } of piece.value) {
        if (!terminated) break reading; // a torn tail
        let entry: { s: number; o: Op[] };
        try {
          entry = JSON.parse(bytes.toString('utf8')) as { s: number; o: Op[] };
          if (typeof entry.s !== 'number' || !Array.isArray(entry.o)) throw new Error('not a journal entry');
        } catch (err) {
          if (await zerosFrom(handle, start + bytes.length + 1, size)) break reading; // garbage last line: torn
          throw new MemfaError('STORE_CORRUPT', `store journal ${file} is corrupt at byte ${start} (${(err as Error).message}); refusing to start, the file was left untouched`, {
            data: { file, offset: start },
          });
        }
        if (entry.s > memory.seq) {
          for (const op of entry.o) memory.applyReplayed(op, schema);
          memory.seq = entry.s;
          applied++;
        }
        good = start + bytes.length + 1;
      }
    }
  } finally {
    await handle.close();
  }
  if (repair && good < size) {
    const h = await open(file, 'r+');
    try {
      await cutTail(h, good);
    } finally {
      await h.close();
    }
    onEvent?.('store-journal-torn-tail', { file, droppedBytes: size - good });
  }
  if (applied > 0) onEvent?.('store-journal-replayed', { file, entries: applied });
  return { exists: true, length: good };
}

/**
 * Whether the bytes of `handle` from `from` to `size` are all zero (or none). A newline is not
 * zero, so such a rest holds no further line.
 */
async function zerosFrom(handle: FileHandle, from: number, size: number): Promise<boolean> {
  const buf = Buffer.allocUnsafe(Math.min(JOURNAL_READ_BYTES, Math.max(1, size - from)));
  for (let pos = from; pos < size; ) {
    const n = (await handle.read(buf, 0, Math.min(buf.length, size - pos), pos)).bytesRead;
    if (n === 0) break;
    if (!buf.subarray(0, n).every((b) => b === 0)) return false;
    pos += n;
  }
  return true;
}
