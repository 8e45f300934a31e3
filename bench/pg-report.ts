// The PostgreSQL sections' targets (issue 16) and their part of the benchmark's table.
import type { Target } from './report.js';
import { metricHeader, metricLine, sizesTable, type Mark, type Row } from './table.js';

export const PG_TARGETS: Target[] = [
  { field: 'pg_allow_p99_ms', op: '<=', limit: 5 },
  { field: 'pg_write_p99_ms', op: '<=', limit: 25 },
  // The three daemons together answer the fast path at least as fast as one file-store daemon.
  { field: 'pg_allow_rps_ratio', op: '>=', limit: 1 },
  { field: 'pg_scale_start_s', op: '<=', limit: 2 },
  { field: 'pg_scale_rss_mb', op: '<=', limit: 300 },
  { field: 'pg_scale_verify_p99_ms', op: '<=', limit: 5 },
  { field: 'pg_scale_write_p99_ms', op: '<=', limit: 25 },
];

const ROWS: Row[] = [
  ['mailboxes in PostgreSQL', 'pg_store_mailboxes', '', ''],
  ['  generated (COPY) + ANALYZE', 'pg_generate_s', 's', ''],
  ['pg allow, first pass (cache cold)', 'pg_allow_warm_rps', 'req/s', 'every mailbox once per daemon'],
  ['  p99', 'pg_allow_warm_p99_ms', 'ms', 'each login reads the database'],
  ['pg allow, 3 daemons (fast path)', 'pg_allow_rps', 'req/s', 'total of the three'],
  ['  ratio', 'pg_allow_rps_ratio', '', 'pg / file-store daemon allow'],
  ['  p50', 'pg_allow_p50_ms', 'ms', ''],
  ['  p99', 'pg_allow_p99_ms', 'ms', ''],
  ['  p99 ratio', 'pg_allow_p99_ratio', '', 'pg / file-store daemon'],
  ['  daemons CPU per request', 'pg_allow_daemon_cpu_us', 'µs', 'all three'],
  ['  PostgreSQL CPU per request', 'pg_allow_db_cpu_us', 'µs', 'all its processes'],
  ['  CPU ratio', 'pg_allow_cpu_ratio', '', '(daemons + PostgreSQL) / file-store daemon'],
  ['pg TOTP code check', 'pg_code_rps', 'req/s', ''],
  ['  p99', 'pg_code_p99_ms', 'ms', ''],
  ['  p99 ratio', 'pg_code_p99_ratio', '', 'pg / file-store daemon'],
  ['  daemons CPU per request', 'pg_code_daemon_cpu_us', 'µs', ''],
  ['  PostgreSQL CPU per request', 'pg_code_db_cpu_us', 'µs', ''],
  ['pg write (new IP remembered)', 'pg_write_rps', 'req/s', ''],
  ['  p50', 'pg_write_p50_ms', 'ms', ''],
  ['  p99', 'pg_write_p99_ms', 'ms', ''],
  ['  max', 'pg_write_max_ms', 'ms', ''],
  ['  p99 ratio', 'pg_write_p99_ratio', '', 'pg / file-store daemon'],
  ['  daemons CPU per request', 'pg_write_daemon_cpu_us', 'µs', ''],
  ['  PostgreSQL CPU per request', 'pg_write_db_cpu_us', 'µs', ''],
  ['pg daemon peak RSS (largest)', 'pg_daemon_rss_mb', 'MB', ''],
  ['PostgreSQL alone: pgbench write', 'pg_ref_write_tps', 'tps', '-N: update, select, insert; no daemon'],
  ['  p50', 'pg_ref_write_p50_ms', 'ms', ''],
  ['  p99', 'pg_ref_write_p99_ms', 'ms', ''],
  ['  PostgreSQL CPU per transaction', 'pg_ref_write_db_cpu_us', 'µs', ''],
  ['  pg write p99 / this', 'pg_write_p99_ref_ratio', '', ''],
  ['PostgreSQL alone: pgbench read', 'pg_ref_read_tps', 'tps', '-S: one select by key; no daemon'],
  ['  p50', 'pg_ref_read_p50_ms', 'ms', ''],
  ['  p99', 'pg_ref_read_p99_ms', 'ms', ''],
  ['  PostgreSQL CPU per transaction', 'pg_ref_read_db_cpu_us', 'µs', ''],
  ['  pg allow p99 / this', 'pg_allow_p99_ref_ratio', '', ''],
];

const SCALE_ROWS: Row[] = [
  ['mailboxes', 'mailboxes', '', ''],
  ['  working set (verify, write)', 'working_set', '', ''],
  ['  generated with COPY', 'generate_s', 's', 'growth'],
  ['  database size', 'db_mb', 'MB', 'growth'],
  ['start to ready', 'start_s', 's', 'growth'],
  ['  (daemon-reported startMs)', 'ready_ms', 'ms', ''],
  ['peak RSS', 'rss_mb', 'MB', 'growth'],
  ['verify, first pass (cache cold)', 'warm_rps', 'req/s', ''],
  ['  p99', 'warm_p99_ms', 'ms', ''],
  ['  daemon CPU per request', 'warm_daemon_cpu_us', 'µs', ''],
  ['  PostgreSQL CPU per request', 'warm_db_cpu_us', 'µs', ''],
  ['verify (allow, cache warm)', 'verify_rps', 'req/s', ''],
  ['  p50', 'verify_p50_ms', 'ms', ''],
  ['  p99', 'verify_p99_ms', 'ms', 'growth'],
  ['  daemon CPU per request', 'verify_daemon_cpu_us', 'µs', ''],
  ['  PostgreSQL CPU per request', 'verify_db_cpu_us', 'µs', ''],
  ['write (new IP)', 'write_rps', 'req/s', ''],
  ['  p99', 'write_p99_ms', 'ms', 'growth'],
  ['  max', 'write_max_ms', 'ms', ''],
  ['  daemon CPU per request', 'write_daemon_cpu_us', 'µs', ''],
  ['  PostgreSQL CPU per request', 'write_db_cpu_us', 'µs', ''],
  ['stop', 'stop_s', 's', ''],
];

/** The lines of the PostgreSQL sections; `mark` gives a field's target and verdict. */
export function pgTable(out: Record<string, number>, mark: Mark, skipped: unknown): string[] {
  const lines: string[] = [];
  if (skipped !== undefined) return [`${'PostgreSQL (pg_*, pg_scale_*)'.padEnd(36)}${'skipped'.padStart(11)}  ${String(skipped)}`, ''];
  if (out['pg_allow_rps'] !== undefined) {
    lines.push(...metricHeader('PostgreSQL: 3 daemons, one database'), ...ROWS.map((row) => metricLine(out, mark, row)), '');
  }
  if (out['pg_scale_mailboxes'] !== undefined) lines.push(...sizesTable('pg scale (one daemon)', 'pg_scale', SCALE_ROWS, out, mark));
  return lines;
}
