// Checking one stream's files, oldest first: each line parses, seq rises by one, each prev is the
// hash of the line before (across files), the oldest line is the floor rotation left (or older),
// and the last line is the head the log holds. A recorded break ('audit-gap') is a problem too:
// it says lines were removed, and stays reported as long as its line is kept.

import { GENESIS_PREV, lineHash, parseEntry } from './entry.js';
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

export async function checkFiles(set: FileSet, expect: CheckExpectations): Promise<StreamCheck> {
  if (set.currentMissing && expect.open) {
    return { ok: false, file: expect.path, line: 0, problem: 'the current file is missing (deleted or moved while the daemon runs)' };
  }
  let expectedPrev: string | null = null;
  let lastSeq: number | null = null;
  let lastLocation: { file: string; line: number } | null = null;
  let lines = 0;
  let lost = 0;
  let recordedGap: { file: string; line: number; problem: string } | null = null;
  for (const file of set.files) {
    let lineNo = 0;
    for await (const { bytes, terminated } of readLines(file.handle, file.size)) {
      lineNo += 1;
      const here = { file: file.path, line: lineNo };
      if (!terminated) return { ok: false, ...here, problem: 'torn line: no trailing newline (interrupted write)' };
      const entry = parseEntry(bytes);
      if (typeof entry === 'string') return { ok: false, ...here, problem: entry };
      if (lastSeq === null) {
        if (entry.seq > expect.floor) {
          return { ok: false, ...here, problem: `lines ${expect.floor}-${entry.seq - 1} are missing: the oldest files were removed, not rotated out` };
        }
        if (entry.seq === 1 && entry.prev !== GENESIS_PREV) return { ok: false, ...here, problem: 'the first line of the chain names a line before it' };
      } else if (entry.seq !== lastSeq + 1) {
        const problem =
          entry.seq > lastSeq + 1
            ? `seq ${entry.seq} follows ${lastSeq}: ${entry.seq - lastSeq - 1} line(s) missing before this one`
            : `seq ${entry.seq} follows ${lastSeq}: out of order or duplicated`;
        return { ok: false, ...here, problem };
      }
      if (expectedPrev !== null && entry.prev !== expectedPrev && lastLocation !== null) {
        return {
          ok: false,
          ...lastLocation,
          problem: `the line does not match the hash recorded by the next line (${file.path} line ${lineNo}): it was changed, or that line's prev was`,
        };
      }
      if (entry.actor === 'daemon' && entry.action === GAP_ACTION) {
        recordedGap ??= { ...here, problem: `recorded break at ${entry.time}: ${describeGap(entry.reason, entry.details)}` };
      }
      if (entry.actor === 'daemon' && entry.action === LOST_ACTION && typeof entry.details?.['lines'] === 'number') lost += entry.details['lines'];
      expectedPrev = lineHash(bytes);
      lastSeq = entry.seq;
      lastLocation = here;
      lines += 1;
    }
  }
  if (expect.open && lastLocation !== null && (expectedPrev !== expect.head.hash || lastSeq !== expect.head.seq)) {
    return { ok: false, ...lastLocation, problem: 'the last line is not the line the daemon last wrote: it was changed, or lines were removed from the end' };
  }
  if (expect.open && lastLocation === null && expect.head.seq !== 0 && expect.floor <= expect.head.seq) {
    return { ok: false, file: expect.path, line: 0, problem: 'the log is empty but the daemon has written entries: files were removed' };
  }
  if (recordedGap !== null) return { ok: false, ...recordedGap };
  return { ok: true, lines, files: set.files.length, lost };
}
