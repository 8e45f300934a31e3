// The shapes that the answers share with the core's data model: a country rule, an enrolment
// grace, where a setting came from, a remembered location, the provider in use. They are defined
// here, because protocol/ imports nothing from the rest of src/; core/model.ts and
// core/provider-choice.ts re-export them, so that the core decides with the very shapes the wire
// carries.
import type { ChallengeMode, ProviderName, ProviderProblem } from './vocabulary.js';

/** ISO 3166-1 alpha-2 country rule. `block`: refuse the listed countries; `allow-only`: refuse all others. */
export interface CountryRule {
  mode: 'block' | 'allow-only';
  countries: string[];
}

/**
 * How long a mailbox that must enrol may still log in without a second factor (core/grace.ts).
 * until: an ISO time; logins: how many such logins. With both, the first limit reached ends it.
 */
export interface GraceLimits {
  until?: string;
  logins?: number;
}

/** 'none': a mailbox without a secret must enrol at its next login that needs a factor. */
export type EnrolmentGrace = 'none' | GraceLimits;

/** The level an effective setting came from ('user': the user's own choice through self-service). */
export type SettingSource = 'global' | 'domain' | 'mailbox' | 'user' | 'default';

/** The platform's minimum challenge mode as it applies to one mailbox. */
export interface ChallengeMinimum {
  value: ChallengeMode;
  source: 'global' | 'domain';
  /** It lifted the mode the settings gave (sources.challenge then names the minimum's level). */
  raised: boolean;
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

export interface ProviderCandidate {
  provider: ProviderName;
  role: 'provider' | 'fallback';
  /** The settings level that named it. */
  source: SettingSource;
  /** Why it cannot be used; null when it can. */
  problem: ProviderProblem | null;
}

/** Which provider can give a mailbox its second factor (core/provider-choice.ts decides it). */
export interface ProviderChoice {
  /**
   * usable: `provider` is the one used. disabled: the platform disabled every candidate.
   * unusable: none can be used and at least one lacks a gateway or a destination.
   */
  outcome: 'usable' | 'disabled' | 'unusable';
  /** The provider used, with its role and source; null when none can be. */
  provider: ProviderName | null;
  role: ProviderCandidate['role'] | null;
  source: SettingSource | null;
  /** The provider, then the fallback (when one is set and differs), in the order they are tried. */
  candidates: ProviderCandidate[];
}
