// The decision for a mail-protocol login (IMAP, POP3, SMTP AUTH, ManageSieve, DAV): a login that
// cannot answer a challenge. Pure: the caller has matched the password against the mailbox's app
// passwords and passes what it found, the settings, the history and the time.

import type { AppPasswordRefusal, AppProtocol } from './app-passwords.js';
import { countryRuleRefuses, isRememberedCountry, isRememberedIp, type RememberPolicy } from './decide.js';
import type { ChallengeMode, CountryRule, PrimaryPasswordMode, RememberedCountry, RememberedIp } from './model.js';

export { PRIMARY_PASSWORD_MODES, type PrimaryPasswordMode } from './model.js';

export type LoginCheckResult = 'allow' | 'continue' | 'deny';

/** Every reason login.check gives, with the sentence the man page uses. */
export const LOGIN_CHECK_REASONS = [
  { reason: 'app-password', result: 'allow', description: 'an app password of the mailbox matched, valid for this protocol, network and time' },
  { reason: 'mode-never', result: 'continue', description: 'the mailbox asks for no second factor (challenge mode never): the primary password may be checked' },
  { reason: 'trusted-network', result: 'continue', description: 'the address is inside a trusted network: the primary password may be checked' },
  { reason: 'primary-password', result: 'continue', description: 'primaryPassword is password: the primary password may be checked (MFA covers interactive logins only)' },
  { reason: 'known-location', result: 'continue', description: 'primaryPassword is known-location and the mailbox passed a second factor from this address (or, in mode new-country, this country)' },
  { reason: 'unknown-location', result: 'deny', description: 'primaryPassword is known-location and the mailbox never passed a second factor from here' },
  { reason: 'app-password-required', result: 'deny', description: 'primaryPassword is app-password and the password is not one of the mailbox\'s app passwords' },
  { reason: 'app-password-protocol', result: 'deny', description: 'an app password matched but is not valid for this protocol' },
  { reason: 'app-password-network', result: 'deny', description: 'an app password matched but the address is outside its networks' },
  { reason: 'app-password-expired', result: 'deny', description: 'an app password matched but has expired' },
  { reason: 'country-blocked', result: 'deny', description: 'a country rule refuses the country of the address' },
  { reason: 'throttled', result: 'deny', description: 'too many wrong app passwords from this address or for this mailbox recently (retryAfter)' },
] as const satisfies readonly { reason: string; result: LoginCheckResult; description: string }[];

export type LoginCheckReason = (typeof LOGIN_CHECK_REASONS)[number]['reason'];

export interface ProtocolLoginSettings {
  challenge: ChallengeMode;
  primaryPassword: PrimaryPasswordMode;
  countryRules: { level: string; rule: CountryRule }[];
  /** The trusted network the address is in, or null (worked out by the caller). */
  trustedNetwork: string | null;
}

export interface ProtocolLogin {
  protocol: AppProtocol;
  ip: string;
  country: string | null;
  now: number;
}

export interface ProtocolLoginDecision {
  result: LoginCheckResult;
  reason: LoginCheckReason;
  /** One line a mail client can show the user on a refusal; never a secret. */
  message?: string;
  /** What matched: the app password's name, the remembered address or country, the network. */
  matched?: string;
}

const PROTOCOL_NAMES: Record<AppProtocol, string> = { imap: 'IMAP', pop3: 'POP3', smtp: 'SMTP', sieve: 'ManageSieve', dav: 'CalDAV/CardDAV' };


/**
 * Order, first match wins:
 *  1. a country rule refuses the country → deny country-blocked (app passwords included);
 *  2. an app password matched: refused for its protocol, network or expiry → deny with that
 *     reason; else allow app-password;
 *  3. no app password matched: challenge mode never → continue mode-never; inside a trusted
 *     network → continue trusted-network; else by primaryPassword: password → continue;
 *     known-location → continue if the address (or, in mode new-country, the country) is
 *     remembered and fresh, else deny unknown-location; app-password → deny.
 * A refusal of the primary password never says whether the password was right: memfa does not
 * know, and the text is the same either way.
 */
export function decideProtocolLogin(
  settings: ProtocolLoginSettings,
  history: { ips: readonly RememberedIp[]; countries: readonly RememberedCountry[] },
  remember: RememberPolicy,
  login: ProtocolLogin,
  appPassword: { name: string; refusal: AppPasswordRefusal | null } | null,
): ProtocolLoginDecision {
  const name = PROTOCOL_NAMES[login.protocol];
  for (const { rule } of settings.countryRules) {
    if (countryRuleRefuses(rule, login.country)) {
      return { result: 'deny', reason: 'country-blocked', matched: login.country ?? 'unknown', message: 'logins from this country are refused' };
    }
  }
  if (appPassword !== null) {
    switch (appPassword.refusal) {
      case null:
        return { result: 'allow', reason: 'app-password', matched: appPassword.name };
      case 'app-password-protocol':
        return { result: 'deny', reason: 'app-password-protocol', matched: appPassword.name, message: `this app password is not valid for ${name}` };
      case 'app-password-network':
        return { result: 'deny', reason: 'app-password-network', matched: appPassword.name, message: 'this app password is not valid from this network' };
      case 'app-password-expired':
        return { result: 'deny', reason: 'app-password-expired', matched: appPassword.name, message: 'this app password has expired; create a new one' };
    }
  }
  if (settings.challenge === 'never') return { result: 'continue', reason: 'mode-never' };
  if (settings.trustedNetwork !== null) return { result: 'continue', reason: 'trusted-network', matched: settings.trustedNetwork };
  switch (settings.primaryPassword) {
    case 'password':
      return { result: 'continue', reason: 'primary-password' };
    case 'known-location': {
      if (isRememberedIp(history.ips, login.ip, login.now, remember)) return { result: 'continue', reason: 'known-location', matched: login.ip };
      if (settings.challenge === 'new-country' && login.country !== null && isRememberedCountry(history.countries, login.country, login.now, remember)) {
        return { result: 'continue', reason: 'known-location', matched: login.country };
      }
      return { result: 'deny', reason: 'unknown-location', message: `log in to webmail from this network first, or use an app password for ${name}` };
    }
    case 'app-password':
      return { result: 'deny', reason: 'app-password-required', message: `use an app password for ${name}: this mailbox has two-factor authentication` };
  }
}
