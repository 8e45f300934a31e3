// One audit line: its shape, its exact serialisation and the hash that chains it to the next.
//
// A line is the JSON below followed by '\n'; keys always in this order:
//   {"seq":n,"time":ISO,"actor":…,"socket":…,"mailbox":…,"action":…,"result":…,"reason":…,
//    "ip":…,"country":…,"details"?:{…},"prev":"<64 hex>"}
// `prev` is the SHA-256 (hex) of the previous line's bytes, newline excluded, or 64 zeros for the
// first line ever written. Hashing the exact bytes, not a re-serialisation, means verification
// never depends on how a JSON library orders keys or escapes text.

import * as crypto from 'node:crypto';
import type { AuditEntryView } from '../protocol/results.js';

export type AuditActor = 'admin' | 'self' | 'hook' | 'daemon' | `domain-admin:${string}`;
export type AuditSocket = 'admin' | 'hook' | 'self' | null;

/** What a caller records; the log adds seq, time and prev. */
export interface AuditEvent {
  actor: AuditActor;
  socket?: AuditSocket;
  mailbox?: string | null;
  action: string;
  result: string;
  reason?: string | null;
  ip?: string | null;
  country?: string | null;
  details?: Record<string, unknown>;
}

/** A line as stored: what audit.query answers (protocol/results.ts) but its stream, with the actor and socket typed. */
export interface AuditEntry extends Omit<AuditEntryView, 'actor' | 'socket' | 'stream'> {
  actor: AuditActor;
  socket: AuditSocket;
}

export const GENESIS_PREV = '0'.repeat(64);
const HEX64 = /^[0-9a-f]{64}$/;
const ACTOR = /^(admin|self|hook|daemon|domain-admin:.+)$/;

// crypto.hash (Node 20.12+) is the one-shot form: half the cost of a Hash object, and this runs
// for every login. Older Node 20 releases fall back to createHash; the digest is the same.
const sha256Hex: (data: Buffer) => string =
  typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'hex') : (data) => crypto.createHash('sha256').update(data).digest('hex');

export function lineHash(line: Buffer): string {
  return sha256Hex(line);
}

// A string that needs no escaping is quoted as it is: JSON.stringify per field was most of the
// cost of a line. Anything with a quote, a backslash, a control character or a surrogate (which
// JSON.stringify would escape when unpaired) goes through JSON.stringify, so the text is the same.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const str = (v: string | null) => (v === null ? 'null' : NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

/** An entry before the log numbers and chains it. */
export type AuditBody = Omit<AuditEntry, 'seq' | 'prev'>;

/** A body before it is timed: what a store that takes the time itself (the database's) is given. */
export type AuditFields = Omit<AuditBody, 'time'>;

/**
 * The part of a line between its "time" and its "prev": "actor":… through "details" when there
 * are any, keys in the fixed order. The database store splices it into the line it numbers, times
 * and chains (store/postgres/migrations/004_audit.sql), so that both stores write the same text.
 */
export function lineFields(body: AuditFields): string {
  const details = body.details === undefined ? '' : `,"details":${JSON.stringify(body.details)}`;
  return (
    `"actor":${str(body.actor)},"socket":${str(body.socket)},"mailbox":${str(body.mailbox)},"action":${str(body.action)},` +
    `"result":${str(body.result)},"reason":${str(body.reason)},"ip":${str(body.ip)},"country":${str(body.country)}${details}`
  );
}

/**
 * One line, keys in a fixed order. Built as a template rather than through an ordered object and
 * JSON.stringify: the same text, for half the work, and it runs for every login. Takes seq and
 * prev apart from the body so that the log need not build an entry object per line.
 */
export function serialiseLine(seq: number, body: AuditBody, prev: string): string {
  return `{"seq":${seq},"time":${str(body.time)},${lineFields(body)},"prev":${str(prev)}}`;
}

export function serialiseEntry(entry: AuditEntry): string {
  return serialiseLine(entry.seq, entry, entry.prev);
}

function isNullableString(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

/** The entry on `line`, or a description of what is wrong with it. */
export function parseEntry(line: Buffer): AuditEntry | string {
  let raw: unknown;
  try {
    raw = JSON.parse(line.toString('utf8'));
  } catch {
    return 'not valid JSON';
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'not a JSON object';
  const e = raw as Record<string, unknown>;
  if (typeof e.seq !== 'number' || !Number.isSafeInteger(e.seq) || e.seq < 1) return '"seq" is not a positive integer';
  if (typeof e.time !== 'string' || Number.isNaN(Date.parse(e.time))) return '"time" is not an ISO date';
  if (typeof e.actor !== 'string' || !ACTOR.test(e.actor)) return '"actor" is not a known actor';
  if (e.socket !== null && e.socket !== 'admin' && e.socket !== 'hook' && e.socket !== 'self') return '"socket" is not admin, hook, self or null';
  if (typeof e.action !== 'string' || typeof e.result !== 'string') return '"action" or "result" is not a string';
  for (const field of ['mailbox', 'reason', 'ip', 'country'] as const) {
    if (!isNullableString(e[field])) return `"${field}" is not a string or null`;
  }
  if (e.details !== undefined && (typeof e.details !== 'object' || e.details === null || Array.isArray(e.details))) {
    return '"details" is not an object';
  }
  if (typeof e.prev !== 'string' || !HEX64.test(e.prev)) return '"prev" is not 64 hex digits';
  return e as unknown as AuditEntry;
}
