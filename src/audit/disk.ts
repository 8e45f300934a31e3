// Opening one audit stream on disk: the current file for appending (created 0600 if missing,
// refused if others can read it), a torn last line cut off, and what the files hold: the head (the
// last line, in the current file or the newest rotated one with lines), the seq of the oldest
// kept line, and a lookup of the hash of any kept line by seq.
//
// A line is written with its newline in one write, so a crash can leave only a torn last line (no
// trailing newline); its caller was never told the event was recorded, so it is cut off. A last
// line that is complete but not an entry stops the open: silently starting a new chain after it
// would hide tampering.

import type { FileHandle } from 'node:fs/promises';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { cutTail, readTail } from '../files/append-log.js';
import { assertPrivateFile, errnoCode, fsyncDir } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import { lineHash, parseEntry, type AuditEvent } from './entry.js';
import { readFirstLine, readLinesBackward, rotatedPath, seqOf, withFile, WHAT } from './files.js';

/** A line of the chain: its seq and the hash the next line names as its prev. */
export interface Head {
  seq: number;
  hash: string;
}

/** Which file a handle is, to notice the current file being removed or replaced under the log. */
export interface FileId {
  dev: number;
  ino: number;
}

export interface DiskState {
  handle: FileHandle;
  id: FileId;
  /** The current file's size once a torn tail is cut off. */
  size: number;
  /** Bytes of a torn last line cut off. */
  torn: number;
  head: Head | null;
  /** seq of the first line of the oldest kept file that has one. */
  oldestSeq: number | null;
  /** A file past <path>.<keep> exists: the retention was lowered, and those files are not read. */
  beyondKeep: boolean;
}

/** Where the line with a given seq is: its hash, older than every kept line, or not on disk. */
export type LineLookup = { hash: string } | 'older-than-kept' | 'not-found';

export async function openCurrent(path: string): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'ax+', 0o600);
    // A strict umask could have taken bits we need; a loose one cannot add any.
    if (process.platform !== 'win32') await handle.chmod(0o600);
    await fsyncDir(dirname(path));
    return handle;
  } catch (error) {
    if (errnoCode(error) !== 'EEXIST') {
      throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be created (${errnoCode(error)})`, {
        data: { path },
        hint: `check that ${dirname(path)} exists and is writable by the daemon`,
        cause: error,
      });
    }
  }
  try {
    handle = await open(path, 'a+', 0o600);
  } catch (error) {
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be opened (${errnoCode(error)})`, { data: { path }, cause: error });
  }
  try {
    // Audit lines name mailboxes and addresses: private data.
    assertPrivateFile(path, await handle.stat(), WHAT, { checkOwner: true });
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}

function headOf(path: string, lastLine: Buffer | null): Head | null {
  if (lastLine === null) return null;
  const parsed = parseEntry(lastLine);
  if (typeof parsed === 'string') {
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path}: the last line is not an audit entry (${parsed}); the chain cannot be continued`, {
      data: { path },
      hint: 'run the audit verification, then move the file aside to start a new chain',
    });
  }
  return { seq: parsed.seq, hash: lineHash(lastLine) };
}

async function firstSeq(handle: FileHandle, size: number): Promise<number | null> {
  const line = await readFirstLine(handle, size);
  return line === null ? null : seqOf(line);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Opens the stream at `path` (see the top of this file). Throws CONFIG_INVALID naming the file. */
export async function openStream(path: string, keep: number): Promise<DiskState> {
  const handle = await openCurrent(path);
  try {
    const stats = await handle.stat();
    const tail = await readTail(handle, stats.size);
    const torn = stats.size - tail.end;
    if (torn > 0) await cutTail(handle, tail.end);
    let head = headOf(path, tail.lastLine);
    for (let i = 1; head === null && i <= keep; i += 1) {
      const file = rotatedPath(path, i);
      head = await withFile(file, null, async (h, size) => headOf(file, (await readTail(h, size)).lastLine));
    }
    let oldestSeq: number | null = null;
    for (let i = keep; oldestSeq === null && i >= 1; i -= 1) oldestSeq = await withFile(rotatedPath(path, i), null, firstSeq);
    oldestSeq ??= await firstSeq(handle, tail.end);
    const beyondKeep = await exists(rotatedPath(path, keep + 1));
    return { handle, id: { dev: stats.dev, ino: stats.ino }, size: tail.end, torn, head, oldestSeq, beyondKeep };
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof MemfaError) throw error;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  }
}

/** Whether `path` is still the file `id` names (not removed, renamed away or replaced). */
export async function isSameFile(path: string, id: FileId): Promise<boolean> {
  try {
    const stats = await stat(path);
    return stats.dev === id.dev && stats.ino === id.ino;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/**
 * The hash of the kept line with this seq, searched from the newest line backwards: the line
 * looked for is the anchored head, normally among the last few written.
 */
export async function lookupLine(path: string, keep: number, seq: number): Promise<LineLookup> {
  for (let i = 0; i <= keep; i += 1) {
    const found = await withFile<LineLookup | null>(rotatedPath(path, i), null, async (handle, size) => {
      for await (const line of readLinesBackward(handle, size)) {
        const at = seqOf(line);
        if (at === null || at > seq) continue;
        return at === seq ? { hash: lineHash(line) } : 'not-found';
      }
      return null;
    });
    if (found !== null) return found;
  }
  return 'older-than-kept';
}

/** The seq of the first line of the oldest kept file that has one, after `path`'s rotation. */
async function oldestSeqAfterDrop(path: string, keep: number): Promise<number | null> {
  for (let i = keep - 1; i >= 0; i -= 1) {
    const seq = await withFile(rotatedPath(path, i), null, firstSeq);
    if (seq !== null) return seq;
  }
  return null;
}


/** The line recording a torn tail cut off at open. */
export function tornTailLine(droppedBytes: number): AuditEvent {
  return { actor: 'daemon', action: 'audit-recovered', result: 'ok', reason: 'torn-tail', details: { droppedBytes } };
}

/**
 * Rotates the files: <path> becomes <path>.1 and so on; a fresh <path> is created and returned.
 * `beforeDrop` is called, and awaited, before the oldest file goes, with the seq of the oldest
 * line that will be left (null: none).
 */
export async function rotateFiles(path: string, keep: number, beforeDrop: (oldestLeft: number | null) => Promise<void>): Promise<{ handle: FileHandle; id: FileId }> {
  const ignoreMissing = (error: unknown): void => {
    if (errnoCode(error) !== 'ENOENT') throw error;
  };
  if (keep === 0) {
    await beforeDrop(null);
    await unlink(path);
  } else {
    if (await exists(rotatedPath(path, keep))) await beforeDrop(await oldestSeqAfterDrop(path, keep));
    await unlink(rotatedPath(path, keep)).catch(ignoreMissing);
    for (let i = keep - 1; i >= 1; i -= 1) await rename(rotatedPath(path, i), rotatedPath(path, i + 1)).catch(ignoreMissing);
    await rename(path, rotatedPath(path, 1));
  }
  await fsyncDir(dirname(path));
  const handle = await open(path, 'ax+', 0o600);
  try {
    if (process.platform !== 'win32') await handle.chmod(0o600);
    const stats = await handle.stat();
    await fsyncDir(dirname(path));
    return { handle, id: { dev: stats.dev, ino: stats.ino } };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}
