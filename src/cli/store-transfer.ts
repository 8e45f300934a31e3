// How `memfa store export` and `memfa store import` reach the store the configuration names,
// without a daemon: a file store under the data directory's lock (so never while a daemon has it
// open, and no daemon starts until they are done), a PostgreSQL database directly, while its
// daemons run (export reads one snapshot; import locks the tables against writes and refuses a
// database that holds state unless told to replace it). The stream goes to a file through a
// temporary file renamed into place once complete, or to standard output.
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { MemfaConfig } from '../config/types.js';
import { acquireDataDirLock } from '../daemon/lock.js';
import { fsyncDir } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import { migrate } from '../store/postgres/migrate.js';
import { postgresSettings } from '../store/postgres/open.js';
import { createPool, Db } from '../store/postgres/pool.js';
import { PgSink, PgSource } from '../store/postgres/transfer.js';
import type { AuditConfig } from '../store/transfer/audit-files.js';
import { FileSink, FileSource } from '../store/transfer/file.js';
import type { StateSink, StateSource } from '../store/transfer/ports.js';
import type { ProgressSink } from '../store/transfer/run.js';
import { Progress } from './import/progress.js';

export type Verb = 'export' | 'import';

function auditConfig(config: MemfaConfig): AuditConfig {
  return {
    security: { file: config.audit.security.file, keep: config.audit.security.keep },
    logins: { file: config.audit.file, keep: config.audit.keep },
  };
}

/** The data directory's lock, as a daemon takes it; CONFLICT naming the daemon that holds it. */
async function lockDataDir(config: MemfaConfig, verb: Verb): Promise<() => Promise<void>> {
  try {
    return await acquireDataDirLock(config.dataDir);
  } catch (err) {
    if (err instanceof MemfaError && err.code === 'CONFLICT') {
      throw new MemfaError('CONFLICT', `${err.message}: memfa store ${verb} works on a file store only while no daemon has it open`, {
        data: { dataDir: config.dataDir },
        hint: 'stop the daemon (systemctl stop memfa), run the command, start it again',
      });
    }
    throw err;
  }
}

async function openDb(config: MemfaConfig): Promise<Db> {
  if (config.store.postgres === null) throw new MemfaError('CONFIG_INVALID', 'store.backend is "postgres" but store.postgres is not set', { data: { key: 'store.postgres' } });
  return new Db(createPool(await postgresSettings(config.store.postgres)));
}

/** A source on the configured store, and what closes it (the lock or the pool with it). */
export async function openSource(config: MemfaConfig): Promise<{ source: StateSource; close: () => Promise<void>; where: string }> {
  if (config.store.backend === 'postgres') {
    const db = await openDb(config);
    try {
      const source = await PgSource.open(db);
      return { source, where: `the database ${config.store.postgres!.database}`, close: async () => (await source.close(), await db.close()) };
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }
  if (!(await stat(config.dataDir).then(() => true, () => false))) {
    throw new MemfaError('NOT_FOUND', `there is no data directory ${config.dataDir}: nothing to export`, { data: { dataDir: config.dataDir }, hint: 'check dataDir in the configuration (--config)' });
  }
  const unlock = await lockDataDir(config, 'export');
  try {
    const source = await FileSource.open(config.store.file, auditConfig(config));
    return { source, where: `the file store ${config.store.file}`, close: async () => (await source.close(), await unlock()) };
  } catch (err) {
    await unlock();
    throw err;
  }
}

export async function openSink(config: MemfaConfig, replace: boolean): Promise<{ sink: StateSink; close: () => Promise<void>; where: string }> {
  if (config.store.backend === 'postgres') {
    const db = await openDb(config);
    try {
      // As a daemon's start does: the schema brought up to this memfa's (or refused if newer).
      await migrate(db);
      const sink = await PgSink.open(db, { replace });
      return { sink, where: `the database ${config.store.postgres!.database}`, close: () => db.close() };
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const unlock = await lockDataDir(config, 'import');
  try {
    for (const f of [config.audit.file, config.audit.security.file]) await mkdir(path.dirname(f), { recursive: true, mode: 0o700 });
    const sink = await FileSink.open(config.store.file, auditConfig(config), { replace });
    return { sink, where: `the file store ${config.store.file}`, close: unlock };
  } catch (err) {
    await unlock();
    throw err;
  }
}

/** Where the stream goes: `file` through a temporary file (mode 0600) renamed in by done(), or standard output. */
export async function streamOut(file: string | undefined): Promise<{ out: Writable; done: () => Promise<void>; fail: () => Promise<void> }> {
  if (file === undefined) {
    if (process.stdout.isTTY === true) throw new MemfaError('USAGE', 'standard output is a terminal: give --output FILE, or redirect it', { hint: 'see memfa store export --help' });
    return { out: process.stdout, done: () => Promise.resolve(), fail: () => Promise.resolve() };
  }
  const target = path.resolve(file);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}`);
  const out = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (err) => reject(new MemfaError('USAGE', `--output: cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { hint: 'see memfa store export --help' })));
  });
  const closed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  return {
    out,
    done: async () => {
      out.end();
      await closed;
      const h = await open(temp, 'r+');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
      await rename(temp, target);
      await fsyncDir(path.dirname(target));
    },
    fail: async () => {
      out.destroy();
      await closed.catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    },
  };
}

export async function streamIn(file: string | undefined): Promise<{ input: Readable; name: string; close: () => Promise<void> }> {
  if (file === undefined) {
    if (process.stdin.isTTY === true) throw new MemfaError('USAGE', 'standard input is a terminal: give --input FILE, or redirect it', { hint: 'see memfa store import --help' });
    return { input: process.stdin, name: '(stdin)', close: () => Promise.resolve() };
  }
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new MemfaError('USAGE', `--input: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { hint: 'see memfa store import --help' });
  }
  const h = handle;
  return { input: h.createReadStream({ autoClose: false }), name: file, close: () => h.close().catch(() => undefined) };
}

/** A progress bar on standard error when it is a terminal (and not --json), made once the total is known. */
export function progressBar(enabled: boolean): { sink: ProgressSink; clear: () => void } {
  let bar: Progress | null = null;
  return {
    sink: (done, total) => {
      bar ??= new Progress(total, process.stderr, enabled);
      bar.update(done);
    },
    clear: () => bar?.clear(),
  };
}
