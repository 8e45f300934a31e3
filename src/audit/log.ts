// The audit log: append-only, one JSON line per event, each line naming the SHA-256 of the line
// before it (see entry.ts), so an edited, removed or reordered line breaks the chain.
//
// Files: <path> is written; on reaching maxBytes it becomes <path>.1, <path>.1 becomes <path>.2 …
// up to <path>.<keep>, and the oldest falls off. The chain runs across files: the first line of a
// new file names the hash of the last line of the one before. `verify` trusts the first `prev` of
// the oldest file still kept, since its predecessor may have been dropped.
//
// Durability: append resolves once its line is on disk (fdatasync). Appends issued while a write
// is in flight are queued and written together with one write and one fdatasync (group commit),
// in the order they were issued. record() queues an event the same way without a promise (the
// login fast path); nobody waits for its line, which goes out with the next batch.
//
// Crash recovery: a line is written with its newline in one write, so a crash can leave only a
// torn last line (no trailing newline). Open truncates that tail (its caller was never told the
// event was recorded) and appends an 'audit-recovered' event giving the number of bytes dropped.
// Anything else wrong with the file is not repaired: a last line that is complete but not a valid
// entry stops the open, because silently starting a new chain would hide tampering.
//
// What the chain cannot show: an edit of the newest line, or of the newest lines wholesale, by
// someone who rewrites every following hash. `verify` compares the end of the chain with the head
// the daemon holds in memory, which catches edits made while it runs; anchoring the head outside
// the host (e.g. syslog) would catch the rest.

import type { FileHandle } from 'node:fs/promises';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MemfaError } from '../protocol/errors.js';
import { assertPrivateFile, errnoCode, fsyncDir } from '../files/durable.js';
import { GENESIS_PREV, lineHash, parseEntry, serialiseLine, type AuditBody, type AuditEntry, type AuditEvent } from './entry.js';
import { redact } from './redact.js';

export type { AuditActor, AuditEntry, AuditEvent, AuditSocket } from './entry.js';
export { redact } from './redact.js';

const WHAT = 'audit log';
const CHUNK_BYTES = 64 * 1024;
/** Larger details are replaced by a marker, so that one event cannot swamp the log. */
const MAX_LINE_BYTES = 16 * 1024;
const NEWLINE = 0x0a;
/** The buffer batches are encoded into is kept for the next batch up to this size. */
const KEPT_BUFFER_BYTES = 1024 * 1024;

export interface AuditLogOptions {
  /** Rotate before a write would take the current file past this size. Default 10 MiB. */
  maxBytes?: number;
  /** Rotated files kept (<path>.1 … <path>.<keep>). Default 5. 0 keeps none. */
  keep?: number;
  /** Milliseconds since the epoch; injected so tests control time. */
  clock?: () => number;
  /** Told when an event given to record() (nobody awaits it) could not be written. */
  onUnawaitedFailure?: (event: AuditEvent, error: unknown) => void;
}

export interface AuditQuery {
  mailbox?: string;
  /** Inclusive. */
  since?: Date;
  /** Exclusive. */
  until?: Date;
  result?: string;
  action?: string;
  /** Return only the most recent `limit` matches (still oldest first). */
  limit?: number;
}

export type AuditVerifyResult =
  | { ok: true; lines: number; files: number }
  | { ok: false; file: string; line: number; problem: string };

interface Pending {
  event: AuditBody;
  /** Absent for an event recorded without waiting (record()): a failure goes to onUnawaitedFailure. */
  resolve?: (entry: AuditEntry) => void;
  reject?: (error: unknown) => void;
}

/** A line of a batch, encoded: its bytes end at `end` in the batch's buffer, newline included. */
interface Encoded {
  pending: Pending;
  seq: number;
  /** The hash this line names (of the line before) and its own. */
  prev: string;
  hash: string;
  end: number;
}

interface Snapshot {
  files: { path: string; handle: FileHandle; size: number }[];
  currentMissing: boolean;
  head: { seq: number; prev: string };
}

interface Tail {
  /** Offset just past the last newline: everything after it is a torn line. */
  end: number;
  /** The last complete line, newline excluded. */
  lastLine: Buffer | null;
}

/** Reads backwards from the end until the last complete line is found. */
async function readTail(handle: FileHandle, size: number): Promise<Tail> {
  let collected = Buffer.alloc(0);
  let pos = size;
  while (pos > 0) {
    const length = Math.min(CHUNK_BYTES, pos);
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

/** Lines of the first `size` bytes; `terminated` is false only for a final line with no newline. */
async function* readLines(handle: FileHandle, size: number): AsyncGenerator<{ bytes: Buffer; terminated: boolean }> {
  const buffer = Buffer.alloc(CHUNK_BYTES);
  let carry = Buffer.alloc(0);
  let pos = 0;
  while (pos < size) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(CHUNK_BYTES, size - pos), pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    const data = Buffer.concat([carry, buffer.subarray(0, bytesRead)]);
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      yield { bytes: data.subarray(start, nl), terminated: true };
      start = nl + 1;
    }
    carry = data.subarray(start);
  }
  if (carry.length > 0) yield { bytes: carry, terminated: false };
}

type CheckedOptions = { maxBytes: number; keep: number; clock: () => number; onUnawaitedFailure: (event: AuditEvent, error: unknown) => void };

function checkOptions(options: AuditLogOptions): CheckedOptions {
  const maxBytes = options.maxBytes ?? 10 * 1024 * 1024;
  const keep = options.keep ?? 5;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024) throw new RangeError('AuditLog: maxBytes must be an integer of at least 1024');
  if (!Number.isSafeInteger(keep) || keep < 0) throw new RangeError('AuditLog: keep must be a non-negative integer');
  return { maxBytes, keep, clock: options.clock ?? Date.now, onUnawaitedFailure: options.onUnawaitedFailure ?? (() => undefined) };
}

function storeFailed(path: string, error: unknown): MemfaError {
  if (error instanceof MemfaError) return error;
  return new MemfaError('STORE_FAILED', `${WHAT} ${path} could not be written (${errnoCode(error)})`, {
    data: { path },
    cause: error,
  });
}

/** `buffer`, or a copy of its first `used` bytes in a larger one, with at least `needed` bytes free past `used`. */
function room(buffer: Buffer, used: number, needed: number): Buffer {
  if (used + needed <= buffer.length) return buffer;
  const larger = Buffer.allocUnsafe(Math.max(used + needed, buffer.length * 2));
  buffer.copy(larger, 0, 0, used);
  return larger;
}

async function closeAll(files: Snapshot['files']): Promise<void> {
  await Promise.all(files.map((file) => file.handle.close().catch(() => undefined)));
}

export class AuditLog {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #clock: () => number;
  readonly #onUnawaitedFailure: CheckedOptions['onUnawaitedFailure'];
  /** The last timestamp formatted, and its text: most events share their millisecond with another. */
  #timeMs = NaN;
  #timeText = '';
  #handle: FileHandle | null;
  #size: number;
  /** seq and hash of the last line on disk: the head the next line chains to. */
  #seq: number;
  #prev: string;
  #queue: Pending[] = [];
  #draining: Promise<void> | null = null;
  /** Reused by every batch: batches are written one at a time (#drain), never two at once. */
  #buffer: Buffer | null = null;
  /** Orders writes, rotations and snapshots: a reader never sees files mid-rename. */
  #lock: Promise<unknown> = Promise.resolve();
  /** Set when the file is in an unknown state (a failed write could not be undone); fixed by reopening. */
  #broken: MemfaError | null = null;
  #closed = false;

  private constructor(path: string, options: CheckedOptions, handle: FileHandle, size: number, seq: number, prev: string) {
    this.path = path;
    this.#maxBytes = options.maxBytes;
    this.#keep = options.keep;
    this.#clock = options.clock;
    this.#onUnawaitedFailure = options.onUnawaitedFailure;
    this.#handle = handle;
    this.#size = size;
    this.#seq = seq;
    this.#prev = prev;
  }

  /**
   * Opens (creating, mode 0600) the log at `path` and continues its chain from the last line on
   * disk. Throws CONFIG_INVALID naming the file when it cannot be opened, is readable by others or
   * its last line is not an audit entry.
   */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const checked = checkOptions(options);
    const handle = await AuditLog.#openCurrent(path);
    try {
      const size = (await handle.stat()).size;
      const tail = await readTail(handle, size);
      const torn = size - tail.end;
      if (torn > 0) {
        await handle.truncate(tail.end);
        await handle.sync();
      }
      let head = AuditLog.#headOf(path, tail.lastLine);
      for (let i = 1; head === null && i <= checked.keep; i += 1) {
        head = await AuditLog.#headOfRotated(`${path}.${i}`);
      }
      const log = new AuditLog(path, checked, handle, tail.end, head?.seq ?? 0, head?.prev ?? GENESIS_PREV);
      if (torn > 0) {
        await log.append({ actor: 'daemon', action: 'audit-recovered', result: 'ok', reason: 'torn-tail', details: { droppedBytes: torn } });
      }
      return log;
    } catch (error) {
      await handle.close().catch(() => undefined);
      if (error instanceof MemfaError) throw error;
      throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
    }
  }

  static async #openCurrent(path: string): Promise<FileHandle> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'ax+', 0o600);
      // A strict umask could have taken bits we need; a loose one cannot add any.
      if (process.platform !== 'win32') await handle.chmod(0o600);
      await fsyncDir(dirname(path));
      return handle;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') {
        throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be created (${errnoCode(error)})`, {
          data: { path },
          hint: `check that ${dirname(path)} exists and is writable by the daemon`,
          cause: error,
        });
      }
    }
    try {
      handle = await open(path, 'a+', 0o600);
    } catch (error) {
      throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be opened (${errnoCode(error)})`, { data: { path }, cause: error });
    }
    try {
      // Audit lines name mailboxes and addresses: private data.
      assertPrivateFile(path, await handle.stat(), WHAT, { checkOwner: true });
    } catch (error) {
      await handle.close();
      throw error;
    }
    return handle;
  }

  static #headOf(path: string, lastLine: Buffer | null): { seq: number; prev: string } | null {
    if (lastLine === null) return null;
    const parsed = parseEntry(lastLine);
    if (typeof parsed === 'string') {
      throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path}: the last line is not an audit entry (${parsed}); the chain cannot be continued`, {
        data: { path },
        hint: 'run the audit verification, then move the file aside to start a new chain',
      });
    }
    return { seq: parsed.seq, prev: lineHash(lastLine) };
  }

  /** The head recorded in a rotated file (used when the current file is empty, e.g. just rotated). */
  static async #headOfRotated(path: string): Promise<{ seq: number; prev: string } | null> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      const tail = await readTail(handle, (await handle.stat()).size);
      return AuditLog.#headOf(path, tail.lastLine);
    } catch (error) {
      if (error instanceof MemfaError) throw error;
      if (errnoCode(error) === 'ENOENT') return null;
      throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
    } finally {
      await handle?.close();
    }
  }

  /**
   * Records an event. Resolves with the stored entry once it is on disk; rejects with STORE_FAILED
   * if it could not be written (then nothing of it is in the file), SHUTTING_DOWN after close().
   * `details` pass through redact(): keys that look like secrets are dropped.
   */
  append(event: AuditEvent): Promise<AuditEntry> {
    if (this.#closed) return Promise.reject(new MemfaError('SHUTTING_DOWN', `${WHAT} ${this.path} is closed`));
    return new Promise<AuditEntry>((resolve, reject) => this.#enqueue({ event: this.#prepared(event), resolve, reject }));
  }

  /**
   * Records an event without waiting for it: it goes out with the next batch, written and synced
   * like any other. For the login fast path, where a promise per event is a measurable part of
   * the answer. A failure (or a closed log) goes to the onUnawaitedFailure option.
   */
  record(event: AuditEvent): void {
    if (this.#closed) {
      this.#onUnawaitedFailure(event, new MemfaError('SHUTTING_DOWN', `${WHAT} ${this.path} is closed`));
      return;
    }
    this.#enqueue({ event: this.#prepared(event) });
  }

  #prepared(event: AuditEvent): Pending['event'] {
    const now = this.#clock();
    if (now !== this.#timeMs) {
      this.#timeMs = now;
      this.#timeText = new Date(now).toISOString();
    }
    const prepared: Pending['event'] = {
      time: this.#timeText,
      actor: event.actor,
      socket: event.socket ?? null,
      mailbox: event.mailbox ?? null,
      action: event.action,
      result: event.result,
      reason: event.reason ?? null,
      ip: event.ip ?? null,
      country: event.country ?? null,
    };
    if (event.details !== undefined) prepared.details = redact(event.details) as Record<string, unknown>;
    return prepared;
  }

  #enqueue(pending: Pending): void {
    this.#queue.push(pending);
    this.#draining ??= this.#drain();
  }

  #fail(pending: Pending, error: unknown): void {
    if (pending.reject !== undefined) pending.reject(error);
    else this.#onUnawaitedFailure(pending.event, error);
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0);
        await this.#exclusive(() => this.#writeBatch(batch));
      }
    } finally {
      this.#draining = null;
    }
  }

  /**
   * Numbers, chains and encodes a batch into one buffer. Each line is encoded once, and its hash
   * is taken of the very bytes that will be written: the digest lineHash() gives when reading back.
   */
  #encode(batch: Pending[]): { data: Buffer; lines: Encoded[] } {
    let buffer = this.#buffer ?? Buffer.allocUnsafe(64 * 1024);
    let offset = 0;
    let seq = this.#seq;
    let prev = this.#prev;
    const lines: Encoded[] = [];
    for (const pending of batch) {
      seq += 1;
      let text = serialiseLine(seq, pending.event, prev);
      // UTF-8 takes at most 3 bytes per UTF-16 unit: with this much room, write() never cuts a line.
      buffer = room(buffer, offset, text.length * 3 + 1);
      let size = buffer.write(text, offset);
      if (size > MAX_LINE_BYTES && pending.event.details !== undefined) {
        pending.event.details = { omitted: 'details too large' };
        text = serialiseLine(seq, pending.event, prev);
        size = buffer.write(text, offset);
      }
      const hash = lineHash(buffer.subarray(offset, offset + size));
      buffer[offset + size] = NEWLINE;
      offset += size + 1;
      lines.push({ pending, seq, prev, hash, end: offset });
      prev = hash;
    }
    this.#buffer = buffer.length <= KEPT_BUFFER_BYTES ? buffer : null;
    return { data: buffer.subarray(0, offset), lines };
  }

  /** Writes a batch, rotating as needed. Never throws: settles every pending append instead. */
  async #writeBatch(batch: Pending[]): Promise<void> {
    // How many of the batch are on disk (and settled): #writeChunk resolves its lines in order.
    let written = 0;
    try {
      if (this.#broken !== null) throw this.#broken;
      const { data, lines } = this.#encode(batch);
      // The chunk being gathered: lines [first, i), bytes [chunkStart, lineStart).
      let first = 0;
      let chunkStart = 0;
      for (let i = 0; i < lines.length; i++) {
        const lineStart = i === 0 ? 0 : lines[i - 1]!.end;
        const pendingSize = this.#size + (lineStart - chunkStart);
        if (pendingSize > 0 && pendingSize + (lines[i]!.end - lineStart) > this.#maxBytes) {
          await this.#writeChunk(data.subarray(chunkStart, lineStart), lines.slice(first, i));
          written = i;
          first = i;
          chunkStart = lineStart;
          await this.#rotate();
        }
      }
      await this.#writeChunk(data.subarray(chunkStart), lines.slice(first));
    } catch (error) {
      const failure = storeFailed(this.path, error);
      for (const pending of batch.slice(written)) this.#fail(pending, failure);
    }
  }

  /** One write and one fdatasync for consecutive lines; on failure the file is cut back. */
  async #writeChunk(data: Buffer, chunk: Encoded[]): Promise<void> {
    const last = chunk.at(-1);
    if (last === undefined) return;
    const handle = this.#handle;
    if (handle === null) throw new MemfaError('STORE_FAILED', `${WHAT} ${this.path} is not open`);
    try {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (error) {
      try {
        // Undo a partial write so the next line does not land after a torn one.
        await handle.truncate(this.#size);
      } catch {
        this.#broken = new MemfaError('STORE_FAILED', `${WHAT} ${this.path} is in an unknown state after a failed write; restart the daemon to recover it`, {
          data: { path: this.path },
        });
      }
      throw storeFailed(this.path, error);
    }
    this.#size += data.length;
    this.#seq = last.seq;
    this.#prev = last.hash;
    // Only an awaited line needs its entry as an object; a recorded one has nobody to tell.
    for (const { pending, seq, prev } of chunk) pending.resolve?.({ seq, ...pending.event, prev });
  }

  async #rotate(): Promise<void> {
    const handle = this.#handle;
    this.#handle = null;
    try {
      await handle?.close();
      const rotated = (i: number): string => `${this.path}.${i}`;
      const ignoreMissing = (error: unknown): void => {
        if (errnoCode(error) !== 'ENOENT') throw error;
      };
      if (this.#keep === 0) {
        await unlink(this.path);
      } else {
        await unlink(rotated(this.#keep)).catch(ignoreMissing);
        for (let i = this.#keep - 1; i >= 1; i -= 1) await rename(rotated(i), rotated(i + 1)).catch(ignoreMissing);
        await rename(this.path, rotated(1));
      }
      await fsyncDir(dirname(this.path));
      const fresh = await open(this.path, 'ax+', 0o600);
      this.#handle = fresh;
      if (process.platform !== 'win32') await fresh.chmod(0o600);
      this.#size = 0;
      await fsyncDir(dirname(this.path));
    } catch (error) {
      // Open() recovers whatever state the files are in (the chain continues from <path>.1 when
      // <path> is missing or empty), so a restart is the repair.
      this.#broken = new MemfaError('STORE_FAILED', `${WHAT} ${this.path} could not be rotated (${errnoCode(error)}); restart the daemon to recover it`, {
        data: { path: this.path },
        cause: error,
      });
      throw this.#broken;
    }
  }

  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(task);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Opens every file, oldest first, under the lock: handles stay valid across later renames. */
  #snapshot(): Promise<Snapshot> {
    return this.#exclusive(async () => {
      const files: Snapshot['files'] = [];
      let currentMissing = false;
      try {
        for (let i = this.#keep; i >= 0; i -= 1) {
          const path = i === 0 ? this.path : `${this.path}.${i}`;
          let handle: FileHandle;
          try {
            handle = await open(path, 'r');
          } catch (error) {
            if (errnoCode(error) !== 'ENOENT') throw error;
            if (i === 0) currentMissing = true;
            continue;
          }
          files.push({ path, handle, size: 0 });
          const last = files.at(-1);
          if (last !== undefined) last.size = (await handle.stat()).size;
        }
      } catch (error) {
        await closeAll(files);
        throw new MemfaError('CONFIG_INVALID', `${WHAT} ${this.path} cannot be read (${errnoCode(error)})`, { data: { path: this.path }, cause: error });
      }
      return { files, currentMissing, head: { seq: this.#seq, prev: this.#prev } };
    });
  }

  /** Entries matching every given filter, oldest first, across the current and rotated files. */
  async query(filter: AuditQuery = {}): Promise<AuditEntry[]> {
    const since = filter.since?.getTime();
    const until = filter.until?.getTime();
    const limit = filter.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new RangeError('AuditLog.query: limit must be a non-negative integer');
    const snapshot = await this.#snapshot();
    const found: AuditEntry[] = [];
    try {
      for (const file of snapshot.files) {
        for await (const { bytes, terminated } of readLines(file.handle, file.size)) {
          if (!terminated) continue;
          const entry = parseEntry(bytes);
          // Damaged lines are verify()'s business; a query shows what can be read.
          if (typeof entry === 'string') continue;
          if (filter.mailbox !== undefined && entry.mailbox !== filter.mailbox) continue;
          if (filter.action !== undefined && entry.action !== filter.action) continue;
          if (filter.result !== undefined && entry.result !== filter.result) continue;
          const time = Date.parse(entry.time);
          if (since !== undefined && time < since) continue;
          if (until !== undefined && time >= until) continue;
          found.push(entry);
          if (limit !== undefined && found.length > limit) found.shift();
        }
      }
    } finally {
      await closeAll(snapshot.files);
    }
    return found;
  }

  /**
   * Checks every kept file, oldest first: each line parses, seq rises by one, and each prev is the
   * hash of the line before (across files). Reports the first problem with its file and 1-based
   * line number. When a line's successor records a different hash, the line itself is reported:
   * it was changed (or the successor's prev was).
   */
  async verify(): Promise<AuditVerifyResult> {
    const snapshot = await this.#snapshot();
    try {
      if (snapshot.currentMissing && !this.#closed) {
        return { ok: false, file: this.path, line: 0, problem: 'the current file is missing (deleted or moved while the daemon runs)' };
      }
      let expectedPrev: string | null = null;
      let lastSeq: number | null = null;
      let lastLocation: { file: string; line: number } | null = null;
      let lines = 0;
      for (const file of snapshot.files) {
        let lineNo = 0;
        for await (const { bytes, terminated } of readLines(file.handle, file.size)) {
          lineNo += 1;
          const here = { file: file.path, line: lineNo };
          if (!terminated) return { ok: false, ...here, problem: 'torn line: no trailing newline (interrupted write)' };
          const entry = parseEntry(bytes);
          if (typeof entry === 'string') return { ok: false, ...here, problem: entry };
          if (lastSeq !== null && entry.seq !== lastSeq + 1) {
            const problem =
              entry.seq > lastSeq + 1
                ? `seq ${entry.seq} follows ${lastSeq}: ${entry.seq - lastSeq - 1} line(s) missing before this one`
                : `seq ${entry.seq} follows ${lastSeq}: out of order or duplicated`;
            return { ok: false, ...here, problem };
          }
          if (expectedPrev !== null && entry.prev !== expectedPrev && lastLocation !== null) {
            return {
              ok: false,
              ...lastLocation,
              problem: `the line does not match the hash recorded by the next line (${file.path} line ${lineNo}): it was changed, or that line's prev was`,
            };
          }
          expectedPrev = lineHash(bytes);
          lastSeq = entry.seq;
          lastLocation = here;
          lines += 1;
        }
      }
      if (!this.#closed && lastLocation !== null && (expectedPrev !== snapshot.head.prev || lastSeq !== snapshot.head.seq)) {
        return { ok: false, ...lastLocation, problem: 'the last line is not the line the daemon last wrote: it was changed, or lines were removed from the end' };
      }
      if (!this.#closed && lastLocation === null && snapshot.head.seq !== 0) {
        return { ok: false, file: this.path, line: 0, problem: 'the log is empty but the daemon has written entries: files were removed' };
      }
      return { ok: true, lines, files: snapshot.files.length };
    } finally {
      await closeAll(snapshot.files);
    }
  }

  /** Waits for queued appends, then closes the file. Later appends reject with SHUTTING_DOWN. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#draining !== null) await this.#draining;
    await this.#exclusive(async () => {
      await this.#handle?.close();
      this.#handle = null;
    });
  }
}
