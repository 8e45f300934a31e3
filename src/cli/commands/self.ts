// memfa self --user ADDRESS show | set | enroll | confirm | forget-locations: end-user
// self-service, as a webmail back end offers it.
import { Option, type Command } from 'commander';
import type { ParamsOf } from '../../protocol/methods.js';
import type { EnrolResult, SelfView } from '../../protocol/results.js';
import type { Cli } from '../context.js';
import { askCode, showEnrolment } from '../enrolment.js';
import { CHALLENGE_CHOICES, PROVIDER_CHOICES } from '../flags.js';
import { formatLocationsForgotten, formatSelf, formatSelfActivated } from '../format.js';
import { printJson } from '../io.js';

export function registerSelf(program: Command, cli: Cli): void {
  const self = program
    .command('self')
    .description('end-user self-service for one mailbox (for webmail back ends; uses the hook socket)')
    .requiredOption('--user <address>', 'the mailbox, already authenticated by the caller');
  const selfUser = () => self.opts<{ user: string }>().user;
  self
    .command('show')
    .description('own challenge mode and provider, what may be chosen, phone, address, TOTP state')
    .action(async () => {
      const v = (await cli.callSelf('self.show', { user: selfUser() })) as SelfView;
      cli.print(v, () => formatSelf(v));
    });
  self
    .command('set')
    .description('change own challenge mode, provider, phone or alternate address')
    .addOption(new Option('--challenge <mode>', 'own challenge mode (not weaker than the domain\'s)').choices(CHALLENGE_CHOICES))
    .addOption(new Option('--provider <provider>', 'own provider (among those the platform allows users)').choices(PROVIDER_CHOICES))
    .option('--phone <E164|none>', 'own phone number')
    .option('--alt-email <address|none>', 'own alternate address')
    .action(async (f: { challenge?: string; provider?: string; phone?: string; altEmail?: string }) => {
      const params: ParamsOf<'self.set'> = { user: selfUser() };
      if (f.challenge !== undefined) params.challenge = f.challenge;
      if (f.provider !== undefined) params.provider = f.provider;
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const v = (await cli.callSelf('self.set', params)) as SelfView;
      cli.print(v, () => formatSelf(v));
    });
  self
    .command('enroll')
    .option('--restart', 'discard a pending secret and create a new one')
    .description('start own TOTP enrolment (prints the otpauth URI; confirm with self confirm)')
    .action(async (f: { restart?: boolean }) => {
      const e = (await cli.callSelf('self.enroll.start', { user: selfUser(), restart: f.restart === true })) as EnrolResult;
      if (cli.opts().json) printJson(e);
      else await showEnrolment(e, cli.chalk());
    });
  self
    .command('confirm')
    .description('confirm own TOTP enrolment with a code from the app, read from standard input')
    .action(async () => {
      const code = await askCode();
      const r = await cli.callSelf('self.enroll.confirm', { user: selfUser(), code });
      cli.print(r, (c) => formatSelfActivated(c));
    });
  self
    .command('forget-locations')
    .description('forget own remembered IP addresses and countries')
    .action(async () => {
      const r = await cli.callSelf('self.forget-locations', { user: selfUser() });
      cli.print(r, () => formatLocationsForgotten());
    });
}
