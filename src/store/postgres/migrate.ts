// The schema of the shared database: numbered SQL files shipped with memfa (migrations/NNN_name.sql),
// applied at the daemon's start in ONE transaction behind a transaction-scoped advisory lock, so
// that daemons starting together take turns: the first applies what is missing, the others wait
// and find it done. Each applied file is recorded in schema_migrations with its SHA-256; a daemon
// refuses to start against a database with a migration it does not know (set up by a newer memfa)
// or whose file has changed since it was applied.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemfaError } from '../../protocol/errors.js';
import type { Db } from './pool.js';

/** The migrations folder stays in src/ (shipped with the package): the compiled module finds it from dist/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../../src/store/postgres/migrations/', import.meta.url));

/** The advisory lock of memfa's migrations (a constant: "memfa" in ASCII). */
export const MIGRATION_LOCK = 0x6d656d6661;

/** How long a start waits for another daemon's migration (and each statement of its own may take). */
const MIGRATION_TIMEOUT_MS = 300_000;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  sha256: string;
}

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** The migrations in `dir`, by version; CONFIG_INVALID for a stray or doubled file. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = FILE.exec(file);
    if (m === null) throw new MemfaError('CONFIG_INVALID', `${path.join(dir, file)}: not a migration (NNN_name.sql)`);
    const sql = readFileSync(path.join(dir, file), 'utf8');
    const version = Number(m[1]);
    if (out.some((x) => x.version === version)) throw new MemfaError('CONFIG_INVALID', `${dir}: two migrations numbered ${version}`);
    out.push({ version, name: file, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  out.sort((a, b) => a.version - b.version);
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new MemfaError('CONFIG_INVALID', `${dir}: migration ${i + 1} is missing before ${m.name}`);
  });
  return out;
}

export interface MigrationReport {
  /** The files applied by this call (empty when the schema was up to date). */
  applied: string[];
  /** The schema's version afterwards. */
  version: number;
}

function refuse(message: string, data: Record<string, unknown>): MemfaError {
  return new MemfaError('STORE_CORRUPT', message, { data, hint: 'run the memfa that set up this database, or restore the migration files it shipped' });
}

/** Brings the database's schema up to `migrations` (default: the shipped ones), or refuses. */
export async function migrate(db: Db, migrations: Migration[] = loadMigrations()): Promise<MigrationReport> {
  return db.tx(async (c) => {
    await c.query(`SET LOCAL statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    await c.query(`SET LOCAL lock_timeout = ${MIGRATION_TIMEOUT_MS}`);
    // Held until this transaction ends: a second daemon starting now waits here, then finds the
    // migrations done (READ COMMITTED: its next statement sees what the first one committed).
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await c.query<{ version: number; name: string; sha256: string }>('SELECT version, name, sha256 FROM schema_migrations ORDER BY version');
    const known = new Map(migrations.map((m) => [m.version, m]));
    for (const row of rows) {
      const mine = known.get(row.version);
      if (mine === undefined) {
        throw refuse(`the database has migration ${row.version} (${row.name}), which this memfa does not know: it was set up by a newer memfa; refusing to start`, {
          version: row.version,
          name: row.name,
        });
      }
      if (mine.sha256 !== row.sha256) {
        throw refuse(`migration ${mine.name} differs from the one applied to the database (sha256 ${row.sha256.slice(0, 12)}…, this file ${mine.sha256.slice(0, 12)}…); refusing to start`, {
          version: row.version,
          name: mine.name,
        });
      }
    }
    const done = new Set(rows.map((r) => r.version));
    const gap = migrations.find((m) => !done.has(m.version) && rows.some((r) => r.version > m.version));
    if (gap !== undefined) throw refuse(`the database lacks migration ${gap.name} but has later ones; refusing to start`, { version: gap.version, name: gap.name });
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await c.query(m.sql);
      await c.query('INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)', [m.version, m.name, m.sha256]);
      applied.push(m.name);
    }
    return { applied, version: migrations.at(-1)?.version ?? 0 };
  });
}
