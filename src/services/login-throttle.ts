// The throttle of wrong app passwords on mail-protocol logins (login.check), in memory: per
// client source (as verify's throttle groups addresses) and per mailbox. It is apart from the
// second-factor lockout and never touches a mailbox's stored failures: a mail client stuck on an
// old password must not lock its owner out of webmail. A login from one of the mailbox's fresh
// remembered addresses is never refused by it, so that whoever guesses from elsewhere can slow
// the owner's clients only where the owner never passed a second factor (as core/lockout.ts does
// for the second factor). A restart forgets it.
//
// Each check is synchronous (login.check awaits nothing), so check-then-count needs no
// reservation: no other check runs in between.
import { ipSource, ipThrottleState, recordIpFailure, type IpThrottlePolicy, type IpThrottleRecord, type SourceGrouping } from '../core/lockout.js';
import type { MemfaConfig } from '../config/types.js';

/** Entries kept per map at most; past it the one least recently touched goes first. */
export const MAX_TRACKED = 100_000;

export type LoginThrottleRefusal = { until: number; by: 'source' | 'mailbox' };

/** A block a wrong app password started: of the client's source (with the limit it reached), or of the mailbox. */
export type LoginThrottleBlock = { by: 'source'; source: string; until: number; reason: 'ip-failures' | 'ip-mailboxes' } | { by: 'mailbox'; until: number; reason: 'mailbox-failures' };

class Counters {
  private readonly entries = new Map<string, IpThrottleRecord>();

  constructor(readonly policy: IpThrottlePolicy) {}

  blockedUntil(key: string, now: number): number | null {
    const state = ipThrottleState(this.entries.get(key), now, this.policy);
    return state.locked ? state.until : null;
  }

  /** Counts a failure; returns the block it started, if it started one. */
  fail(key: string, member: string, now: number): { until: number; reason: 'ip-failures' | 'ip-mailboxes' } | null {
    const before = this.entries.get(key);
    const wasBlocked = ipThrottleState(before, now, this.policy).locked;
    const next = recordIpFailure(before, member, now, this.policy);
    // Re-inserted so that the map's order is least recently touched first.
    this.entries.delete(key);
    this.entries.set(key, next);
    if (this.entries.size > MAX_TRACKED) this.entries.delete(this.entries.keys().next().value!);
    this.sweep(now);
    const after = ipThrottleState(next, now, this.policy);
    return wasBlocked || !after.locked ? null : { until: after.until, reason: after.reason };
  }

  /** Drops entries at the old end whose window and block are over; stops at the first that still counts. */
  private sweep(now: number): void {
    for (const [key, rec] of this.entries) {
      const over = now - rec.windowStart >= this.policy.windowMs && (rec.lockedUntil === null || now >= rec.lockedUntil);
      if (!over) break;
      this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

export class LoginThrottle {
  private readonly sources: Counters;
  private readonly mailboxes: Counters;
  private readonly grouping: SourceGrouping;

  constructor(config: MemfaConfig) {
    const l = config.lockout;
    const windowMs = l.ipWindowSeconds * 1000;
    const blockMs = l.ipBlockSeconds * 1000;
    this.sources = new Counters({ maxFailures: l.ipMaxFailures, windowMs, distinctMailboxes: l.ipDistinctMailboxes, blockMs });
    // A mailbox's failures come from any number of sources; only their count matters.
    this.mailboxes = new Counters({ maxFailures: config.appPasswords.mailboxMaxFailures, windowMs, distinctMailboxes: Number.MAX_SAFE_INTEGER, blockMs });
    this.grouping = { ipv4Prefix: l.ipv4Prefix, ipv6Prefix: l.ipv6Prefix };
  }

  /** Whether a login from `ip` to `address` is refused now; never when `known` (a remembered address of the mailbox). */
  refusal(ip: string, address: string, known: boolean, now: number): LoginThrottleRefusal | null {
    if (known) return null;
    const source = this.sources.blockedUntil(ipSource(ip, this.grouping), now);
    if (source !== null) return { until: source, by: 'source' };
    const mailbox = this.mailboxes.blockedUntil(address, now);
    return mailbox === null ? null : { until: mailbox, by: 'mailbox' };
  }

  /** One wrong app password from `ip` for `address`; returns the blocks it started (for the log). */
  fail(ip: string, address: string, now: number): LoginThrottleBlock[] {
    const source = ipSource(ip, this.grouping);
    const blocks: LoginThrottleBlock[] = [];
    const bySource = this.sources.fail(source, address, now);
    if (bySource !== null) blocks.push({ by: 'source', source, ...bySource });
    const byMailbox = this.mailboxes.fail(address, '', now);
    if (byMailbox !== null) blocks.push({ by: 'mailbox', until: byMailbox.until, reason: 'mailbox-failures' });
    return blocks;
  }

  get size(): { sources: number; mailboxes: number } {
    return { sources: this.sources.size, mailboxes: this.mailboxes.size };
  }
}
