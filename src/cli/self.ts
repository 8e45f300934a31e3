// `memfa self`: end-user self-service for one mailbox, on the self socket, as a webmail back end
// would use it.
import { Option, type Command } from 'commander';
import type { ParamsOf } from '../protocol/methods.js';
import type { EnrolResult } from '../protocol/results.js';
import { rows } from './format.js';
import { printJson } from './io.js';
import type { Cli } from './program.js';
import { askCode, askCurrentCode, showEnrolment } from './prompt.js';

const CHALLENGE = ['never', 'always', 'new-ip', 'new-country', 'inherit'];
const PROVIDER = ['totp', 'sms', 'email', 'inherit'];

interface SelfView {
  address: string;
  challenge: string;
  provider: string;
  sources: { challenge: string; provider: string };
  phone: string | null;
  altEmail: string | null;
  totp: string;
  activeFactors: string[];
  mayConfigure: boolean;
  allowedChallenges: string[];
  allowedProviders: string[];
}

const printSelf = (v: SelfView) =>
  rows([
    ['mailbox', v.address],
    ['challenge', `${v.challenge} (${v.sources.challenge}; may choose: ${v.allowedChallenges.join(', ')})`],
    ['provider', `${v.provider} (${v.sources.provider}; may choose: ${v.allowedProviders.length === 0 ? 'none' : v.allowedProviders.join(', ')})`],
    ['phone', v.phone ?? '-'],
    ['alternate email', v.altEmail ?? '-'],
    ['totp', v.totp],
    ['active factors', v.activeFactors.length === 0 ? 'none' : `${v.activeFactors.join(', ')} (changing them needs --current-code-stdin)`],
    ['may configure', v.mayConfigure ? 'yes' : 'no'],
  ]);

const CURRENT_CODE_HELP = 'prove the current second factor (a code from the app, a code from self send-code, or a recovery code), read from standard input';

export function addSelfCommands(program: Command, cli: Cli): void {
  const self = program
    .command('self')
    .description('end-user self-service for one mailbox (for webmail back ends; uses the self socket)')
    .requiredOption('--user <address>', 'the mailbox, already authenticated by the caller');
  const selfUser = () => self.opts<{ user: string }>().user;
  const currentCode = async (f: { currentCodeStdin?: boolean }) => (f.currentCodeStdin === true ? { currentCode: await askCurrentCode() } : {});

  self.command('show').action(async () => {
    const v = (await cli.callSelf('self.show', { user: selfUser() })) as SelfView;
    cli.print(v, () => printSelf(v));
  });
  self
    .command('set')
    .addOption(new Option('--challenge <mode>', 'own challenge mode (not weaker than what the administrators set; inherit drops it)').choices(CHALLENGE))
    .addOption(new Option('--provider <provider>', "own provider (among those the platform allows users, unless an administrator set this mailbox's)").choices(PROVIDER))
    .option('--phone <E164|none>', 'own phone number')
    .option('--alt-email <address|none>', 'own alternate address')
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; needed to change the provider, phone or address of an active factor`)
    .action(async (f: { challenge?: string; provider?: string; phone?: string; altEmail?: string; currentCodeStdin?: boolean }) => {
      const params: ParamsOf<'self.set'> = { user: selfUser(), ...(await currentCode(f)) };
      if (f.challenge !== undefined) params.challenge = f.challenge;
      if (f.provider !== undefined) params.provider = f.provider;
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const v = (await cli.callSelf('self.set', params)) as SelfView;
      cli.print(v, () => printSelf(v));
    });
  self
    .command('send-code')
    .option('--ip <ip>', "the user's client address, named in the message")
    .description('send a one-time code to the sms or email factor, to prove it with --current-code-stdin')
    .action(async (f: { ip?: string }) => {
      const r = (await cli.callSelf('self.code.send', { user: selfUser(), ...(f.ip === undefined ? {} : { ip: f.ip }) })) as { provider: string; destination: string; expiresAt: number };
      cli.print(r, () => `code sent by ${r.provider} to ${r.destination}; valid until ${new Date(r.expiresAt).toISOString()}`);
    });
  self
    .command('enroll')
    .option('--restart', 'discard a pending secret and create a new one')
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; needed once the mailbox has a second factor`)
    .description('start own TOTP enrolment (prints the otpauth URI; confirm with self confirm)')
    .action(async (f: { restart?: boolean; currentCodeStdin?: boolean }) => {
      const e = (await cli.callSelf('self.enroll.start', { user: selfUser(), restart: f.restart === true, ...(await currentCode(f)) })) as EnrolResult;
      if (cli.opts().json) printJson(e);
      else await showEnrolment(e, cli.chalk());
    });
  self
    .command('confirm')
    .description('confirm own TOTP enrolment with a code from the app, read from standard input')
    .action(async () => {
      const code = await askCode();
      const r = await cli.callSelf('self.enroll.confirm', { user: selfUser(), code });
      cli.print(r, (c) => c.green('activated'));
    });
  self
    .command('forget-locations')
    .description('forget own remembered IP addresses and countries')
    .action(async () => {
      const r = await cli.callSelf('self.forget-locations', { user: selfUser() });
      cli.print(r, () => 'remembered locations forgotten');
    });
}
