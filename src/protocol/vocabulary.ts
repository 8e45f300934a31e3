// The words of the settings, defined once: the challenge modes and providers that the protocol's
// parameter schemas accept, the core decides with, the configuration validates and the CLI offers
// as choices. Here, in protocol/, so that the wire contract needs nothing from the rest of src/.

export const CHALLENGE_MODES = ['never', 'always', 'new-ip', 'new-country'] as const;
export type ChallengeMode = (typeof CHALLENGE_MODES)[number];

export const PROVIDERS = ['totp', 'sms', 'email'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** The providers that deliver a one-time code through a gateway. */
export const CODE_PROVIDERS = ['sms', 'email'] as const satisfies readonly ProviderName[];
export type CodeProvider = (typeof CODE_PROVIDERS)[number];

/** The fallback provider value that disables an inherited fallback. */
export const NO_FALLBACK = 'none';
export const FALLBACK_PROVIDERS = [NO_FALLBACK, ...PROVIDERS] as const;
export type FallbackProvider = (typeof FALLBACK_PROVIDERS)[number];

/** A settings patch value that removes the key, so the level inherits from the one above. */
export const INHERIT = 'inherit';

/** Whether `value` is one of `words`: for input checked against one of these lists. */
export function isMember<T extends string>(words: readonly T[], value: string): value is T {
  return (words as readonly string[]).includes(value);
}

/** `values` plus INHERIT: what a command or method that changes one level accepts. */
export function orInherit<T extends string>(values: readonly T[]): readonly (T | typeof INHERIT)[] {
  return [...values, INHERIT];
}

/** The mail protocols an app password may be limited to, as login.check names them. */
export const APP_PROTOCOLS = ['imap', 'pop3', 'smtp', 'sieve', 'dav'] as const;
export type AppProtocol = (typeof APP_PROTOCOLS)[number];

/**
 * What a mailbox whose challenge mode is not never accepts as its primary password over mail
 * protocols (primaryPassword): `password` (MFA covers interactive logins only), `known-location`
 * (only from where the mailbox passed a second factor), `app-password` (never; app passwords only).
 */
export const PRIMARY_PASSWORD_MODES = ['password', 'known-location', 'app-password'] as const;
export type PrimaryPasswordMode = (typeof PRIMARY_PASSWORD_MODES)[number];

/** Why a provider cannot give a mailbox its factor (memfa(1) names each, under mailbox show). */
export const PROVIDER_PROBLEMS = ['disabled', 'no-gateway', 'no-destination'] as const;
export type ProviderProblem = (typeof PROVIDER_PROBLEMS)[number];

/** The pseudo-provider of the provider policy that says who may create app passwords. */
export const APP_PASSWORD_POLICY = 'app-password';
export const POLICY_NAMES = [...PROVIDERS, APP_PASSWORD_POLICY] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
