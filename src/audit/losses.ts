// Lost audit writes: counted (for `memfa status`), reported in the daemon's log at most once per
// interval per kind (a full disk under load fails thousands of lines a second), and recorded in the
// chain itself by an 'audit-lost' line as soon as a write succeeds again.

import type { AuditEvent } from './entry.js';

export const LOST_ACTION = 'audit-lost';

export type Level = 'info' | 'warn' | 'error';
export type EventSink = (level: Level, event: string, fields: Record<string, unknown>) => void;

/** Passes an event on at most once per interval per event name; the others are counted. */
export class RateLimitedEvents {
  readonly #sink: EventSink;
  readonly #clock: () => number;
  readonly #intervalMs: number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(sink: EventSink, clock: () => number, intervalMs = 1000) {
    this.#sink = sink;
    this.#clock = clock;
    this.#intervalMs = intervalMs;
  }

  emit(level: Level, event: string, fields: Record<string, unknown>): void {
    const now = this.#clock();
    const last = this.#last.get(event);
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.suppressed += 1;
      return;
    }
    this.#last.set(event, { at: now, suppressed: 0 });
    this.#sink(level, event, last !== undefined && last.suppressed > 0 ? { ...fields, suppressed: last.suppressed } : fields);
  }
}

/** Lines lost since the last 'audit-lost' line, for the next one. */
export interface UnrecordedLoss {
  lines: number;
  first: number;
  last: number;
  error: string;
}

export class LossCounter {
  /** Failed write attempts (a batch, or the part of it after a rotation). */
  failedWrites = 0;
  /** Events that never reached the file. */
  droppedLines = 0;
  lastError: string | null = null;
  #unrecorded: UnrecordedLoss | null = null;

  /** A write of `lines` lines failed. */
  failed(error: string, lines: number, now: number): void {
    this.failedWrites += 1;
    this.#lost(error, lines, now);
  }

  /** A line lost without a write being attempted (the log was closed). */
  dropped(error: string, now: number): void {
    this.#lost(error, 1, now);
  }

  #lost(error: string, lines: number, now: number): void {
    this.droppedLines += lines;
    this.lastError = error;
    if (this.#unrecorded === null) this.#unrecorded = { lines, first: now, last: now, error };
    else {
      this.#unrecorded.lines += lines;
      this.#unrecorded.last = now;
      this.#unrecorded.error = error;
    }
  }

  unrecorded(): UnrecordedLoss | null {
    return this.#unrecorded === null ? null : { ...this.#unrecorded };
  }

  /** An 'audit-lost' line for `loss` is on disk. */
  recorded(loss: UnrecordedLoss): void {
    if (this.#unrecorded === null) return;
    this.#unrecorded.lines -= loss.lines;
    // What is left was lost after the line recording `loss` was made.
    if (this.#unrecorded.lines <= 0) this.#unrecorded = null;
    else this.#unrecorded.first = loss.last;
  }
}

/** The 'audit-lost' line recording `loss`. */
export function lostLine(loss: UnrecordedLoss): AuditEvent {
  const details = { lines: loss.lines, first: new Date(loss.first).toISOString(), last: new Date(loss.last).toISOString(), error: loss.error };
  return { actor: 'daemon', action: LOST_ACTION, result: 'error', reason: 'write-failed', details };
}
