// App passwords (application-specific passwords): standing credentials for mail clients that
// cannot answer a second factor (IMAP, POP3, SMTP submission, ManageSieve, CalDAV/CardDAV).
// Pure: randomness and time are parameters; the services keep only a keyed hash of each.

import { MemfaError } from '../protocol/errors.js';
import { APP_PROTOCOLS, type AppProtocol } from '../protocol/vocabulary.js';
import type { AppPassword } from './model.js';
import { normaliseCidr } from './validate.js';

// The list lives with the protocol, which must not import the core; the core re-exports it.
export { APP_PROTOCOLS, type AppProtocol } from '../protocol/vocabulary.js';

export type { AppPassword } from './model.js';

// Letters only, none that read like another (no i, l, o): typed on a phone without switching
// keyboards, and never mistaken for a recovery code (10 letters) or a numeric code. 24 letters of
// 23: log2(23^24) = 108 bits.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz';
export const APP_PASSWORD_LETTERS = 24;
const GROUP = 4;
const SHAPE = new RegExp(`^[${ALPHABET}]{${APP_PASSWORD_LETTERS}}$`);

export const MAX_NAME = 64;
export const MAX_NETWORKS = 32;

function invalid(param: string, message: string): MemfaError {
  return new MemfaError('INVALID_PARAMS', `${param}: ${message}`, { data: { param } });
}

const ID_DIGITS = '0123456789abcdef';
const ID_LENGTH = 8;

/** A short id for list and revoke: 8 hex digits (unique within the mailbox; the caller retries a clash). */
export function generateAppPasswordId(randomInt: (min: number, max: number) => number): string {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += ID_DIGITS[randomInt(0, ID_DIGITS.length)];
  return id;
}

/** A new password, grouped for typing: 'abcd-efgh-jkmn-pqrs-tuvw-xyza'. */
export function generateAppPassword(randomInt: (min: number, max: number) => number): string {
  let letters = '';
  for (let i = 0; i < APP_PASSWORD_LETTERS; i++) letters += ALPHABET[randomInt(0, ALPHABET.length)];
  return (letters.match(new RegExp(`.{${GROUP}}`, 'g')) ?? []).join('-');
}

/**
 * The canonical form of something typed as an app password (case, spaces and dashes ignored), or
 * null when it cannot be one: such a password is a primary password as far as memfa knows.
 */
export function canonicalAppPassword(input: string): string | null {
  if (input.length > APP_PASSWORD_LETTERS * 3) return null;
  const s = input.toLowerCase().replace(/[\s-]/g, '');
  return SHAPE.test(s) ? s : null;
}

/** A label: 1 to 64 printable characters, trimmed. */
export function normaliseAppPasswordName(value: unknown): string {
  if (typeof value !== 'string') throw invalid('name', 'expected a string');
  const name = value.trim();
  if (name === '' || name.length > MAX_NAME) throw invalid('name', `must be 1 to ${MAX_NAME} characters`);
  if (/[\u0000-\u001f\u007f]/.test(name)) throw invalid('name', 'must not contain control characters');
  return name;
}

/** 'all', or a list (array or comma-separated) of protocols; duplicates dropped, order fixed. */
export function parseAppProtocols(value: unknown): AppProtocol[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : null;
  if (items === null || items.length === 0) throw invalid('protocols', `expected all, or a list of ${APP_PROTOCOLS.join(', ')}`);
  if (items.length === 1 && items[0] === 'all') return [...APP_PROTOCOLS];
  const wrong = items.filter((p) => typeof p !== 'string' || !(APP_PROTOCOLS as readonly string[]).includes(p));
  if (wrong.length > 0) throw invalid('protocols', `${wrong.map((w) => JSON.stringify(w)).join(', ')}: expected all, or ${APP_PROTOCOLS.join(', ')}`);
  return APP_PROTOCOLS.filter((p) => items.includes(p));
}

/** CIDR networks (array or comma-separated); every bad entry named at once. */
export function parseAppNetworks(value: unknown): string[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter((s) => s !== '') : null;
  if (items === null) throw invalid('networks', 'expected a list of CIDR networks');
  if (items.length > MAX_NETWORKS) throw invalid('networks', `at most ${MAX_NETWORKS} networks`);
  const problems: string[] = [];
  const out: string[] = [];
  for (const item of items) {
    try {
      out.push(normaliseCidr(item, 'networks'));
    } catch (err) {
      problems.push(err instanceof MemfaError ? err.message.replace(/^networks: /, '') : String(err));
    }
  }
  if (problems.length > 0) throw invalid('networks', problems.join('; '));
  return [...new Set(out)];
}

/**
 * When an app password stops working, from '90d', '12h' (relative to now) or an ISO 8601 date or
 * time; null for never. A time in the past is refused.
 */
export function parseExpiry(value: unknown, now: number): number | null {
  if (value === null || value === undefined || value === 'never') return null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) {
    if (value <= now) throw invalid('expires', 'must be in the future');
    return value;
  }
  if (typeof value !== 'string') throw invalid('expires', 'expected a duration (90d, 12h) or an ISO 8601 date');
  const rel = /^(\d{1,5})([hd])$/.exec(value.trim());
  if (rel) {
    const n = Number(rel[1]);
    if (n === 0) throw invalid('expires', 'must be in the future');
    return now + n * (rel[2] === 'h' ? 3_600_000 : 86_400_000);
  }
  if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    throw invalid('expires', `'${value.slice(0, 40)}' is not a duration (90d, 12h) or an ISO 8601 date`);
  }
  const t = Date.parse(value.trim());
  if (Number.isNaN(t)) throw invalid('expires', `'${value.slice(0, 40)}' is not a valid date`);
  if (t <= now) throw invalid('expires', 'must be in the future');
  return t;
}

export type AppPasswordRefusal = 'app-password-protocol' | 'app-password-network' | 'app-password-expired';

/**
 * Whether a matched app password may be used for this login. `inNetworks` tells whether the
 * login's address is inside a list of CIDRs (core/validate's ipInNetworks, passed in so this
 * stays a function of its inputs).
 */
export function appPasswordRefusal(
  ap: AppPassword,
  login: { protocol: AppProtocol; ip: string; now: number },
  inNetworks: (ip: string, cidrs: readonly string[]) => boolean,
): AppPasswordRefusal | null {
  if (ap.expiresAt !== null && login.now >= ap.expiresAt) return 'app-password-expired';
  if (!ap.protocols.includes(login.protocol)) return 'app-password-protocol';
  if (ap.networks.length > 0 && !inNetworks(login.ip, ap.networks)) return 'app-password-network';
  return null;
}

/** Uses of one app password since they were last written (services/app-password-usage.ts). */
export interface AppPasswordUses {
  count: number;
  at: number;
  ip: string;
  country: string | null;
}

/**
 * `ap` with `uses` added: its count, and its last use the later of the stored one and this one
 * (another daemon may have written a later one first). Mirrored by the PostgreSQL store's
 * statement (store/postgres/admin-state.ts recordAppPasswordUses).
 */
export function withUses(ap: AppPassword, uses: AppPasswordUses): AppPassword {
  const lastUsed = ap.lastUsed !== null && ap.lastUsed.at > uses.at ? ap.lastUsed : { at: uses.at, ip: uses.ip, country: uses.country };
  return { ...ap, uses: ap.uses + uses.count, lastUsed };
}
