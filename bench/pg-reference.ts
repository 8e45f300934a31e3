// What the database alone does on this machine at the load client's concurrency (pg_ref_*): the
// baseline that the pg_* latencies are read against, measured in the same run on the same cluster.
// pgbench's built-in transactions stand for the least a login can ask of PostgreSQL:
//   write  the "simple update" script (-N): an UPDATE, a SELECT and an INSERT by key, one commit;
//   read   the "select only" script (-S): one SELECT by primary key.
// Both with prepared statements, as the daemons use, as many client connections as the load client
// opens (64) and a pgbench thread per core, so the reference is as kind to the database as it can
// be: no daemon, no Unix-socket protocol, no Node. A p99 target that PostgreSQL's own benchmark
// misses here cannot be met by a daemon that needs at least as much of the database.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findPostgresBin, sql } from '../test/helpers/postgres.js';
import { removeDir, tempDir } from './cleanup.js';
import type { BenchPg } from './pg.js';
import { say } from './scale.js';
import { quantile, round } from './stats.js';

const run = promisify(execFile);

export interface ReferenceSettings {
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** pgbench's scale factor: 100,000 account rows per unit. */
  scale: number;
}

interface Script {
  name: 'write' | 'read';
  flag: string;
}
const SCRIPTS: Script[] = [
  { name: 'write', flag: '-N' },
  { name: 'read', flag: '-S' },
];

/** The share of transactions pgbench logs: enough for a p99, few enough to stay a small file. */
const SAMPLING = 0.25;

/** pgbench's path, or null where the server's package lacks it (the reference is then left out). */
export function pgbenchPath(): string | null {
  const bin = findPostgresBin();
  const file = bin === null ? null : path.join(bin, 'pgbench');
  return file !== null && existsSync(file) ? file : null;
}

/**
 * Latencies in ms of the transactions a run logged (`-l --log-prefix=PREFIX`, a file per thread),
 * those of the first `warmupMs` left out. A line is: client, transaction number, latency µs,
 * script, epoch s, µs.
 */
async function loggedLatencies(dir: string, prefix: string, warmupMs: number): Promise<number[]> {
  const rows: Array<[number, number]> = [];
  for (const f of (await readdir(dir)).filter((n) => n.startsWith(`${prefix}.`))) {
    for (const line of (await readFile(path.join(dir, f), 'utf8')).split('\n')) {
      const p = line.split(' ');
      if (p.length < 6) continue;
      rows.push([Number(p[4]) * 1e6 + Number(p[5]), Number(p[2]) / 1000]);
    }
  }
  if (rows.length === 0) return [];
  // A loop, not Math.min(...): a spread of 100,000 arguments overflows the stack.
  let first = Infinity;
  for (const r of rows) if (r[0] < first) first = r[0];
  const from = first + warmupMs * 1000;
  return rows.filter((r) => r[0] >= from).map((r) => r[1]);
}

function parsed(stdout: string, what: RegExp, label: string): number {
  const m = what.exec(stdout);
  if (m === null) throw new Error(`pgbench: no ${label} in its output:\n${stdout}`);
  return Number(m[1]);
}

/**
 * Runs both scripts on a database of their own, dropped afterwards; the pg_ref_* fields. Returns
 * why it did not run (pgbench missing), or null.
 */
export async function referenceRun(pg: BenchPg, rs: ReferenceSettings, out: Record<string, number>): Promise<string | null> {
  const pgbench = pgbenchPath();
  if (pgbench === null) {
    const why = 'pgbench is not installed beside the server (Debian: package postgresql)';
    say(`pg reference: skipped: ${why}`);
    return why;
  }
  const database = await pg.cluster.createDatabase();
  const config = pg.cluster.clientConfig(database);
  const conn = ['-h', String(config.host), '-p', String(config.port), '-U', String(config.user)];
  const dir = await tempDir('mfref-');
  try {
    await run(pgbench, [...conn, '-i', '-q', '-s', String(rs.scale), database], { cwd: dir });
    // As the generated stores: no checkpoint falls in a measured window.
    await sql(config, 'CHECKPOINT');
    const threads = Math.max(1, Math.min(os.availableParallelism(), rs.connections));
    const seconds = Math.max(1, Math.round((rs.warmupMs + rs.durationMs) / 1000));
    for (const s of SCRIPTS) {
      const cpu0 = pg.cpuMs();
      const { stdout } = await run(pgbench, [...conn, '-M', 'prepared', s.flag, '-c', String(rs.connections), '-j', String(threads), '-T', String(seconds), '-l', `--log-prefix=${s.name}`, `--sampling-rate=${SAMPLING}`, database], { cwd: dir, maxBuffer: 1 << 20 });
      const cpu1 = pg.cpuMs();
      const tps = parsed(stdout, /^tps = ([\d.]+)/m, 'tps');
      const transactions = parsed(stdout, /^number of transactions actually processed: (\d+)/m, 'transaction count');
      const latencies = await loggedLatencies(dir, s.name, rs.warmupMs);
      if (latencies.length === 0) throw new Error(`pgbench ${s.flag}: no transaction logged`);
      const prefix = `pg_ref_${s.name}`;
      out[`${prefix}_tps`] = round(tps, 1);
      out[`${prefix}_p50_ms`] = round(quantile(latencies, 0.5));
      out[`${prefix}_p99_ms`] = round(quantile(latencies, 0.99));
      if (cpu0 !== null && cpu1 !== null) out[`${prefix}_db_cpu_us`] = round(((cpu1 - cpu0) * 1000) / transactions, 1);
      say(`pg reference ${s.name} (pgbench ${s.flag}, ${rs.connections} connections, ${threads} threads, ${seconds} s): ${tps.toFixed(0)} tps, p50 ${out[`${prefix}_p50_ms`]} ms, p99 ${out[`${prefix}_p99_ms`]} ms (${latencies.length} logged), PostgreSQL CPU per transaction ${out[`${prefix}_db_cpu_us`] ?? '?'} µs`);
    }
  } finally {
    await removeDir(dir);
    await sql(pg.cluster.clientConfig('postgres'), `DROP DATABASE IF EXISTS ${database}`);
  }
  return null;
}
