// One audit stream of the shared database, as one node writes it: lines queued by this daemon go
// out in batches (group commit, as src/audit/log.ts does on disk), one statement per batch, which
// the database numbers, times and chains after whatever any node wrote before it
// (migrations/004_audit.sql memfa_audit_append). A batch is sent when the one before it is done,
// so a busy daemon sends large batches and the stream's head row is locked once per batch.
//
// When the database cannot be reached (no connection could be had: nothing was sent), the lines
// wait and are retried every retryMs, in order; the queue is bounded in bytes and in how long a
// line may wait, and what falls outside either is counted lost. A batch that was sent and failed,
// or whose answer never came, is counted lost, never sent again: its outcome is unknown, and a
// line must not be in the chain twice. Losses are counted, reported at most once a second, and
// recorded by an 'audit-lost' line in front of the next batch that is written (losses.ts).

import pg from 'pg';
import { bodyOf, MAX_LINE_BYTES } from '../../audit/encode.js';
import { lineFields, type AuditBody, type AuditEntry, type AuditEvent } from '../../audit/entry.js';
import { LossCounter, lostLine, RateLimitedEvents, type EventSink } from '../../audit/losses.js';
import type { AuditStreamName } from '../../protocol/results.js';
import { storeFailed, type Db } from './pool.js';

/** Lines per statement; a longer queue goes out in several, one after the other. */
const LINES_PER_BATCH = 500;
/** What a line adds around its fields: seq, time, prev and the punctuation (for MAX_LINE_BYTES). */
const LINE_FRAME_BYTES = 140;

interface Appended {
  first_seq: number;
  time_iso: string;
  first_prev: string;
  /** The hash of every line, in order; null when not asked for (no caller waits for its entry). */
  hashes: string[] | null;
}

/** The lines' texts go as one text, a line each (migrations/009_audit_joined.sql). */
const APPEND = 'SELECT first_seq, time_iso, first_prev, hashes FROM memfa_audit_append_joined($1, $2, $3::text, $4::text[], $5::text[], $6::text[], $7::boolean)';

export interface ChainOptions {
  db: Db;
  stream: AuditStreamName;
  node: string;
  onEvent: EventSink;
  /** Milliseconds since the epoch, as close to the database's as this node knows (loss times). */
  clock: () => number;
  /** A steady clock, for waits and retries. */
  ticks: () => number;
  /** Bytes (UTF-16 units of the lines' fields) the queue may hold while the database is away. */
  maxQueuedBytes: number;
  /** How long a line may wait for the database before it is counted lost. */
  maxWaitMs: number;
  /** How long after a failed connection the next attempt is made. */
  retryMs: number;
}

interface Queued {
  body: AuditBody;
  fields: string;
  /** When it was queued (ticks). */
  at: number;
  resolve: ((entry: AuditEntry | null) => void) | null;
}

/** A connection could not be had: nothing was sent. */
class Unreachable extends Error {}

export interface ChainStats {
  seq: number;
  failedWrites: number;
  droppedLines: number;
  lastError: string | null;
  queued: number;
  queuedBytes: number;
}

export class PgAuditChain {
  readonly #o: ChainOptions;
  readonly #losses = new LossCounter();
  readonly #limited: RateLimitedEvents;
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #running: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #retryAt = -Infinity;
  #closed = false;
  /** The last seq this node knows of (its own last line, or the head at open). */
  #seq: number;

  constructor(options: ChainOptions, seq: number) {
    this.#o = options;
    this.#seq = seq;
    this.#limited = new RateLimitedEvents(options.onEvent, options.ticks);
  }

  /** Queues an event; `awaited`: the promise of its entry (null if lost), otherwise nothing. */
  add(event: AuditEvent, awaited: true): Promise<AuditEntry | null>;
  add(event: AuditEvent, awaited: false): void;
  add(event: AuditEvent, awaited: boolean): Promise<AuditEntry | null> | void {
    if (this.#closed) {
      this.#lose('SHUTTING_DOWN: the audit trail is closed', [event], false);
      return awaited ? Promise.resolve(null) : undefined;
    }
    const body = bodyOf(event, '');
    let fields = lineFields(body);
    // UTF-8 takes at most 3 bytes per UTF-16 unit: the exact size only when it may be too large.
    if (fields.length * 3 + LINE_FRAME_BYTES > MAX_LINE_BYTES && Buffer.byteLength(fields) + LINE_FRAME_BYTES > MAX_LINE_BYTES && body.details !== undefined) {
      body.details = { omitted: 'details too large' };
      fields = lineFields(body);
    }
    if (this.#queuedBytes + fields.length > this.#o.maxQueuedBytes) {
      this.#lose(`the queue of lines waiting for the database is full (${this.#o.maxQueuedBytes} bytes)`, [event], false);
      return awaited ? Promise.resolve(null) : undefined;
    }
    this.#queuedBytes += fields.length;
    const at = this.#o.ticks();
    if (!awaited) {
      this.#queue.push({ body, fields, at, resolve: null });
      this.#kick();
      return;
    }
    return new Promise<AuditEntry | null>((resolve) => {
      this.#queue.push({ body, fields, at, resolve });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running !== null || this.#timer !== null || this.#queue.length === 0) return;
    const wait = this.#retryAt - this.#o.ticks();
    if (wait > 0) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#kick();
      }, wait);
      // Not unref'd: lines waiting are work in progress, done (written or lost) within maxWaitMs.
      return;
    }
    this.#running = this.#drain()
      // #send settles every failure of the database; this is for a fault of this code, which
      // must not become an unhandled rejection of the daemon.
      .catch((error: unknown) => this.#o.onEvent('error', 'audit-write-failed', { stream: this.#o.stream, error: String(error) }))
      .finally(() => {
        this.#running = null;
        this.#kick();
      });
  }

  /** Sends batches until the queue is empty or the database cannot be reached. */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.length <= LINES_PER_BATCH ? this.#queue : this.#queue.slice(0, LINES_PER_BATCH);
      // Its bytes stay counted until it is written or lost: the bound covers what is in flight.
      this.#queue = batch === this.#queue ? [] : this.#queue.slice(LINES_PER_BATCH);
      if (!(await this.#send(batch))) return;
    }
  }

  /** Writes `batch`, with the record of earlier losses in front; false when the database was out of reach (the batch is back in the queue). */
  async #send(batch: Queued[]): Promise<boolean> {
    const loss = this.#losses.unrecorded();
    let lines: { fields: string; body: AuditBody }[] = batch;
    if (loss !== null) {
      const body = bodyOf(lostLine(loss), '');
      lines = [{ fields: lineFields(body), body }, ...batch];
    }
    let answer: Appended;
    try {
      answer = await this.#write(lines, batch.some((q) => q.resolve !== null));
    } catch (error) {
      if (!(error instanceof Unreachable)) {
        this.#settled(batch);
        this.#fail(storeFailed(error).message, batch);
        return true;
      }
      if (this.#closed) {
        // Closing: no second chance for anything still queued.
        const rest = this.#queue;
        this.#queue = [];
        this.#queuedBytes = 0;
        this.#fail(error.message, batch.concat(rest));
        return false;
      }
      this.#retryAt = this.#o.ticks() + this.#o.retryMs;
      this.#requeue(batch, error.message);
      return false;
    }
    this.#retryAt = -Infinity;
    this.#settled(batch);
    const { first_seq: first, time_iso: time, first_prev: firstPrev, hashes } = answer;
    this.#seq = Math.max(this.#seq, first + lines.length - 1);
    if (loss !== null) {
      this.#losses.recorded(loss);
      this.#o.onEvent('warn', 'audit-write-resumed', { stream: this.#o.stream, lost: loss.lines });
    }
    const skip = lines.length - batch.length;
    for (let i = 0; i < batch.length; i++) {
      const q = batch[i]!;
      if (q.resolve === null) continue;
      const at = skip + i;
      q.resolve({ seq: first + at, ...q.body, time, prev: at === 0 ? firstPrev : hashes![at - 1]! });
    }
    return true;
  }

  /** One statement on a connection of its own; Unreachable when no connection could be had. `hashes`: answer every line's hash. */
  async #write(lines: { fields: string; body: AuditBody }[], hashes: boolean): Promise<Appended> {
    let client: pg.PoolClient;
    try {
      client = await this.#o.db.pool.connect();
    } catch (error) {
      throw new Unreachable(storeFailed(error).message);
    }
    // A checked-out client has no listener of the pool's: an error the server sends just after
    // the answer (a shutdown terminating the session), read in the same chunk, would be thrown
    // from the socket's callback, before this function resumes to release the client.
    let broken = false;
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      const { rows } = await client.query<Appended>(APPEND, [
        this.#o.stream,
        this.#o.node,
        lines.map((l) => l.fields).join('\n'),
        lines.map((l) => l.body.mailbox),
        lines.map((l) => l.body.action),
        lines.map((l) => l.body.result),
        hashes,
      ]);
      return rows[0]!;
    } catch (error) {
      // The server answered with an error: the connection is sound. Anything else (reset, timeout) is not.
      if (!(error instanceof pg.DatabaseError)) broken = true;
      throw error;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  #settled(batch: Queued[]): void {
    for (const q of batch) this.#queuedBytes -= q.fields.length;
  }

  /** Puts an unsent batch back in front of the queue, dropping what has waited too long. */
  #requeue(batch: Queued[], error: string): void {
    const queue = batch.concat(this.#queue);
    const oldest = this.#o.ticks() - this.#o.maxWaitMs;
    let expired = 0;
    while (expired < queue.length && queue[expired]!.at <= oldest) expired += 1;
    if (expired > 0) this.#fail(`${error} (for ${this.#o.maxWaitMs} ms)`, queue.slice(0, expired));
    this.#queue = expired === 0 ? queue : queue.slice(expired);
    this.#queuedBytes = 0;
    for (const q of this.#queue) this.#queuedBytes += q.fields.length;
  }

  /** `lines` were attempted and are lost: counted, reported, and their callers told. */
  #fail(error: string, lines: Queued[]): void {
    if (lines.length === 0) return;
    this.#lose(error, lines.map((q) => q.body), true);
    for (const q of lines) q.resolve?.(null);
  }

  #lose(error: string, lost: readonly { action: string; mailbox?: string | null }[], attempted: boolean): void {
    const now = this.#o.clock();
    if (attempted) this.#losses.failed(error, lost.length, now);
    else for (let i = 0; i < lost.length; i++) this.#losses.dropped(error, now);
    const first = lost[0]!;
    this.#limited.emit('error', 'audit-write-failed', {
      stream: this.#o.stream,
      error,
      action: first.action,
      mailbox: first.mailbox ?? null,
      lines: lost.length,
      failedWrites: this.#losses.failedWrites,
      droppedLines: this.#losses.droppedLines,
    });
  }

  stats(): ChainStats {
    return { seq: this.#seq, failedWrites: this.#losses.failedWrites, droppedLines: this.#losses.droppedLines, lastError: this.#losses.lastError, queued: this.#queue.length, queuedBytes: this.#queuedBytes };
  }

  /**
   * Writes what is queued (one attempt if the database is away: what cannot go is counted lost)
   * and the record of lines lost so far, then refuses further lines: they are counted lost.
   */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#retryAt = -Infinity;
    while (this.#running !== null || this.#queue.length > 0) {
      if (this.#running === null) this.#kick();
      await this.#running;
    }
    // Losses not yet in the chain: a line of their own, or they would be known to this process only.
    if (this.#losses.unrecorded() !== null) await this.#send([]);
  }
}
