// The benchmark's PostgreSQL: the tests' throwaway cluster (test/helpers/postgres.ts: a temp dir,
// a Unix socket there, run as the postgres user when root), but durable (fsync, synchronous
// commits and full page writes on, as in production: what a write's latency is made of), with
// memory and checkpoints sized for a benchmark, and the CPU of all its processes measurable.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { findPostgresBin, pgSettings, postgresMissing, sql, startPostgres, type PgCluster } from '../test/helpers/postgres.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { adoptDir, onCleanup, traversableBase } from './cleanup.js';

export { postgresMissing };

export interface BenchPgOptions {
  sharedBuffersMb: number;
  /** Load pg_stat_statements, for topStatements(). */
  statements: boolean;
}

export interface BenchPg {
  cluster: PgCluster;
  /** The database every daemon of the benchmark shares (schema migrated); see fresh(). */
  database: string;
  /** Moves to a new, empty database (schema migrated), dropping the previous one. */
  fresh(): Promise<void>;
  /** psql, for COPY. */
  psql: string;
  client(): pg.ClientConfig;
  /** CPU (user + system) of the server's processes so far, ms: see serverCpuMs. */
  cpuMs(): number | null;
  sizeMb(): Promise<number>;
  /** The statements that took most time since the last reset, as lines; resets. Empty without `statements`. */
  topStatements(limit?: number): Promise<string[]>;
  stop(): Promise<void>;
}

/** Clock ticks per second in /proc/PID/stat (see procs.ts cpuMs). */
const HZ = 100;

function statFields(pid: string | number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU of a PostgreSQL server: the postmaster's own and that of its children that have exited
 * (cutime, cstime), plus that of every child still running (the backends of the daemons' pools,
 * the WAL writer, the checkpointer). A connection open across a window counts in full.
 */
export function serverCpuMs(postmasterPid: number): number | null {
  const own = statFields(postmasterPid);
  if (own === null) return null;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(entry);
    // field 4 (ppid) is index 1 once the pid and command are cut off
    if (f !== null && Number(f[1]) === postmasterPid) ticks += Number(f[11]) + Number(f[12]);
  }
  return (ticks * 1000) / HZ;
}

export async function startBenchPostgres(opts: BenchPgOptions): Promise<BenchPg> {
  const cluster = await startPostgres({
    durable: true,
    // The server runs as the postgres user when this runs as root: not under a private $TMPDIR.
    base: traversableBase(),
    settings: {
      shared_buffers: `${opts.sharedBuffersMb}MB`,
      // A load of a million mailboxes must not checkpoint every few seconds; the benchmark forces
      // one after loading instead, so that no load phase meets it.
      max_wal_size: '8GB',
      checkpoint_timeout: '30min',
      ...(opts.statements ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on' } : {}),
    },
  });
  adoptDir(cluster.socketDir);
  const bin = findPostgresBin()!;
  const dataDir = path.join(cluster.socketDir, 'data');
  const unregister = onCleanup({
    stop: () => cluster.stop(),
    stopSync: () => {
      const ctl = [path.join(bin, 'pg_ctl'), '-D', dataDir, '-m', 'immediate', '-w', 'stop'];
      const [cmd, args] = process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', ...ctl]] : [ctl[0]!, ctl.slice(1)];
      execFileSync(cmd, args, { stdio: 'ignore', cwd: cluster.socketDir, timeout: 10_000 });
    },
  });
  const postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // The schema the daemons use, applied as a daemon's start would (they find it done).
  const migrated = async (): Promise<string> => {
    const name = await cluster.createDatabase();
    const db = new Db(createPool(pgSettings(cluster, name, { poolMax: 1, statementTimeoutMs: 600_000, lockTimeoutMs: 600_000 })));
    try {
      await migrate(db);
      if (opts.statements) await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    } finally {
      await db.close();
    }
    return name;
  };
  const config = () => cluster.clientConfig(self.database);
  const self: BenchPg = {
    cluster,
    database: await migrated(),
    async fresh() {
      const old = self.database;
      self.database = await migrated();
      await sql(cluster.clientConfig('postgres'), `DROP DATABASE ${old}`);
    },
    psql: path.join(bin, 'psql'),
    client: config,
    cpuMs: () => serverCpuMs(postmasterPid),
    async sizeMb() {
      const { rows } = await sql(config(), 'SELECT pg_database_size(current_database()) AS b');
      return Number(rows[0]!['b']) / 1048576;
    },
    async topStatements(limit = 8) {
      if (!opts.statements) return [];
      const { rows } = await sql(
        config(),
        `SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 3) AS mean_ms,
           round(max_exec_time::numeric, 1) AS max_ms, round((total_plan_time / greatest(calls, 1))::numeric, 3) AS plan_ms, shared_blks_read AS blks_read, wal_bytes, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) AS q
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC LIMIT $1`,
        [limit],
      );
      await sql(config(), 'SELECT pg_stat_statements_reset()');
      return rows.map((r) => `${String(r['calls']).padStart(7)} calls ${String(r['total_ms']).padStart(9)} ms total ${String(r['mean_ms']).padStart(7)} mean ${String(r['max_ms']).padStart(7)} max ${String(r['plan_ms']).padStart(6)} plan ${String(r['blks_read']).padStart(6)} blks read ${String(r['wal_bytes']).padStart(9)} WAL B  ${String(r['q'])}`);
    },
    async stop() {
      unregister();
      await cluster.stop();
    },
  };
  return self;
}
