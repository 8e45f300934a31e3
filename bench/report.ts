// The report of `npm run bench`: the targets, and the human table of a run's figures (printed at
// the end of a run, or again from its JSON document with --render).
import { readFile } from 'node:fs/promises';
import { PG_TARGETS, pgTable } from './pg-report.js';
import { metricHeader, metricLine, sizesTable, type Row } from './table.js';

export type Results = Record<string, number>;

export interface Target {
  field: string;
  op: '<=' | '>=';
  limit: number;
}

const BASE_TARGETS: Target[] = [
  { field: 'cli_verify_ratio', op: '<=', limit: 1.25 },
  { field: 'cli_verify_rss_ratio', op: '<=', limit: 1.2 },
  { field: 'cli_version_ratio', op: '<=', limit: 1.15 },
  { field: 'daemon_allow_ratio', op: '>=', limit: 0.5 },
  { field: 'daemon_allow_p99_ms', op: '<=', limit: 5 },
  { field: 'daemon_write_p99_ms', op: '<=', limit: 20 },
  { field: 'scale_start_s', op: '<=', limit: 2 },
  { field: 'scale_rss_mb', op: '<=', limit: 300 },
  { field: 'scale_verify_p99_ms', op: '<=', limit: 5 },
  { field: 'scale_write_p99_ms', op: '<=', limit: 25 },
  { field: 'imap_login_ratio', op: '<=', limit: 1.15 },
  { field: 'bounded_flood_ratio', op: '<=', limit: 3 },
];

export const TARGETS: Target[] = [...BASE_TARGETS, ...PG_TARGETS];

/** The targets whose field was measured (a section skipped or not asked for measures none). */
export function measuredTargets(out: Results): Target[] {
  return TARGETS.filter((t) => out[t.field] !== undefined);
}

export function passes(t: Target, v: number): boolean {
  return Number.isFinite(v) && (t.op === '<=' ? v <= t.limit : v >= t.limit);
}

/** [label, field, unit, baseline/comment] rows of the human table. */
const ROWS: Row[] = [
  ['memfa verify (median)', 'cli_verify_ms', 'ms', ''],
  ['bare Node client (median)', 'cli_verify_bare_ms', 'ms', ''],
  ['  ratio', 'cli_verify_ratio', '', 'verify / bare'],
  ['memfa verify peak RSS', 'cli_verify_rss_mb', 'MB', ''],
  ['bare Node client peak RSS', 'cli_verify_bare_rss_mb', 'MB', ''],
  ['  ratio', 'cli_verify_rss_ratio', '', 'verify / bare'],
  ['memfa --version (median)', 'cli_version_ms', 'ms', ''],
  ['node -e 0 (median)', 'cli_node_e0_ms', 'ms', ''],
  ['  ratio', 'cli_version_ratio', '', '--version / node -e 0'],
  ['echo server', 'echo_rps', 'req/s', ''],
  ['  p99', 'echo_p99_ms', 'ms', ''],
  ['  server CPU per request', 'echo_server_cpu_us', 'µs', ''],
  ['  server / client CPU', 'echo_server_cpu_pct', '%', 'of one core; client: see JSON'],
  ['daemon allow (fast path)', 'daemon_allow_rps', 'req/s', ''],
  ['  ratio', 'daemon_allow_ratio', '', 'allow / echo'],
  ['  p50', 'daemon_allow_p50_ms', 'ms', ''],
  ['  p99', 'daemon_allow_p99_ms', 'ms', ''],
  ['  daemon CPU per request', 'daemon_allow_server_cpu_us', 'µs', ''],
  ['  daemon CPU', 'daemon_allow_server_cpu_pct', '%', 'of one core'],
  ['  CPU ratio', 'daemon_allow_cpu_ratio', '', 'echo CPU / daemon CPU per request'],
  ['daemon TOTP code check', 'daemon_code_rps', 'req/s', ''],
  ['  p50', 'daemon_code_p50_ms', 'ms', ''],
  ['  p99', 'daemon_code_p99_ms', 'ms', ''],
  ['  max', 'daemon_code_max_ms', 'ms', ''],
  ['  daemon CPU per request', 'daemon_code_server_cpu_us', 'µs', ''],
  ['  journal compactions', 'daemon_code_compactions', '', ''],
  ['daemon write (new IP remembered)', 'daemon_write_rps', 'req/s', ''],
  ['  p50', 'daemon_write_p50_ms', 'ms', ''],
  ['  p99', 'daemon_write_p99_ms', 'ms', ''],
  ['  max', 'daemon_write_max_ms', 'ms', ''],
  ['  daemon CPU per request', 'daemon_write_server_cpu_us', 'µs', ''],
  ['  journal compactions', 'daemon_write_compactions', '', ''],
  ['disk append+fdatasync p50', 'disk_fsync_p50_ms', 'ms', 'baseline for writes'],
  ['disk append+fdatasync p99', 'disk_fsync_p99_ms', 'ms', ''],
  ['daemon peak RSS (main run)', 'daemon_rss_mb', 'MB', ''],
  ['bounded map (Recent), new key', 'bounded_recent_flood_ns', 'ns', 'at 100,000 entries'],
  ['  one key again and again', 'bounded_recent_same_ns', 'ns', ''],
  ['  a key already there', 'bounded_recent_repeat_ns', 'ns', ''],
  ['read cache fill, new key', 'bounded_cache_flood_ns', 'ns', 'at 100,000 entries'],
  ['  cold cache, global entry again', 'bounded_cache_same_ns', 'ns', 'per fill'],
  ['  a key already there', 'bounded_cache_repeat_ns', 'ns', ''],
  ['  ratio', 'bounded_flood_ratio', '', 'the largest of the others / already there'],
  ['IMAP login, password-only Dovecot', 'imap_login_ms', 'ms', 'median'],
  ['IMAP login, Dovecot + memfa passdb', 'imap_login_memfa_ms', 'ms', 'median; an app password'],
  ['  ratio', 'imap_login_ratio', '', 'memfa / password-only'],
  ['IMAP login, memfa verify hook', 'imap_login_cli_ms', 'ms', 'median; checkpassword'],
  ['  ratio', 'imap_login_cli_ratio', '', 'hook / password-only'],
];

const SCALE_ROWS: Row[] = [
  ['mailboxes', 'mailboxes', '', ''],
  ['store file', 'store_mb', 'MB', 'growth'],
  ['start to ready', 'start_s', 's', 'growth'],
  ['  (daemon-reported startMs)', 'ready_ms', 'ms', ''],
  ['peak RSS', 'rss_mb', 'MB', 'growth'],
  ['verify (allow)', 'verify_rps', 'req/s', ''],
  ['  p99', 'verify_p99_ms', 'ms', 'growth'],
  ['  daemon CPU per request', 'verify_server_cpu_us', 'µs', ''],
  ['write (new IP)', 'write_rps', 'req/s', ''],
  ['  p99', 'write_p99_ms', 'ms', 'growth'],
  ['  max', 'write_max_ms', 'ms', ''],
  ['  daemon CPU per request', 'write_server_cpu_us', 'µs', ''],
  ['  measured seconds', 'write_seconds', 's', ''],
  ['journal compactions', 'compactions', '', ''],
  ['stop (folds journal)', 'stop_s', 's', ''],
];


export interface ReportSettings {
  mode: string;
  imap_skipped?: unknown;
  pg_skipped?: unknown;
}

export function table(out: Results, machine: Record<string, unknown>, s: ReportSettings): string {
  const lines: string[] = [];
  const targetOf = (field: string) => TARGETS.find((t) => t.field === field);
  const mark = (field: string) => {
    const t = targetOf(field);
    if (!t || out[field] === undefined) return '';
    return `${t.op} ${t.limit}  ${passes(t, out[field]!) ? 'PASS' : 'FAIL'}`;
  };
  lines.push(`memfa benchmark (${s.mode}) — node ${String(machine['node'])}, ${String(machine['cores'])} cores (${String(machine['cpu'])}), ${String(machine['date'])}`);
  lines.push('');
  lines.push(...metricHeader('metric'));
  for (const row of ROWS) {
    const field = row[1];
    // The IMAP section is skipped where Dovecot is not installed: its rows say so, once.
    if (field.startsWith('imap_') && out[field] === undefined) {
      if (field === 'imap_login_ms') lines.push(`${'IMAP logins'.padEnd(36)}${'skipped'.padStart(11)}  ${String(s.imap_skipped ?? 'not run')}`);
      continue;
    }
    lines.push(metricLine(out, mark, row));
  }
  lines.push('');
  lines.push(...sizesTable('scale', 'scale', SCALE_ROWS, out, mark));
  lines.push(...pgTable(out, mark, s.pg_skipped));
  const failed = measuredTargets(out).filter((t) => !passes(t, out[t.field]!)).map((t) => t.field);
  lines.push(failed.length === 0 ? 'all targets measured are met' : `targets missed: ${failed.join(', ')}`);
  const unmeasured = TARGETS.filter((t) => out[t.field] === undefined).map((t) => t.field);
  if (unmeasured.length > 0) lines.push(`not measured (section skipped or not run): ${unmeasured.join(', ')}`);
  if (s.mode === 'quick') lines.push('(quick mode: small sizes and short phases; the targets apply to the full run only)');
  const errorFields = Object.keys(out).filter((k) => k.endsWith('_errors') && out[k]! > 0);
  if (errorFields.length > 0) lines.push(`unexpected answers: ${errorFields.map((k) => `${k}=${out[k]}`).join(', ')}`);
  return lines.join('\n');
}

/** --render FILE: prints the table of a JSON document written earlier by --json or --out. */
export async function render(file: string): Promise<number> {
  const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const out: Results = {};
  for (const [k, v] of Object.entries(doc)) if (typeof v === 'number') out[k] = v;
  process.stdout.write(table(out, doc['machine'] as Record<string, unknown>, doc['settings'] as ReportSettings) + '\n');
  return 0;
}
