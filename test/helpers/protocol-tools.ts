// Small tools for the protocol, daemon, store and config tests: a line-oriented raw client, a
// daemon run that is expected to fail, and polling. Built on test/helpers/daemon.ts.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import assert from 'node:assert/strict';
import { BIN, type CliResult, type TestDaemon } from './daemon.js';

export type Json = Record<string, any>;

/** A raw connection that splits what arrives into JSON lines (or raw text when a line is not JSON). */
export class LineClient {
  readonly socket: net.Socket;
  readonly lines: Json[] = [];
  closed = false;
  private buf = '';
  private waiters: (() => void)[] = [];
  readonly connected: Promise<void>;
  readonly closedPromise: Promise<void>;

  /** allowHalfOpen: keep writing after the daemon ends its side (as a hostile client would). */
  constructor(socketPath: string, options: { allowHalfOpen?: boolean } = {}) {
    this.socket = net.connect({ path: socketPath, allowHalfOpen: options.allowHalfOpen ?? false });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('error', () => undefined);
    this.socket.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) !== -1) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        if (line.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(line) as Json);
        } catch {
          this.lines.push({ unparsable: line });
        }
      }
      this.wake();
    });
    this.closedPromise = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Resolves once `n` lines have arrived (or rejects after timeoutMs / when the peer closes first). */
  async waitLines(n: number, timeoutMs = 3000): Promise<Json[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.lines.length} of ${n} lines: ${JSON.stringify(this.lines)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${this.lines.length} of ${n} lines: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.lines.slice(0, n);
  }

  /** Resolves true if the peer closes within timeoutMs. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    if (this.closed) return true;
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)))]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** One request, one answer, on a fresh connection. */
export async function rpc(socketPath: string, method: string, params: unknown = {}, id: number | string = 1, timeoutMs = 3000): Promise<Json> {
  const c = new LineClient(socketPath);
  try {
    await c.connected;
    await c.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    const [line] = await c.waitLines(1, timeoutMs);
    return line!;
  } finally {
    c.destroy();
  }
}

/** Asserts that `memfa status` answers (exit 0) through the real CLI. */
export async function assertStatusOk(d: TestDaemon, message = 'daemon still answers memfa status'): Promise<void> {
  const r = await d.cli(['status']);
  assert.equal(r.code, 0, `${message}: exit ${r.code}\n${r.stdout}\n${r.stderr}\n--- daemon log ---\n${d.log()}`);
  assert.match(r.stdout, /version\s+\d+\.\d+\.\d+/);
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value, null, 2));
}

/**
 * Runs `memfa --config FILE daemon` when the test expects it to refuse to start: resolves with its
 * exit code and output, or kills it and rejects if it is still running after timeoutMs.
 */
export function runDaemonExpectingExit(configFile: string, options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, '--config', configFile, 'daemon'], {
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon did not exit within ${options.timeoutMs ?? 8000} ms (expected a refusal):\n${stderr}`));
    }, options.timeoutMs ?? 8000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The structured log lines a daemon printed, parsed. */
export function logEvents(text: string): Json[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Json;
      } catch {
        return {};
      }
    });
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function rel(dir: string, ...parts: string[]): string {
  return path.join(dir, ...parts);
}
