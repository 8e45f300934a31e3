// The load client: N connections to a Unix socket, each sending one request line and awaiting its
// answer in a loop (a closed loop, like login hooks that each wait for their answer). The same
// client drives the echo baseline and the daemon; given several sockets (several daemons), it
// spreads its connections over them in turn, and the CPU reported is that of all their pids. A warm-up runs first and is not counted; then
// every answer that arrives inside the measured window counts, with its latency.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { cpuMs } from './procs.js';
import { quantile, round, Samples } from './stats.js';

export interface BenchRequest {
  line: string;
  /** null when the answer is what the workload expects, else a short description of the problem. */
  check(result: unknown): string | null;
  /** Called once the answer (or an error answer) arrived. */
  done?(): void;
}

export interface Workload {
  /** The next request for connection `conn`; null when the workload cannot go on (pool used up). */
  next(conn: number): BenchRequest | null;
}

export interface LoadOptions {
  connections: number;
  warmupMs: number;
  durationMs: number;
  /** The server's pid (or the servers'): their CPU time over the measured window is reported. */
  serverPid?: number | readonly number[];
  /** CPU of a database the servers use, ms so far (its processes'); reported like the servers'. */
  databaseCpuMs?: () => number | null;
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** True when the workload ran out of requests before the window ended (the window was cut short). */
  exhausted: boolean;
  /** Server CPU (user + system, all threads) over the window: per answered request, and as % of one core. */
  serverCpuUsPerRequest: number;
  serverCpuPct: number;
  /** The same for the database (NaN without LoadOptions.databaseCpuMs). */
  databaseCpuUsPerRequest: number;
  databaseCpuPct: number;
  /** This load client's CPU over the window, % of one core (near 100: the client is the limit). */
  clientCpuPct: number;
  latencies: Samples;
}

function connect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** CPU ms so far of all `pids`; null when one is gone. */
function cpuOf(pids: readonly number[]): number | null {
  let total = 0;
  for (const pid of pids) {
    const ms = cpuMs(pid);
    if (ms === null) return null;
    total += ms;
  }
  return total;
}

export async function runLoad(socketPath: string | readonly string[], workload: Workload, opts: LoadOptions): Promise<LoadResult> {
  const paths = typeof socketPath === 'string' ? [socketPath] : socketPath;
  const sockets = await Promise.all(Array.from({ length: opts.connections }, (_, i) => connect(paths[i % paths.length]!)));
  const latencies = new Samples();
  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  let measuring = false;
  let stopping = false;
  let exhausted = false;
  let windowStart = 0;
  let windowEnd = 0;
  let failure: Error | null = null;
  const pids = opts.serverPid === undefined ? [] : typeof opts.serverPid === 'number' ? [opts.serverPid] : opts.serverPid;
  const serverCpu = () => (pids.length === 0 ? null : cpuOf(pids));
  const dbCpu = () => opts.databaseCpuMs?.() ?? null;
  let serverCpuStart: number | null = null;
  let serverCpuEnd: number | null = null;
  let dbCpuStart: number | null = null;
  let dbCpuEnd: number | null = null;
  let clientCpuStart = process.cpuUsage();
  let clientCpu = { user: 0, system: 0 };

  const endWindow = () => {
    if (stopping) return;
    stopping = true;
    windowEnd = performance.now();
    serverCpuEnd = serverCpu();
    dbCpuEnd = dbCpu();
    clientCpu = process.cpuUsage(clientCpuStart);
  };

  const finished = sockets.map(
    (socket, conn) =>
      new Promise<void>((resolve) => {
        let buffered = '';
        let current: BenchRequest | null = null;
        let t0 = 0;
        const send = () => {
          if (stopping || failure !== null) {
            current = null;
            socket.end();
            return resolve();
          }
          current = workload.next(conn);
          if (current === null) {
            exhausted = true;
            endWindow();
            socket.end();
            return resolve();
          }
          t0 = performance.now();
          socket.write(current.line + '\n');
        };
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) !== -1) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            const t1 = performance.now();
            const req = current;
            if (req === null) continue;
            let problem: string | null;
            try {
              const msg = JSON.parse(line) as { result?: unknown; error?: { code?: unknown; message?: unknown } };
              problem = msg.error ? `error ${String(msg.error.code)}: ${String(msg.error.message)}` : req.check(msg.result);
            } catch {
              problem = `unparsable answer ${line.slice(0, 80)}`;
            }
            req.done?.();
            if (measuring && !stopping) {
              requests++;
              latencies.push(t1 - t0);
              if (problem !== null) {
                errors++;
                firstError ??= problem;
              }
            }
            send();
          }
        });
        socket.on('error', (err) => {
          failure ??= new Error(`load client connection ${conn}: ${err.message}`);
          resolve();
        });
        socket.on('close', () => {
          if (!stopping && failure === null) failure = new Error(`load client connection ${conn}: closed by the server`);
          resolve();
        });
        send();
      }),
  );

  const warm = setTimeout(() => {
    measuring = true;
    windowStart = performance.now();
    serverCpuStart = serverCpu();
    dbCpuStart = dbCpu();
    clientCpuStart = process.cpuUsage();
  }, opts.warmupMs);
  const stop = setTimeout(() => endWindow(), opts.warmupMs + opts.durationMs);
  await Promise.all(finished);
  clearTimeout(warm);
  clearTimeout(stop);
  for (const s of sockets) s.destroy();
  if (failure !== null) throw failure;
  if (!measuring) throw new Error('the workload ran out of requests during the warm-up; give it more mailboxes');
  const seconds = (windowEnd - windowStart) / 1000;
  const v = latencies.view();
  const serverMs = serverCpuStart !== null && serverCpuEnd !== null ? serverCpuEnd - serverCpuStart : Number.NaN;
  const dbMs = dbCpuStart !== null && dbCpuEnd !== null ? dbCpuEnd - dbCpuStart : Number.NaN;
  return {
    requests,
    errors,
    firstError,
    seconds,
    rps: requests / seconds,
    p50Ms: quantile(v, 0.5),
    p99Ms: quantile(v, 0.99),
    maxMs: quantile(v, 1),
    exhausted,
    serverCpuUsPerRequest: (serverMs * 1000) / requests,
    serverCpuPct: serverMs / (seconds * 10),
    databaseCpuUsPerRequest: (dbMs * 1000) / requests,
    databaseCpuPct: dbMs / (seconds * 10),
    clientCpuPct: (clientCpu.user + clientCpu.system) / 1000 / (seconds * 10),
    latencies,
  };
}

/** Several runs of one kind (interleaved with other kinds) combined: total requests over total time. */
export function combine(runs: LoadResult[]): LoadResult {
  const latencies = new Samples();
  for (const r of runs) latencies.pushAll(r.latencies);
  const requests = runs.reduce((a, r) => a + r.requests, 0);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const serverMs = runs.reduce((a, r) => a + (r.serverCpuUsPerRequest * r.requests) / 1000, 0);
  const dbMs = runs.reduce((a, r) => a + (r.databaseCpuUsPerRequest * r.requests) / 1000, 0);
  const clientMs = runs.reduce((a, r) => a + r.clientCpuPct * r.seconds * 10, 0);
  const v = latencies.view();
  return {
    requests,
    errors: runs.reduce((a, r) => a + r.errors, 0),
    firstError: runs.find((r) => r.firstError !== null)?.firstError ?? null,
    seconds,
    rps: requests / seconds,
    p50Ms: quantile(v, 0.5),
    p99Ms: quantile(v, 0.99),
    maxMs: quantile(v, 1),
    exhausted: runs.some((r) => r.exhausted),
    serverCpuUsPerRequest: (serverMs * 1000) / requests,
    serverCpuPct: serverMs / (seconds * 10),
    databaseCpuUsPerRequest: (dbMs * 1000) / requests,
    databaseCpuPct: dbMs / (seconds * 10),
    clientCpuPct: clientMs / (seconds * 10),
    latencies,
  };
}

/**
 * The JSON fields of a load phase, named PREFIX_rps, PREFIX_p99_ms, ...; the servers' CPU as
 * PREFIX_`server`_cpu_us and _pct, the database's (with `database`) as PREFIX_db_cpu_us and _pct.
 */
export function loadFields(prefix: string, r: LoadResult, out: Record<string, number>, names: { server: string; database: boolean } = { server: 'server', database: false }): void {
  out[`${prefix}_rps`] = round(r.rps, 1);
  out[`${prefix}_p50_ms`] = round(r.p50Ms);
  out[`${prefix}_p99_ms`] = round(r.p99Ms);
  out[`${prefix}_max_ms`] = round(r.maxMs);
  out[`${prefix}_requests`] = r.requests;
  out[`${prefix}_errors`] = r.errors;
  out[`${prefix}_seconds`] = round(r.seconds);
  out[`${prefix}_pool_used_up`] = r.exhausted ? 1 : 0;
  out[`${prefix}_${names.server}_cpu_us`] = round(r.serverCpuUsPerRequest, 1);
  out[`${prefix}_${names.server}_cpu_pct`] = round(r.serverCpuPct, 1);
  if (names.database) {
    out[`${prefix}_db_cpu_us`] = round(r.databaseCpuUsPerRequest, 1);
    out[`${prefix}_db_cpu_pct`] = round(r.databaseCpuPct, 1);
  }
  out[`${prefix}_client_cpu_pct`] = round(r.clientCpuPct, 1);
}
