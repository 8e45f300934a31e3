// Short-lived processes: wall time from spawn to exit, and peak resident memory.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { track } from './cleanup.js';

export interface ProcessRun {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command args…` to completion; `ms` is the wall time from spawn to the exit event. */
export function timeProcess(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = track(spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    let ms = 0;
    let code: number | null = null;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (c) => {
      ms = performance.now() - t0;
      code = c;
    });
    child.once('close', () => resolve({ ms, code, stdout, stderr }));
  });
}

const GNU_TIME = '/usr/bin/time';

/** How peak RSS of a child is measured: GNU time's %M where present, else a preloaded probe. */
export function rssMethod(): 'gnu-time' | 'probe' {
  return existsSync(GNU_TIME) ? 'gnu-time' : 'probe';
}

/**
 * Peak resident set size (MB) of one run of `node args…`, as the kernel reports it at exit
 * (getrusage ru_maxrss): through `/usr/bin/time -f %M`, or, without it, through a module
 * preloaded with --import that writes process.resourceUsage().maxRSS when the process exits.
 */
export async function peakRssMb(nodeArgs: string[], scratchDir: string, env: NodeJS.ProcessEnv = process.env): Promise<{ mb: number; code: number | null }> {
  const out = path.join(scratchDir, `rss-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  let run: ProcessRun;
  if (rssMethod() === 'gnu-time') {
    run = await timeProcess(GNU_TIME, ['-f', '%M', '-o', out, process.execPath, ...nodeArgs], env);
  } else {
    const probe = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), 'rss-probe.js')).href;
    run = await timeProcess(process.execPath, ['--import', probe, ...nodeArgs], { ...env, MEMFA_BENCH_RSS_FILE: out });
  }
  const text = await readFile(out, 'utf8');
  await rm(out, { force: true });
  // GNU time may prefix "Command exited with non-zero status N"; the figure is the last line.
  const kb = Number(text.trim().split('\n').pop());
  if (!Number.isFinite(kb) || kb <= 0) throw new Error(`cannot read peak RSS from ${JSON.stringify(text)}`);
  return { mb: kb / 1024, code: run.code };
}

/** Peak RSS so far (VmHWM) of a running process, in MB; null once it is gone. */
export async function vmHwmMb(pid: number): Promise<number | null> {
  return statusMb(pid, 'VmHWM');
}

/** A memory figure of /proc/PID/status (VmHWM: the peak RSS; VmRSS: now), in MB; null when unavailable. */
export async function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU time (user + system, all threads) a process has used so far, in ms, from /proc/PID/stat;
 * null when unavailable. Clock ticks are taken as 100 Hz, the value on every Linux build Node
 * supports (getconf CLK_TCK).
 */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}
