// The connection pool to the shared PostgreSQL database, and the two ways the store talks through
// it: one statement, or one transaction. Every wait is bounded: connecting and waiting for a free
// connection (connectTimeoutMs), each statement on the server (statementTimeoutMs), each lock wait
// (lockTimeoutMs), a transaction left idle, and each query on the client side too, so that a
// connection that hangs (a server gone without a word) gives its slot back.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { MemfaError } from '../../protocol/errors.js';

/** What the store needs to reach the database: config/spec.ts store.postgres, resolved. */
export interface PostgresSettings {
  /** A host name or address, or the directory of the server's Unix socket (starts with '/'). */
  host: string;
  port: number;
  database: string;
  user: string;
  /** Read from store.postgres.passwordFile at start; null: none (peer or trust authentication). */
  password: string | null;
  ssl: { mode: 'disable' | 'require' | 'verify-full'; ca: string | null };
  poolMax: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  connectTimeoutMs: number;
  /** The read cache (cache.ts): store.postgres.cacheTtlMs and cacheEntries; absent or null: none. */
  cache?: { ttlMs: number; entries: number } | null;
}

/** How much longer than the server's statement timeout the client waits for an answer. */
const CLIENT_MARGIN_MS = 2000;
const IDLE_CLIENT_MS = 30_000;

const INT8 = 20;
const INT8_ARRAY = 1016;

/** bigint columns hold epoch milliseconds and counters: numbers, refused past 2^53. */
function toNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new MemfaError('STORE_CORRUPT', `a stored integer is out of range: ${text}`);
  return n;
}

/** A one-dimensional bigint[] without nulls ("{1,2,3}"), the only kind the schema has. */
function toNumbers(text: string): number[] {
  const inner = text.slice(1, -1);
  return inner === '' ? [] : inner.split(',').map(toNumber);
}

const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8) return toNumber;
    if (oid === INT8_ARRAY) return toNumbers;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** A Unix socket directory, not a network host: TLS does not apply there (as with libpq). */
export function isSocketDir(host: string): boolean {
  return host.startsWith('/');
}

/** node-postgres's TLS options for `settings` (false: plain). */
export function tlsOptions(settings: Pick<PostgresSettings, 'host' | 'ssl'>): false | ConnectionOptions {
  if (isSocketDir(settings.host) || settings.ssl.mode === 'disable') return false;
  // require: encrypted, but any certificate (libpq's sslmode=require without a root certificate).
  if (settings.ssl.mode === 'require') return { rejectUnauthorized: false };
  // verify-full: the chain up to the configured CA (or the system's), and the host name.
  const ca = settings.ssl.ca === null ? undefined : readFileSync(settings.ssl.ca, 'utf8');
  // A name is also sent as SNI; an address is checked against the certificate's IP entries only.
  return { rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }), ...(isIP(settings.host) === 0 ? { servername: settings.host } : {}) };
}

/** What every connection to the database is opened with: the pool's, and the listener's (listener.ts). */
export function clientOptions(settings: PostgresSettings): pg.ClientConfig {
  return {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    user: settings.user,
    ...(settings.password === null ? {} : { password: settings.password }),
    ssl: tlsOptions(settings),
    connectionTimeoutMillis: settings.connectTimeoutMs,
    statement_timeout: settings.statementTimeoutMs,
    lock_timeout: settings.lockTimeoutMs,
    idle_in_transaction_session_timeout: settings.statementTimeoutMs + CLIENT_MARGIN_MS,
    query_timeout: settings.statementTimeoutMs + CLIENT_MARGIN_MS,
    keepAlive: true,
    application_name: 'memfa',
    types: TYPES,
  };
}

export function createPool(settings: PostgresSettings): pg.Pool {
  const pool = new pg.Pool({ ...clientOptions(settings), max: settings.poolMax, idleTimeoutMillis: IDLE_CLIENT_MS });
  // An idle connection that dies (the server restarted) must not take the daemon with it: the
  // pool drops it, and the next query opens another.
  pool.on('error', () => {});
  return pool;
}

/** SQLSTATEs after which the same statement may simply be tried again: nothing was changed. */
const RETRYABLE = new Set(['40001', '40P01']);
const RETRIES = 3;

/**
 * The error a caller sees for a failed database call: STORE_FAILED, never a parameter's value.
 * `where`: the database as an administrator knows it (open.ts databaseLocation), never a password.
 */
export function storeFailed(err: unknown, where?: string): MemfaError {
  if (err instanceof MemfaError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : 'unknown';
  // A server error's message can quote a value (a sealed secret, a hash): only its SQLSTATE goes
  // out. A client-side one (refused, timed out, reset) says what happened to the connection.
  const what = err instanceof pg.DatabaseError ? `SQLSTATE ${code}` : `${typeof e.message === 'string' ? e.message : String(err)}`;
  return new MemfaError('STORE_FAILED', `the database ${where === undefined ? '' : `${where} `}could not be used: ${what}`, { data: { sqlstate: code, ...(where === undefined ? {} : { store: where }) }, cause: err });
}

export type Queryable = Pick<pg.PoolClient, 'query'>;

/** Statement texts named so far (below), at most NAMED_MAX: past it a new text goes unnamed. */
const names = new Map<string, string>();
const NAMED_MAX = 2000;

/**
 * A statement with parameters as a named (prepared) one: each connection parses and plans its text
 * once, then only binds and runs it. The store's texts are a fixed set (every value is a
 * parameter, sql.ts), and planning their CTEs took several times what running them does. The name
 * is the text's digest, so that one name never stands for two texts. (A pooler in front of the
 * server must keep prepared statements per client connection: pgbouncer 1.21 and later with
 * max_prepared_statements set, or session pooling.)
 */
export function prepared(text: string, values: unknown[] | undefined): pg.QueryConfig {
  if (values === undefined || values.length === 0) return { text, values: values ?? [] };
  let name = names.get(text);
  if (name === undefined && names.size < NAMED_MAX) {
    name = `memfa_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    names.set(text, name);
  }
  return name === undefined ? { text, values } : { name, text, values };
}

/** The pool as the store uses it. */
export class Db {
  /** `where`: named in its errors (storeFailed). */
  constructor(
    readonly pool: pg.Pool,
    readonly where?: string,
  ) {}

  /** One statement, in a transaction of its own. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(prepared(text, values));
      } catch (err) {
        if (attempt < RETRIES && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        throw storeFailed(err, this.where);
      }
    }
  }

  /**
   * `work` in one transaction (READ COMMITTED: each statement sees what was committed before it
   * started), committed when it resolves, rolled back when it throws.
   */
  async tx<T>(work: (client: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw storeFailed(err, this.where);
      }
      // Checked out, the client has no listener for its connection's death (the pool's is for idle
      // ones): the server ending it between two statements (a restart) would be an uncaught
      // 'error' and take the daemon down. Noted here instead; the next statement fails by itself.
      let lost = false;
      const onLost = () => {
        lost = true;
      };
      client.on('error', onLost);
      // What the database said no to becomes STORE_FAILED; what `work` itself threw (a refusal of
      // the change, a bug) goes out as it is.
      const failures = new WeakSet<object>();
      const tracked: Queryable = {
        query: ((text: string, values?: unknown[]) =>
          client.query(prepared(text, values)).catch((err: unknown) => {
            if (typeof err === 'object' && err !== null) failures.add(err);
            throw err;
          })) as Queryable['query'],
      };
      let broken = false;
      try {
        await tracked.query('BEGIN');
        const result = await work(tracked);
        await tracked.query('COMMIT');
        return result;
      } catch (err) {
        // A connection that failed or timed out on the client's side is closed (the server rolls
        // back what it had); one that answered with an error is rolled back and kept.
        if (err instanceof pg.DatabaseError || !failures.has(err as object)) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
        } else broken = true;
        const fromDb = typeof err === 'object' && err !== null && failures.has(err);
        if (!fromDb) throw err;
        if (attempt < RETRIES && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        throw storeFailed(err, this.where);
      } finally {
        client.off('error', onLost);
        client.release(broken || lost);
      }
    }
  }

  /** The pool as one Queryable: each statement in a transaction of its own (retried as query()). */
  get statements(): Queryable {
    return { query: this.query.bind(this) } as Queryable;
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
