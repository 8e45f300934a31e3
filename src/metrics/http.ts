// The optional HTTP listener for Prometheus (metrics.listen): GET /metrics and nothing else, on a
// loopback address or a Unix socket. Bounded like the sockets: a few connections, small requests,
// deadlines for the headers and the whole request, idle keep-alive connections closed soon.
import { chmod, lstat, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import type { ListenAddress } from '../config/listen.js';
import type { Logger } from '../daemon/logger.js';
import { MemfaError } from '../protocol/errors.js';
import type { MetricsResult } from '../protocol/results.js';

export const METRICS_HTTP_LIMITS = {
  /** Connections at once; more are closed at once (a scraper needs one). */
  maxConnections: 8,
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
} as const;

/** Mode of a Unix socket listener: the daemon's user and group (see memfa.conf(5), metrics.listen). */
const SOCKET_MODE = 0o660;

export interface MetricsHttp {
  /** What it listens on, as logged: HOST:PORT or the socket path. */
  readonly address: string;
  close(): Promise<void>;
}

function answer(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Nothing answers on a socket path left by a crash; anything that is not a socket is left alone. */
async function clearStaleSocket(path: string, log: Logger): Promise<void> {
  const existing = await lstat(path).catch(() => null);
  if (existing === null) return;
  if (!existing.isSocket()) {
    throw new MemfaError('CONFIG_INVALID', `${path} exists and is not a socket; refusing to replace it`, { data: { key: 'metrics.listen' }, hint: 'check metrics.listen, or move the file away' });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) throw new MemfaError('CONFLICT', `something is already listening on ${path}`, { data: { key: 'metrics.listen' } });
  await unlink(path);
  log.warn('stale-socket-removed', { socket: path });
}

export async function listenMetricsHttp(address: ListenAddress, render: () => Promise<MetricsResult>, log: Logger): Promise<MetricsHttp> {
  // The header and request deadlines are enforced when Node checks its connections, every
  // connectionsCheckingInterval (30 s by default): checked every second instead.
  const server = http.createServer({ maxHeaderSize: METRICS_HTTP_LIMITS.maxHeaderBytes, connectionsCheckingInterval: 1000 }, (req, res) => {
    // A body is never wanted: it is read and dropped (bounded by the request deadline).
    req.resume();
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return answer(res, 404, 'not found: the metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'method not allowed: use GET\n', { Allow: 'GET, HEAD' });
    render().then(
      (m) => {
        res.writeHead(200, { 'Content-Type': m.contentType, 'Content-Length': Buffer.byteLength(m.text), 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : m.text);
      },
      (err: unknown) => {
        log.error('metrics-failed', { error: (err as Error)?.message ?? String(err) });
        answer(res, 500, 'the metrics could not be gathered; see the daemon log\n');
      },
    );
  });
  server.maxConnections = METRICS_HTTP_LIMITS.maxConnections;
  server.headersTimeout = METRICS_HTTP_LIMITS.headersTimeoutMs;
  server.requestTimeout = METRICS_HTTP_LIMITS.requestTimeoutMs;
  server.keepAliveTimeout = METRICS_HTTP_LIMITS.keepAliveTimeoutMs;
  // Without a 'clientError' listener Node answers a malformed request 400, oversized headers 431
  // and a late one 408, then closes the connection.

  const shown = address.kind === 'tcp' ? `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}` : address.path;
  if (address.kind === 'unix') await clearStaleSocket(address.path, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new MemfaError('CONFLICT', `metrics.listen: ${shown} is already in use`, { data: { key: 'metrics.listen' } })
          : new MemfaError('CONFIG_INVALID', `metrics.listen: cannot listen on ${shown}: ${err.message}`, { data: { key: 'metrics.listen' } }),
      );
    });
    if (address.kind === 'tcp') server.listen({ host: address.host, port: address.port }, () => resolve());
    else {
      // Created with no access for others; the mode is set before the address is logged.
      const oldMask = process.umask(0o177);
      try {
        server.listen({ path: address.path }, () => resolve());
      } finally {
        process.umask(oldMask);
      }
    }
  });
  if (address.kind === 'unix') {
    try {
      await chmod(address.path, SOCKET_MODE);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(address.path).catch(() => undefined);
      throw new MemfaError('CONFIG_INVALID', `metrics.listen: cannot set the mode of ${shown}: ${(err as Error).message}`, { data: { key: 'metrics.listen' } });
    }
  }
  server.on('error', (err) => log.error('listener-error', { socket: 'metrics', error: err.message }));
  log.info('metrics-listening', { address: shown });
  return {
    address: shown,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      if (address.kind === 'unix') await unlink(address.path).catch(() => undefined);
    },
  };
}
