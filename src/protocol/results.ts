// Result shapes of the methods (see methods.ts), shared by daemon and CLI.
import type { ChallengeMinimum, CountryRule, EnrolmentGrace, RememberedCountry, RememberedIp, SettingSource } from '../core/model.js';
import type { ProviderChoice } from '../core/provider-choice.js';
import type { ChallengeMode, FallbackProvider, ProviderName } from './vocabulary.js';

export interface StatusResult {
  version: string;
  pid: number;
  uptimeSeconds: number;
  store: string;
  mailboxes: number;
  domains: number;
  sockets: { admin: string; hook: string; self: string };
  providers: { name: ProviderName; enabled: boolean; transport: string; gateway: 'ok' | 'unconfigured' | 'down' | 'not-needed'; detail?: string }[];
  audit: AuditStatus;
}

/** The audit trail's streams: changes and security events, and login answers. */
export type AuditStreamName = 'security' | 'logins';

export interface AuditStreamStatus {
  name: AuditStreamName;
  file: string;
  /** seq of the last line written. */
  seq: number;
  /** Failed write attempts since the daemon started. */
  failedWrites: number;
  /** Events that never reached the file since the daemon started. */
  droppedLines: number;
  lastError: string | null;
  /** Breaks (removed or cut files) found and recorded since the daemon started. */
  gaps: number;
}

export interface AuditStatus {
  failedWrites: number;
  droppedLines: number;
  streams: AuditStreamStatus[];
}

export type AuditStreamCheck = { stream: AuditStreamName } & (
  | { ok: true; lines: number; files: number; lost: number }
  | { ok: false; file: string; line: number; problem: string }
);

/** `audit.verify`: every stream checked; the first problem, if any, at the top. */
export type AuditVerifyResult =
  | { ok: true; lines: number; files: number; lost: number; streams: AuditStreamCheck[] }
  | { ok: false; file: string; line: number; problem: string; streams: AuditStreamCheck[] };

export type VerifyOutcome = 'allow' | 'deny' | 'challenge' | 'enroll';

export interface VerifyResult {
  result: VerifyOutcome;
  reason: string;
  provider: ProviderName;
  user: string;
  ip: string;
  country: string | null;
  /** enroll: the otpauth:// URI to show as a QR code. */
  otpauthUri?: string;
  /** challenge by sms/email: where the code went, masked. */
  destination?: string;
  /** challenge by sms/email, enroll: epoch ms when the code or pending secret expires. */
  expiresAt?: number;
  /** challenge by sms/email: whether a message went out now (false: the code sent before is still valid, and the send limits allow no other yet). */
  sent?: boolean;
  /** challenge by sms/email: the code sent before was sent again (the same code, the same expiry). */
  resent?: boolean;
  /** deny 'locked': seconds until a retry can succeed (absent: until an admin unlocks); a challenge not sent: seconds until another send is allowed. */
  retryAfter?: number;
  /** recovery-code-used: how many recovery codes remain. */
  recoveryCodesLeft?: number;
  /** enrolment-grace with a number of logins: how many more logins the grace lets in after this one. */
  graceLoginsLeft?: number;
  /** enrolment-grace with a date: epoch ms when the grace ends. */
  graceUntil?: number;
}

export interface EffectiveView {
  /** minimum: the platform's minChallenge, present only when set; when it raised the mode, source is its level. */
  challenge: { value: ChallengeMode; source: SettingSource; minimum?: ChallengeMinimum };
  provider: { value: ProviderName; source: SettingSource };
  fallbackProvider: { value: FallbackProvider; source: SettingSource };
  usersMayConfigure: { value: boolean; source: SettingSource };
  enrolmentGrace: { value: EnrolmentGrace; source: SettingSource };
  /** Whether security notices are mailed to the owner. */
  notifications: { value: boolean; source: SettingSource };
  countryRules: { level: SettingSource; rule: CountryRule }[];
  trustedNetworks: string[];
}

export interface LockView {
  locked: boolean;
  /** null while locked: until an administrator unlocks. */
  until: number | null;
  reason: 'lockout' | 'hard-lock' | null;
  /** Consecutive failures. */
  failures: number;
}

export interface MailboxView {
  address: string;
  stored: boolean;
  /** What the administrators set for the mailbox. */
  settings: Record<string, unknown>;
  /** What the user chose through self-service (challenge, provider). */
  userSettings: Record<string, unknown>;
  effective: EffectiveView;
  phone: string | null;
  altEmail: string | null;
  totp: 'active' | 'pending' | 'none';
  totpActivatedAt: number | null;
  ips: RememberedIp[];
  countries: RememberedCountry[];
  /**
   * Failures and locks, counted apart for logins from the mailbox's remembered IPs (known) and from
   * other addresses (elsewhere); the top-level fields sum them up: locked when either is, the until
   * and reason of the lock that ends last, the larger count.
   */
  lock: LockView & { known: LockView; elsewhere: LockView };
  recoveryCodesLeft: number;
  /** Logins let in by an enrolment grace with a number of logins. */
  enrolmentGraceLogins: number;
  /**
   * mailbox.show, mailbox.set, explain: the provider verify would use, after the platform's policy,
   * the gateways and the mailbox's phone and alternate address: the configured one, its fallback
   * (role 'fallback', with the fallback's source), or none (outcome disabled or unusable).
   */
  providerInUse?: ProviderChoice;
}

export interface EnrolResult {
  address: string;
  secret: string;
  secretGrouped: string;
  otpauthUri: string;
  expiresAt: number;
  algorithm: string;
  digits: number;
  period: number;
}

export interface ExplainResult {
  address: string;
  ip: string;
  country: string | null;
  mailbox: MailboxView;
  /** result 'error': verify would answer with the error `error` (e.g. PROVIDER_UNUSABLE), whose reason is `reason`. */
  decision: { result: VerifyOutcome | 'error'; reason: string; provider: ProviderName; matched?: string; rule?: string; error?: 'PROVIDER_UNUSABLE' };
  steps: string[];
}

export interface MailboxListResult {
  total: number;
  mailboxes: { address: string; challenge: ChallengeMode; provider: ProviderName; totp: 'active' | 'pending' | 'none'; locked: boolean }[];
}

/** domain.set, domain.show: the domain's own settings and what its mailboxes inherit. */
export interface DomainView {
  domain: string;
  stored: boolean;
  settings: Record<string, unknown>;
  effective: EffectiveView;
  mailboxes: number;
}

export interface DomainListResult {
  domains: { domain: string; settings: Record<string, unknown>; mailboxes: number }[];
}

/** global.set, global.show. */
export interface GlobalView {
  settings: Record<string, unknown>;
  effective: EffectiveView;
}

export interface ProviderRow {
  name: ProviderName;
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
  transport: string;
  gatewayConfigured: boolean;
  mailboxes: number;
}

export interface ProvidersListResult {
  providers: ProviderRow[];
}

export interface ProvidersSetResult {
  provider: ProviderName;
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
  mailboxes: number;
  /** What the change means for the mailboxes that use the provider, for people. */
  effect: string;
}

/** self.show, self.set. */
export interface SelfView {
  address: string;
  challenge: string;
  provider: string;
  /** Where each came from: 'user' for the user's own choice. */
  sources: { challenge: string; provider: string };
  phone: string | null;
  altEmail: string | null;
  totp: string;
  /** The second factors in use; changing them through self-service needs one of them proved. */
  activeFactors: string[];
  mayConfigure: boolean;
  allowedChallenges: string[];
  allowedProviders: string[];
}

export interface DomainRemoveResult {
  domain: string;
  removed: true;
  /** Platform-only settings a domain administrator's removal left in place. */
  kept: string[];
}

export interface SelfCodeSent {
  provider: string;
  destination: string;
  expiresAt: number;
  /** Whether a message went out now; false: the code sent before is still valid and the send limits allow no other yet. */
  sent: boolean;
  /** The code sent before was sent again. */
  resent: boolean;
  /** Not sent: seconds until another send is allowed. */
  retryAfter?: number;
}

export interface AdminAddResult {
  name: string;
  domains: string[];
  token: string;
}

export interface AdminListResult {
  admins: { name: string; domains: string[]; createdAt: number }[];
}

export interface AuditQueryResult {
  entries: { time: string; actor: string; mailbox: string | null; action: string; result: string; reason: string | null; ip: string | null; country: string | null; details?: { count?: unknown } }[];
}

/** A client source whose code checks are refused (see memfa(1), Lockout). */
export interface IpBlockView {
  /** An IPv4 address, or a network of lockout.ipv4Prefix / lockout.ipv6Prefix bits. */
  source: string;
  reason: 'ip-failures' | 'ip-mailboxes' | 'ip-enrolments';
  /** Epoch ms. */
  until: number;
  failures: number;
}

export interface IpBlockListResult {
  total: number;
  blocks: IpBlockView[];
}

export type IpBlockClearResult =
  | { all: true; cleared: number }
  | { source: string; blocked: boolean; reason: IpBlockView['reason'] | null; until: number | null; failures: number; cleared: 1 };

export interface KeyAddResult {
  /** The key added, not current. */
  kid: string;
  /** The key that still seals. */
  current: string;
}

export interface KeyRotateResult {
  kid: string;
  resealed: number;
  retired: string[];
}

export interface UnlockResult {
  failuresCleared: number;
}

export interface RecoveryCodesResult {
  codes: string[];
}

export interface ProviderTestResult {
  transport: string;
  to: string;
  messageId: string | null;
  ms: number;
}

/**
 * mailbox.set, domain.set and global.set answer with the view of what they changed and what the
 * change will do that the caller may not expect (a provider the platform has disabled); empty
 * when nothing.
 */
export interface SetWarnings {
  warnings: string[];
}

/** mailbox.import: what was (or, with dryRun, would be) done. */
export interface ImportResult {
  address: string;
  dryRun: boolean;
  /** The mailbox had no stored record before. */
  created: boolean;
  /** An active TOTP secret was (would be) replaced. */
  replaced: boolean;
  /** Recovery codes stored in place of the mailbox's set; null: its set was left as it was. */
  recoveryCodes: number | null;
}
