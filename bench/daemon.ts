// A real memfa daemon for the benchmark: spawned through bin/memfa like in production, on a
// temporary directory, with its start time (spawn to the "ready" log line) and its peak memory
// (VmHWM from /proc, polled while it runs) recorded.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { track } from './cleanup.js';
import { vmHwmMb } from './procs.js';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = path.join(REPO, 'bin', 'memfa');

export interface BenchDaemon {
  dir: string;
  configFile: string;
  hookSocket: string;
  adminSocket: string;
  pid: number;
  /** Wall seconds from spawn to the "ready" line. */
  startS: number;
  /** startMs as the daemon itself reports it in its "ready" line (store, keys, geo, listeners). */
  reportedStartMs: number;
  log(): string;
  /** Highest VmHWM seen so far, MB. */
  peakRssMb(): number;
  /** Log events seen so far with this name (e.g. store-compacted). */
  count(event: string): number;
  /** SIGTERM and wait; returns the wall seconds the shutdown took (it folds the journal). */
  stop(timeoutMs?: number): Promise<number>;
}

export async function writeDaemonConfig(dir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const configFile = path.join(dir, 'memfa.json');
  await writeFile(configFile, JSON.stringify({ dataDir: 'data', runDir: 'run', log: { level: 'info' }, ...extra }, null, 2));
  return configFile;
}

export async function startBenchDaemon(dir: string, options: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<BenchDaemon> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const configFile = path.join(dir, 'memfa.json');
  const t0 = performance.now();
  const proc: ChildProcess = track(spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, '--config', configFile, 'daemon'], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let text = '';
  let peak = 0;
  let readyAt = 0;
  let reportedStartMs = Number.NaN;
  const poll = setInterval(() => {
    void vmHwmMb(proc.pid!).then((mb) => {
      if (mb !== null && mb > peak) peak = mb;
    });
  }, 100);
  proc.once('exit', () => clearInterval(poll));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      text += d;
      if (readyAt === 0 && text.includes('"event":"ready"')) {
        readyAt = performance.now();
        const line = text.split('\n').find((l) => l.includes('"event":"ready"'));
        try {
          reportedStartMs = Number((JSON.parse(line!) as { startMs?: number }).startMs);
        } catch {
          reportedStartMs = Number.NaN;
        }
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code ?? signal}) before ready:\n${text}`));
    });
  });
  const pollNow = async () => {
    const mb = await vmHwmMb(proc.pid!);
    if (mb !== null && mb > peak) peak = mb;
  };
  await pollNow();
  return {
    dir,
    configFile,
    hookSocket: path.join(dir, 'run', 'hook.sock'),
    adminSocket: path.join(dir, 'run', 'admin.sock'),
    pid: proc.pid!,
    startS: (readyAt - t0) / 1000,
    reportedStartMs,
    log: () => text,
    peakRssMb: () => peak,
    count: (event) => text.split('\n').filter((l) => l.includes(`"event":"${event}"`)).length,
    async stop(stopTimeoutMs = 120_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return 0;
      await pollNow();
      const s0 = performance.now();
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
      return (performance.now() - s0) / 1000;
    },
  };
}
