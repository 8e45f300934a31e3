// Test harness: a throwaway PostgreSQL cluster in a temporary directory, reached only through a
// Unix socket in that directory (no TCP port), with a fresh database for each test. Run as root,
// the server runs as the `postgres` user (PostgreSQL refuses to run as root); run as anyone else,
// as that user. Nothing is mocked: the tests talk to the real server through node-postgres.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { PostgresSettings } from '../../src/store/postgres/pool.js';

const run = promisify(execFile);

/** The superuser initdb creates; the clients connect as it, trusted over the socket. */
export const PG_USER = 'memfa';
const DEFAULT_PORT = 5432;

/** The directory holding initdb and pg_ctl (Debian keeps them off PATH), newest version first; null when none. */
export function findPostgresBin(): string | null {
  const candidates: string[] = [];
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    try {
      const versions = readdirSync(debian).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
      for (const v of versions) candidates.push(path.join(debian, v, 'bin'));
    } catch {
      // an unreadable directory is as good as none
    }
  }
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir) candidates.push(dir);
  return candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) ?? null;
}

/** Why the PostgreSQL tests cannot run here, or null when they can. */
export function postgresMissing(): string | null {
  if (findPostgresBin() === null) return 'PostgreSQL is not installed (no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH); .ci/run installs it';
  return null;
}

export interface PgCluster {
  /** With startPostgres({ tls: true }): the server also listens on 127.0.0.1:port with TLS, its
   * certificate (for DNS name localhost only) signed by the throwaway CA in caFile. */
  tls: { caFile: string } | null;
  /** The directory of the server's Unix socket: node-postgres's `host`. */
  socketDir: string;
  port: number;
  /** A fresh, empty database; its name. */
  createDatabase(): Promise<string>;
  /** A client configuration for database `name`. */
  clientConfig(name: string): pg.ClientConfig;
  /** Stops the server and the cluster, if still running, and removes its directory. */
  stop(): Promise<void>;
  /** Stops the server (fast), keeping the cluster for start(). */
  pause(): Promise<void>;
  start(): Promise<void>;
}

async function asServerUser(bin: string, args: string[], dir: string): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  // cwd: the server's user must be able to stat it (runuser keeps root's cwd otherwise).
  await run(cmd, argv, { cwd: dir, timeout: 60_000 });
}

/** A free TCP port on the loopback address (bound, then released for the server). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A throwaway CA, and a server certificate it signed for DNS name localhost (no IP address). */
async function makeCertificates(dir: string): Promise<{ caFile: string; certFile: string; keyFile: string }> {
  const f = (name: string) => path.join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=memfa test CA']);
  await run('openssl', ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  await writeFile(f('server.ext'), 'subjectAltName=DNS:localhost\n');
  await run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('server.ext')]);
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}

export interface StartOptions {
  tls?: boolean;
  /** fsync, synchronous commits and full page writes on, as in production (the benchmark's cluster). */
  durable?: boolean;
  /** More server settings (-c NAME=VALUE; no spaces in values). */
  settings?: Record<string, string | number>;
  /** Where the cluster's directory goes (default os.tmpdir()); the server's user must pass through it. */
  base?: string;
}

/** Starts a throwaway cluster (about a second). */
export async function startPostgres(opts: StartOptions = {}): Promise<PgCluster> {
  const bin = findPostgresBin();
  if (bin === null) throw new Error(postgresMissing()!);
  // Short: the socket path (DIR/.s.PGSQL.5432) must fit in about 100 bytes.
  const dir = await mkdtemp(path.join(opts.base ?? os.tmpdir(), 'mfpg-'));
  const data = path.join(dir, 'data');
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const PORT = opts.tls === true ? await freePort() : DEFAULT_PORT;
  let tls: { caFile: string; certFile: string; keyFile: string } | null = null;
  if (opts.tls === true) {
    tls = await makeCertificates(dir);
    // The server refuses a key file others can read, or one it does not own.
    await chmod(tls.keyFile, 0o600);
    if (process.getuid?.() === 0) {
      const { stdout } = await run('id', ['-u', 'postgres']);
      await chown(tls.keyFile, Number(stdout.trim()), 0);
    }
  }
  let running = false;
  const ctl = (args: string[]) => asServerUser(path.join(bin, 'pg_ctl'), args, dir);
  const start = async () => {
    // fsync off: a test cluster trades durability for speed; nothing in it outlives the test.
    const listen = tls === null ? "-c listen_addresses=''" : `-c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=${tls.certFile} -c ssl_key_file=${tls.keyFile}`;
    const durability = opts.durable === true ? '' : '-c fsync=off -c synchronous_commit=off -c full_page_writes=off';
    const extra = Object.entries(opts.settings ?? {}).map(([k, v]) => `-c ${k}=${String(v)}`);
    const options = [`-k ${dir} ${listen} -p ${PORT}`, durability, '-c max_connections=200', ...extra].filter((o) => o !== '').join(' ');
    await ctl(['-D', data, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    running = true;
  };
  const pause = async () => {
    if (!running) return;
    await ctl(['-D', data, '-m', 'fast', '-w', 'stop']);
    running = false;
  };
  try {
    await asServerUser(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', PG_USER, '--no-sync', '-E', 'UTF8', '--locale=C'], dir);
    await start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let counter = 0;
  const clientConfig = (database: string): pg.ClientConfig => ({ host: dir, port: PORT, user: PG_USER, database });
  return {
    socketDir: dir,
    tls: tls === null ? null : { caFile: tls.caFile },
    port: PORT,
    clientConfig,
    async createDatabase() {
      const name = `t${process.pid}_${++counter}`;
      const admin = new pg.Client(clientConfig('postgres'));
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return name;
    },
    pause,
    start,
    async stop() {
      try {
        await pause();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Runs one statement through a short-lived client: for test set-up only. */
export async function sql(config: pg.ClientConfig, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** The server's log, for a failing test's message. */
export async function serverLog(cluster: PgCluster): Promise<string> {
  return readFile(path.join(cluster.socketDir, 'server.log'), 'utf8').catch(() => '');
}

/** The store's settings (store/postgres/pool.ts) for database `name` of `cluster`. */
export function pgSettings(cluster: PgCluster, name: string, overrides: Partial<PostgresSettings> = {}): PostgresSettings {
  return {
    host: cluster.socketDir,
    port: cluster.port,
    database: name,
    user: PG_USER,
    password: null,
    ssl: { mode: 'disable', ca: null },
    poolMax: 10,
    statementTimeoutMs: 10_000,
    lockTimeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    ...overrides,
  };
}

/**
 * One object with the methods of all `targets`, each call going to the next target in turn: the
 * ports of several daemons (each its own pool) seen as one, so that a concurrent test spreads its
 * calls across them.
 */
export function roundRobin<T extends object>(targets: T[]): T {
  let next = 0;
  return new Proxy(targets[0]!, {
    get(_target, name) {
      const t = targets[next++ % targets.length]!;
      const v = Reflect.get(t, name, t) as unknown;
      return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
    },
  });
}
