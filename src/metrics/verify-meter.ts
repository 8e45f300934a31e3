// Counts every verify answer by result and reason, with the time the daemon took to give it, around
// the verify handler: the service itself knows nothing of metrics. An answer given synchronously
// (the login fast path) is counted without a promise or any other allocation.
import { performance } from 'node:perf_hooks';
import { errorReason } from '../services/verify.js';
import type { VerifyAnswerKind, VerifyTally } from './tally.js';

type Answer = { result: VerifyAnswerKind; reason: string };

function isPromise(value: unknown): value is Promise<unknown> {
  return value instanceof Promise;
}

/** `handler`, counted in `tally`. `clock` gives milliseconds (performance.now by default). */
export function meteredVerify<P, C, R extends Answer>(handler: (params: P, ctx: C) => R | Promise<R>, tally: VerifyTally, clock: () => number = () => performance.now()) {
  return (params: P, ctx: C): R | Promise<R> => {
    const started = clock();
    let answer: R | Promise<R>;
    try {
      answer = handler(params, ctx);
    } catch (err) {
      tally.answered('error', errorReason(err), (clock() - started) / 1000);
      throw err;
    }
    if (!isPromise(answer)) {
      tally.answered(answer.result, answer.reason, (clock() - started) / 1000);
      return answer;
    }
    return answer.then(
      (r) => {
        tally.answered(r.result, r.reason, (clock() - started) / 1000);
        return r;
      },
      (err: unknown) => {
        tally.answered('error', errorReason(err), (clock() - started) / 1000);
        throw err;
      },
    );
  };
}
