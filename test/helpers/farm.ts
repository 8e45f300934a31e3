// Test harness: a mail farm's worth of real daemons on one throwaway PostgreSQL (issue 16). Each
// node is `bin/memfa daemon` with its own configuration file, run and data directories and
// sockets; all share the database and one key file, as the nodes behind a load balancer would.
// Requests are spread across the nodes in turn, through the real CLI or straight to a socket.
import { chmod, copyFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { call } from '../../src/client/call.js';
import type { MethodName, ParamsOf, ResultOf } from '../../src/protocol/methods.js';
import { Keyring } from '../../src/security/keyring.js';
import { makeTempDir, startDaemon, type CliResult, type TestDaemon } from './daemon.js';
import { pgStoreConfig } from './pg-daemon.js';
import { serverLog, startPostgres, type PgCluster } from './postgres.js';

export interface FarmOptions {
  /** How many daemons (3 unless told). */
  nodes?: number;
  /** Configuration every node shares, merged over the store's (a key here wins). */
  config?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** The key file the nodes share; a fresh one when not given (a store moved here brings its own). */
  keyFile?: string;
  /** Run once the database exists, before any node starts (an import into it, say). */
  prepare?(at: { cluster: PgCluster; database: string; store: Record<string, unknown>; dir: string }): Promise<void>;
}

export interface Farm {
  cluster: PgCluster;
  database: string;
  /** The key file every node seals with. */
  keyFile: string;
  nodes: TestDaemon[];
  /** Node i modulo the farm's size: a request's place in a spread decides its node. */
  node(i: number): TestDaemon;
  /** `memfa ARGS` against the next node in turn. */
  cli(args: string[], options?: { stdin?: string }): Promise<CliResult & { node: number }>;
  /** One request to node i's socket of `kind` (the hook socket for verify, the admin socket for the rest). */
  call<M extends MethodName>(i: number, kind: 'hook' | 'admin', method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
  /** Every node's log and the server's, for a failing assertion's message. */
  logs(): Promise<string>;
  /** Stops every node and the cluster, and removes every directory. */
  stop(): Promise<void>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`, objects key by key, anything else replaced. */
export function mergeConfig(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? mergeConfig(out[k] as Obj, v) : v;
  return out;
}

const READY_MS = 30_000;

async function untilReady(n: TestDaemon, i: number): Promise<void> {
  const deadline = Date.now() + READY_MS;
  while (!n.log().includes('"event":"ready"')) {
    if (n.proc.exitCode !== null || n.proc.signalCode !== null) throw new Error(`node ${i} exited with ${n.proc.exitCode ?? n.proc.signalCode} before it was ready:\n${n.log()}`);
    if (Date.now() > deadline) throw new Error(`node ${i} not ready in ${READY_MS} ms:\n${n.log()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function startFarm(options: FarmOptions = {}): Promise<Farm> {
  const count = options.nodes ?? 3;
  const nodes: TestDaemon[] = [];
  const dirs: string[] = [];
  let cluster: PgCluster | null = null;
  const stop = async () => {
    // SIGTERM first: a node that stops cleanly gives its connections back before the server goes.
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    await Promise.all(nodes.map((n) => n.cleanup()));
    await cluster?.stop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    cluster = await startPostgres();
    const database = await cluster.createDatabase();
    const shared = await makeTempDir('mf-farm-');
    dirs.push(shared);
    // Made before any node starts: every node must seal with the same keys, and none may make its own.
    const keyFile = path.join(shared, 'memfa.key');
    if (options.keyFile === undefined) await Keyring.load(keyFile, { create: true });
    else {
      await copyFile(options.keyFile, keyFile);
      await chmod(keyFile, 0o600);
    }
    // Generous waits: the machine running the tests may be loaded; the cases are about what is decided.
    const { store } = pgStoreConfig(cluster, database, { poolSize: 5, connectTimeoutMs: 10_000, statementTimeoutMs: 10_000, lockTimeoutMs: 10_000 }) as { store: Record<string, unknown> };
    await options.prepare?.({ cluster, database, store, dir: shared });
    const config = mergeConfig({ keyFile, store }, options.config ?? {});
    const nodeDirs: string[] = [];
    for (let i = 0; i < count; i++) nodeDirs.push(await makeTempDir(`mf-n${i}-`));
    dirs.push(...nodeDirs);
    // All at once: the nodes of a farm start together, and the migrations make them wait in turn.
    // Held from the spawn on, so that a node that never gets ready is stopped with the others.
    for (const dir of nodeDirs) nodes.push(await startDaemon({ dir, config, expectFailure: true, ...(options.env ? { env: options.env } : {}) }));
    await Promise.all(nodes.map((n, i) => untilReady(n, i)));
    let turn = 0;
    const farm: Farm = {
      cluster,
      database,
      keyFile,
      nodes,
      node: (i) => nodes[((i % count) + count) % count]!,
      async cli(args, o = {}) {
        const i = turn++ % count;
        const r = await nodes[i]!.cli(args, o.stdin === undefined ? {} : { stdin: o.stdin });
        return { ...r, node: i };
      },
      call(i, kind, method, params) {
        const n = farm.node(i);
        return call(kind === 'hook' ? n.hookSocket : n.adminSocket, method, params, { timeoutMs: 30_000 });
      },
      async logs() {
        const parts = nodes.map((n, i) => `--- node ${i} log ---\n${n.log()}`);
        return [...parts, `--- server log ---\n${cluster === null ? '' : await serverLog(cluster)}`].join('\n');
      },
      stop,
    };
    return farm;
  } catch (err) {
    const server = cluster === null ? '' : await serverLog(cluster);
    await stop();
    throw new Error(`the farm did not start: ${(err as Error).message}\n--- server log ---\n${server}`, { cause: err });
  }
}

/**
 * Milliseconds from now until each of `nodes` answers verify for `user` (from `ip`) with `want`,
 * polled every 10 ms: how long a change made elsewhere takes to be applied there.
 */
export async function timesToApply(farm: Farm, nodes: number[], user: string, ip: string, want: string, giveUpMs = 5000): Promise<number[]> {
  const since = performance.now();
  return Promise.all(
    nodes.map(async (i) => {
      for (;;) {
        const a = await farm.call(i, 'hook', 'verify', { user, ip });
        const ms = performance.now() - since;
        if (a.result === want) return ms;
        if (ms > giveUpMs) throw new Error(`node ${i} still answers ${a.result}/${a.reason} ${Math.round(ms)} ms after the change`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }),
  );
}
