// Reading the shared audit trail back: audit.query as one statement over both streams, on the
// indexes of migrations/004_audit.sql, and verify, which walks each stream's chain in pages of
// rows (bounded memory, whatever the chain's length) with the walk the files use (check.ts).

import { ChainWalk, type StreamCheck } from '../../audit/check.js';
import { parseEntry } from '../../audit/entry.js';
import { checkLimit, type AuditQuery } from '../../audit/query.js';
import type { TrailEntry } from '../../audit/trail.js';
import type { AuditStreamName } from '../../protocol/results.js';
import type { Db } from './pool.js';
import { Params } from './sql.js';

/** Rows read per statement by verify. */
export const VERIFY_PAGE_ROWS = 5000;

/** Where a stream's lines are, for status and for verify's problems (whose `line` is the seq). */
export function streamPlace(stream: AuditStreamName): string {
  return `database audit_lines, stream ${stream}`;
}

/** The statement of queryTrail: newest first, so that a limit keeps the most recent. */
export function queryStatement(filter: AuditQuery): { text: string; values: unknown[] } {
  const p = new Params();
  const where: string[] = [];
  if (filter.mailbox !== undefined) where.push(`mailbox = ${p.add(filter.mailbox, 'text')}`);
  if (filter.domains !== undefined) where.push(`domain = ANY(${p.add(filter.domains, 'text[]')})`);
  if (filter.since !== undefined) where.push(`at >= ${p.add(filter.since.getTime(), 'bigint')}`);
  if (filter.until !== undefined) where.push(`at < ${p.add(filter.until.getTime(), 'bigint')}`);
  if (filter.result !== undefined) where.push(`result = ${p.add(filter.result, 'text')}`);
  if (filter.action !== undefined) where.push(`action = ${p.add(filter.action, 'text')}`);
  const cond = where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
  const limit = filter.limit === undefined ? '' : `LIMIT ${p.add(filter.limit, 'bigint')}`;
  return { text: `SELECT stream, line FROM audit_lines ${cond} ORDER BY at DESC, (stream = 'logins') DESC, seq DESC ${limit}`, values: p.values };
}

/**
 * Entries of both streams matching `filter`, oldest first (by time; at the same millisecond the
 * security stream's first, each stream's in its own order, as mergeByTime does); with a limit,
 * the most recent that many.
 */
export async function queryTrail(db: Db, filter: AuditQuery): Promise<TrailEntry[]> {
  checkLimit(filter.limit);
  if (filter.limit === 0) return [];
  const { text, values } = queryStatement(filter);
  const { rows } = await db.query<{ stream: AuditStreamName; line: string }>(text, values);
  const out: TrailEntry[] = [];
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i]!;
    const entry = parseEntry(Buffer.from(row.line, 'utf8'));
    // Damaged lines are verify's business; a query shows what can be read.
    if (typeof entry !== 'string') out.push({ ...entry, stream: row.stream });
  }
  return out;
}

interface LineRow {
  seq: number;
  at: number;
  mailbox: string | null;
  action: string;
  result: string;
  line: string;
}

/** The columns audit.query filters on, against what the line says (the line is what the chain covers). */
function columnsDisagree(row: LineRow, entry: { seq: number; time: string; mailbox: string | null; action: string; result: string }): string | null {
  if (row.seq !== entry.seq) return `the row's seq column (${row.seq}) is not its line's seq (${entry.seq})`;
  if (row.at !== Date.parse(entry.time)) return `the row's time column is not its line's time (${entry.time})`;
  if (row.mailbox !== entry.mailbox || row.action !== entry.action || row.result !== entry.result) {
    return "the row's mailbox, action or result column is not what its line says: the row was changed";
  }
  return null;
}

/**
 * Checks one stream's chain from its floor to the head as it was when the check began (lines
 * appended meanwhile are left for the next check): every row's line, in seq order, by ChainWalk,
 * its columns against its line, and the last line against the head row.
 */
export async function checkStream(db: Db, stream: AuditStreamName, pageRows = VERIFY_PAGE_ROWS): Promise<StreamCheck> {
  // verify's answer reads "broken at <file> line <seq>".
  const place = `${streamPlace(stream)},`;
  const { rows: heads } = await db.query<{ seq: number; hash: string; floor: number }>('SELECT seq, hash, floor FROM audit_heads WHERE stream = $1', [stream]);
  const head = heads[0];
  if (head === undefined) return { ok: false, file: place, line: 0, problem: 'the head row of this stream is missing' };
  const walk = new ChainWalk(head.floor, (from, to) => `lines ${from}-${to} are missing: rows were deleted from the start of the chain`);
  // Every line up to the head is committed (the head moves in the statement that inserts them).
  let after = 0;
  for (;;) {
    const { rows } = await db.query<LineRow>(
      'SELECT seq, at, mailbox, action, result, line FROM audit_lines WHERE stream = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4',
      [stream, after, head.seq, pageRows],
    );
    for (const row of rows) {
      const here = { file: place, line: row.seq };
      const step = walk.step(Buffer.from(row.line, 'utf8'), here);
      if ('problem' in step) return { ok: false, ...step };
      const disagree = columnsDisagree(row, step);
      if (disagree !== null) return { ok: false, ...here, problem: disagree };
    }
    if (rows.length < pageRows) break;
    after = rows[rows.length - 1]!.seq;
  }
  const last = walk.lastAt;
  if (last !== null && (walk.lastSeq !== head.seq || walk.lastHash !== head.hash)) {
    return { ok: false, ...last, problem: `the last line is not the head of the chain (seq ${head.seq}): it was changed, or lines were removed from the end` };
  }
  if (last === null && head.seq >= head.floor) {
    return { ok: false, file: place, line: head.seq, problem: `the chain has no lines but its head names line ${head.seq}: rows were deleted` };
  }
  if (walk.recordedGap !== null) return { ok: false, ...walk.recordedGap };
  // No files: the chain is the database's rows.
  return { ok: true, lines: walk.lines, files: 0, lost: walk.lost };
}
