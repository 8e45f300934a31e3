// The daemon's heap policy: how far V8 lets the heap grow past the live data before a full GC.
//
// After each full GC, V8 sets the next limit to live size × a factor it picks from GC and
// allocation speed, up to 4 on a machine with memory. The daemon holds a large, long-lived store
// (100,000 mailboxes ≈ 80 MB live) and, under load, allocates fast, so V8 picks the maximum:
// measured at 100,000 mailboxes, the heap grew to ~430 MB, mostly garbage, before the next full GC
// (peak RSS 350–560 MB; issue #7's target is 300).
//
// --heap-growing-percent fixes that factor. It is a soft policy, not a cap: the limit follows the
// live data, so a store that keeps growing gets a heap that keeps growing. A hard limit
// (--max-old-space-size) would instead turn growth into an out-of-memory crash, and memfa must not
// impose one. What the policy costs is more frequent full GCs (mostly incremental, a few ms of
// pause each on a 100 MB heap). Measured at 100,000 mailboxes under the benchmark's load (peak RSS;
// p99 of writes): V8's own choice 310–360 MB (400–570 MB before records were compacted, see
// store/records.ts); 100 % 287–315 MB; 75 % 272–293 MB, p99 as without a
// policy (15–22 ms); 50 % 256–272 MB, but p99 of writes up to 36 ms (target 25).
//
// V8 reads the flag each time it recomputes the limit after a GC, so setting it at run time works
// (unlike the heap size limits, fixed when the heap is created, which is why setting
// --max-old-space-size at run time has no effect). An operator who gives node the flag
// (node --heap-growing-percent=N bin/memfa daemon; NODE_OPTIONS does not accept it) keeps their
// value.
import v8 from 'node:v8';
import type { Logger } from './logger.js';

/** The heap may grow to live × 1.75 (plus the young generation) before a full GC. */
export const HEAP_GROWING_PERCENT = 75;

export interface HeapPolicyOptions {
  /** Node's own options (process.execArgv). */
  execArgv?: readonly string[];
  /** v8.setFlagsFromString; tests pass a recorder. */
  setFlags?: (flags: string) => void;
}

/** The value node was given with --heap-growing-percent (V8 accepts - and _ alike), if any. */
function operatorValue(execArgv: readonly string[]): string | null {
  for (const a of execArgv) {
    const m = /^--heap[-_]growing[-_]percent(?:=(.*))?$/.exec(a);
    if (m) return m[1] ?? 'given';
  }
  return null;
}

/**
 * Applies the policy to this process and logs it; returns the percent in force ('given' when node
 * got the flag with its value as a separate argument). Call once, first thing in the daemon.
 */
export function applyHeapPolicy(log: Logger, options: HeapPolicyOptions = {}): string {
  const given = operatorValue(options.execArgv ?? process.execArgv);
  if (given !== null) {
    log.info('heap-policy', { heapGrowingPercent: given, setBy: 'node-option' });
    return given;
  }
  (options.setFlags ?? v8.setFlagsFromString)(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  log.info('heap-policy', { heapGrowingPercent: String(HEAP_GROWING_PERCENT), setBy: 'memfa' });
  return String(HEAP_GROWING_PERCENT);
}
