// Option parsing shared by several command groups: the settings flags of global, domain and
// mailbox set, and the small value parsers.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { CHALLENGE_MODES, FALLBACK_PROVIDERS, PRIMARY_PASSWORD_MODES, PROVIDERS, orInherit } from '../protocol/vocabulary.js';
import { usage } from './io.js';

export const CHALLENGE_CHOICES = orInherit(CHALLENGE_MODES);
export const PROVIDER_CHOICES = orInherit(PROVIDERS);
export const FALLBACK_CHOICES = orInherit(FALLBACK_PROVIDERS);
export const PRIMARY_PASSWORD_CHOICES = orInherit(PRIMARY_PASSWORD_MODES);

export interface SettingFlags {
  challenge?: string;
  provider?: string;
  fallback?: string;
  countryBlock?: string;
  countryAllow?: string;
  countryRule?: string;
  trustedNetworks?: string;
  usersMayConfigure?: string;
  minChallenge?: string;
  enrolmentGrace?: string;
  notifications?: string;
  primaryPassword?: string;
}

// Value parsers throw commander's error, which names the option and reaches the usage handling
// of the command being parsed.
export function parseLimit(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function yesNo(v: string): boolean {
  if (v !== 'yes' && v !== 'no') throw new InvalidArgumentError('expected yes or no');
  return v === 'yes';
}

/**
 * A set command given none of its options would store nothing (or an empty record): a usage
 * error that names what it can set, from the command's own options. `notChanges` are options
 * that accompany a change without being one (a proof such as --current-code-stdin).
 */
export function assertSomethingToSet(cmd: Command, given: object, notChanges: readonly string[] = []): void {
  const changes = cmd.options.filter((o) => !notChanges.includes(o.long ?? ''));
  const values = given as Record<string, unknown>;
  if (changes.some((o) => values[o.attributeName()] !== undefined)) return;
  throw usage(`${cmd.parent?.name() ?? ''} ${cmd.name()}: nothing to change; give at least one of ${changes.map((o) => o.long).join(', ')}`.trim());
}

/** A comma-separated list from the command line, blanks dropped. */
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

export function settingsPatch(f: SettingFlags): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  if (f.challenge !== undefined) patch['challenge'] = f.challenge;
  if (f.provider !== undefined) patch['provider'] = f.provider;
  if (f.fallback !== undefined) patch['fallbackProvider'] = f.fallback;
  const rules = [f.countryBlock, f.countryAllow, f.countryRule].filter((v) => v !== undefined);
  if (rules.length > 1) throw usage('give one of --country-block, --country-allow and --country-rule inherit');
  if (f.countryBlock !== undefined) patch['countryRule'] = { mode: 'block', countries: list(f.countryBlock) };
  if (f.countryAllow !== undefined) patch['countryRule'] = { mode: 'allow-only', countries: list(f.countryAllow) };
  if (f.countryRule !== undefined) {
    if (f.countryRule !== 'inherit') throw usage('--country-rule takes only "inherit" (to remove this level\'s rule)');
    patch['countryRule'] = 'inherit';
  }
  if (f.trustedNetworks !== undefined) patch['trustedNetworks'] = f.trustedNetworks === 'inherit' ? 'inherit' : list(f.trustedNetworks);
  if (f.usersMayConfigure !== undefined) patch['usersMayConfigure'] = f.usersMayConfigure;
  if (f.minChallenge !== undefined) patch['minChallenge'] = f.minChallenge;
  // Parsed by the daemon (core/grace.ts), which names the part that is wrong.
  if (f.enrolmentGrace !== undefined) patch['enrolmentGrace'] = f.enrolmentGrace;
  if (f.notifications !== undefined) patch['notifications'] = f.notifications;
  if (f.primaryPassword !== undefined) patch['primaryPassword'] = f.primaryPassword;
  return patch;
}

export function addSettingOptions(cmd: Command, level: 'global' | 'domain' | 'mailbox'): Command {
  cmd
    .addOption(new Option('--challenge <mode>', 'when to ask for a second factor').choices(CHALLENGE_CHOICES))
    .addOption(new Option('--provider <provider>', 'how the second factor is given').choices(PROVIDER_CHOICES))
    .addOption(new Option('--fallback <provider>', 'provider tried when sending through the first fails').choices(FALLBACK_CHOICES))
    .option('--country-block <CC,..>', 'refuse logins from these countries (ISO 3166-1 alpha-2 codes, e.g. GB, not UK)')
    .option('--country-allow <CC,..>', 'refuse logins from every country but these')
    .option('--country-rule <inherit>', 'remove the country rule of this level')
    .option(
      '--enrolment-grace <grace>',
      'none, until=DATE, logins=N, both (comma-separated) or inherit: how long a mailbox that must enrol may log in without a second factor (platform administrator only)',
    )
    .addOption(new Option('--notifications <yes|no|inherit>', 'whether security notices are mailed to the owner (new country, TOTP, recovery codes, app passwords, lockout)').choices(['yes', 'no', 'inherit']))
    .addOption(
      new Option('--primary-password <mode>', 'what the primary password may do over IMAP, POP3, SMTP, ManageSieve and DAV once MFA is on: password, known-location or app-password').choices(
        PRIMARY_PASSWORD_CHOICES,
      ),
    );
  if (level !== 'mailbox') {
    cmd.option('--trusted-networks <CIDR,..|inherit>', 'networks whose logins need no second factor');
    cmd.addOption(new Option('--users-may-configure <yes|no|inherit>', 'whether end users may change their own MFA settings').choices(['yes', 'no', 'inherit']));
    cmd.addOption(
      new Option('--min-challenge <mode>', 'the weakest challenge mode any domain administrator, mailbox or user setting may give (platform administrator only)').choices(CHALLENGE_CHOICES),
    );
  }
  return cmd;
}
