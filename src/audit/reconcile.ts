// What is on disk against what should be: the head the store anchored (or, while the log runs, the
// head it holds in memory) and the floor, the seq of the oldest line that rotation has kept.
//
// - The last line on disk is the expected head: nothing is missing.
// - The disk goes further and passes through the expected head: lines were written after the
//   anchor was last saved (a crash in that instant); nothing is missing.
// - The disk stops short of the expected head: lines were cut from the end, or every file was
//   removed.
// - The expected head is not on disk although later lines are: the end was rewritten.
// - The oldest kept line is younger than the floor, and no file past `keep` explains it: the
//   oldest files were removed, not rotated out.
//
// Each finding becomes an explicit 'audit-gap' line, so that the chain on disk stays internally
// consistent (the log continues from the last line on disk) and the break is recorded where
// `audit verify` finds it.

import type { Head, LineLookup } from './disk.js';
import type { AuditEvent } from './entry.js';

export const GAP_ACTION = 'audit-gap';

export type GapReason = 'truncated' | 'deleted' | 'rewritten' | 'oldest-removed' | 'anchor-invalid';

export interface Gap {
  reason: GapReason;
  /** The seqs of the missing lines, where known. */
  missing: { from: number; to: number } | null;
  expectedSeq: number | null;
  foundSeq: number;
}

/** What the log expects: its head and floor (see the top of this file). */
export interface Expected {
  seq: number;
  hash: string;
  floor: number;
}

export interface Found {
  head: Head | null;
  oldestSeq: number | null;
  beyondKeep: boolean;
}

export type Note = { event: 'audit-anchor-behind' | 'audit-files-beyond-keep'; fields: Record<string, unknown> };

export interface Reconciled {
  gaps: Gap[];
  /** Not breaks, but worth a warning. */
  notes: Note[];
}

export async function reconcile(found: Found, expected: Expected, lookup: (seq: number) => Promise<LineLookup>): Promise<Reconciled> {
  const gaps: Gap[] = [];
  const notes: Note[] = [];
  const foundSeq = found.head?.seq ?? 0;
  let headOk = true;
  // Nothing kept at all (rotation with keep 0 removes the current file) is not a removal.
  const nothingKept = found.head === null && expected.floor > expected.seq;
  if (expected.seq > 0 && !nothingKept) {
    if (foundSeq === expected.seq) {
      if (found.head?.hash !== expected.hash) gaps.push({ reason: 'rewritten', missing: null, expectedSeq: expected.seq, foundSeq });
    } else if (foundSeq > expected.seq) {
      const at = await lookup(expected.seq);
      if (at === 'older-than-kept') {
        // The anchor is older than every kept line (the store was restored from an old backup):
        // nothing to compare with; the floor check below still applies.
        notes.push({ event: 'audit-anchor-behind', fields: { anchoredSeq: expected.seq, oldestSeq: found.oldestSeq } });
      } else if (at === 'not-found' || at.hash !== expected.hash) {
        gaps.push({ reason: 'rewritten', missing: null, expectedSeq: expected.seq, foundSeq });
      }
    } else {
      headOk = false;
      const deleted = found.head === null;
      const from = deleted ? Math.min(expected.floor, expected.seq) : foundSeq + 1;
      gaps.push({ reason: deleted ? 'deleted' : 'truncated', missing: { from, to: expected.seq }, expectedSeq: expected.seq, foundSeq });
    }
  }
  if (headOk && found.oldestSeq !== null && found.oldestSeq > expected.floor) {
    if (found.beyondKeep) {
      notes.push({ event: 'audit-files-beyond-keep', fields: { floor: expected.floor, oldestSeq: found.oldestSeq } });
    } else {
      gaps.push({ reason: 'oldest-removed', missing: { from: expected.floor, to: found.oldestSeq - 1 }, expectedSeq: null, foundSeq });
    }
  }
  return { gaps, notes };
}

/** The text `audit verify` and the daemon's log give for a gap. */
export function describeGap(reason: string | null, details: Record<string, unknown> | undefined): string {
  const missing = details?.['missing'] as { from?: unknown; to?: unknown } | undefined;
  const range = typeof missing?.from === 'number' && typeof missing.to === 'number' ? `lines ${missing.from}-${missing.to}` : 'lines';
  switch (reason) {
    case 'truncated':
      return `${range} are missing: they were cut from the end of the log`;
    case 'deleted':
      return `${range} were missing: the log files were removed`;
    case 'oldest-removed':
      return `${range} were missing: the oldest files were removed, not rotated out`;
    case 'rewritten':
      return `the line anchored as seq ${String(details?.['expectedSeq'])} is not on disk: the end of the log was rewritten`;
    case 'anchor-invalid':
      return 'the anchor in the store is not valid: the chain could not be checked';
    default:
      return `a break of kind ${reason ?? 'unknown'}`;
  }
}

/** The 'audit-gap' line recording a break, and the fields the daemon's log reports it with. */
export function gapLine(gap: Gap, expectedHash: string | null, detected: 'start' | 'running'): { line: AuditEvent; fields: Record<string, unknown> } {
  const details: Record<string, unknown> = { missing: gap.missing, expectedSeq: gap.expectedSeq, foundSeq: gap.foundSeq, detected };
  if (expectedHash !== null && gap.expectedSeq !== null) details['expectedHash'] = expectedHash;
  return {
    line: { actor: 'daemon', action: GAP_ACTION, result: 'error', reason: gap.reason, details },
    fields: { reason: gap.reason, problem: describeGap(gap.reason, details), ...details },
  };
}
