// Test harness: real daemons on store.backend "postgres" against a throwaway cluster
// (helpers/postgres.ts), each in its own temporary directory, as the nodes of one farm.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, startDaemon, type TestDaemon } from './daemon.js';
import { PG_USER, type PgCluster } from './postgres.js';

/** The configuration's store section for `database` of `cluster`; `extra`: more store.postgres keys. */
export function pgStoreConfig(cluster: PgCluster, database: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    store: { backend: 'postgres', postgres: { host: cluster.socketDir, port: cluster.port, database, user: PG_USER, connectTimeoutMs: 2000, statementTimeoutMs: 3000, lockTimeoutMs: 1000, ...extra } },
  };
}

/** Where the database is, as the daemon names it (status, the ready line, its errors). */
export function pgLocation(cluster: PgCluster, database: string): string {
  return `postgres://${PG_USER}@${cluster.socketDir}:${cluster.port}/${database}`;
}

export interface PgDaemonOptions {
  /** A node of the same farm whose key file this one is given before it starts (every node but the first). */
  keyFrom?: TestDaemon;
  /** More configuration keys, over pgStoreConfig's (give `store` whole to change store.postgres). */
  config?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  expectFailure?: boolean;
}

/** A daemon on `database`; the caller cleans it up (TestDaemon.cleanup). */
export async function startPgDaemon(cluster: PgCluster, database: string, options: PgDaemonOptions = {}): Promise<TestDaemon> {
  const dir = await makeTempDir();
  if (options.keyFrom !== undefined) {
    await mkdir(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    await copyFile(path.join(options.keyFrom.dataDir, 'memfa.key'), path.join(dir, 'data', 'memfa.key'));
  }
  return startDaemon({
    dir,
    config: { ...pgStoreConfig(cluster, database), ...options.config },
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.expectFailure === true ? { expectFailure: true } : {}),
  });
}
