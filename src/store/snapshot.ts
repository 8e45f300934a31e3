// The snapshot file, as a lowdb Adapter: lowdb's Low holds the snapshot being written and asks
// this adapter to read and write it; the adapter makes it durable, which lowdb's own node adapters
// do not (they write a temp file and rename it, with no fsync).
//
// read: a missing file is null (a new store); a file that cannot be read or parsed is
// STORE_CORRUPT naming it, and is left untouched. The layout memfa writes (schema.ts,
// snapshotJson) is read a record at a time, so that a 70 MB store is never one string; anything
// else (written by hand, or by an older memfa) is parsed whole.
//
// write: temp file, fsync, rename, fsync of the directory (files/durable.ts), so that a crash
// leaves the old snapshot or the new one, never a mix. Writes are made one at a time: one asked
// for while another runs waits for it, and replaces any other still waiting (a later snapshot
// holds everything an earlier one does); all of their callers are told once it is durable.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Adapter } from 'lowdb';
import { writeFileAtomic } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import { readSnapshotLines, snapshotJson, type SnapshotOut } from './schema.js';

interface Waiting {
  data: SnapshotOut;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SnapshotFile implements Adapter<SnapshotOut> {
  /** Size of the file as last read or written; 0 while there is none. */
  bytes = 0;
  private writing: Promise<void> | null = null;
  private next: Waiting | null = null;

  /**
   * `cpuShare`: the share of the event loop that making a write's content may take, asked when
   * the write starts (undefined: as fast as it can be written). See files/durable.ts.
   */
  constructor(
    readonly file: string,
    private readonly cpuShare: () => number | undefined = () => undefined,
  ) {}

  async read(): Promise<SnapshotOut | null> {
    const corrupt = (why: string) =>
      new MemfaError('STORE_CORRUPT', `store file ${this.file} is not valid JSON (${why}); refusing to start, the file was left untouched`, {
        data: { file: this.file },
        hint: 'restore the file from a backup, or move it aside to start with an empty store',
      });
    let handle: FileHandle;
    try {
      handle = await open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new MemfaError('STORE_CORRUPT', `cannot read store file ${this.file}: ${(err as Error).message}`, { data: { file: this.file } });
    }
    try {
      this.bytes = (await handle.stat()).size;
      const lines = createInterface({ input: handle.createReadStream({ encoding: 'utf8', autoClose: false }), crlfDelay: Infinity });
      let streamed: Record<string, unknown> | null;
      try {
        streamed = await readSnapshotLines(lines);
      } catch (err) {
        throw corrupt((err as Error).message);
      } finally {
        lines.close();
      }
      // What the file holds is checked and migrated by the caller (schema.ts, migrate).
      if (streamed !== null) return streamed as unknown as SnapshotOut;
      const text = await readFile(this.file, 'utf8');
      try {
        return JSON.parse(text) as SnapshotOut;
      } catch (err) {
        throw corrupt((err as Error).message);
      }
    } finally {
      await handle.close();
    }
  }

  write(data: SnapshotOut): Promise<void> {
    if (this.writing === null) return this.start(data);
    if (this.next === null) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.next = { data, done, resolve, reject };
    } else {
      this.next.data = data;
    }
    return this.next.done;
  }

  private start(data: SnapshotOut): Promise<void> {
    const run = this.writeNow(data);
    this.writing = run;
    void run
      .catch(() => undefined)
      .then(() => {
        this.writing = null;
        const next = this.next;
        this.next = null;
        if (next !== null) this.start(next.data).then(next.resolve, next.reject);
      });
    return run;
  }

  private async writeNow(data: SnapshotOut): Promise<void> {
    const cpuShare = this.cpuShare();
    await writeFileAtomic(this.file, snapshotJson(data), cpuShare === undefined ? {} : { cpuShare });
    this.bytes = (await stat(this.file)).size;
  }
}
