// The PostgreSQL sections of `npm run bench` (issue 16):
//   pg_*        three daemons on one durable local PostgreSQL, the load client's 64 connections
//               spread over their hook sockets: the fast path, TOTP code checks and writes, each
//               against the one file-store daemon of the same run (daemon_*);
//   pg_ref_*    PostgreSQL alone under pgbench at the same concurrency (bench/pg-reference.ts);
//   pg_scale_*  one daemon on a store of 100,000 and of 1,000,000 mailboxes (generated with COPY):
//               start, peak memory, the fast path over a working set of 100,000 mailboxes, writes,
//               and how each grows with the store.
// Skipped, with the reason, where PostgreSQL is not installed or the daemon does not serve it.
import path from 'node:path';
import { removeDir, tempDir } from './cleanup.js';
import type { GenMailbox } from './store-gen.js';
import type { BenchDaemon } from './daemon.js';
import { combine, loadFields, runLoad, type LoadOptions, type LoadResult, type Workload } from './load.js';
import { postgresMissing, startBenchPostgres, type BenchPg } from './pg.js';
import { pgCacheDefaults, PgUnserved, type PgCacheSettings, pidsOf, socketsOf, startPgDaemon, startPgDaemons } from './pg-daemons.js';
import { generatePgStore, spread } from './pg-gen.js';
import { referenceRun } from './pg-reference.js';
import { expectVerify } from './rpc.js';
import { statusMb } from './procs.js';
import { round } from './stats.js';
import { allowWorkload, oncePass, totpWorkload } from './workloads.js';

export interface PgSettings {
  daemons: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** The fast path's window is run this many times (its figures combine them), as daemon_allow's. */
  rounds: number;
  allowMailboxes: number;
  codeMailboxes: number;
  writeMailboxes: number;
  scaleSizes: [number, number];
  workingSet: number;
  scaleDurationMs: number;
  scaleWriteDurationMs: number;
  poolSize: number;
  /** store.postgres.cacheEntries and cacheTtlMs of the daemons (absent: the default), where the daemon has the cache. */
  cache: PgCacheSettings;
  sharedBuffersMb: number;
  /** pg_stat_statements loaded, its top statements printed after each phase. */
  statements: boolean;
  /** pgbench's scale factor for pg_ref_* (100,000 rows per unit). */
  referenceScale: number;
}

export function pgSettingsFor(quick: boolean): PgSettings {
  const common = { daemons: 3, connections: 64, poolSize: 10, cache: {}, statements: false };
  return quick
    ? { ...common, warmupMs: 200, durationMs: 1000, rounds: 1, allowMailboxes: 500, codeMailboxes: 3000, writeMailboxes: 3000, scaleSizes: [2000, 10_000], workingSet: 2000, scaleDurationMs: 1000, scaleWriteDurationMs: 1000, sharedBuffersMb: 128, referenceScale: 1 }
    : { ...common, warmupMs: 1000, durationMs: 10_000, rounds: 2, allowMailboxes: 2000, codeMailboxes: 30_000, writeMailboxes: 30_000, scaleSizes: [100_000, 1_000_000], workingSet: 100_000, scaleDurationMs: 10_000, scaleWriteDurationMs: 5000, sharedBuffersMb: 1024, referenceScale: 10 };
}

type Results = Record<string, number>;
const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

const PG_NAMES = { server: 'daemon', database: true };
const fields = (prefix: string, r: LoadResult, out: Results) => loadFields(prefix, r, out, PG_NAMES);

function describe(label: string, r: LoadResult): string {
  const parts = [
    `${label}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms, ${r.requests} requests in ${r.seconds.toFixed(1)} s; CPU per request: daemons ${r.serverCpuUsPerRequest.toFixed(0)} µs, PostgreSQL ${r.databaseCpuUsPerRequest.toFixed(0)} µs (${r.serverCpuPct.toFixed(0)}% + ${r.databaseCpuPct.toFixed(0)}% of a core), client ${r.clientCpuPct.toFixed(0)}%`,
  ];
  if (r.errors > 0) parts.push(`${r.errors} unexpected answers (first: ${r.firstError})`);
  if (r.exhausted) parts.push('mailbox pool used up: window cut short');
  return parts.join('; ');
}

async function measure(pg: BenchPg, ps: PgSettings, label: string, daemons: BenchDaemon[], workload: Workload, opts: Omit<LoadOptions, 'connections' | 'serverPid' | 'databaseCpuMs'>): Promise<LoadResult> {
  const r = await runLoad(socketsOf(daemons), workload, { ...opts, connections: ps.connections, serverPid: pidsOf(daemons), databaseCpuMs: pg.cpuMs });
  say(describe(label, r));
  for (const line of await pg.topStatements()) say(`  ${line}`);
  return r;
}

/**
 * Every daemon answers every mailbox of `pool` once, one daemon after the other, before a fast-path
 * window: each login of this first pass misses the daemon's read cache and reads the database,
 * as a node's first login of each mailbox does after it starts, and fills the cache for the next
 * ones. The window after it measures a running farm's steady state; this pass, reported as
 * PREFIX_warm_*, the logins that read the database.
 */
async function warm(pg: BenchPg, ps: PgSettings, label: string, daemons: BenchDaemon[], pool: GenMailbox[], prefix: string, out: Results): Promise<void> {
  const runs: LoadResult[] = [];
  for (const d of daemons) runs.push(await runLoad(d.hookSocket, oncePass(pool), { connections: ps.connections, warmupMs: 0, durationMs: 3_600_000, serverPid: d.pid, databaseCpuMs: pg.cpuMs }));
  const r = combine(runs);
  say(describe(`${label}: first pass, every mailbox once on each daemon (${pool.length} x ${daemons.length})`, r));
  out[`${prefix}_warm_rps`] = round(r.rps, 1);
  out[`${prefix}_warm_p99_ms`] = round(r.p99Ms);
  out[`${prefix}_warm_s`] = round(r.seconds);
  out[`${prefix}_warm_daemon_cpu_us`] = round(r.serverCpuUsPerRequest, 1);
  out[`${prefix}_warm_db_cpu_us`] = round(r.databaseCpuUsPerRequest, 1);
  out[`${prefix}_warm_errors`] = r.errors;
  for (const line of await pg.topStatements()) say(`  ${line}`);
}

/** Verified on every daemon: each answers the fast path for a mailbox of the store. */
async function sane(daemons: BenchDaemon[], m: { address: string; ips: string[] }): Promise<void> {
  for (const d of daemons) await expectVerify(d.hookSocket, { user: m.address, ip: m.ips[1]! }, 'known-ip');
}

async function mainRun(pg: BenchPg, ps: PgSettings, out: Results): Promise<void> {
  const keys = await tempDir('mfk-');
  say(`pg: ${ps.allowMailboxes} + ${ps.codeMailboxes} + ${ps.writeMailboxes} mailboxes in PostgreSQL`);
  const store = await generatePgStore(pg, path.join(keys, 'keys'), [
    { prefix: 'allow', count: ps.allowMailboxes, settings: { challenge: 'new-ip', provider: 'totp' } },
    { prefix: 'code', count: ps.codeMailboxes, settings: { challenge: 'always', provider: 'totp' } },
    { prefix: 'write', count: ps.writeMailboxes, settings: { challenge: 'new-ip', provider: 'totp' } },
  ]);
  out['pg_store_mailboxes'] = store.mailboxes;
  out['pg_generate_s'] = round(store.loadS + store.analyzeS);
  const daemons = await startPgDaemons(pg, ps.daemons, { keyFile: store.keyFile, poolSize: ps.poolSize, cache: ps.cache });
  try {
    say(`pg: ${daemons.length} daemons ready in ${daemons.map((d) => d.startS.toFixed(2)).join(', ')} s`);
    const allowPool = spread(store.groups['allow']!, ps.allowMailboxes);
    await sane(daemons, allowPool[0]!);
    await pg.topStatements();
    await warm(pg, ps, 'pg allow', daemons, allowPool, 'pg_allow', out);
    const opts = { warmupMs: ps.warmupMs, durationMs: ps.durationMs };
    const allowRuns: LoadResult[] = [];
    for (let i = 0; i < ps.rounds; i++) allowRuns.push(await measure(pg, ps, `pg allow (${daemons.length} daemons, round ${i + 1}/${ps.rounds})`, daemons, allowWorkload(allowPool, 'known-ip'), opts));
    fields('pg_allow', combine(allowRuns), out);
    fields('pg_code', await measure(pg, ps, 'pg code (mode always, known IP, TOTP)', daemons, totpWorkload(spread(store.groups['code']!, ps.codeMailboxes), false), opts), out);
    fields('pg_write', await measure(pg, ps, 'pg write (mode new-ip, new IP, TOTP)', daemons, totpWorkload(spread(store.groups['write']!, ps.writeMailboxes), true), opts), out);
    out['pg_daemon_rss_mb'] = round(Math.max(...daemons.map((d) => d.peakRssMb())), 1);
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    await removeDir(keys);
  }
  out['pg_db_mb'] = round(await pg.sizeMb(), 1);
}

/**
 * The pg_* figures against the file-store daemon of the same run (daemon_*), where it ran, and
 * their latencies against PostgreSQL's alone (pg_ref_*).
 */
function ratios(out: Results): void {
  const ratio = (a: string, b: string) => (out[a] !== undefined && out[b] !== undefined ? round(out[a]! / out[b]!) : undefined);
  const set = (field: string, v: number | undefined) => {
    if (v !== undefined) out[field] = v;
  };
  set('pg_allow_rps_ratio', ratio('pg_allow_rps', 'daemon_allow_rps'));
  set('pg_allow_p99_ratio', ratio('pg_allow_p99_ms', 'daemon_allow_p99_ms'));
  set('pg_code_p99_ratio', ratio('pg_code_p99_ms', 'daemon_code_p99_ms'));
  set('pg_write_p99_ratio', ratio('pg_write_p99_ms', 'daemon_write_p99_ms'));
  set('pg_write_p99_ref_ratio', ratio('pg_write_p99_ms', 'pg_ref_write_p99_ms'));
  set('pg_allow_p99_ref_ratio', ratio('pg_allow_p99_ms', 'pg_ref_read_p99_ms'));
  if (out['pg_allow_daemon_cpu_us'] !== undefined && out['daemon_allow_server_cpu_us'] !== undefined) {
    // All the CPU a fast-path answer costs (three daemons and the server) against the file store's.
    out['pg_allow_cpu_ratio'] = round((out['pg_allow_daemon_cpu_us'] + out['pg_allow_db_cpu_us']!) / out['daemon_allow_server_cpu_us']);
  }
}

/**
 * The read cache of pg_scale's daemon: sized for the working set (its mailboxes, their domains and
 * the global settings, with a tenth to spare), and an entry kept for the longest time the key
 * allows, so that the first pass over the working set (warm) is still held when the window ends.
 * A farm sizes store.postgres.cacheEntries to the mailboxes that log in within cacheTtlMs the same
 * way; --pg-cache-entries and --pg-cache-ttl-ms set both here too.
 */
function scaleCache(ps: PgSettings): PgCacheSettings {
  return { cacheEntries: Math.ceil(ps.workingSet * 1.1) + 1000, cacheTtlMs: 60_000, ...ps.cache };
}

async function scaleRun(pg: BenchPg, ps: PgSettings, size: number, prefix: string, out: Results): Promise<void> {
  await pg.fresh();
  const keys = await tempDir('mfk-');
  say(`pg scale ${size}: generating the store with COPY`);
  const store = await generatePgStore(pg, path.join(keys, 'keys'), [{ prefix: 'u', count: size, settings: { challenge: 'new-ip', provider: 'totp' } }]);
  say(`pg scale ${size}: ${store.dbMb.toFixed(0)} MB loaded in ${store.loadS.toFixed(1)} s (+ ANALYZE and CHECKPOINT ${store.analyzeS.toFixed(1)} s); starting a daemon`);
  const d = await startPgDaemon(pg, { keyFile: store.keyFile, poolSize: ps.poolSize, cache: scaleCache(ps) });
  try {
    say(`pg scale ${size}: ready in ${d.startS.toFixed(2)} s (daemon reports ${d.reportedStartMs} ms)`);
    const working = spread(store.groups['u']!, ps.workingSet);
    await sane([d], working[working.length - 1]!);
    await pg.topStatements();
    // Where the peak is reached: the RSS now and the peak so far after each phase (the log only).
    const memory = async (after: string) => say(`pg scale ${size}: after ${after}: RSS ${(await statusMb(d.pid, 'VmRSS'))?.toFixed(0)} MB, peak ${(await statusMb(d.pid, 'VmHWM'))?.toFixed(0)} MB`);
    await memory('start');
    await warm(pg, ps, `pg scale ${size}`, [d], working, prefix, out);
    await memory('the first pass');
    const opts = { warmupMs: ps.warmupMs, durationMs: ps.scaleDurationMs };
    const verify = await measure(pg, ps, `pg scale ${size} verify (allow, working set ${working.length})`, [d], allowWorkload(working, 'known-ip'), opts);
    await memory('verify');
    const write = await measure(pg, ps, `pg scale ${size} write (new IP, TOTP)`, [d], totpWorkload(working, true, 1 << 20), { ...opts, durationMs: ps.scaleWriteDurationMs });
    await memory('write');
    out[`${prefix}_mailboxes`] = size;
    out[`${prefix}_working_set`] = working.length;
    out[`${prefix}_generate_s`] = round(store.loadS);
    out[`${prefix}_analyze_s`] = round(store.analyzeS);
    out[`${prefix}_db_mb`] = round(store.dbMb, 1);
    out[`${prefix}_start_s`] = round(d.startS);
    out[`${prefix}_ready_ms`] = round(d.reportedStartMs, 1);
    for (const [name, r] of [['verify', verify], ['write', write]] as const) {
      for (const [k, v] of Object.entries({ rps: round(r.rps, 1), p50_ms: round(r.p50Ms), p99_ms: round(r.p99Ms), max_ms: round(r.maxMs), errors: r.errors, daemon_cpu_us: round(r.serverCpuUsPerRequest, 1), db_cpu_us: round(r.databaseCpuUsPerRequest, 1) })) out[`${prefix}_${name}_${k}`] = v;
    }
    out[`${prefix}_write_seconds`] = round(write.seconds);
    out[`${prefix}_write_pool_used_up`] = write.exhausted ? 1 : 0;
  } finally {
    out[`${prefix}_stop_s`] = round(await d.stop());
    out[`${prefix}_rss_mb`] = round(d.peakRssMb(), 1);
    await removeDir(keys);
  }
  say(`pg scale ${size}: peak RSS ${out[`${prefix}_rss_mb`]} MB`);
}

/**
 * Runs the sections asked for; what it cannot run it says in notes.pg_skipped. `main`: pg_*,
 * `scale`: pg_scale_*.
 */
export async function pgPhase(ps: PgSettings, which: { main: boolean; scale: boolean }, out: Results, notes: Record<string, unknown>): Promise<void> {
  if (!which.main && !which.scale) return;
  const missing = postgresMissing();
  if (missing !== null) {
    notes['pg_skipped'] = missing;
    say(`pg: skipped: ${missing}`);
    return;
  }
  const cache = pgCacheDefaults();
  notes['pg'] = {
    daemons: ps.daemons,
    connections: ps.connections,
    connectionsPerDaemon: 'spread in turn over the daemons, 64 in all',
    poolSize: ps.poolSize,
    sharedBuffersMb: ps.sharedBuffersMb,
    durable: 'fsync, synchronous_commit and full_page_writes on',
    cache: cache === null ? 'none in this version' : { ...cache, ...ps.cache },
    scaleCache: cache === null ? 'none in this version' : { ...cache, ...scaleCache(ps) },
    warm: 'before the fast-path windows, every mailbox of the pool once on each daemon (*_warm_*)',
    reference: `pgbench -N (write) and -S (read), prepared, ${ps.connections} connections, a thread per core, scale ${ps.referenceScale}, no daemon (pg_ref_*)`,
  };
  const pg = await startBenchPostgres({ sharedBuffersMb: ps.sharedBuffersMb, statements: ps.statements });
  try {
    if (which.main) {
      const skipped = await referenceRun(pg, { connections: ps.connections, warmupMs: ps.warmupMs, durationMs: ps.durationMs, scale: ps.referenceScale }, out);
      if (skipped !== null) notes['pg_ref_skipped'] = skipped;
      await mainRun(pg, ps, out);
      ratios(out);
    }
    if (which.scale) {
      const [small, large] = ps.scaleSizes;
      await scaleRun(pg, ps, small, 'pg_scale_small', out);
      await scaleRun(pg, ps, large, 'pg_scale', out);
      for (const f of ['start_s', 'rss_mb', 'verify_p99_ms', 'write_p99_ms', 'db_mb', 'generate_s', 'mailboxes']) {
        out[`pg_scale_growth_${f.replace(/_(s|ms|mb)$/, '')}`] = round(out[`pg_scale_${f}`]! / out[`pg_scale_small_${f}`]!);
      }
    }
  } catch (err) {
    if (!(err instanceof PgUnserved)) throw err;
    for (const k of Object.keys(out).filter((k) => k.startsWith('pg_'))) delete out[k];
    notes['pg_skipped'] = err.message;
    say(`pg: skipped: ${err.message}`);
  } finally {
    await pg.stop();
  }
}
