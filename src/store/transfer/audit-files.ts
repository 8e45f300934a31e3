// The audit streams of a file store's host, for an export and an import: the files the
// configuration names (audit.file and audit.security.file, with their rotated files), read
// oldest first, and written for an import as one current file per stream, through a temporary
// file that only takes the stream's name once the whole import has been read and checked.
import type { FileHandle } from 'node:fs/promises';
import { open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Anchor } from '../../audit/anchor.js';
import { lineHash } from '../../audit/entry.js';
import { closeAll, openFileSet, readLines, rotatedPath } from '../../audit/files.js';
import { errnoCode, fsyncDir } from '../../files/durable.js';
import type { AuditStreamName } from '../../protocol/results.js';

export interface AuditFiles {
  file: string;
  keep: number;
}

export type AuditConfig = Record<AuditStreamName, AuditFiles>;

/** The complete lines of a stream's files, oldest first (a torn last line is left out, as the log does). */
export async function* auditLines(files: AuditFiles): AsyncGenerator<Buffer> {
  const set = await openFileSet(files.file, files.keep);
  try {
    for (const f of set.files) {
      for await (const { bytes, terminated } of readLines(f.handle, f.size)) if (terminated) yield bytes;
    }
  } finally {
    await closeAll(set.files);
  }
}

export async function countAuditLines(files: AuditFiles): Promise<number> {
  let n = 0;
  for await (const _ of auditLines(files)) n++;
  return n;
}

/** The stream's files that exist: <path>, <path>.1 … <path>.<keep>. */
async function existing(files: AuditFiles): Promise<string[]> {
  const found: string[] = [];
  for (let i = 0; i <= files.keep; i++) {
    const f = rotatedPath(files.file, i);
    if (await stat(f).then(() => true, (err: unknown) => (errnoCode(err) === 'ENOENT' ? false : Promise.reject(err)))) found.push(f);
  }
  return found;
}

const WRITE_BUFFER_BYTES = 256 * 1024;

/** One stream being imported: its lines appended to a temporary file beside the stream's. */
export class AuditImport {
  private handle: FileHandle | null = null;
  private readonly temp: string;
  private pending: string[] = [];
  private pendingBytes = 0;
  private first: number | null = null;
  private last: { seq: number; line: string } | null = null;
  /** The temporary file is complete and durable, waiting for install(). */
  private prepared = false;

  constructor(private readonly files: AuditFiles) {
    this.temp = path.join(path.dirname(files.file), `.${path.basename(files.file)}.import-${process.pid}`);
  }

  async add(line: string, seq: number): Promise<void> {
    if (this.handle === null) this.handle = await open(this.temp, 'wx', 0o600);
    this.first ??= seq;
    this.last = { seq, line };
    this.pending.push(line, '\n');
    this.pendingBytes += line.length + 1;
    if (this.pendingBytes >= WRITE_BUFFER_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.handle === null || this.pending.length === 0) return;
    await this.handle.write(this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The head and floor the imported lines make, for the store's anchor; null without lines. */
  anchor(): Anchor | null {
    if (this.last === null || this.first === null) return null;
    return { seq: this.last.seq, hash: lineHash(Buffer.from(this.last.line, 'utf8')), floor: this.first };
  }

  /** Lines the target's files hold now (an import refuses to merge into them). */
  async linesHeld(): Promise<number> {
    return countAuditLines(this.files);
  }

  /** Makes the imported lines durable in the temporary file (nothing of the target is touched yet). */
  async prepare(): Promise<void> {
    await this.flush();
    if (this.handle === null) return;
    await this.handle.sync();
    await this.handle.close();
    this.handle = null;
    this.prepared = true;
  }

  /**
   * Makes the prepared lines the stream: the target's own files (with --replace) are first set
   * aside under `<name>.before-import-<stamp>`, never deleted. Renames only.
   */
  async install(stamp: string): Promise<string[]> {
    const setAside: string[] = [];
    for (const f of await existing(this.files)) {
      // An empty current file (a daemon that never wrote) is replaced, not kept.
      if (f === this.files.file && (await stat(f)).size === 0) continue;
      await rename(f, `${f}.before-import-${stamp}`);
      setAside.push(f);
    }
    if (this.prepared) {
      await rename(this.temp, this.files.file);
      this.prepared = false;
    }
    await fsyncDir(path.dirname(this.files.file));
    return setAside;
  }

  async abort(): Promise<void> {
    if (this.handle === null && !this.prepared) return;
    await this.handle?.close().catch(() => undefined);
    this.handle = null;
    this.prepared = false;
    await unlink(this.temp).catch(() => undefined);
  }
}
