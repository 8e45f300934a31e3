// The audit trail: two streams, each with its own hash chain, files, rotation and anchor, so that
// no volume of logins can rotate the record of a change away.
//
// - security: every change and security event (administration, enrolment, resets, unlocks, key
//   rotation, domain administrators, the daemon's own records) and the logins that change a
//   mailbox's factors (a TOTP secret activated, a recovery code spent).
// - logins: every other answer of verify, and every answer of login.check; fast-path allows
//   (and login.check's allows and continues) are counted (aggregate.ts).
//
// A query reads both, merged by time; verify checks both; status counts what was lost.

import { basename, dirname } from 'node:path';
import { MemfaError } from '../protocol/errors.js';
import type { AuditStatus, AuditStreamCheck, AuditStreamName, AuditStreamStatus, AuditVerifyResult } from '../protocol/results.js';
import { FastPathCounter } from './aggregate.js';
import type { AnchorStore } from './anchor.js';
import type { AuditEntry, AuditEvent } from './entry.js';
import { AuditLog } from './log.js';
import type { EventSink } from './losses.js';
import { checkLimit, mergeByTime, type AuditQuery } from './query.js';

export const STREAMS: readonly AuditStreamName[] = ['security', 'logins'];

/** verify answers that change a mailbox's factors: kept with the changes, not the logins. */
const FACTOR_REASONS: ReadonlySet<string> = new Set(['enrolled', 'recovery-code-used']);

export function streamOf(event: AuditEvent): AuditStreamName {
  return (event.action === 'verify' && !FACTOR_REASONS.has(event.reason ?? '')) || event.action === 'login.check' ? 'logins' : 'security';
}

export interface StreamOptions {
  file: string;
  maxBytes: number;
  keep: number;
  anchor?: AnchorStore;
}

export interface AuditTrailOptions {
  streams: Record<AuditStreamName, StreamOptions>;
  /** The window fast-path allows are counted in (aggregate.ts); 0 writes a line for each. */
  aggregateMs: number;
  maxAggregateKeys?: number;
  clock?: () => number;
  /** Told of breaks, lost writes and anchor failures; the fields name the stream. */
  onEvent?: EventSink;
}

export type TrailEntry = AuditEntry & { stream: AuditStreamName };

/** Two streams on one file, or one on the other's rotated files, would write over each other. */
function checkDistinct(security: string, logins: string): void {
  const rotatedOf = (a: string, b: string) => dirname(a) === dirname(b) && new RegExp(`^${basename(b).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.\\d+$`).test(basename(a));
  if (security === logins || rotatedOf(security, logins) || rotatedOf(logins, security)) {
    throw new MemfaError('CONFIG_INVALID', `audit.security.file (${security}) and audit.file (${logins}) must be different files, neither named like the other's rotated files`, {
      data: { key: 'audit.security.file' },
    });
  }
}

/** The trail's answer to verify from its streams' checks: the first problem on top, or the sums. */
export function verifyResult(streams: AuditStreamCheck[]): AuditVerifyResult {
  for (const check of streams) {
    if (!check.ok) return { ok: false, file: check.file, line: check.line, problem: check.problem, streams };
  }
  let lines = 0;
  let files = 0;
  let lost = 0;
  for (const check of streams) {
    if (!check.ok) continue;
    lines += check.lines;
    files += check.files;
    lost += check.lost;
  }
  return { ok: true, lines, files, lost, streams };
}

/** The trail's status from its streams'. */
export function statusOf(streams: AuditStreamStatus[]): AuditStatus {
  return {
    failedWrites: streams.reduce((sum, s) => sum + s.failedWrites, 0),
    droppedLines: streams.reduce((sum, s) => sum + s.droppedLines, 0),
    streams,
  };
}

export class AuditTrail {
  readonly #logs: Record<AuditStreamName, AuditLog>;
  readonly #counter: FastPathCounter;

  private constructor(logs: Record<AuditStreamName, AuditLog>, options: AuditTrailOptions, clock: () => number) {
    this.#logs = logs;
    const logins = logs.logins;
    const counterOptions = { windowMs: options.aggregateMs, clock, write: (event: AuditEvent) => logins.record(event) };
    this.#counter = new FastPathCounter(options.maxAggregateKeys === undefined ? counterOptions : { ...counterOptions, maxKeys: options.maxAggregateKeys });
  }

  static async open(options: AuditTrailOptions): Promise<AuditTrail> {
    checkDistinct(options.streams.security.file, options.streams.logins.file);
    const clock = options.clock ?? Date.now;
    const opened: AuditLog[] = [];
    try {
      const open = async (name: AuditStreamName): Promise<AuditLog> => {
        const s = options.streams[name];
        const onEvent: EventSink = (level, event, fields) => options.onEvent?.(level, event, { stream: name, ...fields });
        // The logins stream follows the login volume: anchored at most once a second, so that
        // denials and challenges add no store write each.
        const log = await AuditLog.open(s.file, { maxBytes: s.maxBytes, keep: s.keep, clock, onEvent, anchorEveryBatch: name === 'security', ...(s.anchor === undefined ? {} : { anchor: s.anchor }) });
        opened.push(log);
        return log;
      };
      const security = await open('security');
      const logins = await open('logins');
      return new AuditTrail({ security, logins }, options, clock);
    } catch (error) {
      await Promise.all(opened.map((log) => log.close().catch(() => undefined)));
      throw error;
    }
  }

  /** Records an event in its stream; resolves once it is on disk, or with null if it was lost (counted and reported). */
  append(event: AuditEvent): Promise<AuditEntry | null> {
    return this.#logs[streamOf(event)].append(event).catch(() => null);
  }

  /** Records an event without waiting for the disk. */
  record(event: AuditEvent): void {
    this.#logs[streamOf(event)].record(event);
  }

  /** Records a fast-path allow (no factor needed): counted, see aggregate.ts. */
  recordAllow(event: AuditEvent): void {
    this.#counter.note(event);
  }

  /** Entries of both streams matching the filter, oldest first; each names its stream. */
  async query(filter: AuditQuery = {}): Promise<TrailEntry[]> {
    checkLimit(filter.limit);
    const lists = await Promise.all(STREAMS.map(async (stream) => (await this.#logs[stream].query(filter)).map((entry): TrailEntry => ({ ...entry, stream }))));
    return mergeByTime(lists, filter.limit);
  }

  async verify(): Promise<AuditVerifyResult> {
    return verifyResult(await Promise.all(STREAMS.map(async (stream): Promise<AuditStreamCheck> => ({ stream, ...(await this.#logs[stream].verify()) }))));
  }

  status(): AuditStatus {
    return statusOf(STREAMS.map((name) => ({ name, ...this.#logs[name].stats() })));
  }

  /** Writes the counted allows, then closes both streams (each anchoring its head). */
  async close(): Promise<void> {
    this.#counter.flush();
    await Promise.all(STREAMS.map((name) => this.#logs[name].close()));
  }
}
