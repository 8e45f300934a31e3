// Result shapes of the methods: methods.ts names each method's, the daemon's handlers must return
// it and the client's call returns it. Shared by daemon and CLI; nothing here has a runtime form.
import type { SocketKind } from './methods.js';
import type { ChallengeMode, CodeProvider, FallbackProvider, PolicyName, PrimaryPasswordMode, ProviderName } from './vocabulary.js';
import type { ChallengeMinimum, CountryRule, EnrolmentGrace, ProviderChoice, RememberedCountry, RememberedIp, SettingSource } from './wire-types.js';

// The answers of the mail-protocol side (app passwords, login.check, explain --protocol).
export type { AppPasswordAdded, AppPasswordList, AppPasswordRevoked, AppPasswordView, LoginCheckOutcome, LoginCheckResult, ProtocolExplainResult } from './results-mail.js';

/** `ping`: the daemon answers; its version and how long it has run. */
export interface PingResult {
  pong: true;
  version: string;
  uptimeSeconds: number;
}

/** `metrics`: the Prometheus text exposition, and the HTTP Content-Type it goes with. */
export interface MetricsResult {
  contentType: string;
  text: string;
}

export interface StatusResult {
  version: string;
  pid: number;
  uptimeSeconds: number;
  /** The store's file, or the database as postgres://user@host:port/database (never a password). */
  store: string;
  storeBackend: 'file' | 'postgres';
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

/**
 * `audit.verify`: every stream checked; the first problem, if any, at the top. `database`: the
 * streams are a database's tables (store.backend postgres), which have no files (files 0).
 */
export type AuditVerifyResult =
  | { ok: true; lines: number; files: number; lost: number; streams: AuditStreamCheck[]; database?: true }
  | { ok: false; file: string; line: number; problem: string; streams: AuditStreamCheck[] };

/** An audit line as audit.query answers it (audit/entry.ts writes it), with the stream it is in. */
export interface AuditEntryView {
  seq: number;
  /** ISO 8601. */
  time: string;
  /** admin, self, hook, daemon or domain-admin:NAME. */
  actor: string;
  socket: SocketKind | null;
  mailbox: string | null;
  action: string;
  result: string;
  reason: string | null;
  ip: string | null;
  country: string | null;
  /** A counted line (fast-path allows) has details.count: the logins it stands for. */
  details?: Record<string, unknown>;
  /** The SHA-256 of the line before, which chains the stream. */
  prev: string;
  stream: AuditStreamName;
}

export interface AuditQueryResult {
  /** Oldest first. */
  entries: AuditEntryView[];
}

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
  /** What the primary password may do over mail protocols (login.check) while the challenge mode is not never. */
  primaryPassword: { value: PrimaryPasswordMode; source: SettingSource };
}

export interface LockView {
  locked: boolean;
  /** null while locked: until an administrator unlocks. */
  until: number | null;
  reason: 'lockout' | 'hard-lock' | null;
  /** Consecutive failures. */
  failures: number;
}

/** A TOTP secret active, one pending (enrolment started, not confirmed), or none. */
export type TotpStatus = 'active' | 'pending' | 'none';

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
  totp: TotpStatus;
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
  /** How many app passwords the mailbox has (app-password.list shows them). */
  appPasswords: number;
}

export interface MailboxRemoveResult {
  address: string;
  removed: true;
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

/** enroll.confirm, self.enroll.confirm. */
export interface EnrolConfirmResult {
  address: string;
  activated: true;
  /** Epoch ms. */
  activatedAt: number;
}

/** reset: what was removed. */
export interface ResetResult {
  address: string;
  secret: boolean;
  locations: boolean;
}

/** self.forget-locations: reset's answer, or without `secret` for a mailbox with no stored record (nothing to forget). */
export type ForgetLocationsResult = ResetResult | { address: string; locations: true };

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
  mailboxes: { address: string; challenge: ChallengeMode; provider: ProviderName; totp: TotpStatus; locked: boolean }[];
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
  /** The configuration's defaults (defaults in memfa.conf(5)), under the global settings. */
  defaults: Record<string, unknown>;
  effective: EffectiveView;
}

export interface ProviderRow {
  /** A provider, or app-password: who may create app passwords. */
  name: PolicyName;
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
  provider: PolicyName;
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
  challenge: ChallengeMode;
  provider: ProviderName;
  /** Where each came from: 'user' for the user's own choice. */
  sources: { challenge: SettingSource; provider: SettingSource };
  /** What the user chose (challenge, provider). */
  userSettings: Record<string, unknown>;
  phone: string | null;
  altEmail: string | null;
  totp: TotpStatus;
  ips: RememberedIp[];
  countries: RememberedCountry[];
  recoveryCodesLeft: number;
  /** The second factors in use; changing them through self-service needs one of them proved. */
  activeFactors: ProviderName[];
  mayConfigure: boolean;
  /** Empty when the user may not configure. */
  allowedChallenges: ChallengeMode[];
  /** Empty when the user may not configure, or an administrator set this mailbox's provider. */
  allowedProviders: ProviderName[];
  /** Whether the user may create app passwords (the platform's policy), and how many the mailbox has. */
  appPasswords: { mayCreate: boolean; count: number };
}

export interface DomainRemoveResult {
  domain: string;
  removed: true;
  /** Platform-only settings a domain administrator's removal left in place. */
  kept: string[];
}

export interface SelfCodeSent {
  address: string;
  provider: CodeProvider;
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

export interface AdminRemoveResult {
  name: string;
  removed: true;
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
  address: string;
  unlocked: true;
  failuresCleared: number;
}

/** recovery.generate, self.recovery.generate: the new set, shown once. */
export interface RecoveryCodesResult {
  address: string;
  codes: string[];
}

export interface ProviderTestResult {
  provider: CodeProvider;
  transport: string;
  /** Masked. */
  to: string;
  ok: true;
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
