// The per-source throttle of code checks (core/lockout.ts has the rules): its state, in memory.
// A restart forgets it; the per-mailbox counters, which are stored, still hold.
import {
  ipSource,
  ipSourceIdle,
  reserveIpAttempt,
  settleIpAttempt,
  type AttemptOutcome,
  type IpRefusal,
  type IpSourceState,
  type IpThrottlePolicy,
  type SourceGrouping,
} from '../core/lockout.js';
import type { MemfaConfig } from '../config/types.js';

/** Sources tracked at once; past it the one least recently touched goes first. */
export const MAX_TRACKED_SOURCES = 100_000;

/** A reserved attempt: settle it exactly once, whatever happens to the check. */
export interface Reserved {
  source: string;
  mailbox: string;
  creates: boolean;
}

export class SourceThrottle {
  private readonly sources = new Map<string, IpSourceState>();
  readonly policy: IpThrottlePolicy;
  readonly grouping: SourceGrouping;

  constructor(config: MemfaConfig) {
    const l = config.lockout;
    this.policy = { maxFailures: l.ipMaxFailures, windowMs: l.ipWindowSeconds * 1000, distinctMailboxes: l.ipDistinctMailboxes, blockMs: l.ipBlockSeconds * 1000 };
    this.grouping = { ipv4Prefix: l.ipv4Prefix, ipv6Prefix: l.ipv6Prefix };
  }

  /**
   * Reserves an attempt from `ip` on `mailbox` (synchronously: the caller must not await between
   * this and deciding to check the code, or concurrent attempts would all pass); `creates`: a right
   * code would store a new mailbox record. A refusal says until when.
   */
  reserve(ip: string, mailbox: string, creates: boolean, now: number): Reserved | IpRefusal {
    const source = ipSource(ip, this.grouping);
    const r = reserveIpAttempt(this.sources.get(source), mailbox, creates, now, this.policy);
    if (!r.granted) return { until: r.until, reason: r.reason };
    this.put(source, r.state);
    return { source, mailbox, creates };
  }

  settle(reserved: Reserved, outcome: AttemptOutcome, now: number): void {
    const next = settleIpAttempt(this.sources.get(reserved.source), reserved.mailbox, reserved.creates, outcome, now, this.policy);
    if (next === null) this.sources.delete(reserved.source);
    else this.put(reserved.source, next);
    this.sweep(now);
  }

  get size(): number {
    return this.sources.size;
  }

  private put(source: string, state: IpSourceState): void {
    // Re-inserted so that the map's order is least recently touched first; past the cap the oldest
    // goes, in O(1), so that a flood of sources costs neither memory nor scans.
    this.sources.delete(source);
    this.sources.set(source, state);
    if (this.sources.size > MAX_TRACKED_SOURCES) this.sources.delete(this.sources.keys().next().value!);
  }

  /**
   * Drops the sources at the old end whose state no longer matters (their window and block are
   * over), so that the map shrinks back once a flood of sources has passed. It stops at the first
   * that still matters: the cost is the entries dropped, and one more.
   */
  private sweep(now: number): void {
    for (const [source, state] of this.sources) {
      if (!ipSourceIdle(state, now, this.policy)) break;
      this.sources.delete(source);
    }
  }
}
