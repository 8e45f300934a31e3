// At log.level "debug", one line per request: the method, the socket, how long it took and
// whether it failed (with the error code). Never the parameters: they carry codes, tokens and
// addresses. At the other levels the dispatcher is used as it is, so the login path pays nothing.
import { performance } from 'node:perf_hooks';
import { MemfaError } from '../protocol/errors.js';
import { isMethodName } from '../protocol/methods.js';
import type { Handler } from './connection.js';
import type { Logger } from './logger.js';

export function logRequests(handle: Handler, log: Logger): Handler {
  return (method, params, socket) => {
    const started = performance.now();
    const done = (err?: unknown) =>
      log.debug('request', {
        // An unknown method's name is the client's text: it is not logged.
        method: isMethodName(method) ? method : '(unknown)',
        socket,
        ms: Math.round((performance.now() - started) * 100) / 100,
        result: err === undefined ? 'ok' : 'error',
        ...(err === undefined ? {} : { errorCode: err instanceof MemfaError ? err.code : 'INTERNAL' }),
      });
    let answer: unknown;
    try {
      answer = handle(method, params, socket);
    } catch (err) {
      done(err);
      throw err;
    }
    if (!(answer instanceof Promise)) {
      done();
      return answer;
    }
    return answer.then(
      (value: unknown) => {
        done();
        return value;
      },
      (err: unknown) => {
        done(err);
        throw err;
      },
    );
  };
}
