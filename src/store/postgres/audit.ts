// The audit trail of several daemons on one database: what src/audit/trail.ts is on files, with
// the same methods, streams and rules (streamOf, the counting of fast-path allows), but one hash
// chain per stream for every node, ordered, timed and chained by the database
// (migrations/004_audit.sql, audit-chain.ts), and read back and verified there (audit-read.ts).
//
// Times: every line carries the database's clock. The few times this node makes itself (the
// first and last of a counted window of allows, and when lines were lost) are its clock corrected
// by the difference to the database's (the caller's, or measured at open), so that nodes' lines
// compare.

import { FastPathCounter } from '../../audit/aggregate.js';
import type { AuditEntry, AuditEvent } from '../../audit/entry.js';
import type { EventSink } from '../../audit/losses.js';
import type { AuditQuery } from '../../audit/query.js';
import { STREAMS, statusOf, streamOf, verifyResult, type TrailEntry } from '../../audit/trail.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStatus, AuditStreamCheck, AuditStreamName, AuditVerifyResult } from '../../protocol/results.js';
import { PgAuditChain } from './audit-chain.js';
import { checkStream, queryTrail, streamPlace } from './audit-read.js';
import { checkClock } from './open.js';
import type { Db } from './pool.js';

export interface PgAuditTrailOptions {
  /** This daemon's name in the lines it writes (audit_lines.node): 1 to 255 printable characters. */
  node: string;
  /** The window fast-path allows are counted in (aggregate.ts); 0 writes a line for each. */
  aggregateMs: number;
  /** Told of lost writes (at most once a second per kind) and their end; the fields name the stream. */
  onEvent?: EventSink;
  maxAggregateKeys?: number;
  /** Per stream: how much may wait while the database cannot be reached (default 4 MiB). */
  maxQueuedBytes?: number;
  /** Per line: how long it may wait for the database before it is counted lost (default 60 s). */
  maxWaitMs?: number;
  /** Between attempts to reach the database while it is away (default 250 ms). */
  retryMs?: number;
  /** Rows per statement of verify (default 5000). */
  verifyPageRows?: number;
  /**
   * This node's clock corrected to the database's, where the caller keeps one (the daemon's,
   * daemon/clock.ts); absent: measured once here, at open.
   */
  clock?: () => number;
}

const NODE = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

function checkOptions(options: PgAuditTrailOptions): void {
  if (typeof options.node !== 'string' || !NODE.test(options.node)) {
    throw new MemfaError('CONFIG_INVALID', 'audit node name: 1 to 255 printable ASCII characters, not starting with a space', { data: { key: 'node' } });
  }
  const positive = (name: string, value: number | undefined, min: number) => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) throw new RangeError(`PgAuditTrail: ${name} must be an integer of at least ${min}`);
  };
  positive('aggregateMs', options.aggregateMs, 0);
  positive('maxQueuedBytes', options.maxQueuedBytes, 1024);
  positive('maxWaitMs', options.maxWaitMs, 1);
  positive('retryMs', options.retryMs, 1);
  positive('verifyPageRows', options.verifyPageRows, 1);
}

export class PgAuditTrail {
  readonly #db: Db;
  readonly #chains: Record<AuditStreamName, PgAuditChain>;
  readonly #counter: FastPathCounter;
  readonly #pageRows: number | undefined;
  #closed: Promise<void> | null = null;

  private constructor(db: Db, options: PgAuditTrailOptions, heads: Record<AuditStreamName, number>, clock: () => number) {
    this.#db = db;
    this.#pageRows = options.verifyPageRows;
    const ticks = () => performance.now();
    const onEvent: EventSink = options.onEvent ?? (() => undefined);
    const chain = (stream: AuditStreamName) =>
      new PgAuditChain(
        {
          db,
          stream,
          node: options.node,
          onEvent,
          clock,
          ticks,
          maxQueuedBytes: options.maxQueuedBytes ?? 4 * 1024 * 1024,
          maxWaitMs: options.maxWaitMs ?? 60_000,
          retryMs: options.retryMs ?? 250,
        },
        heads[stream],
      );
    this.#chains = { security: chain('security'), logins: chain('logins') };
    const logins = this.#chains.logins;
    const counterOptions = { windowMs: options.aggregateMs, clock, write: (event: AuditEvent) => logins.add(event, false) };
    this.#counter = new FastPathCounter(options.maxAggregateKeys === undefined ? counterOptions : { ...counterOptions, maxKeys: options.maxAggregateKeys });
  }

  /**
   * The trail over `db`, whose schema is migrated (migrate.ts, at the daemon's start): reads the
   * streams' heads and this node's clock against the database's. Throws STORE_FAILED when the
   * database cannot be used, STORE_CORRUPT when the audit tables are not there.
   */
  static async open(db: Db, options: PgAuditTrailOptions): Promise<PgAuditTrail> {
    checkOptions(options);
    const { rows } = await db.query<{ stream: string; seq: number; present: boolean }>(
      "SELECT s.stream, coalesce(h.seq, 0) AS seq, h.stream IS NOT NULL AS present FROM unnest(ARRAY['security', 'logins']) AS s(stream) LEFT JOIN audit_heads h USING (stream)",
    ).catch((error: unknown) => {
      if ((error as MemfaError).data?.['sqlstate'] === '42P01') throw new MemfaError('STORE_CORRUPT', "the database has no audit tables: its schema was not migrated (migrate.ts, at the daemon's start)", { cause: error });
      throw error;
    });
    const missing = rows.filter((r) => !r.present).map((r) => r.stream);
    if (missing.length > 0) throw new MemfaError('STORE_CORRUPT', `the database's audit_heads has no row for ${missing.join(' and ')}`, { data: { streams: missing } });
    const heads = Object.fromEntries(rows.map((r) => [r.stream, r.seq])) as Record<AuditStreamName, number>;
    if (options.clock !== undefined) return new PgAuditTrail(db, options, heads, options.clock);
    const { skewMs } = await checkClock(db);
    return new PgAuditTrail(db, options, heads, () => Date.now() + skewMs);
  }

  /** Records an event in its stream; resolves once it is committed, or with null if it was lost (counted and reported). */
  append(event: AuditEvent): Promise<AuditEntry | null> {
    return this.#chains[streamOf(event)].add(event, true);
  }

  /** Records an event without waiting for the database. */
  record(event: AuditEvent): void {
    this.#chains[streamOf(event)].add(event, false);
  }

  /** Records a fast-path allow (no factor needed): counted, see aggregate.ts. */
  recordAllow(event: AuditEvent): void {
    this.#counter.note(event);
  }

  /** Entries of both streams matching the filter, oldest first; each names its stream. */
  query(filter: AuditQuery = {}): Promise<TrailEntry[]> {
    return queryTrail(this.#db, filter);
  }

  /** Checks both streams' whole chains in the database, whichever nodes wrote them. */
  async verify(): Promise<AuditVerifyResult> {
    const streams: AuditStreamCheck[] = [];
    // One after the other: a long read need not take two of the pool's connections at once.
    for (const stream of STREAMS) streams.push({ stream, ...(await checkStream(this.#db, stream, this.#pageRows)) });
    const result = verifyResult(streams);
    return result.ok ? { ...result, database: true } : result;
  }

  /** What this node wrote and lost; `seq` is the last line of the stream this node knows of. */
  status(): AuditStatus {
    return statusOf(
      STREAMS.map((name) => {
        const s = this.#chains[name].stats();
        return { name, file: streamPlace(name), seq: s.seq, failedWrites: s.failedWrites, droppedLines: s.droppedLines, lastError: s.lastError, gaps: 0 };
      }),
    );
  }

  /** Lines waiting for the database, per stream, and the bytes of their text (bounded by maxQueuedBytes). */
  pending(): Record<AuditStreamName, { lines: number; bytes: number }> {
    const of = (name: AuditStreamName) => {
      const s = this.#chains[name].stats();
      return { lines: s.queued, bytes: s.queuedBytes };
    };
    return { security: of('security'), logins: of('logins') };
  }

  /** Writes the counted allows and whatever is queued, then refuses further lines (counted lost). Leaves the Db open: it is the caller's. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#counter.flush();
      await Promise.all(STREAMS.map((name) => this.#chains[name].close()));
    })();
    return this.#closed;
  }
}
