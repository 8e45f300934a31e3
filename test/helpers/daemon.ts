// Test harness: a real daemon on a temporary directory, driven through the real bin/memfa.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = path.join(REPO, 'bin', 'memfa');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface TestDaemon {
  dir: string;
  configFile: string;
  adminSocket: string;
  hookSocket: string;
  selfSocket: string;
  dataDir: string;
  proc: ChildProcess;
  log: () => string;
  cli(args: string[], options?: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv }): Promise<CliResult>;
  json<T = Record<string, unknown>>(args: string[], options?: { stdin?: string; expectCode?: number }): Promise<T>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Starts a new daemon process on the same directory and configuration. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function makeTempDir(prefix = 'memfa-'): Promise<string> {
  // Short paths: a Unix socket path must fit in about 100 bytes.
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export function runCli(args: string[], options: { stdin?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

/** Runs memfa with its standard output closed before it writes, as `memfa ... | true` may. */
export function runCliClosedStdout(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    // The read end goes away before the program has even started: its first write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

export interface StartOptions {
  config?: Record<string, unknown>;
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** Do not wait for "ready" (for start-up failure tests). */
  expectFailure?: boolean;
}

function spawnDaemon(configFile: string, env: NodeJS.ProcessEnv | undefined): { proc: ChildProcess; output: { text: string } } {
  const proc = spawn(process.execPath, [BIN, '--config', configFile, 'daemon'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { text: '' };
  proc.stdout!.on('data', (d: Buffer) => (output.text += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output.text += d.toString()));
  return { proc, output };
}

function waitReady(proc: ChildProcess, output: { text: string }, timeoutMs = 15000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready in ${timeoutMs} ms:\n${output.text}`)), timeoutMs);
    const check = () => {
      if (output.text.includes('"event":"ready"')) {
        clearTimeout(timer);
        proc.stderr!.off('data', check);
        resolve();
      }
    };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code} before ready:\n${output.text}`));
    });
    check();
  });
}

export function waitExit(proc: ChildProcess, timeoutMs = 15000): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('daemon did not exit')), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export async function startDaemon(options: StartOptions = {}): Promise<TestDaemon> {
  const dir = options.dir ?? (await makeTempDir());
  const configFile = path.join(dir, 'memfa.json');
  const config = { dataDir: 'data', runDir: 'run', ...options.config };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  let { proc, output } = spawnDaemon(configFile, options.env);
  if (!options.expectFailure) await waitReady(proc, output);
  const adminSocket = path.join(dir, 'run', 'admin.sock');
  const hookSocket = path.join(dir, 'run', 'hook.sock');
  const selfSocket = path.join(dir, 'run', 'self.sock');
  const env = { MEMFA_CONFIG: configFile, ...options.env };
  const d: TestDaemon = {
    dir,
    configFile,
    adminSocket,
    hookSocket,
    selfSocket,
    dataDir: path.join(dir, 'data'),
    get proc() {
      return proc;
    },
    log: () => output.text,
    cli: (args, o = {}) => runCli(args, { ...o, env: { ...env, ...o.env } }),
    async json<T>(args: string[], o: { stdin?: string; expectCode?: number } = {}) {
      const r = await runCli(['--json', ...args], { ...(o.stdin !== undefined ? { stdin: o.stdin } : {}), env });
      if (r.code !== (o.expectCode ?? 0)) throw new Error(`memfa ${args.join(' ')} exited ${r.code} (wanted ${o.expectCode ?? 0}):\n${r.stdout}\n${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return waitExit(proc);
    },
    async restart() {
      ({ proc, output } = spawnDaemon(configFile, options.env));
      await waitReady(proc, output);
    },
    async cleanup() {
      await d.stop('SIGKILL').catch(() => undefined);
      if (!options.dir) await rm(dir, { recursive: true, force: true });
    },
  };
  return d;
}

/** Sends raw bytes to a socket and collects what comes back until the peer closes or `untilLines` arrive. */
export function rawExchange(socketPath: string, chunks: (string | Buffer)[], opts: { untilLines?: number; timeoutMs?: number; gapMs?: number } = {}): Promise<{ lines: Record<string, unknown>[]; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    let closed = false;
    const lines = () =>
      buf
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve({ lines: lines(), closed });
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 3000);
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (opts.untilLines !== undefined && lines().length >= opts.untilLines) done();
    });
    s.on('close', () => {
      closed = true;
      done();
    });
    s.on('connect', async () => {
      for (const c of chunks) {
        s.write(c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    });
  });
}

export function rpcLine(method: string, params: unknown = {}, id: number | string = 1): string {
  return JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n';
}
