// Settings inheritance (mailbox over domain over global over configuration defaults, with the
// user's own choices and the platform's minimum on top) and validation of changes to one level.
// Pure.

import { MemfaError, invalidParams } from '../protocol/errors.js';
import { Problems } from '../protocol/problems.js';
import { INHERIT } from '../protocol/vocabulary.js';
import {
  CHALLENGE_MODES,
  FALLBACK_PROVIDERS,
  PRIMARY_PASSWORD_MODES,
  PROVIDERS,
  type ChallengeMinimum,
  type ChallengeMode,
  type FallbackProvider,
  type CountryRule,
  type EffectiveSettings,
  type LevelSettings,
  type PrimaryPasswordMode,
  type ProviderName,
  type SettingSource,
  type UserSettings,
} from './model.js';
import { parseEnrolmentGrace } from './grace.js';
import { normaliseCidr, normaliseCountry } from './validate.js';

/** 'user': what an end user chose for their own mailbox (MailboxRecord.userSettings). */
export type SettingsLevel = 'global' | 'domain' | 'mailbox' | 'user';

/** From weakest to strictest. */
export const CHALLENGE_STRICTNESS: Readonly<Record<ChallengeMode, number>> = Object.freeze({ never: 0, 'new-country': 1, 'new-ip': 2, always: 3 });

export function atLeastAsStrict(mode: ChallengeMode, than: ChallengeMode): boolean {
  return CHALLENGE_STRICTNESS[mode] >= CHALLENGE_STRICTNESS[than];
}

/** The configuration's `defaults` section: the bottom of the inheritance chain. */
export type SettingsDefaults = Required<Pick<LevelSettings, 'challenge' | 'provider'>> & {
  fallbackProvider?: FallbackProvider;
  usersMayConfigure?: boolean;
  primaryPassword?: PrimaryPasswordMode;
};

/** Without a configured default: a mailbox with MFA on takes only app passwords over mail protocols. */
export const DEFAULT_PRIMARY_PASSWORD: PrimaryPasswordMode = 'app-password';

type Inherited = 'challenge' | 'provider' | 'fallbackProvider' | 'usersMayConfigure' | 'enrolmentGrace' | 'primaryPassword';

/** The most specific level that sets `key` (mailbox, domain, global), else the default. */
function pick<K extends Inherited>(
  key: K,
  mailbox: LevelSettings | undefined,
  domain: LevelSettings | undefined,
  global: LevelSettings,
  fallback: NonNullable<LevelSettings[K]>,
): { value: NonNullable<LevelSettings[K]>; source: SettingSource } {
  // Written out rather than looped over [level, settings] pairs: this runs for every login.
  const m = mailbox?.[key];
  if (m !== undefined && m !== null) return { value: m as NonNullable<LevelSettings[K]>, source: 'mailbox' };
  const d = domain?.[key];
  if (d !== undefined && d !== null) return { value: d as NonNullable<LevelSettings[K]>, source: 'domain' };
  const g = global[key];
  if (g !== undefined && g !== null) return { value: g as NonNullable<LevelSettings[K]>, source: 'global' };
  return { value: fallback, source: 'default' };
}

function addRule(rules: EffectiveSettings['countryRules'], level: SettingSource, settings: LevelSettings | undefined): void {
  const rule = settings?.countryRule;
  if (rule) rules.push({ level, rule: { mode: rule.mode, countries: [...rule.countries] } });
}

/**
 * The challenge mode: the most specific administrator level (mailbox, domain, global, default);
 * the user's own choice only where it is at least as strict as that; then the platform's minimum
 * (domain over global) where it is stricter still.
 */
function resolveChallenge(
  defaults: SettingsDefaults,
  global: LevelSettings,
  domain: LevelSettings | undefined,
  mailbox: LevelSettings | undefined,
  user: UserSettings | undefined,
): { value: ChallengeMode; source: SettingSource; minimum: ChallengeMinimum | null } {
  let chosen: { value: ChallengeMode; source: SettingSource } = pick('challenge', mailbox, domain, global, defaults.challenge);
  const own = user?.challenge;
  if (own !== undefined && atLeastAsStrict(own, chosen.value)) chosen = { value: own, source: 'user' };
  const d = domain?.minChallenge;
  const g = global.minChallenge;
  const fromDomain = d !== undefined && d !== null;
  const floor = fromDomain ? d : g !== undefined && g !== null ? g : null;
  // Object literals field by field, no spreads: this runs for every login, and V8 copied each
  // `{ ...chosen, minimum }` through its runtime (1.4 µs a login, allocated in the old generation).
  if (floor === null) return { value: chosen.value, source: chosen.source, minimum: null };
  const source = fromDomain ? 'domain' : 'global';
  if (CHALLENGE_STRICTNESS[floor] > CHALLENGE_STRICTNESS[chosen.value]) return { value: floor, source, minimum: { value: floor, source, raised: true } };
  return { value: chosen.value, source: chosen.source, minimum: { value: floor, source, raised: false } };
}

/**
 * What applies to one mailbox.
 * - challenge: see resolveChallenge. The user's choice can only make it stricter, and nothing
 *   below the platform (a domain administrator, a mailbox setting, the user) can go under the
 *   platform's minChallenge.
 * - provider: an administrator's setting for this very mailbox, else the user's own choice, else
 *   domain, global, defaults.
 * - fallbackProvider: the most specific level that sets it, else defaults.
 * - usersMayConfigure: domain over global over defaults; a mailbox cannot grant it to itself, so a
 *   mailbox-level value is ignored. Without any value the answer is false.
 * - countryRules: the rule of every level that has one, all enforced: a domain or mailbox can add
 *   restrictions but never lift a global one (a null rule at a lower level adds nothing).
 * - trustedNetworks: global ∪ domain. A mailbox cannot declare networks trusted for itself.
 * - enrolmentGrace: the most specific level that sets it (a mailbox's 'none' ends a domain's
 *   grace for it), else 'none'.
 * - primaryPassword: the most specific level that sets it (mailbox, domain, global), else defaults.
 */
export function resolveSettings(
  defaults: SettingsDefaults,
  global: LevelSettings,
  domain: LevelSettings | undefined,
  mailbox: LevelSettings | undefined,
  user?: UserSettings,
): EffectiveSettings {
  const challenge = resolveChallenge(defaults, global, domain, mailbox, user);
  const ownProvider = user?.provider;
  const provider =
    (mailbox?.provider === undefined || mailbox.provider === null) && ownProvider !== undefined
      ? { value: ownProvider, source: 'user' as const }
      : pick('provider', mailbox, domain, global, defaults.provider);
  const fallbackProvider = pick('fallbackProvider', mailbox, domain, global, defaults.fallbackProvider ?? 'none');
  const usersMayConfigure = pick('usersMayConfigure', undefined, domain, global, defaults.usersMayConfigure ?? false);
  const enrolmentGrace = pick('enrolmentGrace', mailbox, domain, global, 'none');
  const primaryPassword = pick('primaryPassword', mailbox, domain, global, defaults.primaryPassword ?? DEFAULT_PRIMARY_PASSWORD);

  // Global first, then domain, then mailbox.
  const countryRules: EffectiveSettings['countryRules'] = [];
  addRule(countryRules, 'global', global);
  addRule(countryRules, 'domain', domain);
  addRule(countryRules, 'mailbox', mailbox);

  const globalNets = global.trustedNetworks ?? [];
  const domainNets = domain?.trustedNetworks ?? [];
  const trustedNetworks = globalNets.length + domainNets.length === 0 ? [] : [...new Set([...globalNets, ...domainNets])];

  return {
    challenge: challenge.value,
    provider: provider.value,
    fallbackProvider: fallbackProvider.value,
    countryRules,
    trustedNetworks,
    usersMayConfigure: usersMayConfigure.value,
    minChallenge: challenge.minimum,
    enrolmentGrace: enrolmentGrace.value,
    primaryPassword: primaryPassword.value,
    sources: {
      challenge: challenge.source,
      provider: provider.source,
      fallbackProvider: fallbackProvider.source,
      usersMayConfigure: usersMayConfigure.source,
      enrolmentGrace: enrolmentGrace.source,
      primaryPassword: primaryPassword.source,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Patches

/** The keys a patch may carry, and the levels each is honoured at. */
export const SETTING_LEVELS: Readonly<Record<keyof LevelSettings, readonly SettingsLevel[]>> = {
  challenge: ['global', 'domain', 'mailbox', 'user'],
  provider: ['global', 'domain', 'mailbox', 'user'],
  fallbackProvider: ['global', 'domain', 'mailbox'],
  countryRule: ['global', 'domain', 'mailbox'],
  trustedNetworks: ['global', 'domain'],
  usersMayConfigure: ['global', 'domain'],
  minChallenge: ['global', 'domain'],
  enrolmentGrace: ['global', 'domain', 'mailbox'],
  primaryPassword: ['global', 'domain', 'mailbox'],
};

/**
 * The settings a domain administrator may set and remove; the rest (trustedNetworks,
 * usersMayConfigure, minChallenge, and enrolmentGrace, which lets logins in without any second
 * factor) belong to the platform administrator.
 */
export const DOMAIN_ADMIN_KEYS: readonly (keyof LevelSettings)[] = ['challenge', 'provider', 'fallbackProvider', 'countryRule', 'primaryPassword'];

/** A problem with one key of a patch, named by that key. */
function patchError(param: string, message: string): MemfaError {
  return invalidParams(message, { param });
}

function oneOf<T extends string>(key: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw patchError(key, `${key}: expected one of ${allowed.join(', ')} or '${INHERIT}', got ${JSON.stringify(value)}`);
}

/** A list given as an array or, from a command line, as a comma-separated string. */
function list(key: string, value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  throw patchError(key, `${key}: expected a list (array or comma-separated string)`);
}

/** Every item normalised, in order and without repeats; every bad item is reported, not only the first. */
function eachOf<T>(items: unknown[], normalise: (item: unknown) => T): T[] {
  const problems = new Problems();
  const out = new Set<T>();
  for (const item of items) {
    const v = problems.check(() => normalise(item));
    if (v !== undefined) out.add(v);
  }
  problems.throwIfAny();
  return [...out];
}

function parseCountryRule(value: unknown): CountryRule {
  const key = 'countryRule';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw patchError(key, `${key}: expected { mode: 'block' | 'allow-only', countries: [...] } or '${INHERIT}'`);
  }
  const rec = value as Record<string, unknown>;
  const problems = new Problems();
  for (const k of Object.keys(rec)) {
    if (k !== 'mode' && k !== 'countries') problems.add(`${key}.${k}`, `${key}.${k}: unknown key (expected mode, countries)`);
  }
  const mode = problems.check(() => oneOf(`${key}.mode`, rec.mode, ['block', 'allow-only'] as const));
  const countries = problems.check(() => {
    const codes = eachOf(list(`${key}.countries`, rec.countries), (c) => normaliseCountry(c, `${key}.countries`)).sort();
    // An empty allow-only list would refuse every login; an empty block list does nothing.
    if (codes.length === 0) throw patchError(`${key}.countries`, `${key}.countries: list at least one country (or set ${key} to '${INHERIT}')`);
    return codes;
  });
  problems.throwIfAny();
  return { mode: mode!, countries: countries! };
}

function parseBoolean(key: string, value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'yes') return true;
  if (value === 'false' || value === 'no') return false;
  throw patchError(key, `${key}: expected true or false, got ${JSON.stringify(value)}`);
}

function isSettingKey(key: string): key is keyof LevelSettings {
  return Object.prototype.hasOwnProperty.call(SETTING_LEVELS, key);
}

/**
 * The settings of one level after `patch`. A value of 'inherit' or null removes the key; any
 * other value is validated and normalised. Every problem in the patch is collected into one
 * INVALID_PARAMS error (data.param: the first offending key; data.errors: all of them), and
 * nothing is applied unless the whole patch is valid. `current` is not modified.
 */
export function applySettingsPatch(current: LevelSettings, patch: Record<string, unknown>, level: SettingsLevel): LevelSettings {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new MemfaError('INVALID_PARAMS', 'settings: expected an object of setting keys', { data: { param: 'settings' } });
  }
  const next: LevelSettings = { ...current };
  const problems = new Problems();
  for (const [key, value] of Object.entries(patch)) {
    problems.check(() => {
      if (!isSettingKey(key)) {
        throw patchError(key, `${key}: unknown setting (expected one of ${Object.keys(SETTING_LEVELS).join(', ')})`);
      }
      if (!SETTING_LEVELS[key].includes(level)) {
        throw patchError(key, `${key}: can only be set at ${SETTING_LEVELS[key].join(' or ')} level, not ${level}`);
      }
      if (value === INHERIT || value === null) {
        delete next[key];
        return;
      }
      switch (key) {
        case 'challenge':
          next.challenge = oneOf<ChallengeMode>(key, value, CHALLENGE_MODES);
          break;
        case 'minChallenge':
          next.minChallenge = oneOf<ChallengeMode>(key, value, CHALLENGE_MODES);
          break;
        case 'provider':
          next.provider = oneOf<ProviderName>(key, value, PROVIDERS);
          break;
        case 'fallbackProvider':
          next.fallbackProvider = oneOf<FallbackProvider>(key, value, FALLBACK_PROVIDERS);
          break;
        case 'countryRule':
          next.countryRule = parseCountryRule(value);
          break;
        case 'trustedNetworks':
          next.trustedNetworks = eachOf(list(key, value), (c) => normaliseCidr(c, key));
          break;
        case 'usersMayConfigure':
          next.usersMayConfigure = parseBoolean(key, value);
          break;
        case 'enrolmentGrace':
          next.enrolmentGrace = parseEnrolmentGrace(value);
          break;
        case 'primaryPassword':
          next.primaryPassword = oneOf<PrimaryPasswordMode>(key, value, PRIMARY_PASSWORD_MODES);
          break;
      }
    });
  }
  problems.throwIfAny();
  return next;
}

/**
 * The problems applySettingsPatch would report for `patch` at `level`, thrown the same way:
 * validation does not depend on the current settings, so a caller can check a patch together with
 * its other parameters before it opens a transaction.
 */
export function checkSettingsPatch(patch: Record<string, unknown>, level: SettingsLevel): void {
  applySettingsPatch({}, patch, level);
}
