// Everything the benchmark starts (daemons, baseline servers, temporary directories) is registered
// here and torn down at the end, after a failure, or on SIGINT/SIGTERM of the benchmark itself.
import type { ChildProcess } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
/** What the benchmark started that is not a child of it (a PostgreSQL server, daemonised by pg_ctl). */
export interface CleanupHook {
  stop(): Promise<void>;
  /** The same, synchronously, for signals and process exit. */
  stopSync(): void;
}
const hooks = new Set<CleanupHook>();

/** Registers `hook` until the returned function is called (when its owner stopped it itself). */
export function onCleanup(hook: CleanupHook): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

/** A directory made elsewhere (e.g. by a helper) that the cleanup removes like its own. */
export function adoptDir(dir: string): void {
  dirs.add(dir);
}
let keepDirs = false;

export function keepTempDirs(keep: boolean): void {
  keepDirs = keep;
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * A fresh directory under the system temp dir (or under `base`); short, because Unix socket paths
 * must fit ~100 bytes.
 */
export async function tempDir(prefix: string, base = os.tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(base, prefix));
  dirs.add(dir);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  if (keepDirs) return;
  await rm(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Kills every child still running (each by its own pid) and removes every temporary directory. */
export async function cleanupAll(): Promise<void> {
  const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  killChildren();
  await Promise.all(running.map((c) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())))));
  await Promise.all([...hooks].map((h) => h.stop().catch(() => undefined)));
  hooks.clear();
  if (!keepDirs) await Promise.all([...dirs].map((d) => rm(d, { recursive: true, force: true }).catch(() => undefined)));
  dirs.clear();
}

/** Last-resort synchronous cleanup for signals and process exit. */
function cleanupSync(): void {
  killChildren();
  for (const h of hooks) {
    try {
      h.stopSync();
    } catch {
      // the directory goes below all the same
    }
  }
  hooks.clear();
  if (!keepDirs) for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export function installSignalCleanup(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, cleaning up\n`);
      cleanupSync();
      process.exit(130);
    });
  }
  process.once('exit', cleanupSync);
}

/**
 * A temp dir base that servers running as other users (Dovecot's unprivileged processes,
 * PostgreSQL as the postgres user) can pass through: $TMPDIR unless it or a directory above it is
 * private (mode 0700, as the smoke test's), then /tmp, or /var/tmp.
 */
export function traversableBase(): string {
  const open = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      try {
        if ((statSync(d).mode & 0o001) === 0) return false;
      } catch {
        return false;
      }
      if (d === path.dirname(d)) return true;
    }
  };
  return [os.tmpdir(), '/tmp', '/var/tmp'].find(open) ?? os.tmpdir();
}
