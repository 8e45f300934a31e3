// Opening the shared database at a daemon's start: the settings from store.postgres (the password
// read from its file), the pool, the schema brought up to date (migrate.ts), and a check of the
// database's clock against this node's. The ports take every time from their callers, and several
// daemons compare the times they pass in (locks, expiries, windows): a node whose clock is off
// moves those for everyone, so a difference of more than a second is logged as a warning.
import { readFile } from 'node:fs/promises';
import type { PostgresConfig } from '../../config/types.js';
import { MemfaError } from '../../protocol/errors.js';
import { ReadCache } from './cache.js';
import { ChangeListener } from './listener.js';
import { migrate, type MigrationReport } from './migrate.js';
import { createPool, Db, type PostgresSettings } from './pool.js';
import { PgStatePorts } from './state-ports.js';

/** How far this node's clock may be from the database's before the start warns. */
export const CLOCK_SKEW_WARN_MS = 1000;

export async function postgresSettings(config: PostgresConfig): Promise<PostgresSettings> {
  let password: string | null = null;
  if (config.passwordFile !== null) {
    try {
      password = (await readFile(config.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new MemfaError('CONFIG_INVALID', `store.postgres.passwordFile: ${config.passwordFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        data: { file: config.passwordFile },
      });
    }
  }
  return {
    host: config.host,
    port: config.port,
    database: config.database,
    user: config.user,
    password,
    ssl: { mode: config.tls, ca: config.caFile },
    poolMax: config.poolSize,
    statementTimeoutMs: config.statementTimeoutMs,
    lockTimeoutMs: config.lockTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    cache: config.cacheEntries === 0 ? null : { ttlMs: config.cacheTtlMs, entries: config.cacheEntries },
  };
}

export interface ClockCheck {
  /** The database's clock minus this node's, at the middle of the round trip. */
  skewMs: number;
  roundTripMs: number;
}

/** Reads the database's clock once, against `now` (this node's) before and after. */
export async function checkClock(db: Db, now: () => number = Date.now): Promise<ClockCheck> {
  const before = now();
  const { rows } = await db.query<{ ms: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms');
  const after = now();
  return { skewMs: rows[0]!.ms - Math.round((before + after) / 2), roundTripMs: after - before };
}

export interface OpenedPostgres {
  ports: PgStatePorts;
  db: Db;
  /** The listener of the read cache's invalidations; null: no cache (store.postgres.cacheEntries 0). */
  listener: ChangeListener | null;
  migration: MigrationReport;
  clock: ClockCheck;
  close(): Promise<void>;
}

export interface OpenEvents {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
}

export async function openPostgres(settings: PostgresSettings, log: OpenEvents, now: () => number = Date.now): Promise<OpenedPostgres> {
  const db = new Db(createPool(settings));
  try {
    const migration = await migrate(db);
    if (migration.applied.length > 0) log.info('store-migrated', { applied: migration.applied, version: migration.version });
    const clock = await checkClock(db, now);
    if (Math.abs(clock.skewMs) > CLOCK_SKEW_WARN_MS) {
      log.warn('clock-skew', { skewMs: clock.skewMs, limitMs: CLOCK_SKEW_WARN_MS, hint: "this node's clock differs from the database's: synchronise both (NTP); locks and expiries are compared across nodes" });
    }
    const cache = settings.cache === undefined || settings.cache === null ? null : new ReadCache(settings.cache);
    const listener = cache === null ? null : new ChangeListener(settings, cache, {
      listening: (reconnects) => { if (reconnects > 0) log.info('cache-listening', { reconnects }); },
      lost: (error) => log.warn('cache-listener-lost', { error, hint: 'the read cache is off until the listener connects again; logins read the database' }),
    });
    listener?.start();
    const ports = new PgStatePorts(db, { cache: cache ?? undefined });
    const close = async () => {
      await listener?.stop();
      await ports.census.settled();
      await db.close();
    };
    return { ports, db, listener, migration, clock, close };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}
