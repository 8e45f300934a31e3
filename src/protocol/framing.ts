// Newline-delimited framing with a hard size bound. The daemon never JSON.parses a raw chunk:
// bytes are accumulated here until a full line arrives, and a line that grows past the limit is
// refused before it can exhaust memory.

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

export type FrameEvent = { kind: 'line'; line: string } | { kind: 'oversize'; bytes: number };

export class LineDecoder {
  private readonly parts: Buffer[] = [];
  private pending = 0;
  private discarding = false;

  constructor(private readonly maxBytes: number = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds a chunk; returns the complete frames it finished (and an oversize event at most once per frame). */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      const size = end - start;
      if (nl !== -1 && !this.discarding && this.pending === 0 && size <= this.maxBytes) {
        // The usual case, a whole line inside one chunk: decoded in place, no copy.
        this.emitLine(chunk.toString('utf8', start, end), events);
        start = nl + 1;
        continue;
      }
      if (!this.discarding) {
        if (this.pending + size > this.maxBytes) {
          events.push({ kind: 'oversize', bytes: this.pending + size });
          this.discarding = true;
          this.parts.length = 0;
          this.pending = 0;
        } else if (size > 0) {
          this.parts.push(chunk.subarray(start, end));
          this.pending += size;
        }
      }
      if (nl === -1) break;
      if (!this.discarding) this.emitLine(Buffer.concat(this.parts, this.pending).toString('utf8'), events);
      this.parts.length = 0;
      this.pending = 0;
      this.discarding = false;
      start = nl + 1;
    }
    return events;
  }

  private emitLine(text: string, events: FrameEvent[]): void {
    const line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (line.trim().length > 0) events.push({ kind: 'line', line });
  }

  /** True when a partial frame is buffered (a half-received message). */
  get hasPartial(): boolean {
    return this.pending > 0;
  }
}

export function encodeFrame(message: unknown): string {
  // JSON.stringify never emits a raw newline, so one message is always one line.
  return JSON.stringify(message) + '\n';
}
