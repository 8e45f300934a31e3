// A stored mailbox as `mailbox.list` shows it, and the criteria mailboxes are selected by (the
// administrator's filters; the provider policy's counts). Pure: the file store evaluates them in a
// scan, a database backend translates them into a query; both must agree with these functions.
import { kindLockState } from './lockout.js';
import type { LevelSettings, MailboxRecord, ProviderName } from './model.js';
import { resolveSettings, type SettingsDefaults } from './settings.js';
import type { MailboxListResult } from '../protocol/results.js';

export type MailboxRow = MailboxListResult['mailboxes'][number];

/**
 * Each criterion given keeps only the mailboxes whose row says so (true) or says otherwise
 * (false); the criteria given must all hold.
 */
export interface MailboxCriteria {
  locked?: boolean | undefined;
  /** The effective provider is totp and there is no active TOTP secret: verify would ask it to enrol. */
  notEnrolled?: boolean | undefined;
  /** An enrolment started and not confirmed (open pending secret, no active one). */
  pending?: boolean | undefined;
  /** The effective provider (core/settings.ts resolveSettings), as the row gives it. */
  provider?: ProviderName | undefined;
  /** At least one app password. */
  appPasswords?: boolean | undefined;
}

/** The row of `r`, whose domain has `domain` (its settings, if any) under `global` and the configuration's `defaults`. */
export function mailboxRow(defaults: SettingsDefaults, global: LevelSettings, domain: LevelSettings | undefined, r: MailboxRecord, now: number): MailboxRow {
  const e = resolveSettings(defaults, global, domain, r.settings, r.userSettings);
  return {
    address: r.address,
    challenge: e.challenge,
    provider: e.provider,
    totp: r.totp !== null ? 'active' : r.pendingTotp !== null && r.pendingTotp.expiresAt > now ? 'pending' : 'none',
    locked: kindLockState(r.failures, 'known', now).locked || kindLockState(r.failures, 'elsewhere', now).locked,
  };
}

/** Whether any criterion is given (none: every mailbox meets them). */
export function hasCriteria(c: MailboxCriteria): boolean {
  return c.locked !== undefined || c.notEnrolled !== undefined || c.pending !== undefined || c.provider !== undefined || c.appPasswords !== undefined;
}

/** Whether the mailbox `r`, of row `row`, meets every criterion of `c`. */
export function meetsCriteria(c: MailboxCriteria, row: MailboxRow, r: MailboxRecord): boolean {
  if (c.locked !== undefined && row.locked !== c.locked) return false;
  if (c.notEnrolled !== undefined && (row.provider === 'totp' && row.totp !== 'active') !== c.notEnrolled) return false;
  if (c.pending !== undefined && (row.totp === 'pending') !== c.pending) return false;
  if (c.provider !== undefined && row.provider !== c.provider) return false;
  if (c.appPasswords !== undefined && r.appPasswords.length > 0 !== c.appPasswords) return false;
  return true;
}
