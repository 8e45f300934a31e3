// One JSON-RPC endpoint on a Unix socket (a named pipe on Windows): limits, idle time-out,
// stale-socket handling and graceful close. What one connection does with its bytes is
// connection.ts; what a method does is the dispatcher's business.
import { readFileSync } from 'node:fs';
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { MemfaError } from '../protocol/errors.js';
import type { SocketKind } from '../protocol/methods.js';
import type { SocketConfig } from '../config/types.js';
import { Connection, type ConnectionHost, type Handler, type ListenerState } from './connection.js';
import type { Logger } from './logger.js';

export interface ListenerLimits {
  maxFrameBytes: number;
  idleTimeoutMs: number;
  maxConnections: number;
}

const QUIET_PERIOD_MS = 100;
/** Idle sweeps per idle time-out: a connection goes after 1 to 1.25 times limits.idleTimeoutMs. */
const SWEEPS_PER_IDLE_TIMEOUT = 4;
/**
 * Each connection's read and write buffers in Node (the kernel's come on top). A write that finds
 * this much unsent makes the connection stop taking requests (connection.ts). Set here rather than
 * left to Node's default, which differs between versions.
 */
const SOCKET_BUFFER_BYTES = 16 * 1024;

function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const gid = line?.split(':')[2];
  if (gid === undefined) throw new MemfaError('CONFIG_INVALID', `sockets: group "${name}" does not exist`, { data: { key: 'sockets.*.group' } });
  return Number(gid);
}

/** Resolves when something answers on `path`: a live daemon. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class Listener {
  private server: net.Server | null = null;
  private readonly connections = new Map<net.Socket, Connection>();
  /**
   * Idle connections are found by a periodic sweep that counts ticks, not by a timer per
   * connection: Node re-arms a socket's timer on every read and write, a measurable share of a
   * fast-path login's cost, and reading a tick count costs nothing.
   */
  private readonly state: ListenerState = { ticks: 0, accepting: true };
  private readonly host: ConnectionHost;
  private sweeper: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly kind: SocketKind,
    private readonly cfg: SocketConfig,
    private readonly limits: ListenerLimits,
    handle: Handler,
    private readonly log: Logger,
  ) {
    this.host = {
      kind,
      maxFrameBytes: limits.maxFrameBytes,
      state: this.state,
      handle,
      log,
      requestStarted: () => this.inFlight++,
      requestFinished: () => {
        this.inFlight--;
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      },
    };
  }

  get path(): string {
    return this.cfg.path;
  }

  async listen(): Promise<void> {
    if (process.platform !== 'win32') {
      if (await probe(this.cfg.path)) {
        throw new MemfaError('CONFLICT', `another memfa daemon is already listening on ${this.cfg.path}`, {
          hint: 'stop it first (systemctl stop memfa), or give this one other sockets with --run-dir',
        });
      }
      // Nothing answers: a socket file left by a crash. Removing it is safe; removing anything else
      // (a mistyped path pointing at a regular file, the store say) is not.
      const existing = await lstat(this.cfg.path).catch(() => null);
      if (existing !== null && !existing.isSocket()) {
        throw new MemfaError('CONFIG_INVALID', `${this.cfg.path} exists and is not a socket; refusing to replace it`, {
          data: { socket: this.cfg.path, key: `sockets.${this.kind}.path` },
          hint: `check sockets.${this.kind}.path, or move the file away`,
        });
      }
      await unlink(this.cfg.path).then(
        () => this.log.warn('stale-socket-removed', { socket: this.cfg.path }),
        (err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        },
      );
    }
    const server = net.createServer({ allowHalfOpen: false, highWaterMark: SOCKET_BUFFER_BYTES }, (socket) => this.accept(socket));
    server.maxConnections = this.limits.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'EADDRINUSE'
            ? new MemfaError('CONFLICT', `another memfa daemon is already listening on ${this.cfg.path}`)
            : new MemfaError('CONFIG_INVALID', `cannot listen on ${this.cfg.path}: ${err.message}`, { data: { socket: this.cfg.path } }),
        );
      });
      // Created with no access for others; the configured mode is applied before anyone can connect.
      const oldMask = process.umask(0o177);
      try {
        server.listen(this.cfg.path, () => resolve());
      } finally {
        process.umask(oldMask);
      }
    });
    if (process.platform !== 'win32') {
      if (this.cfg.group !== null) await chown(this.cfg.path, process.getuid!(), groupId(this.cfg.group));
      await chmod(this.cfg.path, this.cfg.mode);
    }
    server.on('error', (err) => this.log.error('listener-error', { socket: this.kind, error: err.message }));
    this.server = server;
    this.sweeper = setInterval(() => this.sweepIdle(), Math.max(10, Math.floor(this.limits.idleTimeoutMs / SWEEPS_PER_IDLE_TIMEOUT)));
    this.sweeper.unref();
  }

  /** Closes connections idle for more than SWEEPS_PER_IDLE_TIMEOUT whole sweep intervals. */
  private sweepIdle(): void {
    const now = ++this.state.ticks;
    for (const [socket, conn] of this.connections) {
      // Idle, a half-received message that never completed, or a peer that does not read its
      // answers (nothing is read from it meanwhile): drop it.
      if (conn.pending === 0 && now - conn.lastActive > SWEEPS_PER_IDLE_TIMEOUT) socket.destroy();
    }
  }

  private accept(socket: net.Socket): void {
    // While stopping, a new connection is still served, with SHUTTING_DOWN answers: the client
    // connected before the stop and deserves a reply it can act on (retry), not a reset.
    const conn = new Connection(socket, this.host);
    this.connections.set(socket, conn);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  /**
   * First half of a graceful stop: no new connections; requests that still arrive on open ones are
   * answered SHUTTING_DOWN (a temporary failure the client may retry) instead of being dropped.
   */
  pause(): void {
    this.state.accepting = false;
  }

  /**
   * Second half: waits for in-flight requests, keeps answering stragglers SHUTTING_DOWN for a
   * moment (connections still queued in the kernel would otherwise be reset), then closes.
   */
  async drain(graceMs: number): Promise<void> {
    const server = this.server;
    if (server === null) return;
    if (this.inFlight > 0) {
      await Promise.race([new Promise<void>((r) => this.idleWaiters.push(r)), new Promise<void>((r) => setTimeout(r, graceMs).unref())]);
    }
    await new Promise((r) => setTimeout(r, QUIET_PERIOD_MS));
    if (this.sweeper !== null) clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.connections.keys()) s.end();
    setTimeout(() => {
      for (const s of this.connections.keys()) s.destroy();
    }, 200).unref();
    await closed;
    // Only a socket this listener created: a failed start must not remove another daemon's.
    if (this.server !== null && process.platform !== 'win32') await unlink(this.cfg.path).catch(() => undefined);
  }
}
