// The file store's scale section (scale_small_* and scale_*): one daemon on a generated store of
// each of two sizes, its start, memory, fast path and writes over the whole store.
import path from 'node:path';
import { removeDir, tempDir } from './cleanup.js';
import { startBenchDaemon, writeDaemonConfig } from './daemon.js';
import { runLoad, type LoadOptions, type LoadResult, type Workload } from './load.js';
import { expectVerify } from './rpc.js';
import { round } from './stats.js';
import { generateStore, type GeneratedStore } from './store-gen.js';
import { allowWorkload, totpWorkload } from './workloads.js';

export interface ScaleSettings {
  connections: number;
  warmupMs: number;
  scaleSizes: [number, number];
  scaleDurationMs: number;
  /** The scale write phase is shorter: its mailboxes can each accept only a few codes per 30 s. */
  scaleWriteDurationMs: number;
}

type Results = Record<string, number>;

export const say = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

export function describe(label: string, r: LoadResult): string {
  const parts = [`${label}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms, ${r.requests} requests in ${r.seconds.toFixed(1)} s, server ${r.serverCpuUsPerRequest.toFixed(1)} µs CPU/request (${r.serverCpuPct.toFixed(0)}% of a core), client ${r.clientCpuPct.toFixed(0)}%`];
  if (r.errors > 0) parts.push(`${r.errors} unexpected answers (first: ${r.firstError})`);
  if (r.exhausted) parts.push('mailbox pool used up: window cut short');
  return parts.join('; ');
}

export async function measureLoad(label: string, socketPath: string, workload: Workload, opts: LoadOptions): Promise<LoadResult> {
  const r = await runLoad(socketPath, workload, opts);
  say(describe(label, r));
  return r;
}

interface ScaleRun {
  mailboxes: number;
  startS: number;
  readyMs: number;
  rssMb: number;
  storeMb: number;
  generateS: number;
  verify: LoadResult;
  write: LoadResult;
  stopS: number;
  compactions: number;
}

async function scaleRun(s: ScaleSettings, size: number): Promise<ScaleRun> {
  const dir = await tempDir('mfs-');
  await writeDaemonConfig(dir);
  say(`scale ${size}: generating the store`);
  const store: GeneratedStore = await generateStore(path.join(dir, 'data'), [{ prefix: 'u', count: size, settings: { challenge: 'new-ip', provider: 'totp' } }]);
  say(`scale ${size}: store ${(store.bytes / 1048576).toFixed(1)} MB generated in ${(store.generateMs / 1000).toFixed(1)} s; starting the daemon`);
  const d = await startBenchDaemon(dir);
  say(`scale ${size}: ready in ${d.startS.toFixed(2)} s (daemon reports ${d.reportedStartMs} ms)`);
  const pool = store.groups['u']!;
  await expectVerify(d.hookSocket, { user: pool[size - 1]!.address, ip: pool[size - 1]!.ips[1]! }, 'known-ip');
  const opts: LoadOptions = { connections: s.connections, warmupMs: s.warmupMs, durationMs: s.scaleDurationMs, serverPid: d.pid };
  const verify = await measureLoad(`scale ${size} verify (allow)`, d.hookSocket, allowWorkload(pool, 'known-ip'), opts);
  const write = await measureLoad(`scale ${size} write (new IP, TOTP)`, d.hookSocket, totpWorkload(pool, true, 1 << 20), { ...opts, durationMs: s.scaleWriteDurationMs });
  const compactions = d.count('store-compacted');
  const stopS = await d.stop();
  const run: ScaleRun = {
    mailboxes: size,
    startS: d.startS,
    readyMs: d.reportedStartMs,
    rssMb: d.peakRssMb(),
    storeMb: store.bytes / 1048576,
    generateS: store.generateMs / 1000,
    verify,
    write,
    stopS,
    compactions,
  };
  say(`scale ${size}: peak RSS ${run.rssMb.toFixed(1)} MB, stop ${stopS.toFixed(2)} s, ${compactions} journal compactions`);
  await removeDir(dir);
  return run;
}

function scaleFields(prefix: string, r: ScaleRun, out: Results): void {
  out[`${prefix}_mailboxes`] = r.mailboxes;
  out[`${prefix}_start_s`] = round(r.startS);
  out[`${prefix}_ready_ms`] = round(r.readyMs, 1);
  out[`${prefix}_rss_mb`] = round(r.rssMb, 1);
  out[`${prefix}_store_mb`] = round(r.storeMb, 2);
  out[`${prefix}_verify_rps`] = round(r.verify.rps, 1);
  out[`${prefix}_verify_p50_ms`] = round(r.verify.p50Ms);
  out[`${prefix}_verify_p99_ms`] = round(r.verify.p99Ms);
  out[`${prefix}_verify_errors`] = r.verify.errors;
  out[`${prefix}_verify_server_cpu_us`] = round(r.verify.serverCpuUsPerRequest, 1);
  out[`${prefix}_write_rps`] = round(r.write.rps, 1);
  out[`${prefix}_write_p50_ms`] = round(r.write.p50Ms);
  out[`${prefix}_write_p99_ms`] = round(r.write.p99Ms);
  out[`${prefix}_write_max_ms`] = round(r.write.maxMs);
  out[`${prefix}_write_errors`] = r.write.errors;
  out[`${prefix}_write_server_cpu_us`] = round(r.write.serverCpuUsPerRequest, 1);
  out[`${prefix}_write_seconds`] = round(r.write.seconds);
  out[`${prefix}_write_pool_used_up`] = r.write.exhausted ? 1 : 0;
  out[`${prefix}_stop_s`] = round(r.stopS);
  out[`${prefix}_compactions`] = r.compactions;
}

export async function scalePhase(s: ScaleSettings, out: Results): Promise<void> {
  const [small, large] = s.scaleSizes;
  const a = await scaleRun(s, small);
  const b = await scaleRun(s, large);
  scaleFields('scale_small', a, out);
  scaleFields('scale', b, out);
  out['scale_growth_start'] = round(b.startS / a.startS);
  out['scale_growth_rss'] = round(b.rssMb / a.rssMb);
  out['scale_growth_store'] = round(b.storeMb / a.storeMb);
  out['scale_growth_verify_p99'] = round(b.verify.p99Ms / a.verify.p99Ms);
  out['scale_growth_write_p99'] = round(b.write.p99Ms / a.write.p99Ms);
  out['scale_growth_mailboxes'] = round(b.mailboxes / a.mailboxes);
}
