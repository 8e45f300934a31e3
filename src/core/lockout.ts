// Brute-force rules: per-mailbox lockout with exponential delay and a hard lock, and a per-client
// address throttle against guessing across many mailboxes. Pure: `now` is a parameter; the
// services keep the records in the store and check the state before checking any code.

import { emptyFailures, type FailureState } from './model.js';

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

export const DEFAULT_LOCKOUT: Readonly<LockoutPolicy> = Object.freeze({
  threshold: 5,
  baseDelayMs: 60_000,
  maxDelayMs: 3_600_000,
  hardLockAfter: 100,
});

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
 * 4 min ... with the defaults. At hardLockAfter it stays locked until an administrator unlocks it.
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

export const DEFAULT_IP_THROTTLE: Readonly<IpThrottlePolicy> = Object.freeze({
  maxFailures: 20,
  windowMs: 15 * 60_000,
  distinctMailboxes: 10,
  blockMs: 15 * 60_000,
});

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
  const blockOver = base.lockedUntil !== null && now >= base.lockedUntil;
  const windowOver = now - base.windowStart >= policy.windowMs;
  const current =
    blockOver || windowOver ? { failures: 0, mailboxes: [] as string[], windowStart: now } : { ...base, mailboxes: [...base.mailboxes] };
  const lockedUntil = base.lockedUntil !== null && now < base.lockedUntil ? base.lockedUntil : null;

  const failures = current.failures + 1;
  const mailboxes = current.mailboxes.includes(mailbox) ? current.mailboxes : [...current.mailboxes, mailbox];
  if (failures >= policy.maxFailures || mailboxes.length >= policy.distinctMailboxes) {
    const until = Math.max(lockedUntil ?? 0, now + policy.blockMs);
    return { failures, mailboxes: mailboxes.slice(0, policy.distinctMailboxes), windowStart: current.windowStart, lockedUntil: until };
  }
  return { failures, mailboxes, windowStart: current.windowStart, lockedUntil };
}
