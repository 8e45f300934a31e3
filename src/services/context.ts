// What several services derive from the configuration and the state for one mailbox. Pure: the
// caller reads what they need (LoginReads.loginView gives a mailbox with its levels in one read).
import { resolveSettings } from '../core/settings.js';
import { failuresOf, lockState, type LockoutPolicy } from '../core/lockout.js';
import { newMailbox, type EffectiveSettings, type FailureState, type MailboxRecord } from '../core/model.js';
import { freshEntries, type RememberPolicy } from '../core/decide.js';
import type { ProviderChoice } from '../core/provider-choice.js';
import type { TotpOptions } from '../core/totp.js';
import type { MemfaConfig } from '../config/types.js';
import type { EffectiveView, LockView, MailboxView } from '../protocol/results.js';
import type { LoginView } from './store-ports.js';

/** The levels a mailbox inherits from: its domain's settings and the global ones. */
export type Levels = Pick<LoginView, 'domain' | 'global'>;

/**
 * The effective settings of the mailbox of `view` (LoginReads.loginView), or of `mailbox` under the
 * same levels (none stored: what it inherits).
 */
export function viewSettings(config: MemfaConfig, view: Levels & { mailbox?: MailboxRecord | undefined }, mailbox: MailboxRecord | undefined = view.mailbox): EffectiveSettings {
  return resolveSettings(config.defaults, view.global, view.domain, mailbox?.settings, mailbox?.userSettings);
}

/** What `rec` would have without the user's own choices: the floor self-service may not go under. */
export function floorOf(config: MemfaConfig, levels: Levels, rec: MailboxRecord | undefined): EffectiveSettings {
  return resolveSettings(config.defaults, levels.global, levels.domain, rec?.settings, undefined);
}

export function rememberPolicy(config: MemfaConfig): RememberPolicy {
  return { maxEntries: config.locations.maxEntries, maxAgeMs: config.locations.maxAgeDays * 86_400_000 };
}

export function lockoutPolicy(config: MemfaConfig): LockoutPolicy {
  const l = config.lockout;
  return { threshold: l.threshold, baseDelayMs: l.baseDelaySeconds * 1000, maxDelayMs: l.maxDelaySeconds * 1000, hardLockAfter: l.hardLockAfter };
}

export function totpOptions(config: MemfaConfig): TotpOptions {
  return { algorithm: config.totp.algorithm, digits: config.totp.digits, period: config.totp.period, window: config.totp.window };
}

export function effectiveView(e: EffectiveSettings): EffectiveView {
  return {
    // minimum only when one is set, so that the usual answer keeps its shape.
    challenge: e.minChallenge === null ? { value: e.challenge, source: e.sources.challenge } : { value: e.challenge, source: e.sources.challenge, minimum: { ...e.minChallenge } },
    provider: { value: e.provider, source: e.sources.provider },
    fallbackProvider: { value: e.fallbackProvider, source: e.sources.fallbackProvider },
    usersMayConfigure: { value: e.usersMayConfigure, source: e.sources.usersMayConfigure },
    enrolmentGrace: { value: e.enrolmentGrace, source: e.sources.enrolmentGrace },
    notifications: { value: e.notifications, source: e.sources.notifications },
    countryRules: e.countryRules,
    trustedNetworks: e.trustedNetworks,
    primaryPassword: { value: e.primaryPassword, source: e.sources.primaryPassword },
  };
}

function lockView(f: FailureState, now: number): LockView {
  const lock = lockState(f, now);
  return lock.locked ? { locked: true, until: lock.until, reason: lock.reason, failures: f.consecutive } : { locked: false, until: null, reason: null, failures: f.consecutive };
}

/** Both kinds of a mailbox's lock, and their sum (see MailboxView.lock). */
function lockViews(known: FailureState, elsewhere: FailureState, now: number): MailboxView['lock'] {
  const k = lockView(known, now);
  const e = lockView(elsewhere, now);
  const ends = (v: LockView) => (!v.locked ? -Infinity : v.until === null ? Infinity : v.until);
  const longer = ends(k) > ends(e) ? k : e;
  return { ...longer, failures: Math.max(k.failures, e.failures), known: k, elsewhere: e };
}

/** Which provider gives a mailbox its factor under its effective settings (ProviderPolicy.choiceFor). */
export type ChoiceOf = (eff: EffectiveSettings, rec: MailboxRecord) => ProviderChoice;

/**
 * `view`: the mailbox and its levels (LoginReads.loginView). `unstored`: the failures kept for a
 * mailbox without a record (UnstoredFailureStore). `choiceOf`: when given, the view says which
 * provider verify would use (providerInUse). Remembered locations past locations.maxAgeDays are
 * left out: verify no longer counts them (core/decide.ts).
 */
export function mailboxViewOf(config: MemfaConfig, view: LoginView, address: string, now: number, unstored?: FailureState, choiceOf?: ChoiceOf): MailboxView {
  const stored = view.mailbox;
  const rec = stored ?? newMailbox(address, now);
  const elsewhere = stored === undefined ? unstored : undefined;
  const lock = lockViews(failuresOf(rec.failures, 'known'), elsewhere ?? failuresOf(rec.failures, 'elsewhere'), now);
  const eff = viewSettings(config, view, rec);
  const remember = rememberPolicy(config);
  const result: MailboxView = {
    address,
    stored: stored !== undefined,
    settings: { ...rec.settings },
    userSettings: { ...rec.userSettings },
    effective: effectiveView(eff),
    phone: rec.phone,
    altEmail: rec.altEmail,
    totp: rec.totp !== null ? 'active' : rec.pendingTotp !== null && rec.pendingTotp.expiresAt > now ? 'pending' : 'none',
    totpActivatedAt: rec.totp?.activatedAt ?? null,
    ips: freshEntries(rec.ips, now, remember),
    countries: freshEntries(rec.countries, now, remember),
    lock,
    recoveryCodesLeft: rec.recoveryCodeHashes.length,
    enrolmentGraceLogins: rec.enrolmentGraceLogins ?? 0,
    appPasswords: rec.appPasswords.length,
  };
  if (choiceOf !== undefined) result.providerInUse = choiceOf(eff, rec);
  return result;
}
