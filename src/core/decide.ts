// The challenge decision: given what applies to a mailbox, what it has seen before and where a
// login comes from, is a second factor needed? Pure: `now` comes with the login context.

import type { CountryRule, EffectiveSettings, ProviderName, RememberedCountry, RememberedIp } from './model.js';
import { ipInNetworks, normaliseIp } from './validate.js';

/**
 * Every reason memfa gives for an outcome, with the sentence the man page and `--json` readers
 * rely on. The first group comes from decide(); the second from the services that check codes
 * and enrol. The union type below is derived from this list so the two cannot drift apart.
 */
export const DECISION_REASONS = [
  { reason: 'country-blocked', description: 'the country of the address is refused by a country rule' },
  { reason: 'trusted-network', description: 'the address is inside a trusted network; no second factor asked' },
  { reason: 'mode-never', description: 'the challenge mode is never; no second factor asked' },
  { reason: 'known-ip', description: 'mode new-ip and the address was seen recently for this mailbox' },
  { reason: 'known-country', description: 'mode new-country and the country was seen recently for this mailbox' },
  { reason: 'always', description: 'the challenge mode is always; a second factor is needed' },
  { reason: 'new-ip', description: 'mode new-ip and the address is new or no longer remembered' },
  { reason: 'new-country', description: 'mode new-country and the country is new or no longer remembered' },
  { reason: 'country-unknown', description: 'mode new-country and the country of the address cannot be determined' },
  { reason: 'enroll-required', description: 'a second factor is needed but the mailbox has no active TOTP secret yet' },
  { reason: 'enrolment-grace', description: 'the mailbox must enrol, but its enrolment grace lets the login in without a second factor; the enrolment is offered all the same' },
  { reason: 'code-valid', description: 'the code was correct; the login may proceed' },
  { reason: 'code-invalid', description: 'the code was wrong' },
  { reason: 'code-reused', description: 'the TOTP code was already used (replay refused)' },
  { reason: 'code-expired', description: 'the sent code is past its lifetime' },
  { reason: 'no-open-code', description: 'a code was given but none was sent or is still open' },
  { reason: 'locked', description: 'the mailbox or the client address is locked after too many failures' },
  { reason: 'recovery-code-used', description: 'a recovery code was accepted and is now spent' },
  { reason: 'delivery-failed', description: 'the code could not be sent by the provider or its fallback' },
  { reason: 'provider-disabled', description: 'a second factor is needed but the platform has disabled the provider (and any fallback); the login is refused' },
  { reason: 'provider-unusable', description: 'a second factor is needed but neither the provider nor its fallback can give it: a gateway, phone number or alternate address is missing; a configuration error, not worth retrying (exit 78)' },
  { reason: 'rate-limited', description: 'no code was sent and none is open: the mailbox or destination was sent a code within codes.cooldownSeconds, or codes.hourlyLimit codes in the last hour (exit 75, retryAfter)' },
  { reason: 'enrolled', description: 'the TOTP enrolment was confirmed; the secret is now active' },
] as const;

export type DecisionReason = (typeof DECISION_REASONS)[number]['reason'];

export interface LoginContext {
  ip: string;
  /** ISO 3166-1 alpha-2, or null when the address cannot be placed. */
  country: string | null;
  /** Epoch ms. */
  now: number;
}

export interface MailboxHistory {
  ips: RememberedIp[];
  countries: RememberedCountry[];
  hasActiveTotp: boolean;
}

export interface RememberPolicy {
  maxEntries: number;
  /** An entry last seen longer ago than this is forgotten (neither counts nor is kept). */
  maxAgeMs: number;
}

export type DecisionAction = 'allow' | 'challenge' | 'enroll' | 'deny';

export interface Decision {
  action: DecisionAction;
  reason: DecisionReason;
  provider: ProviderName;
  /** What matched: the remembered IP or country, the trusted network, or the refused country ('unknown' for null). */
  matched?: string;
  /** The country rule that refused the login, e.g. 'domain allow-only DE,AT'. */
  rule?: string;
}

/** An entry counts while `now - lastSeen <= maxAgeMs` (a lastSeen in the future, from clock steps, counts). */
function fresh(entry: { lastSeen: number }, now: number, policy: RememberPolicy): boolean {
  return now - entry.lastSeen <= policy.maxAgeMs;
}

/** The entries of a remembered list that still count at `now`; the others are forgotten. */
export function freshEntries<T extends { lastSeen: number }>(entries: readonly T[], now: number, policy: RememberPolicy): T[] {
  return entries.filter((e) => fresh(e, now, policy));
}

/** Whether `ip` (normalised) is a fresh remembered address in `ips`. */
export function isRememberedIp(ips: readonly RememberedIp[], ip: string, now: number, policy: RememberPolicy): boolean {
  // Indexed rather than for-of: where V8 does not inline this (lockout.ts calls it too), for-of
  // allocates an iterator and a result per entry, on every login.
  for (let i = 0; i < ips.length; i++) {
    const e = ips[i]!;
    if (e.ip === ip && fresh(e, now, policy)) return true;
  }
  return false;
}

/** Whether `country` (upper case) is a fresh remembered country in `countries`. */
export function isRememberedCountry(countries: readonly RememberedCountry[], country: string, now: number, policy: RememberPolicy): boolean {
  for (const e of countries) if (e.country === country && fresh(e, now, policy)) return true;
  return false;
}

export function countryRuleRefuses(rule: CountryRule, country: string | null): boolean {
  if (rule.mode === 'block') return country !== null && rule.countries.includes(country);
  // allow-only: an address we cannot place is not in the allowed list.
  return country === null || !rule.countries.includes(country);
}

/**
 * Decides a login. Order, first match wins:
 *  1. country rules: any rule (of any level) that refuses login.country → deny 'country-blocked'.
 *     An allow-only rule refuses an unknown (null) country; a block rule does not.
 *  2. login.ip inside settings.trustedNetworks → allow 'trusted-network' (after 1: a blocked country
 *     is refused even from a trusted network).
 *  3. mode never → allow 'mode-never'.
 *  4. mode always → factor needed ('always');
 *     mode new-ip: ip remembered and fresh → allow 'known-ip', else factor needed ('new-ip');
 *     mode new-country: country null → factor needed ('country-unknown'); country remembered and
 *     fresh → allow 'known-country', else factor needed ('new-country').
 *  5. factor needed: provider totp without an active secret → enroll 'enroll-required';
 *     otherwise challenge with the reason from 4.
 * Lockouts are not decided here: services check lockState() before calling decide().
 */
export function decide(settings: EffectiveSettings, history: MailboxHistory, login: LoginContext, remember: RememberPolicy): Decision {
  const provider = settings.provider;
  const ip = normaliseIp(login.ip);
  const country = login.country === null ? null : login.country.toUpperCase();

  for (const { level, rule } of settings.countryRules) {
    if (countryRuleRefuses(rule, country)) {
      return {
        action: 'deny',
        reason: 'country-blocked',
        provider,
        matched: country ?? 'unknown',
        rule: `${level} ${rule.mode} ${rule.countries.join(',')}`,
      };
    }
  }

  const network = ipInNetworks(ip, settings.trustedNetworks);
  if (network !== null) return { action: 'allow', reason: 'trusted-network', provider, matched: network };

  let needed: 'always' | 'new-ip' | 'new-country' | 'country-unknown';
  switch (settings.challenge) {
    case 'never':
      return { action: 'allow', reason: 'mode-never', provider };
    case 'always':
      needed = 'always';
      break;
    case 'new-ip': {
      if (isRememberedIp(history.ips, ip, login.now, remember)) return { action: 'allow', reason: 'known-ip', provider, matched: ip };
      needed = 'new-ip';
      break;
    }
    case 'new-country': {
      if (country === null) {
        needed = 'country-unknown';
        break;
      }
      if (isRememberedCountry(history.countries, country, login.now, remember)) return { action: 'allow', reason: 'known-country', provider, matched: country };
      needed = 'new-country';
      break;
    }
  }

  if (provider === 'totp' && !history.hasActiveTotp) return { action: 'enroll', reason: 'enroll-required', provider };
  return { action: 'challenge', reason: needed, provider };
}

/**
 * The history after a login from (ip, country) at `now`, normally called once the login has been
 * allowed or its factor checked. A known entry gets lastSeen = now; a new one is added with
 * firstSeen = now. Entries past maxAgeMs are dropped first (an expired IP that returns starts
 * afresh). At most maxEntries of each list remain, most recently seen first; the least recently
 * seen are evicted. A null country leaves the country list as it is (apart from expiry).
 * The inputs are not modified.
 */
export function rememberLocation(
  history: { ips: readonly RememberedIp[]; countries: readonly RememberedCountry[] },
  ip: string,
  country: string | null,
  now: number,
  policy: RememberPolicy,
): { ips: RememberedIp[]; countries: RememberedCountry[] } {
  const addr = normaliseIp(ip);
  const place = country === null ? null : country.toUpperCase();
  return {
    ips: upsert(history.ips, (e) => e.ip === addr, { ip: addr }, now, policy),
    countries: upsert(history.countries, (e) => e.country === place, place === null ? null : { country: place }, now, policy),
  };
}

function upsert<T extends { firstSeen: number; lastSeen: number }>(
  entries: readonly T[],
  isThis: (e: T) => boolean,
  key: Omit<T, 'firstSeen' | 'lastSeen'> | null,
  now: number,
  policy: RememberPolicy,
): T[] {
  // Entries that do not change are shared with the input, not copied: this runs on every login
  // that records a location, and a mailbox keeps up to maxEntries of each.
  const kept: T[] = [];
  let found = false;
  for (const e of entries) {
    if (!fresh(e, now, policy)) continue;
    if (key !== null && !found && isThis(e)) {
      found = true;
      kept.push({ ...e, lastSeen: Math.max(e.lastSeen, now) });
    } else kept.push(e);
  }
  if (key !== null && !found) kept.push({ ...key, firstSeen: now, lastSeen: now } as T);
  mostRecentFirst(kept);
  const limit = Math.max(0, Math.floor(policy.maxEntries));
  return kept.length > limit ? kept.slice(0, limit) : kept;
}

/**
 * Sorts by lastSeen, latest first; equal lastSeen keeps the earlier order (a stable sort). An
 * insertion sort, in place: the list is sorted but for the one entry just seen, so this is one
 * pass, where Array.prototype.sort would copy the list first.
 */
function mostRecentFirst(list: { lastSeen: number }[]): void {
  for (let i = 1; i < list.length; i++) {
    const item = list[i]!;
    let j = i - 1;
    while (j >= 0 && list[j]!.lastSeen < item.lastSeen) {
      list[j + 1] = list[j]!;
      j--;
    }
    list[j + 1] = item;
  }
}
