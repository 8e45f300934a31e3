// Carrying audit lines into the shared database as they are (`memfa store import`: a file trail's
// lines, or another database's export): the exact text, so that the chain verifies as it did
// where it came from, with the columns audit.query filters on taken from each line. Lines go in
// slices, each continuing the stream's chain from its head; the first slice into an empty stream
// may start anywhere (a file trail keeps only its newest files): its seq becomes the floor.

import { lineHash, parseEntry } from '../../audit/entry.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStreamName } from '../../protocol/results.js';
import type { Queryable } from './pool.js';

export interface ImportedHead {
  seq: number;
  hash: string;
  floor: number;
}

/**
 * Appends `lines` (oldest first, without newlines) to `stream` through `c`, inside the caller's
 * transaction (the head row stays locked until it ends): each must parse as an audit line, the
 * first must follow the head (unless the stream is empty) and each the one before, by seq. Their
 * hashes are not checked against each other: a broken chain is carried as it is, for verify to
 * report where it came from. `node` fills audit_lines.node. Answers the new head.
 */
export async function importAuditLines(c: Queryable, stream: AuditStreamName, node: string, lines: readonly string[]): Promise<ImportedHead> {
  const { rows } = await c.query<ImportedHead>('SELECT seq, hash, floor FROM audit_heads WHERE stream = $1 FOR UPDATE', [stream]);
  const head = rows[0];
  if (head === undefined) throw new MemfaError('STORE_CORRUPT', `the database's audit_heads has no row for ${stream}`, { data: { stream } });
  if (lines.length === 0) return head;
  const { rows: any } = await c.query('SELECT 1 FROM audit_lines WHERE stream = $1 LIMIT 1', [stream]);
  const empty = head.seq === 0 && any.length === 0;
  const seqs: number[] = [];
  const ats: number[] = [];
  const mailboxes: (string | null)[] = [];
  const actions: string[] = [];
  const results: string[] = [];
  let expected = empty ? null : head.seq + 1;
  for (let i = 0; i < lines.length; i++) {
    const entry = parseEntry(Buffer.from(lines[i]!, 'utf8'));
    if (typeof entry === 'string') throw new MemfaError('INVALID_PARAMS', `audit line ${i + 1} of this slice (${stream}) is not an audit line: ${entry}`, { data: { stream, index: i } });
    if (expected !== null && entry.seq !== expected) {
      throw new MemfaError('INVALID_PARAMS', `audit line ${i + 1} of this slice (${stream}) has seq ${entry.seq} where the chain goes on at ${expected}`, { data: { stream, index: i, seq: entry.seq } });
    }
    expected = entry.seq + 1;
    seqs.push(entry.seq);
    ats.push(Date.parse(entry.time));
    mailboxes.push(entry.mailbox);
    actions.push(entry.action);
    results.push(entry.result);
  }
  await c.query(
    `INSERT INTO audit_lines (stream, seq, at, node, mailbox, action, result, line)
     SELECT $1, u.seq, u.at, $2, u.mailbox, u.action, u.result, u.line
     FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(seq, at, mailbox, action, result, line)`,
    [stream, node, seqs, ats, mailboxes, actions, results, lines],
  );
  const next: ImportedHead = { seq: seqs.at(-1)!, hash: lineHash(Buffer.from(lines.at(-1)!, 'utf8')), floor: empty ? seqs[0]! : head.floor };
  await c.query('UPDATE audit_heads SET seq = $2, hash = $3, floor = $4 WHERE stream = $1', [stream, next.seq, next.hash, next.floor]);
  return next;
}
