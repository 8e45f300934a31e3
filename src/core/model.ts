// The data model shared by the pure core, the services and the store.
// Plain JSON-compatible shapes only: the store serialises them as they are.

import type { AppProtocol, ChallengeMode, CodeProvider, FallbackProvider, PrimaryPasswordMode, ProviderName } from '../protocol/vocabulary.js';
import type { ChallengeMinimum, CountryRule, EnrolmentGrace, RememberedCountry, RememberedIp, SettingSource } from '../protocol/wire-types.js';
import type { MailboxNotices } from './notices.js';

// The lists live with the protocol, which must not import the core; the core re-exports them.
export {
  CHALLENGE_MODES,
  CODE_PROVIDERS,
  FALLBACK_PROVIDERS,
  PRIMARY_PASSWORD_MODES,
  PROVIDERS,
  type ChallengeMode,
  type CodeProvider,
  type FallbackProvider,
  type PrimaryPasswordMode,
  type ProviderName,
} from '../protocol/vocabulary.js';
// So are the shapes that the answers carry as they are (a country rule, a remembered location, ...).
export type { ChallengeMinimum, CountryRule, EnrolmentGrace, GraceLimits, RememberedCountry, RememberedIp, SettingSource } from '../protocol/wire-types.js';

/**
 * Settings stored at one level (global, domain or mailbox). A missing key means "inherit from the
 * level above"; the global level must end up defining challenge and provider (config defaults do).
 */
export interface LevelSettings {
  challenge?: ChallengeMode;
  provider?: ProviderName;
  /** Tried when delivery through `provider` fails; 'none' disables an inherited fallback. */
  fallbackProvider?: FallbackProvider;
  countryRule?: CountryRule | null;
  /** CIDR list; honoured at global and domain level. */
  trustedNetworks?: string[];
  /** Domain level: whether end users may change their own MFA settings. */
  usersMayConfigure?: boolean;
  /**
   * Global and domain levels, set by the platform administrator only: the weakest challenge mode
   * a mailbox may end up with, whatever a domain administrator, a mailbox setting or the user chose.
   */
  minChallenge?: ChallengeMode;
  /** Set by the platform administrator only; the most specific level that sets it applies. */
  enrolmentGrace?: EnrolmentGrace;
  /** Whether security notices are mailed to the mailbox's owner (core/notices.ts). */
  notifications?: boolean;
  /** For mailboxes whose challenge mode is not never: what their primary password may do over mail protocols. */
  primaryPassword?: PrimaryPasswordMode;
}

/**
 * What an end user chose for their own mailbox (self.set), kept apart from what an administrator
 * set for it (MailboxRecord.settings): the administrator's choice is a floor the user cannot undo.
 */
export interface UserSettings {
  challenge?: ChallengeMode;
  provider?: ProviderName;
}

export type SettingKey = keyof LevelSettings;

/** Effective settings after inheritance, each with where it came from. */
export interface EffectiveSettings {
  challenge: ChallengeMode;
  provider: ProviderName;
  fallbackProvider: FallbackProvider;
  /** Country rules of every level that has one; all of them apply. */
  countryRules: { level: SettingSource; rule: CountryRule }[];
  trustedNetworks: string[];
  usersMayConfigure: boolean;
  /** The platform's minimum challenge mode, or null when none is set. */
  minChallenge: ChallengeMinimum | null;
  enrolmentGrace: EnrolmentGrace;
  notifications: boolean;
  primaryPassword: PrimaryPasswordMode;
  sources: Record<'challenge' | 'provider' | 'fallbackProvider' | 'usersMayConfigure' | 'enrolmentGrace' | 'notifications' | 'primaryPassword', SettingSource>;
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
  /**
   * Started by self-service with proof of the mailbox's current factor (services/proof.ts). Only
   * such a pending secret may be activated through self-service once the mailbox has a factor;
   * absent in older stores, which reads as false.
   */
  factorProved?: true;
}

/**
 * A one-time code sent by SMS or email, checked by its keyed hash. So that any daemon can send the
 * same code again while it is open, the code is kept sealed by the key ring too (as TOTP secrets
 * are, never plain text in the store), its additional authenticated data naming the purpose and
 * the mailbox (services/codes.ts); a code without it (an older store) cannot be sent again, and a
 * new code is sent instead.
 */
export interface OpenCode {
  hash: string;
  sealedCode?: string;
  provider: CodeProvider;
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
  /** What an administrator (platform or domain) set for this mailbox. */
  settings: LevelSettings;
  /** What the user chose through self-service; see UserSettings. */
  userSettings: UserSettings;
  phone: string | null; // E.164
  altEmail: string | null;
  totp: TotpState | null;
  pendingTotp: PendingTotp | null;
  openCode: OpenCode | null;
  ips: RememberedIp[];
  countries: RememberedCountry[];
  failures: MailboxFailures;
  recoveryCodeHashes: string[];
  /**
   * Logins let in by an enrolment grace with a number of logins (core/grace.ts); absent: none.
   * Optional, so that records without it (nearly all) keep their shape.
   */
  enrolmentGraceLogins?: number;
  /** Security notices waiting to be sent, and recent ones (core/notices.ts); absent: none. */
  notices?: MailboxNotices;
  /** Standing credentials for mail clients (core/app-passwords.ts); at most appPasswords.maxPerMailbox. */
  appPasswords: AppPassword[];
  createdAt: number;
  updatedAt: number;
}

/** An app password as stored: never the password itself. */
export interface AppPassword {
  /** Short random id, shown by list and accepted by revoke. */
  id: string;
  /** The user's label, unique within the mailbox ('phone', 'Thunderbird at home'). */
  name: string;
  /** Keyed hash of the canonical password (see services/app-passwords.ts). */
  hash: string;
  protocols: AppProtocol[];
  /** CIDR networks it may be used from; empty: any. */
  networks: string[];
  createdAt: number;
  /** Epoch ms after which it no longer works; null: never expires. */
  expiresAt: number | null;
  lastUsed: { at: number; ip: string; country: string | null } | null;
  uses: number;
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
    userSettings: {},
    phone: null,
    altEmail: null,
    totp: null,
    pendingTotp: null,
    openCode: null,
    ips: [],
    countries: [],
    failures: noFailures(),
    recoveryCodeHashes: [],
    appPasswords: [],
    createdAt: now,
    updatedAt: now,
  };
}
