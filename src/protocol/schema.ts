// A small parameter-schema language: each schema validates untrusted JSON and infers its
// TypeScript type, so a method's contract is written once and checked on both sides.
import { invalidParams } from './errors.js';
import { Problems } from './problems.js';

export interface Schema<T> {
  readonly describe: string;
  parse(value: unknown, path: string): T;
  readonly optional?: boolean;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const CONTROL = /[\u0000-\u001f\u007f]/;

/** With `oneOf`, the value is one of those words, and its type says so. */
export function str<T extends string = string>(opts: { max?: number; min?: number; allowControl?: boolean; oneOf?: readonly T[] } = {}): Schema<T> {
  const max = opts.max ?? 256;
  const words: readonly string[] | undefined = opts.oneOf;
  return {
    describe: opts.oneOf ? opts.oneOf.join('|') : 'string',
    parse(value, path) {
      if (typeof value !== 'string') throw invalidParams(`${path}: expected a string`, { param: path });
      if (value.length > max) throw invalidParams(`${path}: longer than ${max} characters`, { param: path });
      if (value.length < (opts.min ?? 0)) throw invalidParams(`${path}: must not be empty`, { param: path });
      if (!opts.allowControl && CONTROL.test(value)) throw invalidParams(`${path}: contains control characters`, { param: path });
      if (words && !words.includes(value)) throw invalidParams(`${path}: must be one of ${words.join(', ')}`, { param: path });
      // Without oneOf, T is string; with it, the check above held.
      return value as T;
    },
  };
}

export function int(opts: { min?: number; max?: number } = {}): Schema<number> {
  return {
    describe: 'integer',
    parse(value, path) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalidParams(`${path}: expected an integer`, { param: path });
      if (opts.min !== undefined && value < opts.min) throw invalidParams(`${path}: must be at least ${opts.min}`, { param: path });
      if (opts.max !== undefined && value > opts.max) throw invalidParams(`${path}: must be at most ${opts.max}`, { param: path });
      return value;
    },
  };
}

export function bool(): Schema<boolean> {
  return {
    describe: 'boolean',
    parse(value, path) {
      if (typeof value !== 'boolean') throw invalidParams(`${path}: expected true or false`, { param: path });
      return value;
    },
  };
}

export function nullable<T>(inner: Schema<T>): Schema<T | null> {
  return {
    describe: `${inner.describe}|null`,
    parse(value, path) {
      return value === null ? null : inner.parse(value, path);
    },
  };
}

export function arr<T>(inner: Schema<T>, opts: { max?: number } = {}): Schema<T[]> {
  const max = opts.max ?? 1000;
  return {
    describe: `${inner.describe}[]`,
    parse(value, path) {
      if (!Array.isArray(value)) throw invalidParams(`${path}: expected an array`, { param: path });
      if (value.length > max) throw invalidParams(`${path}: more than ${max} items`, { param: path });
      // Every bad item is reported, not only the first.
      let problems: Problems | undefined;
      const out = value.map((v, i) => {
        try {
          return inner.parse(v, `${path}[${i}]`);
        } catch (err) {
          (problems ??= new Problems()).record(err);
          return undefined as T;
        }
      });
      problems?.throwIfAny();
      return out;
    },
  };
}

export function optional<T>(inner: Schema<T>): Schema<T | undefined> {
  return {
    describe: `${inner.describe}?`,
    optional: true,
    parse(value, path) {
      return value === undefined ? undefined : inner.parse(value, path);
    },
  };
}

/** Any JSON value, bounded in size; used where a deeper layer validates (e.g. settings patches). */
export function json(): Schema<unknown> {
  return {
    describe: 'json',
    parse(value) {
      return value;
    },
  };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { optional: true } ? K : undefined extends Infer<S[K]> ? K : never }[keyof S];
type RequiredKeys<S extends Shape> = Exclude<keyof S, OptionalKeys<S>>;
export type ObjectOf<S extends Shape> = { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> };

export function obj<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  // Worked out once: parse runs for every request.
  const fields = Object.entries(shape);
  const allOptional = fields.every(([, s]) => s.optional);
  return {
    describe: 'object',
    parse(value, path) {
      if (value === undefined && allOptional) value = {};
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidParams(`${path}: expected an object`, { param: path });
      const input = value as Record<string, unknown>;
      // Every problem of the request together (unknown, missing and bad parameters), so that one
      // does not hide another; created only when there is one, since verify parses every login.
      let problems: Problems | undefined;
      for (const key of Object.keys(input)) {
        if (FORBIDDEN_KEYS.has(key)) (problems ??= new Problems()).add(path, `${path}: key "${key}" is not allowed`);
        else if (!Object.prototype.hasOwnProperty.call(shape, key)) {
          (problems ??= new Problems()).add(key.slice(0, 64), `${path === 'params' ? '' : path + ': '}unknown parameter "${key.slice(0, 64)}"`);
        }
      }
      // A null-prototype result so that nothing a client sends can reach Object.prototype.
      const out = Object.create(null) as Record<string, unknown>;
      for (const [key, schema] of fields) {
        const v = input[key];
        if (v === undefined) {
          if (!schema.optional) (problems ??= new Problems()).add(key, `missing parameter "${key}"`);
          continue;
        }
        try {
          out[key] = schema.parse(v, key);
        } catch (err) {
          (problems ??= new Problems()).record(err);
        }
      }
      problems?.throwIfAny();
      return out as ObjectOf<S>;
    },
  };
}
