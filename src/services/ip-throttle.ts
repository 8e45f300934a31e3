// The per-source throttle of code checks: the rules are core/lockout.ts's, the state is the state
// ports' (SourceStore), so that every daemon counts the same attempts; this module groups client
// addresses into sources as the configuration says and names them for administrators.
import {
  ipSource,
  ipSourceBlock,
  ipSourceFailures,
  type AttemptOutcome,
  type IpRefusal,
  type IpSourceBlock,
  type IpThrottlePolicy,
  type SourceGrouping,
} from '../core/lockout.js';
import { normaliseIp } from '../core/validate.js';
import type { MemfaConfig } from '../config/types.js';
import { invalidParams } from '../protocol/errors.js';
import type { AttemptToSettle, CensusReads, SourceStore } from './store-ports.js';

/** A reserved attempt: settle it exactly once, whatever happens to the check. */
export interface Reserved {
  source: string;
  mailbox: string;
  creates: boolean;
}

export class SourceThrottle {
  readonly policy: IpThrottlePolicy;
  readonly grouping: SourceGrouping;

  constructor(
    config: MemfaConfig,
    private readonly state: SourceStore & Pick<CensusReads, 'sourceStates'>,
  ) {
    const l = config.lockout;
    this.policy = { maxFailures: l.ipMaxFailures, windowMs: l.ipWindowSeconds * 1000, distinctMailboxes: l.ipDistinctMailboxes, blockMs: l.ipBlockSeconds * 1000 };
    this.grouping = { ipv4Prefix: l.ipv4Prefix, ipv6Prefix: l.ipv6Prefix };
  }

  /**
   * Reserves an attempt from `ip` on `mailbox`, atomically with every other daemon's: the
   * attempts in flight count toward the limits until they settle. `creates`: a right code would
   * store a new mailbox record. A refusal says until when.
   */
  reserve(ip: string, mailbox: string, creates: boolean, now: number): Promise<Reserved | IpRefusal> {
    const source = ipSource(ip, this.grouping);
    // Not an async function: on every code check, one promise fewer than awaiting inside one.
    return this.state.reserveAttempt(source, mailbox, creates, now, this.policy).then((r) => (r.granted ? { source, mailbox, creates } : { until: r.until, reason: r.reason }));
  }

  /** A reserved attempt as a success's effects carry it (SuccessEffects.attempt), not yet settled. */
  toSettle(reserved: Reserved, now: number): AttemptToSettle {
    return { source: reserved.source, mailbox: reserved.mailbox, creates: reserved.creates, now, policy: this.policy, settled: false };
  }

  /** Settles a reserved attempt; resolves with the block it started, if it started one. */
  settle(reserved: Reserved, outcome: AttemptOutcome, now: number): Promise<IpSourceBlock | null> {
    return this.state.settleAttempt(reserved.source, reserved.mailbox, reserved.creates, outcome, now, this.policy);
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
  async blocks(now: number): Promise<({ source: string } & IpSourceBlock)[]> {
    const out: ({ source: string } & IpSourceBlock)[] = [];
    for (const { source, state } of await this.state.listSources()) {
      const block = ipSourceBlock(state, now, this.policy);
      if (block !== null) out.push({ source, ...block });
    }
    return out;
  }

  /**
   * How many sources are blocked at `now` (a scan of every tracked source, for the metrics); none
   * where the state ports do not keep them in memory (CensusReads).
   */
  blockedCount(now: number): number {
    const states = this.state.sourceStates?.();
    if (states === undefined) return 0;
    let n = 0;
    for (const state of states) if (ipSourceBlock(state, now, this.policy) !== null) n++;
    return n;
  }

  /**
   * Forgets the failures, block and enrolment count of `source` (attempts in flight still count
   * until they settle). Returns its block and window failures before, or null when it had none.
   */
  async clear(source: string, now: number): Promise<{ block: IpSourceBlock | null; failures: number } | null> {
    const state = await this.state.clearSource(source, now, this.policy);
    return state === null ? null : { block: ipSourceBlock(state, now, this.policy), failures: ipSourceFailures(state, now, this.policy) };
  }

  /** Clears every source (see clear); returns how many had a block or failures. */
  async clearAll(now: number): Promise<number> {
    let cleared = 0;
    for (const { source } of await this.state.listSources()) if ((await this.clear(source, now)) !== null) cleared++;
    return cleared;
  }
}
