// Routes a request to its handler: method allow-list per socket, parameter validation, time-out,
// and conversion of every failure into a typed error (never a crash, never a raw stack).
import { MemfaError } from '../protocol/errors.js';
import { METHODS, isDelegable, isMethodName, methodAllowedOn, type MethodName, type SocketKind } from '../protocol/methods.js';
import type { Handlers } from '../services/handlers.js';
import type { CallContext } from '../services/ports.js';
import type { Logger } from './logger.js';

/** The handlers are the services' (services/handlers.ts): the daemon routes to them. */
export type { Handlers };

/** The scope of a domain administrator's token; rejects with UNAUTHENTICATED for one that grants none. */
export type Authenticate = (token: string) => Promise<{ admin: string; domains: string[] }>;

function refusalHint(method: MethodName): string {
  if (isDelegable(method)) return 'use the admin socket, or pass a domain administrator token on the hook socket';
  if (methodAllowedOn(method, 'self')) return 'self-service methods are on the self socket (sockets.self.path); see memfa(1), SOCKETS';
  if (methodAllowedOn(method, 'hook')) return 'login methods are on the hook socket (sockets.hook.path); see memfa(1), SOCKETS';
  return 'administration methods need the admin socket (see memfa(1), SOCKETS)';
}

function isPromise(value: unknown): value is Promise<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Returns a plain value when the handler answered synchronously (the login fast path does), and a
 * promise otherwise: a promise, a timer and a race per request cost as much as the fast path
 * itself. Throws (or rejects with) a MemfaError only.
 */
export function createDispatcher(handlers: Handlers, log: Logger, timeoutMs: number, authenticate: Authenticate) {
  const wrap = (method: string, err: unknown): MemfaError => {
    if (err instanceof MemfaError) return err;
    log.error('handler-crashed', { method, error: (err as Error)?.message, stack: (err as Error)?.stack });
    return new MemfaError('INTERNAL', `internal error in "${method}"; see the daemon log`);
  };
  const run = (method: MethodName, params: unknown, ctx: CallContext): unknown => {
    const handler = handlers[method] as (p: unknown, c: CallContext) => unknown;
    let result: unknown;
    try {
      result = handler(params, ctx);
    } catch (err) {
      throw wrap(method, err);
    }
    if (!isPromise(result)) return result;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // The handler is not cancelled: what it does may still complete, so the answer says so.
      timer = setTimeout(() => reject(new MemfaError('TIMEOUT', `method "${method}" took longer than ${timeoutMs} ms; its outcome is unknown (it may still complete)`)), timeoutMs);
    });
    return Promise.race([result, timeout]).then(
      (value) => {
        clearTimeout(timer);
        return value;
      },
      (err: unknown) => {
        clearTimeout(timer);
        throw wrap(method, err);
      },
    );
  };
  return (method: string, rawParams: unknown, socket: SocketKind): unknown => {
    if (!isMethodName(method)) {
      throw new MemfaError('METHOD_NOT_FOUND', `unknown method "${method.slice(0, 64)}"`);
    }
    // A domain administrator's token travels as params.auth; it is taken off before validation.
    let token: unknown;
    let rest: unknown = rawParams;
    if (rawParams !== null && typeof rawParams === 'object' && !Array.isArray(rawParams) && Object.prototype.hasOwnProperty.call(rawParams, 'auth')) {
      const { auth, ...others } = rawParams as Record<string, unknown>;
      token = auth;
      rest = others;
    }
    if (token !== undefined && (typeof token !== 'string' || token.length > 256)) throw new MemfaError('UNAUTHENTICATED', 'auth: expected an administrator token');
    if (token !== undefined && !isDelegable(method)) {
      throw new MemfaError('FORBIDDEN', `domain administrators may not call "${method}"`, { data: { right: method } });
    }
    if (!methodAllowedOn(method, socket) && !(token !== undefined && socket === 'hook')) {
      throw new MemfaError('METHOD_NOT_ALLOWED', `method "${method}" is not available on the ${socket} socket`, {
        hint: refusalHint(method),
      });
    }
    const params = METHODS[method].params.parse(rest ?? {}, 'params');
    const ctx: CallContext = { socket, actor: socket === 'admin' ? 'admin' : socket === 'self' ? 'self' : 'hook' };
    if (token !== undefined) {
      // Only a delegated call waits for its token's record; the others keep the synchronous path.
      return authenticate(token as string).then(
        (scope) => {
          ctx.scope = scope;
          ctx.actor = `domain-admin:${scope.admin}`;
          return run(method, params, ctx);
        },
        (err: unknown) => {
          throw wrap(method, err);
        },
      );
    }
    if (method.startsWith('self.')) ctx.actor = 'self';
    return run(method, params, ctx);
  };
}
