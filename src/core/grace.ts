// The enrolment grace: while MFA is rolled out, a mailbox that must enrol (provider totp, no
// active secret) may still log in without a second factor until a date or for a number of
// logins, and is shown its QR code meanwhile. Pure: `now` is a parameter, the count of grace
// logins is the caller's to keep.
import { invalidParams } from '../protocol/errors.js';
import type { EnrolmentGrace, GraceLimits } from './model.js';
import { count } from './wording.js';

/** Grace logins one setting may grant: each is a store write, so the count is bounded. */
export const MAX_GRACE_LOGINS = 10_000;

const KEY = 'enrolmentGrace';
const DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
const FORMS = `'none', or until (an ISO 8601 date or time with a zone) and/or logins (1 to ${MAX_GRACE_LOGINS}), e.g. {"until": "2030-07-01", "logins": 5} or "until=2030-07-01,logins=5"`;

function fail(param: string, message: string): never {
  throw invalidParams(`${param}: ${message}`, { param });
}

/** The instant `text` names, as an ISO string: a date is the start of that day, UTC. */
function parseUntil(value: unknown): string {
  const param = `${KEY}.until`;
  if (typeof value !== 'string') fail(param, `expected an ISO 8601 date or time, got ${JSON.stringify(value)}`);
  const m = DATE.exec(value);
  const t = Date.parse(value);
  // Date.parse rolls 2030-02-30 over to March: the calendar date must be the one written.
  const day = m === null ? null : new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  if (m === null || Number.isNaN(t) || day!.getUTCDate() !== Number(m[3]) || day!.getUTCMonth() !== Number(m[2]) - 1) {
    fail(param, `expected an ISO 8601 date (2030-07-01) or a time with a zone (2030-07-01T08:00:00Z), got ${JSON.stringify(value.slice(0, 64))}`);
  }
  return new Date(t).toISOString();
}

function parseLogins(value: unknown): number {
  const param = `${KEY}.logins`;
  const n = typeof value === 'string' && /^\d{1,6}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > MAX_GRACE_LOGINS) fail(param, `expected a whole number from 1 to ${MAX_GRACE_LOGINS}, got ${JSON.stringify(value)}`);
  return n;
}

/** "until=...,logins=..." from a command line, as an object. */
function fromText(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq === -1) fail(KEY, `expected ${FORMS}`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** A setting value as a patch gives it ('inherit' and null are the patch's own business). */
export function parseEnrolmentGrace(value: unknown): EnrolmentGrace {
  if (value === 'none') return 'none';
  const raw = typeof value === 'string' ? fromText(value) : value;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(KEY, `expected ${FORMS}`);
  const rec = raw as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (k !== 'until' && k !== 'logins') fail(`${KEY}.${k.slice(0, 32)}`, 'unknown key (expected until, logins)');
  if (rec['until'] === undefined && rec['logins'] === undefined) fail(KEY, `give until, logins or both (${FORMS})`);
  const limits: GraceLimits = {};
  if (rec['until'] !== undefined) limits.until = parseUntil(rec['until']);
  if (rec['logins'] !== undefined) limits.logins = parseLogins(rec['logins']);
  return limits;
}

/**
 * Where a mailbox that must enrol stands with its grace.
 * - active: the login may go in without a factor. loginsLeft: the logins the grace still grants
 *   after this one (null: not counted); until: when it ends (null: no date).
 * - otherwise why: none (no grace set), ended (its date is past), used (its logins are spent),
 *   unstored (a mailbox without a stored record and a grace of logins only: nothing counts its
 *   logins, so it has none; see services/verify.ts).
 * A grace with both limits ends with the first one reached. A stored mailbox's logins count from
 * `used`; one without a record is bounded by the date alone.
 */
export type GraceState = { active: true; loginsLeft: number | null; until: number | null } | { active: false; why: 'none' | 'ended' | 'used' | 'unstored' };

export function graceState(grace: EnrolmentGrace, used: number, stored: boolean, now: number): GraceState {
  if (grace === 'none') return { active: false, why: 'none' };
  const until = grace.until === undefined ? null : Date.parse(grace.until);
  if (until !== null && now >= until) return { active: false, why: 'ended' };
  if (grace.logins === undefined) return { active: true, loginsLeft: null, until };
  if (!stored) return until === null ? { active: false, why: 'unstored' } : { active: true, loginsLeft: null, until };
  if (used >= grace.logins) return { active: false, why: 'used' };
  return { active: true, loginsLeft: grace.logins - used - 1, until };
}

/** For people: the setting as one phrase. */
export function describeGrace(grace: EnrolmentGrace): string {
  if (grace === 'none') return 'none';
  const parts: string[] = [];
  if (grace.until !== undefined) parts.push(`until ${grace.until}`);
  if (grace.logins !== undefined) parts.push(count(grace.logins, 'login', 'logins'));
  return parts.join(' or ');
}
