// The data model shared by the pure core, the services and the store.
// Plain JSON-compatible shapes only: the store serialises them as they are.

export const CHALLENGE_MODES = ['never', 'always', 'new-ip', 'new-country'] as const;
export type ChallengeMode = (typeof CHALLENGE_MODES)[number];

export const PROVIDERS = ['totp', 'sms', 'email'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** ISO 3166-1 alpha-2 country rule. `block`: refuse the listed countries; `allow-only`: refuse all others. */
export interface CountryRule {
  mode: 'block' | 'allow-only';
  countries: string[];
}

/**
 * Settings stored at one level (global, domain or mailbox). A missing key means "inherit from the
 * level above"; the global level must end up defining challenge and provider (config defaults do).
 */
export interface LevelSettings {
  challenge?: ChallengeMode;
  provider?: ProviderName;
  /** Tried when delivery through `provider` fails; 'none' disables an inherited fallback. */
  fallbackProvider?: ProviderName | 'none';
  countryRule?: CountryRule | null;
  /** CIDR list; honoured at global and domain level. */
  trustedNetworks?: string[];
  /** Domain level: whether end users may change their own MFA settings. */
  usersMayConfigure?: boolean;
}

export type SettingKey = keyof LevelSettings;
export type SettingSource = 'global' | 'domain' | 'mailbox' | 'default';

/** Effective settings after inheritance, each with where it came from. */
export interface EffectiveSettings {
  challenge: ChallengeMode;
  provider: ProviderName;
  fallbackProvider: ProviderName | 'none';
  /** Country rules of every level that has one; all of them apply. */
  countryRules: { level: SettingSource; rule: CountryRule }[];
  trustedNetworks: string[];
  usersMayConfigure: boolean;
  sources: Record<'challenge' | 'provider' | 'fallbackProvider' | 'usersMayConfigure', SettingSource>;
}

export interface RememberedIp {
  ip: string;
  firstSeen: number; // epoch ms
  lastSeen: number;
}

export interface RememberedCountry {
  country: string; // ISO 3166-1 alpha-2
  firstSeen: number;
  lastSeen: number;
}

/** A TOTP secret sealed by the key ring (AES-256-GCM); never plain text in the store. */
export interface TotpState {
  sealedSecret: string;
  activatedAt: number;
  /** Highest time step accepted; that step and every earlier one are refused (replay). */
  lastAcceptedStep: number | null;
}

export interface PendingTotp {
  sealedSecret: string;
  createdAt: number;
  expiresAt: number;
}

/** A one-time code sent by SMS or email, stored only as a keyed hash. */
export interface OpenCode {
  hash: string;
  provider: 'sms' | 'email';
  destination: string;
  createdAt: number;
  expiresAt: number;
  failedTries: number;
  sends: number;
  lastSentAt: number;
}

export interface FailureState {
  consecutive: number;
  lockedUntil: number | null;
  /** Locked until an administrator unlocks the mailbox. */
  hardLocked: boolean;
  lastFailureAt: number | null;
}

/**
 * A mailbox's failures, counted apart by where the logins came from (see core/lockout.ts), so that
 * failures from addresses an attacker can choose never lock the owner out at the addresses the
 * mailbox has passed a second factor from. null: none since the last success or unlock.
 */
export interface MailboxFailures {
  /** From a fresh remembered IP address of this mailbox (one it passed a second factor from). */
  known: FailureState | null;
  /** From any other address, or with none (an enrolment confirmed over a socket). */
  elsewhere: FailureState | null;
}

export interface MailboxRecord {
  address: string; // lower-cased local@domain
  settings: LevelSettings;
  phone: string | null; // E.164
  altEmail: string | null;
  totp: TotpState | null;
  pendingTotp: PendingTotp | null;
  openCode: OpenCode | null;
  ips: RememberedIp[];
  countries: RememberedCountry[];
  failures: MailboxFailures;
  recoveryCodeHashes: string[];
  createdAt: number;
  updatedAt: number;
}

export interface DomainRecord {
  domain: string;
  settings: LevelSettings;
  updatedAt: number;
}

export function emptyFailures(): FailureState {
  return { consecutive: 0, lockedUntil: null, hardLocked: false, lastFailureAt: null };
}

export function noFailures(): MailboxFailures {
  return { known: null, elsewhere: null };
}

export function newMailbox(address: string, now: number): MailboxRecord {
  return {
    address,
    settings: {},
    phone: null,
    altEmail: null,
    totp: null,
    pendingTotp: null,
    openCode: null,
    ips: [],
    countries: [],
    failures: noFailures(),
    recoveryCodeHashes: [],
    createdAt: now,
    updatedAt: now,
  };
}
