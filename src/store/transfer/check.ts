// The records of an import stream checked field by field before any backend sees them: a stream
// may be corrupt or hostile, and what a backend stores must have the model's shape
// (core/model.ts), or a daemon would fail on it later, far from the line that brought it.
// Each check returns the record, or throws a FieldError naming the field's path.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import { APP_PROTOCOLS } from '../../protocol/vocabulary.js';

export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

type Check = (v: unknown, field: string) => void;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function fail(field: string, problem: string): never {
  throw new FieldError(field, problem);
}

const str: Check = (v, f) => {
  if (typeof v !== 'string') fail(f, 'not a string');
};
/** Epoch milliseconds, counters: integers a bigint column and a JavaScript number both hold. */
const int: Check = (v, f) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(f, 'not a non-negative integer');
};
const bool: Check = (v, f) => {
  if (typeof v !== 'boolean') fail(f, 'not true or false');
};
const json: Check = (v, f) => {
  if (!isObject(v)) fail(f, 'not an object');
};
const nullable =
  (c: Check): Check =>
  (v, f) => {
    if (v !== null) c(v, f);
  };
const oneOf =
  (...words: readonly string[]): Check =>
  (v, f) => {
    if (typeof v !== 'string' || !words.includes(v)) fail(f, `not one of ${words.join(', ')}`);
  };

/** An object with exactly these keys (`optional` may be left out), each checked. */
function shape(fields: Record<string, Check>, optional: readonly string[] = []): Check {
  return (v, f) => {
    if (!isObject(v)) fail(f, 'not an object');
    for (const k of Object.keys(v)) if (!Object.hasOwn(fields, k)) fail(`${f}.${k}`, 'not a field of this record');
    for (const [k, c] of Object.entries(fields)) {
      if (!Object.hasOwn(v, k)) {
        if (optional.includes(k)) continue;
        fail(`${f}.${k}`, 'missing');
      }
      c(v[k], `${f}.${k}`);
    }
  };
}

/** A list of items; `unique`: the key no two items may share (a backend's primary key). */
function list(item: Check, unique?: (e: unknown) => unknown): Check {
  return (v, f) => {
    if (!Array.isArray(v)) fail(f, 'not a list');
    const seen = new Set<unknown>();
    v.forEach((e, i) => {
      item(e, `${f}[${i}]`);
      if (unique === undefined) return;
      const key = unique(e);
      if (seen.has(key)) fail(`${f}[${i}]`, 'appears twice');
      seen.add(key);
    });
  };
}

const failure = nullable(shape({ consecutive: int, lockedUntil: nullable(int), hardLocked: bool, lastFailureAt: nullable(int) }));
const field = (name: string) => (e: unknown) => (e as Record<string, unknown>)[name];

const MAILBOX = shape(
  {
    address: str,
    settings: json,
    userSettings: json,
    phone: nullable(str),
    altEmail: nullable(str),
    totp: nullable(shape({ sealedSecret: str, activatedAt: int, lastAcceptedStep: nullable(int) })),
    pendingTotp: nullable(
      shape({ sealedSecret: str, createdAt: int, expiresAt: int, factorProved: (v, f) => (v === true ? undefined : fail(f, 'not true (leave it out instead)')) }, ['factorProved']),
    ),
    openCode: nullable(
      shape(
        { hash: str, sealedCode: str, provider: oneOf('sms', 'email'), destination: str, createdAt: int, expiresAt: int, failedTries: int, sends: int, lastSentAt: int },
        ['sealedCode'],
      ),
    ),
    ips: list(shape({ ip: str, firstSeen: int, lastSeen: int }), field('ip')),
    countries: list(shape({ country: str, firstSeen: int, lastSeen: int }), field('country')),
    failures: shape({ known: failure, elsewhere: failure }),
    recoveryCodeHashes: list(str),
    enrolmentGraceLogins: int,
    notices: shape({ pending: list(json), recent: list(json) }),
    appPasswords: list(
      shape({
        id: str,
        name: str,
        hash: str,
        protocols: list(oneOf(...APP_PROTOCOLS)),
        networks: list(str),
        createdAt: int,
        expiresAt: nullable(int),
        lastUsed: nullable(shape({ at: int, ip: str, country: nullable(str) })),
        uses: int,
      }),
      field('id'),
    ),
    createdAt: int,
    updatedAt: int,
  },
  ['enrolmentGraceLogins', 'notices'],
);

const DOMAIN = shape({ domain: str, settings: json, updatedAt: int });

/** A mailbox record as the model has it; its address must be the one of a mailbox (local@domain). */
export function checkMailbox(v: unknown): MailboxRecord {
  MAILBOX(v, 'record');
  const address = (v as MailboxRecord).address;
  if (!/^[^@\s]+@[^@\s]+$/.test(address) || address !== address.toLowerCase()) fail('record.address', 'not a lower-case address local@domain');
  return v as MailboxRecord;
}

export function checkDomain(v: unknown): DomainRecord {
  DOMAIN(v, 'record');
  const domain = (v as DomainRecord).domain;
  if (domain === '' || /[@\s]/.test(domain) || domain !== domain.toLowerCase()) fail('record.domain', 'not a lower-case domain name');
  return v as DomainRecord;
}

export function checkSettings(v: unknown): LevelSettings {
  json(v, 'settings');
  return v as LevelSettings;
}

/** A meta document's key: what the stores key them by. */
export function checkMetaKey(v: unknown): string {
  str(v, 'key');
  const key = v as string;
  if (key === '' || key.length > 200) fail('key', 'empty or longer than 200 characters');
  return key;
}

export function checkMetaValue(v: unknown): unknown {
  // A meta document is JSON of any shape but null (null is how a store deletes one).
  if (v === null || v === undefined) fail('value', 'missing or null');
  return v;
}

export function fieldOf(v: Record<string, unknown>, name: string, check: Check): unknown {
  if (!Object.hasOwn(v, name)) fail(name, 'missing');
  check(v[name], name);
  return v[name];
}

export { int as checkInt, str as checkString, json as checkObject };
