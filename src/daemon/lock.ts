// A pid file in the data directory, so that two daemons never open one store, even when they were
// given different sockets.
import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MemfaError } from '../protocol/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function acquireDataDirLock(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'memfa.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await open(file, 'wx', 0o600);
      await h.writeFile(String(process.pid) + '\n');
      await h.close();
      return async () => {
        await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new MemfaError('CONFLICT', `another memfa daemon (pid ${pid}) is using the data directory ${dataDir}`, {
          hint: 'stop it first; two daemons must never share one store',
        });
      }
      await unlink(file).catch(() => undefined); // stale: its process is gone
    }
  }
  throw new MemfaError('CONFLICT', `cannot lock the data directory ${dataDir}`);
}
