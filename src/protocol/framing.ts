// Newline-delimited framing with a hard size bound. The daemon never JSON.parses a raw chunk:
// bytes are accumulated here until a full line arrives, and a line that grows past the limit is
// refused before it can exhaust memory.

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

export type FrameEvent = { kind: 'line'; line: string } | { kind: 'oversize'; bytes: number };

const NO_BYTES = Buffer.alloc(0);

/**
 * Frames are taken one at a time (feed a chunk, then next() until it returns null), so that a
 * reader that must stop part-way through a chunk (its peer does not read the answers) holds the
 * rest of the chunk as the bytes that arrived, not as decoded frames.
 */
export class LineDecoder {
  private readonly parts: Buffer[] = [];
  private pending = 0;
  private discarding = false;
  private chunk: Buffer = NO_BYTES;
  private offset = 0;

  constructor(private readonly maxBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Adds a chunk after whatever is not yet taken (normally nothing: callers drain next() first). */
  feed(chunk: Buffer): void {
    this.chunk = this.offset < this.chunk.length ? Buffer.concat([this.chunk.subarray(this.offset), chunk]) : chunk;
    this.offset = 0;
  }

  /** The next complete frame (or an oversize event, at most once per frame); null when the bytes fed so far are used up. */
  next(): FrameEvent | null {
    const chunk = this.chunk;
    while (this.offset < chunk.length) {
      const start = this.offset;
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const size = end - start;
      this.offset = nl === -1 ? chunk.length : nl + 1;
      if (nl !== -1 && !this.discarding && this.pending === 0 && size <= this.maxBytes) {
        // The usual case, a whole line inside one chunk: decoded in place, no copy.
        const line = lineOf(chunk.toString('utf8', start, end));
        if (line !== null) return line;
        continue;
      }
      let oversize: FrameEvent | null = null;
      if (!this.discarding) {
        if (this.pending + size > this.maxBytes) {
          oversize = { kind: 'oversize', bytes: this.pending + size };
          this.discarding = true;
          this.parts.length = 0;
          this.pending = 0;
        } else if (size > 0) {
          this.parts.push(chunk.subarray(start, end));
          this.pending += size;
        }
      }
      if (nl === -1) {
        this.release();
        return oversize;
      }
      const text = this.discarding ? null : Buffer.concat(this.parts, this.pending).toString('utf8');
      this.parts.length = 0;
      this.pending = 0;
      this.discarding = false;
      if (oversize !== null) return oversize;
      const line = text === null ? null : lineOf(text);
      if (line !== null) return line;
    }
    this.release();
    return null;
  }

  /** Feeds a chunk and returns every frame it finished. */
  push(chunk: Buffer): FrameEvent[] {
    this.feed(chunk);
    const events: FrameEvent[] = [];
    for (let e = this.next(); e !== null; e = this.next()) events.push(e);
    return events;
  }

  /** True when a partial frame is buffered (a half-received message). */
  get hasPartial(): boolean {
    return this.pending > 0;
  }

  /** Bytes fed but not yet taken by next(). */
  get unread(): number {
    return this.chunk.length - this.offset;
  }

  private release(): void {
    // A used-up chunk is let go at once, not kept until the next one arrives.
    this.chunk = NO_BYTES;
    this.offset = 0;
  }
}

function lineOf(text: string): FrameEvent | null {
  const line = text.endsWith('\r') ? text.slice(0, -1) : text;
  return line.trim().length > 0 ? { kind: 'line', line } : null;
}

export function encodeFrame(message: unknown): string {
  // JSON.stringify never emits a raw newline, so one message is always one line.
  return JSON.stringify(message) + '\n';
}
