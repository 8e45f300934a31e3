// Checking one stream's files, oldest first: each line parses, seq rises by one, each prev is the
// hash of the line before (across files), the oldest line is the floor rotation left (or older),
// and the last line is the head the log holds. A recorded break ('audit-gap') is a problem too:
// it says lines were removed, and stays reported as long as its line is kept.

import { GENESIS_PREV, lineHash, parseEntry, type AuditEntry } from './entry.js';
import type { Head } from './disk.js';
import { readLines } from '../files/append-log.js';
import type { FileSet } from './files.js';
import { LOST_ACTION } from './losses.js';
import { describeGap, GAP_ACTION } from './reconcile.js';

export type StreamCheck =
  | { ok: true; lines: number; files: number; lost: number }
  | { ok: false; file: string; line: number; problem: string };

export interface CheckExpectations {
  head: Head;
  floor: number;
  /** Whether the log is open: only then are the head and the current file known. */
  open: boolean;
  path: string;
}

/** Where a line is: its file (or table) and line number (or seq). */
export interface LineAt {
  file: string;
  line: number;
}

export type ChainBreak = LineAt & { problem: string };

/**
 * One chain's lines, oldest first, wherever they are kept (files here, a table in
 * store/postgres/audit-check.ts): each parses, seq rises by one, each prev is the hash of the line
 * before, the oldest line is the floor (or older), recorded breaks and losses are noted.
 */
export class ChainWalk {
  lines = 0;
  lost = 0;
  /** The first recorded break ('audit-gap' line), reported once the rest of the chain holds. */
  recordedGap: ChainBreak | null = null;
  /** The seq and hash of the last line walked, and where it is. */
  lastSeq: number | null = null;
  lastHash: string | null = null;
  lastAt: LineAt | null = null;
  readonly #floor: number;
  readonly #missingOldest: (from: number, to: number) => string;

  /** `missingOldest` says what it means that lines from..to below the oldest one are missing. */
  constructor(floor: number, missingOldest: (from: number, to: number) => string) {
    this.#floor = floor;
    this.#missingOldest = missingOldest;
  }

  /** The next line's entry, or the chain's first problem (at this line or the one before). */
  step(bytes: Buffer, here: LineAt): AuditEntry | ChainBreak {
    const entry = parseEntry(bytes);
    if (typeof entry === 'string') return { ...here, problem: entry };
    if (this.lastSeq === null) {
      if (entry.seq > this.#floor) return { ...here, problem: this.#missingOldest(this.#floor, entry.seq - 1) };
      if (entry.seq === 1 && entry.prev !== GENESIS_PREV) return { ...here, problem: 'the first line of the chain names a line before it' };
    } else if (entry.seq !== this.lastSeq + 1) {
      const problem =
        entry.seq > this.lastSeq + 1
          ? `seq ${entry.seq} follows ${this.lastSeq}: ${entry.seq - this.lastSeq - 1} line(s) missing before this one`
          : `seq ${entry.seq} follows ${this.lastSeq}: out of order or duplicated`;
      return { ...here, problem };
    }
    if (this.lastHash !== null && entry.prev !== this.lastHash && this.lastAt !== null) {
      return {
        ...this.lastAt,
        problem: `the line does not match the hash recorded by the next line (${here.file} line ${here.line}): it was changed, or that line's prev was`,
      };
    }
    if (entry.actor === 'daemon' && entry.action === GAP_ACTION) {
      this.recordedGap ??= { ...here, problem: `recorded break at ${entry.time}: ${describeGap(entry.reason, entry.details)}` };
    }
    if (entry.actor === 'daemon' && entry.action === LOST_ACTION && typeof entry.details?.['lines'] === 'number') this.lost += entry.details['lines'];
    this.lastHash = lineHash(bytes);
    this.lastSeq = entry.seq;
    this.lastAt = here;
    this.lines += 1;
    return entry;
  }
}

export async function checkFiles(set: FileSet, expect: CheckExpectations): Promise<StreamCheck> {
  if (set.currentMissing && expect.open) {
    return { ok: false, file: expect.path, line: 0, problem: 'the current file is missing (deleted or moved while the daemon runs)' };
  }
  const walk = new ChainWalk(expect.floor, (from, to) => `lines ${from}-${to} are missing: the oldest files were removed, not rotated out`);
  for (const file of set.files) {
    let lineNo = 0;
    for await (const { bytes, terminated } of readLines(file.handle, file.size)) {
      lineNo += 1;
      const here = { file: file.path, line: lineNo };
      if (!terminated) return { ok: false, ...here, problem: 'torn line: no trailing newline (interrupted write)' };
      const step = walk.step(bytes, here);
      if ('problem' in step) return { ok: false, ...step };
    }
  }
  const last = walk.lastAt;
  if (expect.open && last !== null && (walk.lastHash !== expect.head.hash || walk.lastSeq !== expect.head.seq)) {
    return { ok: false, ...last, problem: 'the last line is not the line the daemon last wrote: it was changed, or lines were removed from the end' };
  }
  if (expect.open && last === null && expect.head.seq !== 0 && expect.floor <= expect.head.seq) {
    return { ok: false, file: expect.path, line: 0, problem: 'the log is empty but the daemon has written entries: files were removed' };
  }
  if (walk.recordedGap !== null) return { ok: false, ...walk.recordedGap };
  return { ok: true, lines: walk.lines, files: set.files.length, lost: walk.lost };
}
