// Where the daemon spends its time under one workload: runs a daemon with --cpu-prof, drives it
// with the benchmark's load client, stops it and prints the functions with the most self time.
//
//   node dist/bench/profile.js allow|code|write [--seconds S] [--mailboxes N] [--pg] [--keep]
//
// --pg: the daemon on the benchmark's PostgreSQL (bench/pg.ts) instead of the file store; the
// statements that took most of the server's time are printed too (pg_stat_statements).
//
// A diagnosis tool for the figures of run.js, not part of `npm run bench`.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { cleanupAll, installSignalCleanup, keepTempDirs, tempDir } from './cleanup.js';
import { REPO, startBenchDaemon, writeDaemonConfig } from './daemon.js';
import { runLoad } from './load.js';
import { startBenchPostgres, type BenchPg } from './pg.js';
import { startPgDaemon } from './pg-daemons.js';
import { generatePgStore, spread } from './pg-gen.js';
import { generateStore, type GenMailbox } from './store-gen.js';
import { allowWorkload, oncePass, totpWorkload } from './workloads.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function short(url: string): string {
  if (url === '') return '(native)';
  const rel = url.startsWith('file://') ? path.relative(REPO, new URL(url).pathname) : url;
  return rel.replace(/^node_modules\//, 'nm/');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const kind = argv[0] ?? 'allow';
  const opt = (name: string, def: number) => {
    const i = argv.indexOf(name);
    return i === -1 ? def : Number(argv[i + 1]);
  };
  const seconds = opt('--seconds', 5);
  const mailboxes = opt('--mailboxes', 20_000);
  keepTempDirs(argv.includes('--keep'));
  installSignalCleanup();
  let pg: BenchPg | null = null;
  try {
    const dir = await tempDir('mfp-');
    await writeDaemonConfig(dir);
    const challenge = kind === 'code' ? 'always' : 'new-ip';
    const group = { prefix: 'u', count: mailboxes, settings: { challenge, provider: 'totp' } } as const;
    const profDir = path.join(dir, 'prof');
    const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...(process.env['MEMFA_PROFILE_NODE_ARGS'] ?? '').split(' ').filter(Boolean)];
    let pool: GenMailbox[];
    let d;
    if (argv.includes('--pg')) {
      pg = await startBenchPostgres({ sharedBuffersMb: 512, statements: true });
      const store = await generatePgStore(pg, path.join(dir, 'keys'), [group]);
      pool = spread(store.groups['u']!, mailboxes);
      // The read cache sized for the pool, as pg_scale sizes it for its working set.
      d = await startPgDaemon(pg, { keyFile: store.keyFile, poolSize: 10, nodeArgs, cache: { cacheEntries: Math.ceil(mailboxes * 1.1) + 1000, cacheTtlMs: 60_000 } });
      await pg.topStatements();
    } else {
      const store = await generateStore(path.join(dir, 'data'), [group]);
      pool = store.groups['u']!;
      d = await startBenchDaemon(dir, { nodeArgs });
    }
    // Every mailbox once first: the window then sees the steady state of a warm cache, as pg_scale's does.
    if (pg !== null && kind === 'allow') await runLoad(d.hookSocket, oncePass(pool), { connections: 64, warmupMs: 0, durationMs: 3_600_000 });
    const workload = kind === 'allow' ? allowWorkload(pool, 'known-ip') : totpWorkload(pool, kind === 'write');
    const r = await runLoad(d.hookSocket, workload, { connections: 64, warmupMs: 1000, durationMs: seconds * 1000 });
    process.stdout.write(`${kind}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, errors ${r.errors}${r.exhausted ? ' (pool used up)' : ''}\n`);
    for (const line of (await pg?.topStatements(12)) ?? []) process.stdout.write(`${line}\n`);
    await d.stop();
    const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no profile written');
    const prof = JSON.parse(await readFile(path.join(profDir, file), 'utf8')) as CpuProfile;
    const self = new Map<number, number>();
    prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
    const byFn = new Map<string, number>();
    const byFile = new Map<string, number>();
    let total = 0;
    for (const n of prof.nodes) {
      const t = self.get(n.id) ?? 0;
      total += t;
      const f = short(n.callFrame.url);
      const key = `${n.callFrame.functionName || '(anonymous)'}  ${f}:${n.callFrame.lineNumber + 1}`;
      byFn.set(key, (byFn.get(key) ?? 0) + t);
      const group = f.startsWith('nm/') ? f.split('/').slice(0, 2).join('/') : f;
      byFile.set(group, (byFile.get(group) ?? 0) + t);
    }
    const pct = (t: number) => ((100 * t) / total).toFixed(1).padStart(5) + '%';
    process.stdout.write(`\nself time by function (whole daemon life, ${(total / 1e6).toFixed(1)} s sampled):\n`);
    for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30)) process.stdout.write(`${pct(t)}  ${k}\n`);
    process.stdout.write(`\nself time by file:\n`);
    for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 20)) process.stdout.write(`${pct(t)}  ${k}\n`);
    // Inclusive time: a node's self time plus its subtree's, summed per function (a function that
    // appears under itself is counted once per path, good enough for a first look).
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const inclusive = new Map<number, number>();
    const incl = (id: number): number => {
      const cached = inclusive.get(id);
      if (cached !== undefined) return cached;
      const n = byId.get(id)!;
      const t = (self.get(id) ?? 0) + (n.children ?? []).reduce((a, c) => a + incl(c), 0);
      inclusive.set(id, t);
      return t;
    };
    const inclByFn = new Map<string, number>();
    const onStack = new Map<string, number>();
    const walk = (id: number): void => {
      const n = byId.get(id)!;
      const key = `${n.callFrame.functionName || '(anonymous)'}  ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
      const depth = onStack.get(key) ?? 0;
      if (depth === 0) inclByFn.set(key, (inclByFn.get(key) ?? 0) + incl(id));
      onStack.set(key, depth + 1);
      for (const c of n.children ?? []) walk(c);
      onStack.set(key, depth);
    };
    walk(prof.nodes[0]!.id);
    process.stdout.write(`
inclusive time by function (memfa code and its dependencies):
`);
    for (const [k, t] of [...inclByFn].filter(([k]) => k.includes('dist/src') || k.includes('nm/')).sort((a, b) => b[1] - a[1]).slice(0, 40)) process.stdout.write(`${pct(t)}  ${k}\n`);
    if (argv.includes('--keep')) process.stdout.write(`\nprofile: ${path.join(profDir, file)}\n`);
  } finally {
    await cleanupAll();
  }
}

main().catch(async (err: unknown) => {
  await cleanupAll().catch(() => undefined);
  process.stderr.write(`profile: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
