// Result shapes of the methods (see methods.ts), shared by daemon and CLI.
import type { ChallengeMode, CountryRule, ProviderName, RememberedCountry, RememberedIp, SettingSource } from '../core/model.js';

export interface StatusResult {
  version: string;
  pid: number;
  uptimeSeconds: number;
  store: string;
  mailboxes: number;
  domains: number;
  sockets: { admin: string; hook: string };
  providers: { name: ProviderName; enabled: boolean; transport: string; gateway: 'ok' | 'unconfigured' | 'down' | 'not-needed'; detail?: string }[];
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
  /** deny 'locked' or a refused send: seconds until a retry can succeed (absent: until an admin unlocks). */
  retryAfter?: number;
  /** recovery-code-used: how many recovery codes remain. */
  recoveryCodesLeft?: number;
}

export interface EffectiveView {
  challenge: { value: ChallengeMode; source: SettingSource };
  provider: { value: ProviderName; source: SettingSource };
  fallbackProvider: { value: ProviderName | 'none'; source: SettingSource };
  usersMayConfigure: { value: boolean; source: SettingSource };
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
  settings: Record<string, unknown>;
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
  decision: { result: VerifyOutcome; reason: string; provider: ProviderName; matched?: string; rule?: string };
  steps: string[];
}
