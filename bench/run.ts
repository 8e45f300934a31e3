// `npm run bench`: memfa's performance against baselines measured in the same run.
//
//   node dist/bench/run.js [--quick] [--json] [--keep] [--duration S] [--runs N]
//                          [--connections N] [--sizes A,B] [--pool N] [--out FILE]
//                          [--only main,scale,pg,pg-scale,imap] [--pg-sizes A,B]
//                          [--pg-working-set N] [--pg-daemons N] [--pg-pool N] [--pg-cache-entries N] [--pg-cache-ttl-ms N]
//                          [--pg-statements]
//
// --only runs just the sections named (main: the CLI and the file-store daemon, which the pg
// section's ratios need; scale; pg; pg-scale; imap). The --pg-* options are the PostgreSQL
// sections' (bench/pg-phase.ts): store sizes, the working set, each daemon's pool size, its read
// cache's bound and time to live, and pg_stat_statements' top statements after each phase (on standard error).
//
// --out FILE also writes the JSON document to FILE (whatever is printed); --render FILE prints the
// table of such a document again, without running anything.
//
// Every figure that has a target is a ratio against a baseline run on the same machine, in the same
// run (bare Node process, `node -e 0`, an NDJSON echo server, a raw fdatasync loop), because the
// machines this runs on are shared and noisy. See bench/README.md for what each field means.
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cleanupAll, installSignalCleanup, keepTempDirs, removeDir, tempDir, track } from './cleanup.js';
import { BIN, REPO, startBenchDaemon, writeDaemonConfig, type BenchDaemon } from './daemon.js';
import { fsyncLatency } from './disk.js';
import { IMAP_FULL, IMAP_QUICK, imapPhase } from './imap.js';
import { combine, loadFields, type LoadOptions, type LoadResult } from './load.js';
import { peakRssMb, rssMethod, timeProcess } from './procs.js';
import { expectVerify } from './rpc.js';
import { pgPhase, pgSettingsFor, type PgSettings } from './pg-phase.js';
import { measuredTargets, passes, render, table } from './report.js';
import { median, round } from './stats.js';
import { measureLoad, say, scalePhase } from './scale.js';
import { generateStore, type GenMailbox } from './store-gen.js';
import { structuresPhase } from './structures.js';
import { allowWorkload, totpWorkload } from './workloads.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BARE_CLIENT = path.join(HERE, 'bare-client.js');
const ECHO_SERVER = path.join(HERE, 'echo-server.js');

interface Settings {
  mode: 'full' | 'quick';
  connections: number;
  /** CLI timing: measured runs of each command (interleaved), after unmeasured warm-up runs. */
  cliRuns: number;
  cliWarmupRuns: number;
  rssRuns: number;
  warmupMs: number;
  /** Measured window of each load phase. */
  durationMs: number;
  /** Echo and allow phases alternate this many times (each round lasts durationMs). */
  rounds: number;
  mainAllowMailboxes: number;
  mainCodeMailboxes: number;
  mainWriteMailboxes: number;
  scaleSizes: [number, number];
  scaleDurationMs: number;
  /** The scale write phase is shorter: its mailboxes can each accept only a few codes per 30 s. */
  scaleWriteDurationMs: number;
  fsyncProbeMs: number;
}

function valueOf(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
}

const SECTIONS = ['main', 'scale', 'pg', 'pg-scale', 'imap'] as const;
type SectionName = (typeof SECTIONS)[number];

function settingsFor(argv: string[]): { s: Settings; pg: PgSettings; only: Set<SectionName>; json: boolean; keep: boolean } {
  const quick = argv.includes('--quick');
  const s: Settings = quick
    ? {
        mode: 'quick',
        connections: 64,
        cliRuns: 5,
        cliWarmupRuns: 1,
        rssRuns: 1,
        warmupMs: 200,
        durationMs: 1000,
        rounds: 1,
        mainAllowMailboxes: 500,
        mainCodeMailboxes: 3000,
        mainWriteMailboxes: 3000,
        scaleSizes: [1000, 5000],
        scaleDurationMs: 1000,
        scaleWriteDurationMs: 1000,
        fsyncProbeMs: 300,
      }
    : {
        mode: 'full',
        connections: 64,
        cliRuns: 30,
        cliWarmupRuns: 3,
        rssRuns: 5,
        warmupMs: 1000,
        durationMs: 10_000,
        rounds: 2,
        mainAllowMailboxes: 2000,
        mainCodeMailboxes: 30_000,
        mainWriteMailboxes: 30_000,
        scaleSizes: [10_000, 100_000],
        scaleDurationMs: 10_000,
        scaleWriteDurationMs: 5000,
        fsyncProbeMs: 2000,
      };
  const value = (name: string) => valueOf(argv, name);
  const num = (name: string): number | undefined => {
    const v = value(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got ${v}`);
    return n;
  };
  const d = num('--duration');
  if (d !== undefined) s.durationMs = s.scaleDurationMs = s.scaleWriteDurationMs = d * 1000;
  s.cliRuns = num('--runs') ?? s.cliRuns;
  const pool = num('--pool');
  if (pool !== undefined) s.mainCodeMailboxes = s.mainWriteMailboxes = pool;
  s.connections = num('--connections') ?? s.connections;
  const sizes = value('--sizes');
  if (sizes !== undefined) {
    const [a, b] = sizes.split(',').map(Number);
    if (!a || !b) throw new Error(`--sizes: expected two sizes like 10000,100000, got ${sizes}`);
    s.scaleSizes = [a, b];
  }
  const pg = pgSettingsFor(quick);
  if (d !== undefined) pg.durationMs = pg.scaleDurationMs = pg.scaleWriteDurationMs = d * 1000;
  pg.connections = s.connections;
  const pgSizes = value('--pg-sizes');
  if (pgSizes !== undefined) {
    const [a, b] = pgSizes.split(',').map(Number);
    if (!a || !b) throw new Error(`--pg-sizes: expected two sizes like 100000,1000000, got ${pgSizes}`);
    pg.scaleSizes = [a, b];
  }
  pg.workingSet = num('--pg-working-set') ?? pg.workingSet;
  pg.daemons = num('--pg-daemons') ?? pg.daemons;
  pg.poolSize = num('--pg-pool') ?? pg.poolSize;
  const cacheEntries = num('--pg-cache-entries');
  const cacheTtlMs = num('--pg-cache-ttl-ms');
  pg.cache = { ...(cacheEntries === undefined ? {} : { cacheEntries }), ...(cacheTtlMs === undefined ? {} : { cacheTtlMs }) };
  pg.statements = argv.includes('--pg-statements');
  const onlyList = value('--only')?.split(',') ?? [...SECTIONS];
  const unknown = onlyList.filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`--only: unknown section ${unknown.join(', ')} (sections: ${SECTIONS.join(', ')})`);
  return { s, pg, only: new Set(onlyList as SectionName[]), json: argv.includes('--json'), keep: argv.includes('--keep') };
}


/** Times two commands alternately (A B, B A, A B …) so that drift in machine load hits both alike. */
async function timePair(a: { cmd: string; args: string[]; ok: (r: { code: number | null; stdout: string }) => boolean }, b: typeof a, runs: number, warmup: number): Promise<{ a: number[]; b: number[] }> {
  const out = { a: [] as number[], b: [] as number[] };
  for (let i = 0; i < warmup + runs; i++) {
    const order = i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
    for (const which of order) {
      const c = which === 'a' ? a : b;
      const r = await timeProcess(c.cmd, c.args);
      if (!c.ok(r)) throw new Error(`${c.cmd} ${c.args.join(' ')} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      if (i >= warmup) out[which].push(r.ms);
    }
  }
  return out;
}

async function medianRss(nodeArgs: string[], scratch: string, runs: number, ok: (code: number | null) => boolean): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await peakRssMb(nodeArgs, scratch);
    if (!ok(r.code)) throw new Error(`node ${nodeArgs.join(' ')} exited ${r.code} while measuring memory`);
    values.push(r.mb);
  }
  return median(values);
}

function startEcho(socketPath: string): Promise<{ pid: number; stop(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, [ECHO_SERVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`echo server exited ${code} before ready`)));
    child.stdout!.setEncoding('utf8').once('data', () =>
      resolve({
        pid: child.pid!,
        stop: () =>
          new Promise<void>((r) => {
            if (child.exitCode !== null || child.signalCode !== null) return r();
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      }),
    );
  });
}

type Results = Record<string, number>;


// ---------------------------------------------------------------------------------------------

async function cliPhase(s: Settings, d: BenchDaemon, m: GenMailbox, scratch: string, out: Results, notes: Record<string, unknown>): Promise<void> {
  const ip = m.ips[0]!;
  const memfaVerify = [BIN, '--config', d.configFile, 'verify', '--user', m.address, '--ip', ip];
  const bareArgs = [BARE_CLIENT, d.hookSocket, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'verify', params: { user: m.address, ip } })];
  notes['cli_verify_command'] = `node ${[path.relative(REPO, BIN), ...memfaVerify.slice(1)].join(' ')}`;
  notes['cli_verify_baseline'] = `node ${path.relative(REPO, BARE_CLIENT)} ${d.hookSocket} '${bareArgs[2]}'`;

  say(`CLI: memfa --version vs node -e 0, ${s.cliRuns} runs each (+${s.cliWarmupRuns} warm-up)`);
  const version = await timePair(
    { cmd: process.execPath, args: [BIN, '--version'], ok: (r) => r.code === 0 },
    { cmd: process.execPath, args: ['-e', '0'], ok: (r) => r.code === 0 },
    s.cliRuns,
    s.cliWarmupRuns,
  );
  out['cli_version_ms'] = round(median(version.a));
  out['cli_node_e0_ms'] = round(median(version.b));
  out['cli_version_ratio'] = round(median(version.a) / median(version.b));

  say(`CLI: memfa verify vs bare client, ${s.cliRuns} runs each (+${s.cliWarmupRuns} warm-up)`);
  const verify = await timePair(
    { cmd: process.execPath, args: memfaVerify, ok: (r) => r.code === 0 && r.stdout.startsWith('allow') },
    { cmd: process.execPath, args: bareArgs, ok: (r) => r.code === 0 && r.stdout.includes('"allow"') },
    s.cliRuns,
    s.cliWarmupRuns,
  );
  out['cli_verify_ms'] = round(median(verify.a));
  out['cli_verify_bare_ms'] = round(median(verify.b));
  out['cli_verify_ratio'] = round(median(verify.a) / median(verify.b));

  say(`CLI: peak RSS (${rssMethod()}), median of ${s.rssRuns} runs each`);
  const rss = await medianRss(memfaVerify, scratch, s.rssRuns, (c) => c === 0);
  const bareRss = await medianRss(bareArgs, scratch, s.rssRuns, (c) => c === 0);
  out['cli_verify_rss_mb'] = round(rss, 1);
  out['cli_verify_bare_rss_mb'] = round(bareRss, 1);
  out['cli_verify_rss_ratio'] = round(rss / bareRss);
  say(`CLI: verify ${out['cli_verify_ms']} ms vs bare ${out['cli_verify_bare_ms']} ms; --version ${out['cli_version_ms']} ms vs node -e 0 ${out['cli_node_e0_ms']} ms; RSS ${out['cli_verify_rss_mb']} MB vs ${out['cli_verify_bare_rss_mb']} MB`);
}

async function daemonPhase(s: Settings, out: Results, notes: Record<string, unknown>): Promise<void> {
  const dir = await tempDir('mfb-');
  await writeDaemonConfig(dir);
  say(`main store: ${s.mainAllowMailboxes} + ${s.mainCodeMailboxes} + ${s.mainWriteMailboxes} mailboxes`);
  const store = await generateStore(path.join(dir, 'data'), [
    { prefix: 'allow', count: s.mainAllowMailboxes, settings: { challenge: 'new-ip', provider: 'totp' } },
    { prefix: 'code', count: s.mainCodeMailboxes, settings: { challenge: 'always', provider: 'totp' } },
    { prefix: 'write', count: s.mainWriteMailboxes, settings: { challenge: 'new-ip', provider: 'totp' } },
  ]);
  notes['main_store_mailboxes'] = store.mailboxes;
  const fsync = await fsyncLatency(path.join(dir, 'data'), s.fsyncProbeMs);
  out['disk_fsync_p50_ms'] = round(fsync.p50Ms);
  out['disk_fsync_p99_ms'] = round(fsync.p99Ms);
  say(`disk: append+fdatasync p50 ${fsync.p50Ms.toFixed(2)} ms, p99 ${fsync.p99Ms.toFixed(2)} ms (${fsync.count} samples)`);
  say(structuresPhase(out, s.mode === 'quick'));

  const d = await startBenchDaemon(dir);
  const allowPool = store.groups['allow']!;
  const codePool = store.groups['code']!;
  const writePool = store.groups['write']!;
  await expectVerify(d.hookSocket, { user: allowPool[0]!.address, ip: allowPool[0]!.ips[0]! }, 'known-ip');

  await cliPhase(s, d, allowPool[0]!, dir, out, notes);

  const opts: LoadOptions = { connections: s.connections, warmupMs: s.warmupMs, durationMs: s.durationMs, serverPid: d.pid };
  const echoSocket = path.join(dir, 'echo.sock');
  const echoRuns: LoadResult[] = [];
  const allowRuns: LoadResult[] = [];
  for (let round_ = 0; round_ < s.rounds; round_++) {
    const echo = await startEcho(echoSocket);
    try {
      echoRuns.push(await measureLoad(`echo baseline (round ${round_ + 1}/${s.rounds})`, echoSocket, allowWorkload(allowPool, null), { ...opts, serverPid: echo.pid }));
    } finally {
      await echo.stop();
    }
    allowRuns.push(await measureLoad(`daemon allow (round ${round_ + 1}/${s.rounds})`, d.hookSocket, allowWorkload(allowPool, 'known-ip'), opts));
  }
  const echo = combine(echoRuns);
  const allow = combine(allowRuns);
  loadFields('echo', echo, out);
  loadFields('daemon_allow', allow, out);
  out['daemon_allow_ratio'] = round(allow.rps / echo.rps);
  // The same comparison by CPU cost, less sensitive to what else runs on the machine.
  out['daemon_allow_cpu_ratio'] = round(echo.serverCpuUsPerRequest / allow.serverCpuUsPerRequest);

  const compactionsBefore = d.count('store-compacted');
  const code = await measureLoad('daemon code (mode always, known IP, TOTP)', d.hookSocket, totpWorkload(codePool, false), opts);
  loadFields('daemon_code', code, out);
  const compactionsMid = d.count('store-compacted');
  const write = await measureLoad('daemon write (mode new-ip, new IP, TOTP)', d.hookSocket, totpWorkload(writePool, true), opts);
  loadFields('daemon_write', write, out);
  out['daemon_code_compactions'] = compactionsMid - compactionsBefore;
  out['daemon_write_compactions'] = d.count('store-compacted') - compactionsMid;
  out['daemon_rss_mb'] = round(d.peakRssMb(), 1);
  await d.stop();
  await removeDir(dir);
}

async function main(): Promise<number> {
  const renderFile = valueOf(process.argv.slice(2), '--render');
  if (renderFile !== undefined) return render(renderFile);
  const { s, pg, only, json, keep } = settingsFor(process.argv.slice(2));
  keepTempDirs(keep);
  installSignalCleanup();
  const t0 = performance.now();
  const machine: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    memory_mb: Math.round(os.totalmem() / 1048576),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    loadavg_start: os.loadavg().map((x) => round(x, 2)),
    tmpdir: os.tmpdir(),
  };
  const notes: Record<string, unknown> = {};
  const out: Results = {};
  try {
    if (only.has('main')) await daemonPhase(s, out, notes);
    if (only.has('scale')) await scalePhase(s, out);
    await pgPhase(pg, { main: only.has('pg'), scale: only.has('pg-scale') }, out, notes);
    if (only.has('imap')) await imapPhase(s.mode === 'quick' ? IMAP_QUICK : IMAP_FULL, out, notes);
  } finally {
    await cleanupAll();
  }
  machine['loadavg_end'] = os.loadavg().map((x) => round(x, 2));
  out['bench_seconds'] = round((performance.now() - t0) / 1000, 1);
  const targets = Object.fromEntries(measuredTargets(out).map((t) => [t.field, { value: out[t.field], op: t.op, limit: t.limit, pass: passes(t, out[t.field]!) }]));
  const settings = { ...s, sections: [...only], pgSettings: pg, imap: s.mode === 'quick' ? IMAP_QUICK : IMAP_FULL, rssMethod: rssMethod(), daemonConfig: { dataDir: 'data', runDir: 'run', log: { level: 'info' } }, ...notes };
  const doc = JSON.stringify({ ...out, machine, settings, targets }, null, 2) + '\n';
  const outFile = valueOf(process.argv.slice(2), '--out');
  if (outFile !== undefined) await writeFile(outFile, doc);
  if (json) {
    process.stdout.write(doc);
  } else {
    process.stdout.write(table(out, machine, settings) + '\n');
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    await cleanupAll().catch(() => undefined);
    process.stderr.write(`bench: failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
