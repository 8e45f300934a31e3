// `mailbox.list`: one row per stored mailbox, and the filters an administrator combines to find
// the mailboxes that need attention (locked, not enrolled, a pending enrolment, a provider).
import { kindLockState } from '../core/lockout.js';
import type { MailboxRecord, ProviderName } from '../core/model.js';
import type { MemfaConfig } from '../config/types.js';
import type { MailboxListResult } from '../protocol/results.js';
import type { StoreReader } from '../store/types.js';
import { effectiveSettings } from './context.js';

export type MailboxRow = MailboxListResult['mailboxes'][number];

/**
 * Each filter given keeps only the mailboxes whose row says so (true) or says otherwise (false);
 * the filters given must all hold.
 */
export interface MailboxFilter {
  locked?: boolean | undefined;
  /** The effective provider is totp and there is no active TOTP secret: verify would ask it to enrol. */
  notEnrolled?: boolean | undefined;
  /** An enrolment started and not confirmed (open pending secret, no active one). */
  pending?: boolean | undefined;
  /** The effective provider, as the row gives it. */
  provider?: ProviderName | undefined;
}

export function mailboxRow(config: MemfaConfig, store: StoreReader, r: MailboxRecord, now: number): MailboxRow {
  const e = effectiveSettings(config, store, r.address, r);
  return {
    address: r.address,
    challenge: e.challenge,
    provider: e.provider,
    totp: r.totp !== null ? 'active' : r.pendingTotp !== null && r.pendingTotp.expiresAt > now ? 'pending' : 'none',
    locked: kindLockState(r.failures, 'known', now).locked || kindLockState(r.failures, 'elsewhere', now).locked,
  };
}

/** The filters given, or null when none is (every row passes). */
export function rowFilter(f: MailboxFilter): ((row: MailboxRow) => boolean) | null {
  const tests: ((row: MailboxRow) => boolean)[] = [];
  const { locked, notEnrolled, pending, provider } = f;
  if (locked !== undefined) tests.push((row) => row.locked === locked);
  if (notEnrolled !== undefined) tests.push((row) => (row.provider === 'totp' && row.totp !== 'active') === notEnrolled);
  if (pending !== undefined) tests.push((row) => (row.totp === 'pending') === pending);
  if (provider !== undefined) tests.push((row) => row.provider === provider);
  if (tests.length === 0) return null;
  return (row) => tests.every((t) => t(row));
}
