// The daemon log lines of security events, at level notice: refused second factors, mailboxes
// locked, client sources blocked (by verify's throttle, or login.check's of wrong app passwords). They carry the client address for fail2ban (which then needs
// no access to the audit trail, mode 0600) and never a code or a secret.
//
// These lines are an interface: examples/fail2ban/filter.d/memfa.conf matches them, relying on
// the order of their first fields (time, level, event, ip, reason: the logger writes time, level
// and event first, and the fields in the order given here). Change both together.
import type { LockState } from '../core/lockout.js';
import type { Log } from './ports.js';

type Logger = Pick<Log, 'notice'>;

/** The reasons of a verify denial that a wrong or refused factor gives: what fail2ban counts. */
export const FAILED_FACTOR_REASONS = ['code-invalid', 'code-reused', 'code-expired', 'no-open-code', 'locked'] as const;

/** The source-block reasons that come from failures (ip-enrolments, many new enrolments from one source, does not). */
export const FAILURE_BLOCK_REASONS = ['ip-failures', 'ip-mailboxes'] as const;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** verify answered deny: `reason` says why (a failed factor, a lock, a country rule, a disabled provider). */
export function logVerifyDenied(log: Logger, f: { ip: string; reason: string; mailbox: string; provider: string }): void {
  log.notice('verify-denied', { ip: f.ip, reason: f.reason, mailbox: f.mailbox, provider: f.provider });
}

/**
 * A failure locked a mailbox: the logins of `kind` (core/lockout.ts) are refused until `until`
 * (null: until an administrator unlocks it). `ip`: the login's address; null for a confirmation
 * or proof through a socket, which carries none. `stored: false`: a mailbox without a record,
 * whose failures are kept in memory.
 */
export function logMailboxLocked(log: Logger, f: { ip: string | null; mailbox: string; kind: 'known' | 'elsewhere'; lock: Extract<LockState, { locked: true }>; failures: number; stored?: boolean }): void {
  log.notice('mailbox-locked', {
    ip: f.ip,
    reason: f.lock.reason,
    mailbox: f.mailbox,
    kind: f.kind,
    until: iso(f.lock.until),
    failures: f.failures,
    ...(f.stored === false ? { stored: false } : {}),
  });
}

/**
 * The throttle of wrong app passwords (login.check, services/login-throttle.ts) began to block
 * mail-protocol logins: of the client's source (`source`, the network of `ip`), or of the mailbox
 * from every address it never passed a second factor from (`mailbox-failures`; `ip` is then
 * only the address of the failure that reached the limit).
 */
export function logLoginThrottled(log: Logger, f: { ip: string; mailbox: string; by: 'source' | 'mailbox'; reason: string; until: number; source?: string }): void {
  log.notice('login-throttled', { ip: f.ip, reason: f.reason, by: f.by, ...(f.source === undefined ? {} : { source: f.source }), mailbox: f.mailbox, until: iso(f.until) });
}

/** The per-source throttle began to block `source` (the network of `ip`, lockout.ipv4Prefix/ipv6Prefix). */
export function logSourceBlocked(log: Logger, f: { ip: string; reason: string; source: string; until: number; failures: number }): void {
  log.notice('ip-blocked', { ip: f.ip, reason: f.reason, source: f.source, until: iso(f.until), failures: f.failures });
}
