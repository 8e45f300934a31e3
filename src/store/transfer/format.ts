// The export stream of `memfa store export` / `memfa store import`: the whole state as JSON lines,
// the same whichever backend wrote it.
//
//   {"kind":"header","format":"memfa-state","version":1,"memfa":…,"source":"file"|"postgres","createdAt":…,"counts":{…}}
//   {"kind":"global","settings":{…}}                      exactly one
//   {"kind":"domain","record":{…}}                        by domain name
//   {"kind":"meta","key":…,"value":…}                     by key (what is carried: isCarriedMeta)
//   {"kind":"mailbox","record":{…}}                       by address
//   {"kind":"audit","stream":"security"|"logins","line":…} each stream's lines as stored, by seq
//   {"kind":"end","counts":{…},"sha256":…}
//
// Kinds come in this order and keys within a kind ascending, so that an importer checks for
// duplicates without holding what it has read, and two exports of the same state are the same
// lines. Objects are written with their keys sorted, whatever order the backend kept them in.
// An audit line is the exact text the chain hashes (audit/entry.ts), carried as a string.
// The trailer's sha256 is over every line before it, newline included: a stream cut short (no
// trailer), cut and glued, or changed is refused before anything is kept.
import type { AuditStreamName } from '../../protocol/results.js';

export const FORMAT = 'memfa-state';
/** The version this memfa writes and the newest it reads; a newer one is refused. */
export const FORMAT_VERSION = 1;
/**
 * No line may be longer: a mailbox record with every list full is a few tens of KB, an audit line
 * a few KB. A longer line (a corrupt or hostile file) is refused before it is held whole.
 */
export const MAX_LINE_BYTES = 1024 * 1024;

/** The audit streams, in the order the stream carries them (audit/trail.ts STREAMS). */
export const AUDIT_STREAMS: readonly AuditStreamName[] = ['security', 'logins'];

export type Backend = 'file' | 'postgres';

export interface StateCounts {
  domains: number;
  meta: number;
  mailboxes: number;
  audit: Record<AuditStreamName, number>;
}

export interface Header {
  kind: 'header';
  format: typeof FORMAT;
  version: number;
  memfa: string;
  source: Backend;
  createdAt: string;
  counts: StateCounts;
}

export interface Trailer {
  kind: 'end';
  counts: StateCounts;
  sha256: string;
}

/** The kinds of the body, in the order they must come. */
export const BODY_KINDS = ['global', 'domain', 'meta', 'mailbox', 'audit'] as const;
export type BodyKind = (typeof BODY_KINDS)[number];

/**
 * Meta documents that are not state worth carrying, each made again on the target or transient:
 * the audit anchors (auditAnchor.STREAM, or auditAnchor.NODE.STREAM on a shared database), which
 * name the head of the audit files they sit beside and are set by the import from the lines it
 * writes; on a shared database the record of the key ring (keyRing, daemon/shared-keys.ts), which
 * its first daemon writes from the key file it is given, and the key ids each running daemon holds
 * (keyHolders), which the running daemons renew; and the claims of running jobs (jobClaims, a key
 * rotation's), which no daemon holds on the target.
 */
const NOT_CARRIED = new Set(['keyRing', 'keyHolders', 'jobClaims']);

export function isCarriedMeta(key: string): boolean {
  return !key.startsWith('auditAnchor.') && !NOT_CARRIED.has(key);
}

/** The meta documents that do not make a target hold state: set by any daemon's first start. */
export function isStartMarker(key: string): boolean {
  return key === 'keyringCreated';
}

export function emptyCounts(): StateCounts {
  return { domains: 0, meta: 0, mailboxes: 0, audit: { security: 0, logins: 0 } };
}

export function totalOf(c: StateCounts): number {
  return 1 + c.domains + c.meta + c.mailboxes + c.audit.security + c.audit.logins;
}

/** JSON with every object's keys sorted: the same text for the same value, whoever stored it. */
export function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : stableJson(v))).join(',')}]`;
  const o = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    if (o[k] === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${stableJson(o[k])}`);
  }
  return `{${parts.join(',')}}`;
}

export function sameCounts(a: StateCounts, b: StateCounts): boolean {
  return a.domains === b.domains && a.meta === b.meta && a.mailboxes === b.mailboxes && a.audit.security === b.audit.security && a.audit.logins === b.audit.logins;
}

export function describeCounts(c: StateCounts): string {
  return `${c.mailboxes} mailboxes, ${c.domains} domains, ${c.meta} documents, ${c.audit.security} + ${c.audit.logins} audit lines (security + logins)`;
}
