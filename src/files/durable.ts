// Durable, private file writes shared by the store, the key ring and the audit log.
//
// A rename is only durable once the directory entry is on disk, hence the directory fsync after
// every create and rename. A key file that is half written after a power cut would leave every
// sealed secret unreadable, so nothing here writes a key file in place.

import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { link, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { MemfaError } from '../protocol/errors.js';

const IS_WINDOWS = process.platform === 'win32';

export function errnoCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return 'unknown error';
}

/**
 * Makes the latest create/rename/unlink in `dir` durable. Windows cannot open a directory for
 * fsync and some file systems (e.g. certain network mounts) refuse it; there is nothing more we
 * can do on those, so those refusals are not errors.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (IS_WINDOWS) return;
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'EINVAL' || code === 'EPERM' || code === 'EISDIR' || code === 'EBADF' || code === 'ENOTSUP') return;
    throw error;
  } finally {
    await handle?.close();
  }
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** A whole content, or pieces written in turn (the event loop runs between them). */
export type FileContent = string | Buffer | Iterable<string>;

/** Pieces are gathered into a buffer of this size, written each time it is full. */
const PIECES_BUFFER_BYTES = 256 * 1024;

export interface WriteOptions {
  /**
   * For a write in the background of a busy process: the share of the time (0 to 1] that making
   * the pieces may take. After each buffer, the writer waits long enough for the time spent making
   * it to be that share of the whole. Without it, pieces are made as fast as they are written.
   */
  cpuShare?: number;
}

async function writeFully(handle: FileHandle, buf: Buffer, length: number): Promise<void> {
  let done = 0;
  while (done < length) done += (await handle.write(buf, done, length - done)).bytesWritten;
}

/**
 * Writes pieces through one reused buffer: the content (a 70 MB snapshot) never exists whole, and
 * no large string or buffer is made per piece, which would be garbage at the daemon's peak memory
 * (it stops by writing its snapshot).
 */
async function writePieces(handle: FileHandle, pieces: Iterable<string>, options: WriteOptions): Promise<void> {
  const buf = Buffer.allocUnsafe(PIECES_BUFFER_BYTES);
  const share = options.cpuShare;
  const pauseFactor = share !== undefined && share > 0 && share < 1 ? 1 / share - 1 : 0;
  let used = 0;
  let busySince = performance.now();
  const flush = async (length: number) => {
    const busy = performance.now() - busySince;
    await writeFully(handle, buf, length);
    if (pauseFactor > 0) await sleep(busy * pauseFactor);
    busySince = performance.now();
  };
  for (const piece of pieces) {
    // At most 3 UTF-8 bytes per UTF-16 unit: the exact length is only needed near the end.
    const room = buf.length - used;
    const need = piece.length * 3 <= room ? 0 : Buffer.byteLength(piece, 'utf8');
    if (need > room) {
      await flush(used);
      used = 0;
      if (need > buf.length) {
        const whole = Buffer.from(piece, 'utf8');
        await writeFully(handle, whole, whole.length);
        continue;
      }
    }
    used += buf.write(piece, used, 'utf8');
  }
  await writeFully(handle, buf, used);
}

async function writeTemp(path: string, data: FileContent, options: WriteOptions = {}): Promise<string> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', 0o600);
  try {
    // open()'s mode is filtered by the umask; a strict umask could leave the daemon unable to read
    // its own file, so set the intended mode explicitly.
    if (!IS_WINDOWS) await handle.chmod(0o600);
    // Pieces let a large file (the store snapshot) be written without one giant string and
    // without blocking requests while it is built.
    if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
    else await writePieces(handle, data, options);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temp;
}

/** Replaces `path` atomically: readers see the old content or the new, never a mix. Mode 0600. */
export async function writeFileAtomic(path: string, data: FileContent, options: WriteOptions = {}): Promise<void> {
  const temp = await writeTemp(path, data, options);
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dirname(path));
}

/**
 * Creates `path` with `data`, failing with EEXIST if it exists. The content is written to a temp
 * file first and hard-linked into place, so a crash never leaves a partial file under the real
 * name (a plain O_EXCL create would). Where hard links are unsupported, falls back to O_EXCL.
 */
export async function createFileExclusive(path: string, data: string | Buffer): Promise<void> {
  const temp = await writeTemp(path, data);
  let linked = false;
  try {
    await link(temp, path);
    linked = true;
  } catch (error) {
    const code = errnoCode(error);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  if (!linked) {
    const handle = await open(path, 'wx', 0o600);
    try {
      if (!IS_WINDOWS) await handle.chmod(0o600);
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  await fsyncDir(dirname(path));
}

/**
 * Refuses a file that others could read or that belongs to someone else: whoever can read the key
 * file can read every secret, and whoever owns it can swap the keys. Windows has no POSIX modes;
 * there the data directory's ACL is the guard.
 */
export function assertPrivateFile(path: string, stats: Stats, what: string, options: { checkOwner: boolean }): void {
  if (!stats.isFile()) {
    throw new MemfaError('CONFIG_INVALID', `${what} ${path} is not a regular file`, { data: { path } });
  }
  if (IS_WINDOWS) return;
  if ((stats.mode & 0o077) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
    throw new MemfaError('CONFIG_INVALID', `${what} ${path} is accessible by group or others (mode ${mode})`, {
      data: { path, mode },
      hint: `chmod 600 ${path}`,
    });
  }
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (options.checkOwner && uid !== undefined && stats.uid !== uid) {
    throw new MemfaError('CONFIG_INVALID', `${what} ${path} is owned by uid ${stats.uid}, not by the daemon's uid ${uid}`, {
      data: { path, owner: stats.uid, uid },
      hint: `chown ${uid} ${path}`,
    });
  }
}

/** assertPrivateFile for a file that may not exist yet (a missing file passes). */
export async function assertPrivateFileIfPresent(path: string, what: string): Promise<void> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  assertPrivateFile(path, stats, what, { checkOwner: true });
}
