// One request to the daemon over its socket: connect, send one line, read one answer. Kept to
// node:net and the protocol modules, because `memfa verify` runs this on every login.
import net from 'node:net';
import { MemfaError } from '../protocol/errors.js';
import { LineDecoder, encodeFrame } from '../protocol/framing.js';
import { errorFromObject, type RpcResponse } from '../protocol/jsonrpc.js';
import type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.js';

export interface CallOptions {
  timeoutMs?: number;
  /**
   * A domain administrator's token, sent as params.auth: the daemon takes it off before it
   * validates the parameters, and refuses it for a method that is not delegable.
   */
  auth?: string;
}

const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

function unavailable(socketPath: string, err: NodeJS.ErrnoException): MemfaError {
  const why =
    err.code === 'ENOENT'
      ? 'no socket there'
      : err.code === 'ECONNREFUSED'
        ? 'nothing is listening'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EAGAIN'
            ? 'its queue of new connections stayed full'
            : err.message;
  const hint =
    err.code === 'EACCES'
      ? `run as a member of the socket's group, or as the daemon's user`
      : err.code === 'EAGAIN'
        ? 'the daemon is overloaded; retry shortly (limits.listenBacklog, memfa.conf(5))'
        : `start the daemon with "memfa daemon" (or "systemctl start memfa"), or point at it with --socket or MEMFA_CONFIG`;
  return new MemfaError('DAEMON_UNAVAILABLE', `cannot reach the memfa daemon at ${socketPath}: ${why}`, { hint, data: { socket: socketPath } });
}

/**
 * Delays before trying a refused connect again. A full listen backlog (EAGAIN on a Unix socket)
 * empties within milliseconds, and ECONNREFUSED is a restarting daemon's moment between two
 * listeners; a missing socket (ENOENT) is no daemon at all and fails at once.
 */
const CONNECT_RETRY_DELAYS_MS = [20, 60];
const RETRYABLE_CONNECT_ERRORS = new Set(['EAGAIN', 'EWOULDBLOCK', 'ECONNREFUSED']);

/**
 * The answer is the method's result type as protocol/methods.ts declares it: the daemon's
 * handlers are held to the same type, so the answer is trusted as it is, not checked again here.
 */
export function call<M extends MethodName>(socketPath: string, method: M, params: ParamsOf<M>, options: CallOptions = {}): Promise<ResultOf<M>> {
  const timeoutMs = options.timeoutMs ?? 30000;
  const sent = options.auth === undefined ? params : { ...params, auth: options.auth };
  return new Promise<ResultOf<M>>((resolve, reject) => {
    let socket: net.Socket;
    let retry: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(retry);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new MemfaError('TIMEOUT', `the memfa daemon at ${socketPath} did not answer within ${timeoutMs} ms`, { hint: 'check the daemon log; retry later' }))),
      timeoutMs,
    );
    const attempt = (tries: number) => {
      const s = (socket = net.connect(socketPath));
      const decoder = new LineDecoder(MAX_RESPONSE_BYTES);
      // Tracked here because socket.connecting is already false when a failed connect emits 'error'.
      let connected = false;
      let abandoned = false;
      s.once('connect', () => {
        connected = true;
        s.write(encodeFrame({ jsonrpc: '2.0', id: 1, method, params: sent }));
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        if (!connected && !settled && tries < CONNECT_RETRY_DELAYS_MS.length && RETRYABLE_CONNECT_ERRORS.has(err.code ?? '')) {
          // Nothing was sent on a connection that never opened: trying again cannot repeat a request.
          abandoned = true;
          s.destroy();
          retry = setTimeout(() => attempt(tries + 1), CONNECT_RETRY_DELAYS_MS[tries]);
          return;
        }
        finish(() => reject(!connected ? unavailable(socketPath, err) : new MemfaError('DAEMON_UNAVAILABLE', `connection to ${socketPath} failed: ${err.message}`, { data: { socket: socketPath } })));
      });
      s.on('close', () => {
        if (!abandoned) finish(() => reject(new MemfaError('DAEMON_UNAVAILABLE', `the memfa daemon at ${socketPath} closed the connection without answering`, { hint: 'check the daemon log' })));
      });
      s.on('data', (chunk: Buffer) => {
        for (const frame of decoder.push(chunk)) {
          if (frame.kind === 'oversize') return finish(() => reject(new MemfaError('FRAME_TOO_LARGE', 'the answer is larger than the client accepts')));
          let response: RpcResponse<ResultOf<M>>;
          try {
            response = JSON.parse(frame.line) as RpcResponse<ResultOf<M>>;
          } catch {
            return finish(() => reject(new MemfaError('PARSE_ERROR', 'the daemon sent an answer that is not JSON')));
          }
          if ('error' in response) return finish(() => reject(errorFromObject(response.error)));
          return finish(() => resolve(response.result));
        }
      });
    };
    attempt(0);
  });
}
