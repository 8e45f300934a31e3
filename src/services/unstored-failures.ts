// Failures of mailboxes that have no stored record: kept in memory only, bounded, and forgotten
// after the lockout window (core/lockout.ts unstoredFailureExpired). Storing a record for each
// would let anyone who can reach verify grow the store without bound with made-up addresses; and
// such a mailbox has no secret of its own to guess yet (verify shows its enrolment QR code to
// whoever asks), so what a restart or the bound forgets protects nothing.
import { recordFailure, unstoredFailureExpired, type LockoutPolicy } from '../core/lockout.js';
import { emptyFailures, type FailureState } from '../core/model.js';

/** Mailboxes without a record whose failures are tracked at once; past it the oldest go first. */
export const MAX_UNSTORED_FAILURES = 10_000;

export class UnstoredFailures {
  /** By address, least recently failed first (an entry is re-inserted on each failure). */
  private readonly failures = new Map<string, FailureState>();

  constructor(
    private readonly policy: LockoutPolicy,
    private readonly max = MAX_UNSTORED_FAILURES,
  ) {}

  /** The failures of `address`, if it has any that still count. */
  get(address: string, now: number): FailureState | undefined {
    const f = this.failures.get(address);
    if (f === undefined) return undefined;
    if (!unstoredFailureExpired(f, now, this.policy)) return f;
    this.failures.delete(address);
    return undefined;
  }

  fail(address: string, now: number): void {
    const next = recordFailure(this.get(address, now) ?? emptyFailures(), now, this.policy);
    this.failures.delete(address);
    this.failures.set(address, next);
    this.sweep(now);
  }

  /** Forgets `address` (it succeeded, got a record, or an administrator unlocked it); returns what it had. */
  clear(address: string): FailureState | undefined {
    const f = this.failures.get(address);
    this.failures.delete(address);
    return f;
  }

  get size(): number {
    return this.failures.size;
  }

  /** Every tracked failure state, expired ones too (at most `max`). */
  states(): IterableIterator<FailureState> {
    return this.failures.values();
  }

  /**
   * Drops expired entries from the old end, and the oldest past the bound. An entry's expiry is
   * set by its last failure and its lock, so the old end expires first but for an entry whose
   * lock outlasts newer ones; that one waits for its turn (or for get()).
   */
  private sweep(now: number): void {
    for (const [address, f] of this.failures) {
      if (this.failures.size <= this.max && !unstoredFailureExpired(f, now, this.policy)) break;
      this.failures.delete(address);
    }
  }
}
