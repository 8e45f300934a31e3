// Every problem of one request in one INVALID_PARAMS error: an administrator who gets three
// mistakes back one at a time fixes them in three rounds. The error keeps the shape of a single
// problem (message, data.param: the first parameter named) and lists them all in data.errors.
import { MemfaError } from './errors.js';

export interface ParamProblem {
  param: string;
  message: string;
}

/** At most this many problems are reported; a longer list says how many more there were. */
export const MAX_REPORTED_PROBLEMS = 50;

/** The problems an INVALID_PARAMS error stands for: its data.errors, else the error itself. */
export function problemsOf(err: MemfaError): ParamProblem[] {
  const listed = err.data?.['errors'];
  if (Array.isArray(listed) && listed.length > 0) return listed as ParamProblem[];
  const param = err.data?.['param'];
  return [{ param: typeof param === 'string' ? param : 'params', message: err.message }];
}

/** One INVALID_PARAMS error for `problems` (at least one). */
export function invalidAll(problems: readonly ParamProblem[], more = 0): MemfaError {
  const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
  const left = more + problems.length - shown.length;
  const message = shown.map((p) => p.message).join('; ') + (left > 0 ? `; and ${left} more` : '');
  return new MemfaError('INVALID_PARAMS', message, {
    data: { param: shown[0]?.param ?? 'params', errors: shown.map((p) => ({ param: p.param, message: p.message })), ...(left > 0 ? { moreErrors: left } : {}) },
  });
}

/**
 * Collects problems instead of stopping at the first: `check` runs a validation and keeps what an
 * INVALID_PARAMS error says; any other error (a refused right, a crash) passes through.
 */
export class Problems {
  private readonly list: ParamProblem[] = [];
  private more = 0;

  get empty(): boolean {
    return this.list.length === 0;
  }

  add(param: string, message: string): void {
    // Counted, not kept, past what will be reported: a hostile request cannot grow the list.
    if (this.list.length < MAX_REPORTED_PROBLEMS) this.list.push({ param, message });
    else this.more++;
  }

  /** Records an INVALID_PARAMS error; rethrows any other. */
  record(err: unknown): void {
    if (!(err instanceof MemfaError) || err.code !== 'INVALID_PARAMS') throw err;
    for (const p of problemsOf(err)) this.add(p.param, p.message);
    const more = err.data?.['moreErrors'];
    if (typeof more === 'number') this.more += more;
  }

  /** The result of `fn`, or undefined when it threw INVALID_PARAMS (then recorded). */
  check<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.record(err);
      return undefined;
    }
  }

  /** Throws every problem recorded, if there is one. */
  throwIfAny(): void {
    if (this.list.length > 0) throw invalidAll(this.list, this.more);
  }
}
