// One JSON-RPC endpoint on a Unix socket (a named pipe on Windows): the connection limit and the
// wait for a slot, time-outs, stale-socket handling and graceful close. What one connection does
// with its bytes is connection.ts; what a method does is the dispatcher's business.
import { chmod, chown, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { encodeFrame } from '../protocol/framing.js';
import { errorObject } from '../protocol/jsonrpc.js';
import { MemfaError } from '../protocol/errors.js';
import type { SocketKind } from '../protocol/methods.js';
import type { SocketConfig } from '../config/types.js';
import { Connection, type ConnectionHost, type Handler, type ListenerState } from './connection.js';
import type { Logger } from './logger.js';
import { groupId } from './preflight.js';

export interface ListenerLimits {
  maxFrameBytes: number;
  idleTimeoutMs: number;
  frameTimeoutMs: number;
  maxConnections: number;
  maxWaitingConnections: number;
  waitTimeoutMs: number;
  listenBacklog: number;
}

export interface ListenerStats {
  socket: SocketKind;
  open: number;
  waiting: number;
  accepted: number;
  frameTimeouts: number;
  evicted: number;
  turnedAway: number;
}

const QUIET_PERIOD_MS = 100;
/**
 * Each connection's read and write buffers in Node (the kernel's come on top). A write that finds
 * this much unsent makes the connection stop taking requests (connection.ts). Set here rather than
 * left to Node's default, which differs between versions.
 */
const SOCKET_BUFFER_BYTES = 16 * 1024;
/** Sweeps per shortest time-out: each deadline is enforced between its time and one sweep more. */
const SWEEPS_PER_TIMEOUT = 4;
const MIN_SWEEP_MS = 10;
/**
 * At the connection limit, a connection may be closed to make room once it has done nothing for
 * this many ticks (more than one whole sweep interval): never one just admitted whose request has
 * not been read yet.
 */
const EVICTABLE_AFTER_TICKS = 2;

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

/** How long a connection turned away may stay open for its client to read the answer. */
const TURN_AWAY_LINGER_MS = 1000;

export class Listener {
  private server: net.Server | null = null;
  private readonly connections = new Map<net.Socket, Connection>();
  /** Connections beyond limits.maxConnections, not read yet, oldest first, with the tick they came. */
  private readonly waiting = new Map<net.Socket, number>();
  /**
   * Time-outs are found by a periodic sweep that counts ticks, not by a timer per connection: Node
   * re-arms a socket's timer on every read and write, a measurable share of a fast-path login's
   * cost, and reading a tick count costs nothing.
   */
  private readonly state: ListenerState = { ticks: 0, accepting: true };
  private readonly host: ConnectionHost;
  private readonly sweepMs: number;
  private readonly idleTicks: number;
  private readonly frameTicks: number;
  private readonly waitTicks: number;
  private sweeper: NodeJS.Timeout | null = null;
  /** The tick at which a search for a connection to close found none: none can qualify before the next. */
  private nothingEvictableAt = -1;
  /** Connections shed since the last sweep, logged once per sweep (an attack must not flood the log). */
  private shed = { frameTimeouts: 0, evicted: 0, turnedAway: 0 };
  /** Since the start, for the metrics: connections accepted, and those shed up to the last sweep. */
  private readonly totals = { accepted: 0, frameTimeouts: 0, evicted: 0, turnedAway: 0 };
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
    this.sweepMs = Math.max(MIN_SWEEP_MS, Math.floor(Math.min(limits.idleTimeoutMs, limits.frameTimeoutMs, limits.waitTimeoutMs) / SWEEPS_PER_TIMEOUT));
    this.idleTicks = Math.ceil(limits.idleTimeoutMs / this.sweepMs);
    this.frameTicks = Math.ceil(limits.frameTimeoutMs / this.sweepMs);
    this.waitTicks = Math.ceil(limits.waitTimeoutMs / this.sweepMs);
  }

  get path(): string {
    return this.cfg.path;
  }

  /** Connections open and waiting now, and the totals since the start (see `totals`). */
  stats(): ListenerStats {
    return { socket: this.kind, open: this.connections.size, waiting: this.waiting.size, ...this.totals };
  }

  async listen(): Promise<void> {
    // The group is looked up before anything is created: a name that does not exist is refused
    // with nothing to undo.
    const gid = this.cfg.group === null || process.platform === 'win32' ? null : groupId(this.cfg.group, `sockets.${this.kind}.group`);
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
    // Accepted paused: a connection beyond the limit must not be read until it has a slot. Node's
    // own server.maxConnections would close it at once instead, and the client sees a reset.
    const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: true, highWaterMark: SOCKET_BUFFER_BYTES }, (socket) => this.accept(socket));
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
        // A burst of clients queues in the kernel (up to net.core.somaxconn) instead of failing.
        server.listen({ path: this.cfg.path, backlog: this.limits.listenBacklog }, () => resolve());
      } finally {
        process.umask(oldMask);
      }
    });
    if (process.platform !== 'win32') {
      try {
        if (gid !== null) await chown(this.cfg.path, process.getuid!(), gid);
        await chmod(this.cfg.path, this.cfg.mode);
      } catch (err) {
        // E.g. EPERM: the daemon is not a member of the group. A listening server would keep the
        // process alive after the failed start, and its socket would answer "stopping".
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await unlink(this.cfg.path).catch(() => undefined);
        throw new MemfaError('CONFIG_INVALID', `cannot give ${this.cfg.path} group ${this.cfg.group ?? '-'} and mode ${this.cfg.mode.toString(8)}: ${(err as Error).message}`, {
          data: { socket: this.cfg.path, key: `sockets.${this.kind}.group` },
          hint: 'the daemon must be a member of the group it gives a socket to (SupplementaryGroups in the unit file)',
        });
      }
    }
    server.on('error', (err) => this.log.error('listener-error', { socket: this.kind, error: err.message }));
    this.server = server;
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
    this.sweeper.unref();
  }

  private accept(socket: net.Socket): void {
    this.totals.accepted++;
    socket.on('error', () => socket.destroy());
    if (this.waiting.size === 0 && this.connections.size < this.limits.maxConnections) return this.admit(socket);
    // While stopping, nobody waits: SHUTTING_DOWN at once is the answer a client can act on.
    if (!this.state.accepting) return this.turnAway(socket, new MemfaError('SHUTTING_DOWN', 'the daemon is stopping; retry shortly'));
    this.waiting.set(socket, this.state.ticks);
    socket.once('close', () => this.waiting.delete(socket));
    this.admitWaiting();
    // Still waiting and the queue is over its bound: the newest (this one) is turned away.
    if (this.waiting.size > this.limits.maxWaitingConnections) {
      this.shed.turnedAway++;
      this.turnAway(socket, this.busy(`are in use and the queue for them is full (${this.limits.maxWaitingConnections} waiting)`));
    }
  }

  private admit(socket: net.Socket): void {
    // While stopping, a new connection is still served, with SHUTTING_DOWN answers: the client
    // connected before the stop and deserves a reply it can act on (retry), not a reset.
    const conn = new Connection(socket, this.host);
    this.connections.set(socket, conn);
    socket.once('close', () => {
      if (this.connections.get(socket) === conn) this.connections.delete(socket);
      if (this.waiting.size > 0) this.admitWaiting();
    });
  }

  /** Gives slots to waiting connections, oldest first, closing idle connections to make room. */
  private admitWaiting(): void {
    for (const socket of this.waiting.keys()) {
      if (this.connections.size >= this.limits.maxConnections && !this.evictIdlest()) return;
      this.waiting.delete(socket);
      this.admit(socket);
    }
  }

  /**
   * Closes the connection idle the longest, if one has nothing in flight and has been idle for a
   * while: a peer that connects and sends nothing, drips a frame, does not read its answers or
   * merely keeps a connection open must not keep a login out.
   */
  private evictIdlest(): boolean {
    const now = this.state.ticks;
    if (this.nothingEvictableAt === now) return false;
    let idlest: Connection | null = null;
    for (const conn of this.connections.values()) {
      if (conn.pending === 0 && now - conn.lastActive >= EVICTABLE_AFTER_TICKS && (idlest === null || conn.lastActive < idlest.lastActive)) idlest = conn;
    }
    if (idlest === null) {
      this.nothingEvictableAt = now;
      return false;
    }
    this.close(idlest);
    this.shed.evicted++;
    return true;
  }

  /** Frees the slot at once (the 'close' event comes later). */
  private close(conn: Connection): void {
    this.connections.delete(conn.socket);
    conn.socket.destroy();
  }

  private busy(why: string): MemfaError {
    return new MemfaError('TIMEOUT', `the daemon is busy: all ${this.limits.maxConnections} connections of the ${this.kind} socket ${why}; retry shortly`, {
      data: { key: 'limits.maxConnections' },
      hint: 'retry shortly; if it persists, see limits.maxConnections in memfa.conf(5)',
    });
  }

  /** Answers a connection that was never read (so with id null), then closes it. */
  private turnAway(socket: net.Socket, err: MemfaError): void {
    this.waiting.delete(socket);
    // Its request is read and dropped while the answer goes out: a socket closed under a client
    // still writing its request fails that write (EPIPE) before the client reads the answer. The
    // client closes once it has read it; a client that does not is closed after a moment.
    socket.on('data', () => undefined);
    socket.resume();
    socket.end(encodeFrame({ jsonrpc: '2.0', id: null, error: errorObject(err) }));
    setTimeout(() => socket.destroy(), TURN_AWAY_LINGER_MS).unref();
  }

  /**
   * One tick: closes connections idle for more than limits.idleTimeoutMs (nothing in flight, no
   * request or answer; a peer that does not read its answers makes no progress either) and those
   * whose partial frame is older than limits.frameTimeoutMs; admits waiting connections; answers
   * those that waited longer than limits.waitTimeoutMs.
   */
  private sweep(): void {
    const now = ++this.state.ticks;
    for (const conn of this.connections.values()) {
      if (conn.partialSince >= 0 && now - conn.partialSince > this.frameTicks) {
        this.close(conn);
        this.shed.frameTimeouts++;
      } else if (conn.pending === 0 && now - conn.lastActive > this.idleTicks) this.close(conn);
    }
    if (this.waiting.size > 0) this.admitWaiting();
    for (const [socket, since] of this.waiting) {
      if (now - since <= this.waitTicks) break; // oldest first: the rest came later
      this.shed.turnedAway++;
      this.turnAway(socket, this.busy(`stayed in use for ${this.limits.waitTimeoutMs} ms`));
    }
    const shed = this.shed;
    if (shed.frameTimeouts + shed.evicted + shed.turnedAway > 0) {
      this.log.warn('connections-shed', { socket: this.kind, ...shed, connections: this.connections.size, waiting: this.waiting.size });
      this.totals.frameTimeouts += shed.frameTimeouts;
      this.totals.evicted += shed.evicted;
      this.totals.turnedAway += shed.turnedAway;
      this.shed = { frameTimeouts: 0, evicted: 0, turnedAway: 0 };
    }
  }

  /**
   * First half of a graceful stop: no new connections; requests that still arrive on open ones are
   * answered SHUTTING_DOWN (a temporary failure the client may retry) instead of being dropped.
   */
  pause(): void {
    this.state.accepting = false;
    for (const socket of this.waiting.keys()) this.turnAway(socket, new MemfaError('SHUTTING_DOWN', 'the daemon is stopping; retry shortly'));
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
