// Brute-force rules: per-mailbox lockout with exponential delay and a hard lock, counted apart for
// the mailbox's remembered addresses and for all others, and a per-client address throttle against
// guessing across many mailboxes. Pure: `now` is a parameter; the services keep the records (the
// mailbox's in the store) and check the state before checking any code.

import { isRememberedIp, type RememberPolicy } from './decide.js';
import { emptyFailures, noFailures, type FailureState, type MailboxFailures, type RememberedIp } from './model.js';
import { ipNetwork } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Per mailbox

export interface LockoutPolicy {
  /** Consecutive failures before the first delay. */
  threshold: number;
  /** The first delay; it doubles with each further failure. */
  baseDelayMs: number;
  /** The delay never grows beyond this. */
  maxDelayMs: number;
  /** Consecutive failures after which only an administrator can unlock. */
  hardLockAfter: number;
}

export type LockState = { locked: false } | { locked: true; until: number | null; reason: 'lockout' | 'hard-lock' };

/** until: null means until an administrator unlocks. */
export function lockState(f: FailureState, now: number): LockState {
  if (f.hardLocked) return { locked: true, until: null, reason: 'hard-lock' };
  if (f.lockedUntil !== null && now < f.lockedUntil) return { locked: true, until: f.lockedUntil, reason: 'lockout' };
  return { locked: false };
}

/**
 * One more consecutive failure. From the threshold-th failure on, the mailbox is locked for
 * base * 2^(consecutive - threshold), capped at maxDelayMs: 5th failure 1 min, 6th 2 min, 7th
 * 4 min ... with the configuration's defaults. At hardLockAfter it stays locked until an administrator unlocks it.
 * The counter does not decay with time: only a success (or an administrator) resets it, so slow
 * guessing still ends in a hard lock while the real owner, who eventually succeeds, never gets there.
 */
export function recordFailure(f: FailureState, now: number, policy: LockoutPolicy): FailureState {
  const consecutive = f.consecutive + 1;
  let lockedUntil = f.lockedUntil;
  if (consecutive >= policy.threshold) {
    // 2 ** large is Infinity; min() caps it, so no overflow guard is needed.
    const delay = Math.min(policy.baseDelayMs * 2 ** (consecutive - policy.threshold), policy.maxDelayMs);
    lockedUntil = Math.max(lockedUntil ?? 0, now + delay);
  }
  return {
    consecutive,
    lockedUntil,
    hardLocked: f.hardLocked || consecutive >= policy.hardLockAfter,
    lastFailureAt: now,
  };
}

/**
 * The state after a correct factor. A hard lock survives: a success should not be possible while
 * hard locked (services check lockState first), and if one slips through it must not undo what
 * only an administrator may undo (see adminUnlock).
 */
export function recordSuccess(f: FailureState): FailureState {
  return f.hardLocked ? { ...f } : emptyFailures();
}

/** An administrator's unlock: everything reset. */
export function adminUnlock(): FailureState {
  return emptyFailures();
}

/**
 * A mailbox that failed without a stored record (nobody configured it) keeps its failures in
 * memory only, and not for ever: they are forgotten maxDelayMs after the later of the last failure
 * and the end of the lock, so that a lock runs its course and a failure just after it still counts
 * on. A hard lock of such a mailbox ends the same way: it has no secret of its own to protect.
 */
export function unstoredFailureExpired(f: FailureState, now: number, policy: LockoutPolicy): boolean {
  return now >= Math.max(f.lockedUntil ?? 0, f.lastFailureAt ?? 0) + policy.maxDelayMs;
}

// ---------------------------------------------------------------------------------------------
// Per mailbox, by kind of location
//
// NIST SP 800-63B (5.2.2) limits consecutive failed attempts on an account to 100, and lets the
// verifier tell a subscriber's known locations apart. A mailbox counts its failures twice over:
// - known: logins from a fresh remembered IP of the mailbox, i.e. one it passed a second factor
//   from (the list kept by rememberLocation, within locations.maxAgeDays);
// - elsewhere: logins from any other address (and confirmations that come with none).
// Each kind has its own consecutive count, delays and hard lock, with the same policy, and a login
// is refused as locked only by the state of its own kind: an attacker who does not control an
// address the owner passed a factor from can lock the owner out of new places, never out of the
// remembered ones. A success resets only the counter of its own kind. A success at a remembered
// address does not reset the elsewhere counter: if it did, the attacker would get a fresh run of
// guesses every time the owner logged in, and the hard lock would never end the attack; as it is,
// the attacker's count only grows, to the hard lock, and only the attacker's kind of login is
// refused. An administrator's unlock clears both.

export type FailureKind = 'known' | 'elsewhere';

const CLEAN: FailureState = Object.freeze(emptyFailures());

/** The kind of a login from `ip` (normalised) for a mailbox that remembers `ips`; null ip: elsewhere. */
export function failureKind(ips: readonly RememberedIp[], ip: string | null, now: number, remember: RememberPolicy): FailureKind {
  return ip !== null && isRememberedIp(ips, ip, now, remember) ? 'known' : 'elsewhere';
}

/** The failure state of one kind (a clean one when that kind has none). */
export function failuresOf(f: MailboxFailures, kind: FailureKind): FailureState {
  return f[kind] ?? CLEAN;
}

export function kindLockState(f: MailboxFailures, kind: FailureKind, now: number): LockState {
  return lockState(failuresOf(f, kind), now);
}

/** One more failure of `kind`; the other kind is untouched. */
export function recordKindFailure(f: MailboxFailures, kind: FailureKind, now: number, policy: LockoutPolicy): MailboxFailures {
  const next = recordFailure(failuresOf(f, kind), now, policy);
  return kind === 'known' ? { known: next, elsewhere: f.elsewhere } : { known: f.known, elsewhere: next };
}

/** A success of `kind`: its counter reset (a hard lock survives, see recordSuccess); the other kept. */
export function recordKindSuccess(f: MailboxFailures, kind: FailureKind): MailboxFailures {
  const current = f[kind];
  // Most logins have no failure to reset: the same object goes back, so the store shares it.
  if (current === null) return f;
  const after = recordSuccess(current);
  const next = after.hardLocked ? after : null;
  return kind === 'known' ? { known: next, elsewhere: f.elsewhere } : { known: f.known, elsewhere: next };
}

/**
 * The lock a failure of `kind` started, if it started one: logins of that kind were not locked by
 * `before` and are by `after` (a lockout delay or the hard lock). Null otherwise.
 */
export function lockStarted(before: MailboxFailures, after: MailboxFailures, kind: FailureKind, now: number): Extract<LockState, { locked: true }> | null {
  if (kindLockState(before, kind, now).locked) return null;
  const lock = kindLockState(after, kind, now);
  return lock.locked ? lock : null;
}

/** An administrator's unlock of both kinds. */
export function adminUnlockAll(): MailboxFailures {
  return noFailures();
}

/** Consecutive failures of both kinds together (what an unlock clears). */
export function failureCount(f: MailboxFailures): number {
  return (f.known?.consecutive ?? 0) + (f.elsewhere?.consecutive ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Per client address

/**
 * Failures seen from one client address in the current window. Kept per IP (normalised text);
 * the services may drop records whose window and block have both ended.
 */
export interface IpThrottleRecord {
  failures: number;
  /** Distinct mailboxes that failed from this address in the window; never longer than distinctMailboxes. */
  mailboxes: string[];
  windowStart: number;
  lockedUntil: number | null;
}

export interface IpThrottlePolicy {
  /** Failures in one window that block the address. */
  maxFailures: number;
  windowMs: number;
  /** Distinct mailboxes failing in one window that block the address (password spraying). */
  distinctMailboxes: number;
  /** How long a block lasts. */
  blockMs: number;
}

export type IpThrottleState = { locked: false } | { locked: true; until: number; reason: 'ip-failures' | 'ip-mailboxes' };

export function newIpThrottle(now: number): IpThrottleRecord {
  return { failures: 0, mailboxes: [], windowStart: now, lockedUntil: null };
}

export function ipThrottleState(rec: IpThrottleRecord | null | undefined, now: number, policy: IpThrottlePolicy): IpThrottleState {
  if (!rec || rec.lockedUntil === null || now >= rec.lockedUntil) return { locked: false };
  // The counters are reset when a block starts (see recordIpFailure), so the reason is told by which
  // limit the block record carries: a full mailbox list means spraying.
  return { locked: true, until: rec.lockedUntil, reason: rec.mailboxes.length >= policy.distinctMailboxes ? 'ip-mailboxes' : 'ip-failures' };
}

/**
 * A failed factor from this address for `mailbox`.
 * Fixed windows: the first failure after windowMs has passed since windowStart opens a new window
 * with empty counters. Within a window, reaching maxFailures failures, or failures on
 * distinctMailboxes different mailboxes, blocks the address for blockMs. A block ends the window:
 * when it expires the address has a fresh budget, so a persistent guesser gets at most
 * maxFailures tries per blockMs; failures still recorded during a block extend it. The mailbox list is kept at the moment of blocking (it tells
 * ipThrottleState why) and cleared with the next window. Successes from the address reset nothing:
 * an attacker holding one account must not be able to launder failures on others.
 */
export function recordIpFailure(rec: IpThrottleRecord | null | undefined, mailbox: string, now: number, policy: IpThrottlePolicy): IpThrottleRecord {
  const base = rec ?? newIpThrottle(now);
  const current = currentWindow(base, now, policy);
  const lockedUntil = base.lockedUntil !== null && now < base.lockedUntil ? base.lockedUntil : null;

  const failures = current.failures + 1;
  const mailboxes = current.mailboxes.includes(mailbox) ? [...current.mailboxes] : [...current.mailboxes, mailbox];
  if (failures >= policy.maxFailures || mailboxes.length >= policy.distinctMailboxes) {
    const until = Math.max(lockedUntil ?? 0, now + policy.blockMs);
    return { failures, mailboxes: mailboxes.slice(0, policy.distinctMailboxes), windowStart: current.windowStart, lockedUntil: until };
  }
  return { failures, mailboxes, windowStart: current.windowStart, lockedUntil };
}

/**
 * The block a failure started (`before`, `after`: the window's record around it, recordIpFailure),
 * or null when it started none: the key was blocked already, or is not blocked now.
 */
export function ipBlockStarted(before: IpThrottleRecord | null | undefined, after: IpThrottleRecord, now: number, policy: IpThrottlePolicy): Extract<IpThrottleState, { locked: true }> | null {
  if (ipThrottleState(before, now, policy).locked) return null;
  const state = ipThrottleState(after, now, policy);
  return state.locked ? state : null;
}

/** The counts of the window a failure at `now` falls in: a new, empty one once a block or the window is over. */
function currentWindow(rec: IpThrottleRecord, now: number, policy: IpThrottlePolicy): { failures: number; mailboxes: readonly string[]; windowStart: number } {
  const blockOver = rec.lockedUntil !== null && now >= rec.lockedUntil;
  const windowOver = now - rec.windowStart >= policy.windowMs;
  return blockOver || windowOver ? { failures: 0, mailboxes: [], windowStart: now } : rec;
}

// ---------------------------------------------------------------------------------------------
// Per source: attempts reserved before they are checked
//
// A code is checked in a store transaction that is awaited, and many logins are in flight at
// once; a throttle that only counts failures once they are recorded lets every attempt that
// arrives meanwhile through (200 concurrent wrong codes over 200 mailboxes: 193 checked, with a
// limit of 10). So an attempt is reserved before it is checked, synchronously, and reservations
// count toward the limits like failures: the attempt is refused when the failures of the window
// plus the attempts in flight reach maxFailures, or when the mailboxes of both would exceed
// distinctMailboxes. A failure turns its reservation into a failure; a success or an attempt that
// did not get to the check releases it and counts nothing.
//
// A source is an IPv4 address or an IPv6 network (by default the /64 a single host is given): a
// host holding a /64 must not count as 2^64 sources.
//
// Mailbox records made by verify (a TOTP enrolment of a mailbox that had none) are counted per
// source too, apart from failures: at most maxFailures per windowMs, so that one source cannot fill
// the store, while the logins of existing mailboxes from the same source (an office behind one
// address on the day everyone enrols) are not refused for it.

export interface SourceGrouping {
  /** Leading bits of an IPv4 address that make one source (32: each address). */
  ipv4Prefix: number;
  /** Leading bits of an IPv6 address that make one source (64: each /64). */
  ipv6Prefix: number;
}

/** The source a normalised client address belongs to, as the key of its state. */
export function ipSource(ip: string, grouping: SourceGrouping): string {
  return ipNetwork(ip, grouping.ipv4Prefix, grouping.ipv6Prefix);
}

export interface IpSourceState {
  /** Failures of the current window; null before the first. */
  failures: IpThrottleRecord | null;
  /** The mailbox of each attempt reserved and not yet settled (one entry per attempt). */
  inFlight: readonly string[];
  /** Of those, the attempts that would store a new mailbox record if their code is right. */
  creating: number;
  /** Mailbox records made from this source since createdSince (a window of windowMs). */
  created: number;
  createdSince: number;
}

/** How long a client is told to wait when only attempts in flight fill the budget: they settle within moments. */
export const IN_FLIGHT_RETRY_MS = 1000;

export type IpRefusal = { until: number; reason: 'ip-failures' | 'ip-mailboxes' | 'ip-enrolments' };
export type IpReservation = ({ granted: true } & { state: IpSourceState }) | ({ granted: false } & IpRefusal);

export function newIpSource(now: number): IpSourceState {
  return { failures: null, inFlight: [], creating: 0, created: 0, createdSince: now };
}

function createdInWindow(s: IpSourceState, now: number, policy: IpThrottlePolicy): number {
  return now - s.createdSince >= policy.windowMs ? 0 : s.created;
}

/**
 * Reserves one attempt on `mailbox` from a source; `creates`: the attempt would store a new
 * mailbox record if it succeeds. Refused while the source is blocked, or when the attempt would
 * take the source past a limit, counting the attempts in flight.
 */
export function reserveIpAttempt(state: IpSourceState | null | undefined, mailbox: string, creates: boolean, now: number, policy: IpThrottlePolicy): IpReservation {
  const s = state ?? newIpSource(now);
  const block = ipThrottleState(s.failures, now, policy);
  if (block.locked) return { granted: false, until: block.until, reason: block.reason };
  const window = s.failures === null ? { failures: 0, mailboxes: [] as readonly string[] } : currentWindow(s.failures, now, policy);
  if (window.failures + s.inFlight.length >= policy.maxFailures) return { granted: false, until: now + IN_FLIGHT_RETRY_MS, reason: 'ip-failures' };
  const mailboxes = new Set(window.mailboxes);
  for (const m of s.inFlight) mailboxes.add(m);
  mailboxes.add(mailbox);
  if (mailboxes.size > policy.distinctMailboxes) return { granted: false, until: now + IN_FLIGHT_RETRY_MS, reason: 'ip-mailboxes' };
  if (creates) {
    const made = createdInWindow(s, now, policy);
    if (made + s.creating >= policy.maxFailures) {
      return { granted: false, until: made >= policy.maxFailures ? s.createdSince + policy.windowMs : now + IN_FLIGHT_RETRY_MS, reason: 'ip-enrolments' };
    }
  }
  return { granted: true, state: { ...s, inFlight: [...s.inFlight, mailbox], creating: s.creating + (creates ? 1 : 0) } };
}

export type AttemptOutcome = 'failure' | 'created' | 'none';

/**
 * Settles an attempt reserved by reserveIpAttempt with the same mailbox and `creates`: a failure is
 * recorded (recordIpFailure), a created record counted, anything else only releases the
 * reservation. Returns null when nothing is left worth keeping for the source.
 */
export function settleIpAttempt(state: IpSourceState | null | undefined, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy): IpSourceState | null {
  const s = state ?? newIpSource(now);
  const i = s.inFlight.indexOf(mailbox);
  const inFlight = i === -1 ? s.inFlight : [...s.inFlight.slice(0, i), ...s.inFlight.slice(i + 1)];
  const creating = creates && i !== -1 ? Math.max(0, s.creating - 1) : s.creating;
  const failures = outcome === 'failure' ? recordIpFailure(s.failures, mailbox, now, policy) : s.failures;
  let created = createdInWindow(s, now, policy);
  let createdSince = created === 0 ? now : s.createdSince;
  if (outcome === 'created') {
    if (created === 0) createdSince = now;
    created++;
  }
  const next: IpSourceState = { failures, inFlight, creating, created, createdSince };
  return ipSourceIdle(next, now, policy) ? null : next;
}

/** Whether a source's state no longer matters at `now`: nothing in flight, blocked or counted in a current window. */
export function ipSourceIdle(s: IpSourceState, now: number, policy: IpThrottlePolicy): boolean {
  if (s.inFlight.length > 0 || s.creating > 0 || createdInWindow(s, now, policy) > 0) return false;
  return s.failures === null || (!ipThrottleState(s.failures, now, policy).locked && currentWindow(s.failures, now, policy).failures === 0);
}

// ---------------------------------------------------------------------------------------------
// Per source: what an administrator sees and clears

export interface IpSourceBlock {
  reason: 'ip-failures' | 'ip-mailboxes' | 'ip-enrolments';
  until: number;
  /** Failures of the window the block came from (for ip-enrolments: of the current window). */
  failures: number;
}

/**
 * The block a source is under at `now`, if any: codes refused after failures (ip-failures,
 * ip-mailboxes), or new mailboxes refused after maxFailures enrolments in the window
 * (ip-enrolments). Attempts in flight alone are no block: they settle within moments.
 */
export function ipSourceBlock(s: IpSourceState, now: number, policy: IpThrottlePolicy): IpSourceBlock | null {
  const block = ipThrottleState(s.failures, now, policy);
  if (block.locked) return { reason: block.reason, until: block.until, failures: s.failures!.failures };
  if (createdInWindow(s, now, policy) >= policy.maxFailures) return { reason: 'ip-enrolments', until: s.createdSince + policy.windowMs, failures: ipSourceFailures(s, now, policy) };
  return null;
}

/** The failures that count for a source at `now`: those of its current window, or of its block. */
export function ipSourceFailures(s: IpSourceState, now: number, policy: IpThrottlePolicy): number {
  if (s.failures === null) return 0;
  if (ipThrottleState(s.failures, now, policy).locked) return s.failures.failures;
  return currentWindow(s.failures, now, policy).failures;
}

/**
 * The block a settled attempt started (`before`, `after`: the source's state around it), or null
 * when it started none: the source was blocked already, or is not blocked now.
 */
export function sourceBlockStarted(before: IpSourceState | null | undefined, after: IpSourceState | null, now: number, policy: IpThrottlePolicy): IpSourceBlock | null {
  if (after === null || (before != null && ipSourceBlock(before, now, policy) !== null)) return null;
  return ipSourceBlock(after, now, policy);
}

/**
 * A source after an administrator cleared it: failures, block and enrolment count gone; the
 * attempts in flight are kept, so that they still count until they settle. Null when nothing is
 * left worth keeping.
 */
export function clearIpSource(s: IpSourceState, now: number): IpSourceState | null {
  if (s.inFlight.length === 0 && s.creating === 0) return null;
  return { failures: null, inFlight: s.inFlight, creating: s.creating, created: 0, createdSince: now };
}
