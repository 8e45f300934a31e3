// Export and import as the commands run them: a source written out as the stream, a stream read
// into a sink, with a progress callback per line. The import commits only once the reader has
// checked the whole stream, trailer included; any failure aborts the sink, leaving the target as
// it was.
import type { Readable, Writable } from 'node:stream';
import { MemfaError } from '../../protocol/errors.js';
import { AUDIT_STREAMS, describeCounts, sameCounts, totalOf, type Header, type StateCounts } from './format.js';
import type { StateSink, StateSource } from './ports.js';
import { readStream, StreamWriter } from './stream.js';

/** Told the number of lines done and the total (header and trailer aside), at each line. */
export type ProgressSink = (done: number, total: number) => void;

export async function exportState(source: StateSource, out: Writable, opts: { memfa: string; now: Date; progress?: ProgressSink }): Promise<StateCounts> {
  const counts = await source.counts();
  const total = totalOf(counts);
  let done = 0;
  const tick = () => opts.progress?.(++done, total);
  const w = new StreamWriter(out);
  await w.header(source.backend, opts.memfa, counts, opts.now);
  await w.global(await source.global());
  tick();
  for await (const d of source.domains()) {
    await w.domain(d);
    tick();
  }
  for await (const { key, value } of source.meta()) {
    await w.meta(key, value);
    tick();
  }
  for await (const m of source.mailboxes()) {
    await w.mailbox(m);
    tick();
  }
  for (const stream of AUDIT_STREAMS) {
    for await (const line of source.audit(stream)) {
      await w.audit(stream, line);
      tick();
    }
  }
  const written = await w.end();
  // The source reads one consistent state: counts that moved mean it did not, and the stream
  // (whose header says otherwise) would be refused by any import.
  if (!sameCounts(written, counts)) {
    throw new MemfaError('STORE_FAILED', `the store changed while it was exported (counted ${describeCounts(counts)}, read ${describeCounts(written)}); nothing usable was written`, {
      hint: 'stop the daemon of a file store before exporting it',
    });
  }
  return written;
}

export async function importState(input: Readable, sink: StateSink, opts: { progress?: ProgressSink } = {}): Promise<Header> {
  let header: Header | null = null;
  let total = 0;
  let done = 0;
  try {
    for await (const item of readStream(input, (h) => {
      header = h;
      total = totalOf(h.counts);
    })) {
      switch (item.kind) {
        case 'global':
          await sink.global(item.settings);
          break;
        case 'domain':
          await sink.domain(item.record);
          break;
        case 'meta':
          await sink.meta(item.key, item.value);
          break;
        case 'mailbox':
          await sink.mailbox(item.record);
          break;
        case 'audit':
          await sink.audit(item.stream, item.line, item.seq);
          break;
      }
      opts.progress?.(++done, total);
    }
    await sink.commit();
  } catch (err) {
    await sink.abort().catch(() => undefined);
    throw err;
  }
  return header!;
}
