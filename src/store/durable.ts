// Durable file replacement: write a temp file, fsync it, rename over the target, fsync the
// directory. After the promise resolves the new content survives a crash or power loss.
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return; // directories cannot be opened for fsync there
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * `data` may be an iterable of pieces: each is written in turn, and the event loop runs between
 * writes, so a large file (the store snapshot) never needs one giant string nor blocks requests.
 */
export async function writeFileDurable(file: string, data: string | Buffer | Iterable<string>, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const handle = await open(tmp, 'wx', mode);
  try {
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
      else for (const piece of data) await handle.write(piece);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(dir);
}
