// Reading entries back: one stream's files filtered, and several streams' answers merged by time.

import type { AuditEntry } from './entry.js';
import { parseEntry } from './entry.js';
import { readLines } from '../files/append-log.js';
import type { FileSet } from './files.js';

export interface AuditQuery {
  mailbox?: string;
  /** Only entries whose mailbox is in one of these domains; an entry of no mailbox never matches. */
  domains?: readonly string[];
  /** Inclusive. */
  since?: Date;
  /** Exclusive. */
  until?: Date;
  result?: string;
  action?: string;
  /** Return only the most recent `limit` matches (still oldest first). */
  limit?: number;
}

export function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new RangeError('AuditLog.query: limit must be a non-negative integer');
}

function inDomains(mailbox: string | null, domains: ReadonlySet<string>): boolean {
  if (mailbox === null) return false;
  const at = mailbox.lastIndexOf('@');
  return at !== -1 && domains.has(mailbox.slice(at + 1));
}

/** Entries matching every given filter, oldest first. */
export async function queryFiles(set: FileSet, filter: AuditQuery): Promise<AuditEntry[]> {
  const since = filter.since?.getTime();
  const until = filter.until?.getTime();
  const limit = filter.limit;
  const domains = filter.domains === undefined ? undefined : new Set(filter.domains);
  const found: AuditEntry[] = [];
  for (const file of set.files) {
    for await (const { bytes, terminated } of readLines(file.handle, file.size)) {
      if (!terminated) continue;
      const entry = parseEntry(bytes);
      // Damaged lines are verify's business; a query shows what can be read.
      if (typeof entry === 'string') continue;
      if (filter.mailbox !== undefined && entry.mailbox !== filter.mailbox) continue;
      if (domains !== undefined && !inDomains(entry.mailbox, domains)) continue;
      if (filter.action !== undefined && entry.action !== filter.action) continue;
      if (filter.result !== undefined && entry.result !== filter.result) continue;
      const time = Date.parse(entry.time);
      if (since !== undefined && time < since) continue;
      if (until !== undefined && time >= until) continue;
      found.push(entry);
      if (limit !== undefined && found.length > limit) found.shift();
    }
  }
  return found;
}

/**
 * Merges lists that are each in time order into one, keeping each list's own order among equal
 * times (a stream's lines are in the order written), and keeps the last `limit`.
 */
export function mergeByTime<T extends { time: string }>(lists: T[][], limit: number | undefined): T[] {
  const at = lists.map(() => 0);
  const out: T[] = [];
  for (;;) {
    let pick = -1;
    for (let i = 0; i < lists.length; i += 1) {
      const candidate = lists[i]![at[i]!];
      if (candidate === undefined) continue;
      // ISO 8601 times of one format compare as strings.
      if (pick === -1 || candidate.time < lists[pick]![at[pick]!]!.time) pick = i;
    }
    if (pick === -1) break;
    out.push(lists[pick]![at[pick]!]!);
    at[pick]! += 1;
  }
  return limit === undefined || out.length <= limit ? out : out.slice(out.length - limit);
}
