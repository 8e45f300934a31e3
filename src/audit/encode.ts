// Making lines: an event becomes a body (time added, details redacted); a batch of bodies is
// numbered, chained and encoded into one buffer, written with one write. Each line is encoded
// once, and its hash is taken of the very bytes that will be written: the digest lineHash() gives
// when reading back.

import { lineHash, serialiseLine, type AuditBody, type AuditEvent } from './entry.js';
import { NEWLINE } from './files.js';
import { redact } from './redact.js';

/** Larger details are replaced by a marker, so that one event cannot swamp the log. */
export const MAX_LINE_BYTES = 16 * 1024;
/** The buffer batches are encoded into is kept for the next batch up to this size. */
const KEPT_BUFFER_BYTES = 1024 * 1024;

/** A line of a batch, encoded: its bytes end at `end` in the batch's buffer, newline included. */
export interface EncodedLine {
  seq: number;
  /** The hash this line names (of the line before) and its own. */
  prev: string;
  hash: string;
  end: number;
}

/** `buffer`, or a copy of its first `used` bytes in a larger one, with at least `needed` bytes free past `used`. */
function room(buffer: Buffer, used: number, needed: number): Buffer {
  if (used + needed <= buffer.length) return buffer;
  const larger = Buffer.allocUnsafe(Math.max(used + needed, buffer.length * 2));
  buffer.copy(larger, 0, 0, used);
  return larger;
}

export class BatchEncoder {
  /** Reused by every batch: the log writes batches one at a time, never two at once. */
  #buffer: Buffer | null = null;

  /**
   * Encodes `bodies` as the lines after (seq, prev). A body whose line would pass MAX_LINE_BYTES
   * has its details replaced, in place, so that the caller's copy says what was written.
   */
  encode(bodies: readonly AuditBody[], seq: number, prev: string): { data: Buffer; lines: EncodedLine[] } {
    let buffer = this.#buffer ?? Buffer.allocUnsafe(64 * 1024);
    let offset = 0;
    const lines: EncodedLine[] = [];
    for (const body of bodies) {
      seq += 1;
      let text = serialiseLine(seq, body, prev);
      // UTF-8 takes at most 3 bytes per UTF-16 unit: with this much room, write() never cuts a line.
      buffer = room(buffer, offset, text.length * 3 + 1);
      let size = buffer.write(text, offset);
      if (size > MAX_LINE_BYTES && body.details !== undefined) {
        body.details = { omitted: 'details too large' };
        text = serialiseLine(seq, body, prev);
        size = buffer.write(text, offset);
      }
      const hash = lineHash(buffer.subarray(offset, offset + size));
      buffer[offset + size] = NEWLINE;
      offset += size + 1;
      lines.push({ seq, prev, hash, end: offset });
      prev = hash;
    }
    this.#buffer = buffer.length <= KEPT_BUFFER_BYTES ? buffer : null;
    return { data: buffer.subarray(0, offset), lines };
  }
}

/** Bodies of events, timed by `clock`. */
export class BodyMaker {
  readonly #clock: () => number;
  /** The last timestamp formatted, and its text: most events share their millisecond with another. */
  #timeMs = NaN;
  #timeText = '';

  constructor(clock: () => number) {
    this.#clock = clock;
  }

  /** `details` pass through redact(): keys that look like secrets are dropped. */
  body(event: AuditEvent): AuditBody {
    const now = this.#clock();
    if (now !== this.#timeMs) {
      this.#timeMs = now;
      this.#timeText = new Date(now).toISOString();
    }
    return bodyOf(event, this.#timeText);
  }
}

/**
 * What a line says of `event` at `time` (ISO 8601); `details` pass through redact(). A store that
 * times lines itself (the database's clock) passes '' and writes lineFields() of the body.
 */
export function bodyOf(event: AuditEvent, time: string): AuditBody {
  const body: AuditBody = {
    time,
    actor: event.actor,
    socket: event.socket ?? null,
    mailbox: event.mailbox ?? null,
    action: event.action,
    result: event.result,
    reason: event.reason ?? null,
    ip: event.ip ?? null,
    country: event.country ?? null,
  };
  if (event.details !== undefined) body.details = redact(event.details) as Record<string, unknown>;
  return body;
}
