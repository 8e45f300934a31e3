// Opening the configured store at the daemon's start: the file store (this node's own), or the
// PostgreSQL database shared by several daemons (its schema migrated behind the advisory lock, a
// newer schema refused: store/postgres/open.ts). The daemon sees either as the state ports and the
// few facts it names in status, the ready line and the metrics.
import type { MemfaConfig } from '../config/types.js';
import { MemfaError } from '../protocol/errors.js';
import type { StatePorts, StoreFacts } from '../services/store-ports.js';
import { FileStore } from '../store/file-store.js';
import { checkClock, openPostgres, postgresSettings, type ClockCheck } from '../store/postgres/open.js';
import type { PostgresSettings } from '../store/postgres/pool.js';
import { FileStatePorts } from '../store/state-ports.js';
import type { Logger } from './logger.js';

export interface OpenedStore {
  state: StatePorts;
  facts: StoreFacts;
  /** PostgreSQL: reads the database's clock against this node's (daemon/db-clock.ts); null for the file store. */
  measureClock: ((now: () => number) => Promise<ClockCheck>) | null;
  /** The first measurement, taken while opening. */
  clock: ClockCheck | null;
  close(): Promise<void>;
}

/** Where the database is, as the log and status name it: never the password. */
export function databaseLocation(s: Pick<PostgresSettings, 'user' | 'host' | 'port' | 'database'>): string {
  return `postgres://${s.user}@${s.host}:${s.port}/${s.database}`;
}

async function openFile(config: MemfaConfig, log: Logger): Promise<OpenedStore> {
  const store = await FileStore.open(config.store.file, {
    compactJournalBytes: config.store.compactJournalBytes,
    onEvent: (event, fields) => log.info(event, fields),
  });
  return {
    state: new FileStatePorts(store),
    facts: { backend: 'file', location: config.store.file, fileSizes: () => store.fileSizes() },
    measureClock: null,
    clock: null,
    close: () => store.close(),
  };
}

async function openDatabase(config: MemfaConfig, log: Logger): Promise<OpenedStore> {
  if (config.store.postgres === null) throw new MemfaError('CONFIG_INVALID', 'store.backend: "postgres" needs store.postgres', { data: { key: 'store.postgres' } });
  const settings = await postgresSettings(config.store.postgres);
  const location = databaseLocation(settings);
  let opened;
  try {
    opened = await openPostgres(settings, log);
  } catch (err) {
    // Unreachable, refused or restarting: a temporary failure (exit 75; the service manager starts
    // the daemon again). A schema newer than this daemon, or bad credentials, stay what they are.
    if (err instanceof MemfaError && err.code !== 'STORE_FAILED') throw err;
    const e = err instanceof MemfaError ? err : new MemfaError('STORE_FAILED', (err as Error).message, { cause: err });
    const sqlstate = String(e.data?.['sqlstate'] ?? '');
    const why = e.message.replace(/^the database could not be used: /, '');
    // Refused credentials (28xxx) or no such database (3D000): starting again will not help.
    if (sqlstate.startsWith('28') || sqlstate === '3D000') {
      throw new MemfaError('CONFIG_INVALID', `store.postgres: the database ${location} refused this daemon (${why})`, {
        data: { key: 'store.postgres', store: location, sqlstate },
        hint: 'check store.postgres.user, database and passwordFile, and the server\'s pg_hba.conf',
        cause: err,
      });
    }
    throw new MemfaError('STORE_FAILED', `the database ${location} cannot be used: ${why}`, {
      data: { store: location, sqlstate },
      hint: 'check that PostgreSQL runs and is reachable as store.postgres says; the daemon does not start without its store',
      cause: err,
    });
  }
  const db = opened.db;
  log.info('store-opened', { backend: 'postgres', database: location, schema: opened.migration.version, clockSkewMs: opened.clock.skewMs });
  return {
    state: opened.ports,
    facts: { backend: 'postgres', location },
    measureClock: (now) => checkClock(db, now),
    clock: opened.clock,
    close: () => opened.close(),
  };
}

export function openStore(config: MemfaConfig, log: Logger): Promise<OpenedStore> {
  return config.store.backend === 'postgres' ? openDatabase(config, log) : openFile(config, log);
}
