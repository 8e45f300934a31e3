// memfa daemons on the benchmark's PostgreSQL: each in a directory of its own (its sockets, its
// log), all on the same database and the same key file, as the nodes of a mail farm are.
import { CONFIG_SPEC, type Section } from '../src/config/spec.js';
import { removeDir, tempDir } from './cleanup.js';
import { startBenchDaemon, writeDaemonConfig, type BenchDaemon } from './daemon.js';
import type { BenchPg } from './pg.js';

/** The daemon refused store.backend "postgres" (a version that does not serve it): why. */
export class PgUnserved extends Error {}

/** The read cache's settings of store.postgres (their defaults), where this version has them. */
export function pgCacheDefaults(): { cacheTtlMs: number; cacheEntries: number } | null {
  const store = CONFIG_SPEC.fields['store'] as Section;
  const fields = (store.fields['postgres'] as Section).fields;
  const ttl = fields['cacheTtlMs'];
  const entries = fields['cacheEntries'];
  if (ttl?.kind !== 'leaf' || entries?.kind !== 'leaf') return null;
  return { cacheTtlMs: ttl.default as number, cacheEntries: entries.default as number };
}

export type PgCacheSettings = Partial<{ cacheTtlMs: number; cacheEntries: number }>;

export interface PgDaemonOptions {
  keyFile: string;
  poolSize: number;
  /** store.postgres.cacheEntries and cacheTtlMs, where given; ignored by a version without the cache. */
  cache?: PgCacheSettings;
  /** Node options of the daemon's process (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export async function startPgDaemon(pg: BenchPg, opts: PgDaemonOptions): Promise<BenchDaemon> {
  const dir = await tempDir('mfp-');
  const cache = pgCacheDefaults() === null ? {} : opts.cache ?? {};
  await writeDaemonConfig(dir, {
    keyFile: opts.keyFile,
    store: {
      backend: 'postgres',
      postgres: { host: pg.cluster.socketDir, port: pg.cluster.port, database: pg.database, user: 'memfa', tls: 'disable', poolSize: opts.poolSize, ...cache },
    },
  });
  try {
    const d = await startBenchDaemon(dir, { nodeArgs: opts.nodeArgs ?? [] });
    const stop = d.stop.bind(d);
    d.stop = async (timeoutMs) => {
      const s = await stop(timeoutMs);
      await removeDir(dir);
      return s;
    };
    return d;
  } catch (err) {
    await removeDir(dir);
    if (String((err as Error).message).includes('is not served by this version')) throw new PgUnserved('this version of the daemon refuses store.backend "postgres" (not wired to the PostgreSQL store yet)');
    throw err;
  }
}

/** `count` daemons on the same database, started together (the schema is already there). */
export async function startPgDaemons(pg: BenchPg, count: number, opts: PgDaemonOptions): Promise<BenchDaemon[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startPgDaemon(pg, opts)));
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(ok.map((d) => d.stop()));
    throw failed.reason;
  }
  return ok;
}

export const socketsOf = (daemons: BenchDaemon[]) => daemons.map((d) => d.hookSocket);
export const pidsOf = (daemons: BenchDaemon[]) => daemons.map((d) => d.pid);
