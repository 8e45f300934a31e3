// Runs parsed import entries through the daemon (mailbox.import, a dry run unless applying) and
// collects the report: what was (or would be) imported, and every refused line or file with its
// reason. A refusal of one entry never stops the others; a daemon that cannot be reached does.
import type { ChalkInstance } from 'chalk';
import { count } from '../../core/wording.js';
import { normaliseAddress } from '../../core/validate.js';
import { MemfaError } from '../../protocol/errors.js';
import type { ParamsOf } from '../../protocol/methods.js';
import type { ImportResult } from '../../protocol/results.js';
import type { Progress } from './progress.js';

export type ImportParams = ParamsOf<'mailbox.import'>;

export interface ImportEntry {
  /** Where it came from: "FILE" or "FILE:LINE". */
  source: string;
  params: Omit<ImportParams, 'replace' | 'dryRun'>;
  notes: string[];
}

export interface ImportProblem {
  source: string;
  /** Only a valid address is shown: anything else in that field might be a secret. */
  address: string | null;
  problem: string;
}

export interface ImportReport {
  dryRun: boolean;
  accepted: number;
  refused: number;
  mailboxes: (ImportResult & { source: string; notes: string[] })[];
  problems: ImportProblem[];
}

/** Errors that refuse one entry; any other (daemon unreachable, store failing) stops the run. */
const REFUSALS = new Set<MemfaError['code']>(['INVALID_PARAMS', 'CONFLICT', 'FORBIDDEN', 'NOT_FOUND']);

/** The address as the daemon will store it, or null when it is not one. */
export function shownAddress(value: string | undefined): string | null {
  if (value === undefined) return null;
  try {
    return normaliseAddress(value, 'address');
  } catch {
    return null;
  }
}

export async function runImport(
  call: (params: ImportParams) => Promise<ImportResult>,
  entries: ImportEntry[],
  found: ImportProblem[],
  options: { apply: boolean; replace: boolean },
  progress: Progress,
): Promise<{ report: ImportReport; stopped: MemfaError | null }> {
  const report: ImportReport = { dryRun: !options.apply, accepted: 0, refused: 0, mailboxes: [], problems: [...found] };
  const seen = new Map<string, string>();
  let stopped: MemfaError | null = null;
  for (const [i, entry] of entries.entries()) {
    progress.update(i);
    const address = shownAddress(entry.params.address);
    if (address === null) {
      report.problems.push({ source: entry.source, address: null, problem: 'address: not a valid mailbox address (local@domain)' });
      continue;
    }
    const first = seen.get(address);
    if (first !== undefined) {
      report.problems.push({ source: entry.source, address, problem: `already in this import (${first}); not imported twice` });
      continue;
    }
    seen.set(address, entry.source);
    try {
      const r = await call({ ...entry.params, address, replace: options.replace, dryRun: !options.apply });
      report.mailboxes.push({ source: entry.source, ...r, notes: entry.notes });
    } catch (err) {
      if (err instanceof MemfaError && REFUSALS.has(err.code)) {
        // The line shows the address already.
        const problem = err.message.startsWith(`${address} `) ? err.message.slice(address.length + 1) : err.message;
        report.problems.push({ source: entry.source, address, problem });
        continue;
      }
      stopped = err instanceof MemfaError ? err : new MemfaError('INTERNAL', (err as Error).message);
      break;
    }
  }
  progress.update(entries.length);
  progress.clear();
  report.problems.sort(bySource);
  report.accepted = report.mailboxes.length;
  report.refused = report.problems.length;
  return { report, stopped };
}

/** In the order of the input: by file, then by line number. */
function bySource(a: ImportProblem, b: ImportProblem): number {
  const split = (s: string): [string, number] => {
    const m = /^(.*):(\d+)$/.exec(s);
    return m === null ? [s, 0] : [m[1]!, Number(m[2])];
  };
  const [fa, la] = split(a.source);
  const [fb, lb] = split(b.source);
  return fa < fb ? -1 : fa > fb ? 1 : la - lb;
}

/** The per-line report for stderr: one line per refusal and note, never a secret. */
export function formatProblems(report: ImportReport): string[] {
  const lines: string[] = [];
  for (const p of report.problems) lines.push(`${p.source}: ${p.address === null ? '' : `${p.address}: `}${p.problem}`);
  for (const m of report.mailboxes) for (const n of m.notes) lines.push(`${m.source}: ${m.address}: note: ${n}`);
  return lines;
}

export function formatSummary(report: ImportReport, c: ChalkInstance): string {
  const replaced = report.mailboxes.filter((m) => m.replaced).length;
  const what = `${count(report.accepted, 'mailbox', 'mailboxes')}${replaced > 0 ? ` (${replaced} replacing an active secret)` : ''}`;
  const refused = report.refused > 0 ? c.red(`${report.refused} refused`) : '0 refused';
  if (report.dryRun) return `dry run: ${what} would be imported, ${refused}; nothing was written (add --apply to import)`;
  return `imported ${what}, ${refused}`;
}
