// The benchmark in quick mode: it runs to the end, cleans up, and emits every field as a number.
// No performance target is checked here (that is the full `npm run bench`'s job): timings on a
// shared test machine prove nothing, and a timed test would only be flaky.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dovecotMissing } from './helpers/dovecot.js';
import { postgresMissing } from './helpers/postgres.js';
import { pgbenchPath } from '../bench/pg-reference.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const RUN = path.join(REPO, 'dist', 'bench', 'run.js');

const FIELDS = [
  'cli_verify_ratio',
  'cli_verify_ms',
  'cli_verify_bare_ms',
  'cli_verify_rss_mb',
  'cli_verify_bare_rss_mb',
  'cli_verify_rss_ratio',
  'cli_version_ratio',
  'cli_version_ms',
  'cli_node_e0_ms',
  'echo_rps',
  'echo_p99_ms',
  'daemon_allow_rps',
  'daemon_allow_p99_ms',
  'daemon_allow_ratio',
  'daemon_code_rps',
  'daemon_code_p99_ms',
  'daemon_write_rps',
  'daemon_write_p99_ms',
  'disk_fsync_p50_ms',
  'scale_mailboxes',
  'scale_start_s',
  'scale_rss_mb',
  'scale_verify_p99_ms',
  'scale_write_p99_ms',
  'scale_store_mb',
  'scale_small_mailboxes',
  'scale_small_start_s',
  'scale_small_rss_mb',
  'scale_small_verify_p99_ms',
  'scale_small_write_p99_ms',
  'scale_small_store_mb',
  'scale_growth_start',
  'scale_growth_rss',
  'scale_growth_verify_p99',
  'scale_growth_write_p99',
  'scale_growth_store',
];
// The IMAP section runs where Dovecot (with its Lua passdb) is installed, and says why not elsewhere.
const IMAP_FIELDS = ['imap_login_ms', 'imap_login_memfa_ms', 'imap_login_cli_ms', 'imap_login_ratio', 'imap_login_cli_ratio', 'imap_logins', 'imap_cli_logins'];
const imapMissing = dovecotMissing();
// The PostgreSQL sections run where PostgreSQL is installed (three daemons on one database, and one
// daemon at two store sizes), and say why not elsewhere.
const PG_FIELDS = [
  'pg_store_mailboxes',
  'pg_allow_warm_rps',
  'pg_allow_warm_p99_ms',
  'pg_allow_rps',
  'pg_allow_p99_ms',
  'pg_allow_daemon_cpu_us',
  'pg_allow_db_cpu_us',
  'pg_allow_rps_ratio',
  'pg_allow_p99_ratio',
  'pg_code_rps',
  'pg_code_p99_ms',
  'pg_write_rps',
  'pg_write_p99_ms',
  'pg_write_p99_ratio',
  'pg_daemon_rss_mb',
  'pg_scale_mailboxes',
  'pg_scale_start_s',
  'pg_scale_rss_mb',
  'pg_scale_warm_rps',
  'pg_scale_verify_p99_ms',
  'pg_scale_small_mailboxes',
  'pg_scale_small_start_s',
  'pg_scale_small_verify_p99_ms',
  'pg_scale_generate_s',
  'pg_scale_growth_start',
  'pg_scale_growth_rss',
  'pg_scale_growth_verify_p99',
];
const pgMissing = postgresMissing();
/** PostgreSQL alone under pgbench (bench/pg-reference.ts): where the server's package ships it. */
const PG_REF_FIELDS = ['pg_ref_write_tps', 'pg_ref_write_p99_ms', 'pg_ref_read_tps', 'pg_ref_read_p99_ms', 'pg_write_p99_ref_ratio', 'pg_allow_p99_ref_ratio'];
const pgRef = pgMissing === null && pgbenchPath() !== null;

function run(args: string[], tmp: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, ...args], { cwd: REPO, env: { ...process.env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // A hang is a failure, not a timing measurement: the bound is generous.
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm run bench --quick --json: every field present and numeric, nothing left behind', { timeout: 300_000 }, async (t) => {
  // The benchmark makes its temporary directories under os.tmpdir(), i.e. $TMPDIR: a private one
  // here, so that what it leaves behind can be checked even while other benchmarks run.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mfq-'));
  t.after(() => rm(tmp, { recursive: true, force: true }));
  const r = await run(['--quick', '--json'], tmp, 240_000);
  assert.equal(r.code, 0, `bench exited ${r.code}\n${r.stderr}`);
  const doc = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const field of [...FIELDS, ...(imapMissing === null ? IMAP_FIELDS : []), ...(pgMissing === null ? PG_FIELDS : []), ...(pgRef ? PG_REF_FIELDS : [])]) {
    assert.equal(typeof doc[field], 'number', `${field} is a number (got ${JSON.stringify(doc[field])})`);
    assert.ok(Number.isFinite(doc[field]), `${field} is finite (got ${String(doc[field])})`);
  }
  const worked = ['daemon_allow_rps', 'daemon_code_rps', 'daemon_write_rps', 'echo_rps', 'scale_verify_rps', 'scale_write_rps'];
  for (const field of pgMissing === null ? [...worked, 'pg_allow_rps', 'pg_code_rps', 'pg_write_rps', 'pg_scale_verify_rps', ...(pgRef ? ['pg_ref_write_tps', 'pg_ref_read_tps'] : [])] : worked) {
    assert.ok((doc[field] as number) > 0, `${field} > 0: the phase did some work`);
  }
  // CI keeps only part of a long failure message: the phases that went wrong come first.
  const unexpected = r.stderr.split('\n').filter((l) => l.includes('unexpected answers')).join('\n');
  for (const field of Object.keys(doc).filter((k) => k.endsWith('_errors'))) {
    assert.equal(doc[field], 0, `${field}: every answer was the expected one\n${unexpected}\n\n${r.stderr}`);
  }
  const machine = doc['machine'] as Record<string, unknown>;
  assert.equal(typeof machine['node'], 'string');
  assert.equal(typeof machine['cores'], 'number');
  const settings = doc['settings'] as Record<string, unknown>;
  assert.equal(settings['mode'], 'quick');
  if (imapMissing !== null) {
    assert.match(String(settings['imap_skipped']), /apt-get install/, 'a skipped IMAP section says how to install Dovecot');
    for (const field of IMAP_FIELDS) assert.equal(doc[field], undefined, `${field}: only that section is skipped`);
  }
  if (pgMissing !== null) {
    assert.match(String(settings['pg_skipped']), /PostgreSQL is not installed/, 'a skipped PostgreSQL section says why');
    for (const field of PG_FIELDS) assert.equal(doc[field], undefined, `${field}: only that section is skipped`);
  } else {
    assert.equal(doc['pg_scale_mailboxes'], 10_000, 'the quick pg_scale store has its size');
    if (!pgRef) {
      assert.match(String(settings['pg_ref_skipped']), /pgbench is not installed/, 'a skipped reference says why');
      for (const field of PG_REF_FIELDS) assert.equal(doc[field], undefined, `${field}: only the reference is skipped`);
    }
  }
  const targets = doc['targets'] as Record<string, { pass: unknown }>;
  assert.ok(Object.keys(targets).length >= 10, 'every target is reported');
  for (const t of Object.values(targets)) assert.equal(typeof t.pass, 'boolean');
  assert.deepEqual(await readdir(tmp), [], 'the benchmark removed its temporary directories');
});
