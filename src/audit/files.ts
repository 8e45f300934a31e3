// Reading the files of one audit stream: lines from the end, the first line (the last line and
// every line in order are read as any append log's, files/append-log.ts); and a set of handles on
// all of a stream's files, opened together.
//
// Files: <path> is written; rotated files are <path>.1 (newest) … <path>.<keep> (oldest).

import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { errnoCode } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';

/** Every line in order, as the append log reads it (kept here with the stream's other readers). */
export { readLines } from '../files/append-log.js';

export const WHAT = 'audit log';
export const NEWLINE = 0x0a;
const CHUNK_BYTES = 64 * 1024;

/** <path> for 0, <path>.<i> for a rotated file. */
export function rotatedPath(path: string, i: number): string {
  return i === 0 ? path : `${path}.${i}`;
}

/** The complete lines of the first `size` bytes, newest first (a torn last line is skipped). */
export async function* readLinesBackward(handle: FileHandle, size: number): AsyncGenerator<Buffer> {
  let pos = size;
  let data = Buffer.alloc(0);
  let tailCut = false;
  for (;;) {
    if (pos > 0) {
      const length = Math.min(CHUNK_BYTES, pos);
      pos -= length;
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, pos);
      data = Buffer.concat([buffer.subarray(0, bytesRead), data]);
    }
    if (!tailCut) {
      const last = data.lastIndexOf(NEWLINE);
      if (last === -1) {
        if (pos === 0) return;
        continue;
      }
      data = data.subarray(0, last + 1);
      tailCut = true;
    }
    // `data` ends with a newline; `end` is the newline ending the next line to yield.
    let end = data.length - 1;
    while (end >= 0) {
      const start = end === 0 ? -1 : data.lastIndexOf(NEWLINE, end - 1);
      if (start === -1 && pos > 0) break; // the line starts in a piece not read yet
      yield data.subarray(start + 1, end);
      end = start;
    }
    if (pos === 0) return;
    data = data.subarray(0, end + 1);
  }
}

/** The first line of a file (newline excluded), or null when it holds no complete line. */
export async function readFirstLine(handle: FileHandle, size: number): Promise<Buffer | null> {
  let collected = Buffer.alloc(0);
  let pos = 0;
  while (pos < size) {
    const length = Math.min(CHUNK_BYTES, size - pos);
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
    collected = Buffer.concat([collected, buffer.subarray(0, bytesRead)]);
    const nl = collected.indexOf(NEWLINE);
    if (nl !== -1) return collected.subarray(0, nl);
  }
  return null;
}

const SEQ_PREFIX = /^\{"seq":(\d+),/;

/** The seq of a line as memfa writes it (seq is always the first key), without parsing the rest. */
export function seqOf(line: Buffer): number | null {
  const match = SEQ_PREFIX.exec(line.subarray(0, 32).toString('latin1'));
  return match === null ? null : Number(match[1]);
}

export interface OpenFile {
  path: string;
  handle: FileHandle;
  size: number;
}

export interface FileSet {
  /** Oldest first: <path>.<keep> … <path>.1, <path>. */
  files: OpenFile[];
  currentMissing: boolean;
}

export async function closeAll(files: OpenFile[]): Promise<void> {
  await Promise.all(files.map((file) => file.handle.close().catch(() => undefined)));
}

/** Opens every file of a stream read-only; sizes are taken now, so later appends are not seen. */
export async function openFileSet(path: string, keep: number): Promise<FileSet> {
  const files: OpenFile[] = [];
  let currentMissing = false;
  try {
    for (let i = keep; i >= 0; i -= 1) {
      const file = rotatedPath(path, i);
      let handle: FileHandle;
      try {
        handle = await open(file, 'r');
      } catch (error) {
        if (errnoCode(error) !== 'ENOENT') throw error;
        if (i === 0) currentMissing = true;
        continue;
      }
      files.push({ path: file, handle, size: 0 });
      files[files.length - 1]!.size = (await handle.stat()).size;
    }
  } catch (error) {
    await closeAll(files);
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  }
  return { files, currentMissing };
}

/** Runs `read` over one file opened read-only; a missing file gives `missing`. */
export async function withFile<T>(path: string, missing: T, read: (handle: FileHandle, size: number) => Promise<T>): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return missing;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  }
  try {
    return await read(handle, (await handle.stat()).size);
  } catch (error) {
    if (error instanceof MemfaError) throw error;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  } finally {
    await handle.close().catch(() => undefined);
  }
}
