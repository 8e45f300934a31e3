// The per-source throttle of code checks (core/lockout.ts has the rules): its state, in memory.
// A restart forgets it; the per-mailbox counters, which are stored, still hold.
import {
  clearIpSource,
  ipSource,
  ipSourceBlock,
  ipSourceFailures,
  ipSourceIdle,
  reserveIpAttempt,
  settleIpAttempt,
  type AttemptOutcome,
  type IpRefusal,
  type IpSourceBlock,
  type IpSourceState,
  type IpThrottlePolicy,
  type SourceGrouping,
} from '../core/lockout.js';
import { normaliseIp } from '../core/validate.js';
import type { MemfaConfig } from '../config/types.js';
import { invalidParams } from '../protocol/errors.js';

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

  /** Settles a reserved attempt; returns the block it started, if it started one. */
  settle(reserved: Reserved, outcome: AttemptOutcome, now: number): IpSourceBlock | null {
    const before = this.sources.get(reserved.source);
    const wasBlocked = before !== undefined && ipSourceBlock(before, now, this.policy) !== null;
    const next = settleIpAttempt(before, reserved.mailbox, reserved.creates, outcome, now, this.policy);
    if (next === null) this.sources.delete(reserved.source);
    else this.put(reserved.source, next);
    this.sweep(now);
    return wasBlocked || next === null ? null : ipSourceBlock(next, now, this.policy);
  }

  get size(): number {
    return this.sources.size;
  }

  /**
   * The source `text` names, grouped as the throttle groups addresses: an address (of any host in
   * the source), or a source as blocks() gives it (a network of the grouping's prefix).
   */
  sourceOf(text: string, param = 'source'): string {
    const slash = text.indexOf('/');
    const ip = normaliseIp(slash === -1 ? text : text.slice(0, slash), param);
    if (slash !== -1) {
      const family = ip.includes(':') ? 6 : 4;
      const prefix = family === 6 ? this.grouping.ipv6Prefix : this.grouping.ipv4Prefix;
      if (text.slice(slash + 1) !== String(prefix)) {
        throw invalidParams(`${param}: IPv${family} sources are /${prefix} networks (lockout.ipv${family}Prefix); give an address or its /${prefix}`, { param });
      }
    }
    return ipSource(ip, this.grouping);
  }

  /** The sources blocked at `now`, each with its block. */
  blocks(now: number): ({ source: string } & IpSourceBlock)[] {
    const out: ({ source: string } & IpSourceBlock)[] = [];
    for (const [source, state] of this.sources) {
      const block = ipSourceBlock(state, now, this.policy);
      if (block !== null) out.push({ source, ...block });
    }
    return out;
  }

  /** How many sources are blocked at `now` (a scan of every tracked source). */
  blockedCount(now: number): number {
    let n = 0;
    for (const state of this.sources.values()) if (ipSourceBlock(state, now, this.policy) !== null) n++;
    return n;
  }

  /**
   * Forgets the failures, block and enrolment count of `source` (attempts in flight still count
   * until they settle). Returns its block and window failures before, or null when it had none.
   */
  clear(source: string, now: number): { block: IpSourceBlock | null; failures: number } | null {
    const state = this.sources.get(source);
    if (state === undefined) return null;
    const block = ipSourceBlock(state, now, this.policy);
    const failures = ipSourceFailures(state, now, this.policy);
    if (block === null && failures === 0) return null;
    const next = clearIpSource(state, now);
    if (next === null) this.sources.delete(source);
    else this.sources.set(source, next);
    return { block, failures };
  }

  /** Clears every source (see clear); returns how many had a block or failures. */
  clearAll(now: number): number {
    let cleared = 0;
    for (const source of [...this.sources.keys()]) if (this.clear(source, now) !== null) cleared++;
    return cleared;
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
