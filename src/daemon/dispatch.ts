// Routes a request to its handler: method allow-list per socket, parameter validation, time-out,
// and conversion of every failure into a typed error (never a crash, never a raw stack).
import { MemfaError } from '../protocol/errors.js';
import { METHODS, isMethodName, methodAllowedOn, type MethodName, type ParamsOf, type SocketKind } from '../protocol/methods.js';
import type { CallContext } from '../services/ports.js';
import type { Logger } from './logger.js';

export type Handlers = { [M in MethodName]: (params: ParamsOf<M>, ctx: CallContext) => Promise<unknown> | unknown };

export function createDispatcher(handlers: Handlers, log: Logger, timeoutMs: number) {
  return async (method: string, rawParams: unknown, socket: SocketKind): Promise<unknown> => {
    if (!isMethodName(method)) {
      throw new MemfaError('METHOD_NOT_FOUND', `unknown method "${method.slice(0, 64)}"`);
    }
    if (!methodAllowedOn(method, socket)) {
      throw new MemfaError('METHOD_NOT_ALLOWED', `method "${method}" is not available on the ${socket} socket`, {
        hint: 'administration methods need the admin socket (see memfa(1), SOCKETS)',
      });
    }
    const params = METHODS[method].params.parse(rawParams ?? {}, 'params');
    const ctx: CallContext = { socket, actor: socket === 'admin' ? 'admin' : 'hook' };
    const handler = handlers[method] as (p: unknown, c: CallContext) => Promise<unknown> | unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(() => handler(params, ctx)),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new MemfaError('TIMEOUT', `method "${method}" took longer than ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      if (err instanceof MemfaError) throw err;
      log.error('handler-crashed', { method, error: (err as Error)?.message, stack: (err as Error)?.stack });
      throw new MemfaError('INTERNAL', `internal error in "${method}"; see the daemon log`);
    } finally {
      clearTimeout(timer);
    }
  };
}
