// How many mailboxes are locked and client sources blocked, for the metrics. Locks end with time,
// so no count kept on writes stays true; the census scans instead, at most once per
// LOCK_CENSUS_MAX_AGE_MS whatever the scrape rate: a scrape within that time gets the last count.
// The scan reads memory only and skips a mailbox that never failed with one comparison (the store
// shares one empty failure state among them): at 100,000 mailboxes a few milliseconds.
import { lockState, type LockState } from '../core/lockout.js';
import type { FailureState, MailboxFailures } from '../core/model.js';
import type { SourceThrottle } from './ip-throttle.js';
import type { BackendLockCounts } from './store-ports.js';

export const LOCK_CENSUS_MAX_AGE_MS = 30_000;

/**
 * lockout: mailboxes locked for a while after repeated failures (stored or not); hardLock: locked
 * until an administrator unlocks them; blockedSources: client sources (addresses, grouped by
 * lockout.ipv4Prefix/ipv6Prefix) blocked now; countedAt: epoch ms of the scan.
 */
export type LockCounts = BackendLockCounts;

/** The lock that weighs most of a mailbox's two (remembered addresses, elsewhere): a hard lock over a timed one. */
function heavier(a: LockState, b: LockState): LockState {
  if (!a.locked) return b;
  if (!b.locked) return a;
  return a.reason === 'hard-lock' ? a : b;
}

const UNLOCKED: LockState = { locked: false };

function stateOf(f: FailureState | null, now: number): LockState {
  return f === null ? UNLOCKED : lockState(f, now);
}

/** Counts the locked mailboxes among `records` and `unstored` at `now`. Pure. */
export function countLocks(records: Iterable<{ failures: MailboxFailures }>, unstored: Iterable<FailureState>, now: number): { lockout: number; hardLock: number } {
  let lockout = 0;
  let hardLock = 0;
  const add = (lock: LockState) => {
    if (!lock.locked) return;
    if (lock.reason === 'hard-lock') hardLock++;
    else lockout++;
  };
  for (const { failures: f } of records) {
    if (f.known === null && f.elsewhere === null) continue;
    add(heavier(stateOf(f.known, now), stateOf(f.elsewhere, now)));
  }
  for (const f of unstored) add(lockState(f, now));
  return { lockout, hardLock };
}

export class LockCensus {
  private last: LockCounts | null = null;

  constructor(
    private readonly mailboxes: () => Iterable<{ failures: MailboxFailures }>,
    /** The failures kept for mailboxes without a record (CensusReads unstoredFailureStates). */
    private readonly unstored: { states(): Iterable<FailureState> },
    private readonly throttle: Pick<SourceThrottle, 'blockedCount'>,
    private readonly clock: () => number,
    private readonly maxAgeMs = LOCK_CENSUS_MAX_AGE_MS,
    /** A backend's own counts (CensusReads lockCounts), where it keeps no states to scan. */
    private readonly counted?: (now: number, maxAgeMs: number) => LockCounts | undefined,
  ) {}

  counts(): LockCounts {
    const now = this.clock();
    if (this.counted !== undefined) {
      // The backend counts in the background, at most once per interval: nothing counted yet is none.
      const c = this.counted(now, this.maxAgeMs);
      if (c !== undefined) return c;
    }
    if (this.last !== null && now - this.last.countedAt < this.maxAgeMs && now >= this.last.countedAt) return this.last;
    const mailboxes = countLocks(this.mailboxes(), this.unstored.states(), now);
    this.last = { ...mailboxes, blockedSources: this.throttle.blockedCount(now), countedAt: now };
    return this.last;
  }
}
