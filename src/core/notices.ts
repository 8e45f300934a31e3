// Security notices to a mailbox's owner: what they are about, and the rules of their queue, which
// lives on the mailbox record (MailboxRecord.notices) so that a notice is committed in the same
// store transaction as the event it reports, and survives a restart. Pure: time is a parameter.
import { freshEntries, type RememberPolicy } from './decide.js';
import { lockStarted, type FailureKind } from './lockout.js';
import type { MailboxFailures, RememberedCountry } from './model.js';

import type { NoticeKind } from '../protocol/vocabulary.js';

// What a notice reports: listed with the configuration's words, which memfa verify loads, so that
// the login hook does not load this module.
export { NOTICE_KINDS, type NoticeKind } from '../protocol/vocabulary.js';

/** The sentence each notice opens with (the {event} placeholder). */
export const NOTICE_EVENTS: Readonly<Record<NoticeKind, string>> = {
  'new-country': 'Your mailbox was signed in to, with its second factor, from a country it had not been used from before.',
  'totp-enrolled': 'An authenticator app (TOTP) was set up as the second factor of your mailbox.',
  'totp-reset': 'The authenticator app (TOTP) of your mailbox was removed by an administrator; a new one must be set up at the next sign-in.',
  'recovery-codes-generated': 'New recovery codes were made for your mailbox; the old ones no longer work.',
  'recovery-code-used': 'A recovery code of your mailbox was used to sign in or to prove its second factor.',
  'app-password-created': 'An app password was created for your mailbox.',
  'mailbox-locked': 'Your mailbox was locked after too many wrong second-factor codes.',
};

/** What happened, as the operation that saw it knows it. Never a secret or a code. */
export interface NoticeEvent {
  kind: NoticeKind;
  ip?: string | null;
  country?: string | null;
  /** mailbox-locked: until when (null: until an administrator unlocks it). */
  until?: number | null;
  /** recovery-code-used: recovery codes left. */
  left?: number;
}

/**
 * Whether a second factor passed from `country` is from a new country: one that none of the
 * mailbox's fresh remembered countries is (judged on the record before the success). A mailbox
 * that remembers none yet (its first login with a factor, or after its locations were reset) has
 * nothing to compare with.
 */
export function isNewCountry(countries: readonly RememberedCountry[], country: string | null, now: number, policy: RememberPolicy): boolean {
  const known = freshEntries(countries, now, policy);
  return country !== null && known.length > 0 && !known.some((c) => c.country === country);
}

/**
 * The notice of a failure that started a lock of `kind` (`before` and `after`: the mailbox's
 * failures around it), or null when it started none.
 */
export function lockNotice(before: MailboxFailures, after: MailboxFailures, kind: FailureKind, now: number): NoticeEvent | null {
  const lock = lockStarted(before, after, kind, now);
  return lock === null ? null : { kind: 'mailbox-locked', until: lock.until };
}

/** One notice waiting to be sent. It never holds a secret or a code. */
export interface PendingNotice {
  /** Unique within the mailbox: names the notice in the audit trail. */
  id: string;
  kind: NoticeKind;
  /** When the event happened (epoch ms). */
  at: number;
  /** The client address and country of the login it reports, when there was one. */
  ip: string | null;
  country: string | null;
  /** mailbox-locked: until when (null: until an administrator unlocks it). */
  until?: number | null;
  /** recovery-code-used: how many recovery codes are left. */
  left?: number;
  /** The mailbox, and its alternate address when it had one. */
  to: string[];
  /** Send attempts begun so far. */
  attempts: number;
  /** Not tried again before this (epoch ms). */
  nextAt: number;
}

/** A mailbox's notices: those waiting, and when recent ones were queued (for the rate bound). */
export interface MailboxNotices {
  pending: PendingNotice[];
  recent: { kind: NoticeKind; at: number }[];
}

export interface NoticePolicy {
  /** Notices of one kind queued per mailbox in any 24 hours; more are suppressed. */
  maxPerKindPerDay: number;
  maxAttempts: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

export const DAY_MS = 86_400_000;

export type QueueOutcome = { queued: true; notices: MailboxNotices } | { queued: false; reason: 'rate-limited'; notices: MailboxNotices };

/**
 * Queues `notice` on a mailbox's notices unless the mailbox already had maxPerKindPerDay notices
 * of that kind in the last 24 hours. The bound is per kind, so that whoever keeps locking a
 * mailbox can neither flood its owner nor use up the budget of the other kinds (a new-country
 * notice still goes out). Entries of `recent` older than a day are dropped.
 */
export function queueNotice(current: MailboxNotices | undefined, notice: PendingNotice, now: number, policy: NoticePolicy): QueueOutcome {
  const recent = (current?.recent ?? []).filter((r) => now - r.at < DAY_MS);
  const pending = current?.pending ?? [];
  const sameKind = recent.filter((r) => r.kind === notice.kind).length;
  if (sameKind >= policy.maxPerKindPerDay) return { queued: false, reason: 'rate-limited', notices: { pending, recent } };
  return { queued: true, notices: { pending: [...pending, notice], recent: [...recent, { kind: notice.kind, at: now }] } };
}

/** The notice to try next at `now`: the oldest whose nextAt has come, or undefined. */
export function dueNotice(notices: MailboxNotices | undefined, now: number): PendingNotice | undefined {
  let due: PendingNotice | undefined;
  for (const n of notices?.pending ?? []) if (n.nextAt <= now && (due === undefined || n.at < due.at)) due = n;
  return due;
}

/** When the first notice of `notices` is next due, or null when none waits. */
export function nextDue(notices: MailboxNotices | undefined): number | null {
  let next: number | null = null;
  for (const n of notices?.pending ?? []) if (next === null || n.nextAt < next) next = n.nextAt;
  return next;
}

/** The wait after the `attempts`-th failed attempt: retryInitialMs, doubling, at most retryMaxMs. */
export function retryDelay(attempts: number, policy: NoticePolicy): number {
  return Math.min(policy.retryInitialMs * 2 ** Math.max(0, attempts - 1), policy.retryMaxMs);
}

/** The notices with `id` replaced by `next` (or removed, when next is null). */
export function replaceNotice(notices: MailboxNotices, id: string, next: PendingNotice | null): MailboxNotices {
  const pending: PendingNotice[] = [];
  for (const n of notices.pending) {
    if (n.id !== id) pending.push(n);
    else if (next !== null) pending.push(next);
  }
  return { pending, recent: notices.recent };
}

/**
 * When a mailbox's notices are no longer worth keeping (nothing waits, and the last recent entry
 * is a day old), or null while something waits or nothing is kept.
 */
export function noticesExpireAt(notices: MailboxNotices | undefined): number | null {
  if (notices === undefined || notices.pending.length > 0 || notices.recent.length === 0) return null;
  return Math.max(...notices.recent.map((r) => r.at)) + DAY_MS;
}

/**
 * What is worth keeping of a mailbox's notices at `now`: undefined once nothing waits and no
 * recent entry counts any more, so that a record does not keep the field for ever.
 */
export function keptNotices(notices: MailboxNotices, now: number): MailboxNotices | undefined {
  const recent = notices.recent.filter((r) => now - r.at < DAY_MS);
  if (notices.pending.length === 0 && recent.length === 0) return undefined;
  return { pending: notices.pending, recent };
}
