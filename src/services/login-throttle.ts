// The throttle of wrong app passwords on mail-protocol logins (login.check): per client source
// (as verify's throttle groups addresses) and per mailbox, in failure windows kept by the state
// ports (WindowCounterStore), so that every daemon counts the same failures. It is apart from the
// second-factor lockout and never touches a mailbox's stored failures: a mail client stuck on an
// old password must not lock its owner out of webmail. A login from one of the mailbox's fresh
// remembered addresses is never refused by it, so that whoever guesses from elsewhere can slow
// the owner's clients only where the owner never passed a second factor (as core/lockout.ts does
// for the second factor).
import { ipSource, ipThrottleState, type IpThrottlePolicy, type SourceGrouping } from '../core/lockout.js';
import type { MemfaConfig } from '../config/types.js';
import type { WindowCounterStore } from './store-ports.js';

/** The scopes of the windows this throttle keeps (WindowCounterStore's first argument). */
export const SOURCE_SCOPE = 'login-source';
export const MAILBOX_SCOPE = 'login-mailbox';

export type LoginThrottleRefusal = { until: number; by: 'source' | 'mailbox' };

/** A block a wrong app password started: of the client's source (with the limit it reached), or of the mailbox. */
export type LoginThrottleBlock = { by: 'source'; source: string; until: number; reason: 'ip-failures' | 'ip-mailboxes' } | { by: 'mailbox'; until: number; reason: 'mailbox-failures' };

export class LoginThrottle {
  private readonly sources: IpThrottlePolicy;
  private readonly mailboxes: IpThrottlePolicy;
  private readonly grouping: SourceGrouping;

  constructor(
    config: MemfaConfig,
    private readonly state: WindowCounterStore,
  ) {
    const l = config.lockout;
    const windowMs = l.ipWindowSeconds * 1000;
    const blockMs = l.ipBlockSeconds * 1000;
    this.sources = { maxFailures: l.ipMaxFailures, windowMs, distinctMailboxes: l.ipDistinctMailboxes, blockMs };
    // A mailbox's failures come from any number of sources; only their count matters.
    this.mailboxes = { maxFailures: config.appPasswords.mailboxMaxFailures, windowMs, distinctMailboxes: Number.MAX_SAFE_INTEGER, blockMs };
    this.grouping = { ipv4Prefix: l.ipv4Prefix, ipv6Prefix: l.ipv6Prefix };
  }

  /** Whether a login from `ip` to `address` is refused now; never when `known` (a remembered address of the mailbox). */
  async refusal(ip: string, address: string, known: boolean, now: number): Promise<LoginThrottleRefusal | null> {
    if (known) return null;
    const source = ipThrottleState(await this.state.windowState(SOURCE_SCOPE, ipSource(ip, this.grouping)), now, this.sources);
    if (source.locked) return { until: source.until, by: 'source' };
    const mailbox = ipThrottleState(await this.state.windowState(MAILBOX_SCOPE, address), now, this.mailboxes);
    return mailbox.locked ? { until: mailbox.until, by: 'mailbox' } : null;
  }

  /** One wrong app password from `ip` for `address`; resolves with the blocks it started (for the log). */
  async fail(ip: string, address: string, now: number): Promise<LoginThrottleBlock[]> {
    const source = ipSource(ip, this.grouping);
    const blocks: LoginThrottleBlock[] = [];
    const bySource = await this.state.recordWindowFailure(SOURCE_SCOPE, source, address, now, this.sources);
    if (bySource.started !== null) blocks.push({ by: 'source', source, until: bySource.started.until, reason: bySource.started.reason });
    const byMailbox = await this.state.recordWindowFailure(MAILBOX_SCOPE, address, '', now, this.mailboxes);
    if (byMailbox.started !== null) blocks.push({ by: 'mailbox', until: byMailbox.started.until, reason: 'mailbox-failures' });
    return blocks;
  }
}
