// memfa self --user ADDRESS show | set | send-code | enroll | confirm | forget-locations |
// app-password add | list | revoke | recovery-codes:
// end-user self-service on the self socket, as a webmail back end offers it.
import { Option, type Command } from 'commander';
import type { ParamsOf } from '../../protocol/methods.js';
import type { Cli } from '../context.js';
import { askCode, askCurrentCode, showEnrolment } from '../enrolment.js';
import { assertSomethingToSet, CHALLENGE_CHOICES, PROVIDER_CHOICES } from '../flags.js';
import { formatLocationsForgotten, formatRecoveryCodes, formatSelf, formatSelfActivated, formatSelfCodeSent } from '../format.js';
import { formatAppPasswordAdded, formatAppPasswordList, formatAppPasswordRevoked } from '../format-app-passwords.js';
import { addAppPasswordOptions, appPasswordParams, revokeTarget, type AppPasswordFlags } from './app-passwords.js';
import { printJson } from '../io.js';

const CURRENT_CODE_HELP = 'prove the current second factor (a code from the app, a code from self send-code, or a recovery code), read from standard input';

export function registerSelf(program: Command, cli: Cli): void {
  const self = program
    .command('self')
    .description('end-user self-service for one mailbox (for webmail back ends; uses the self socket)')
    .requiredOption('--user <address>', 'the mailbox, already authenticated by the caller');
  const selfUser = () => self.opts<{ user: string }>().user;
  const currentCode = async (f: { currentCodeStdin?: boolean }) => (f.currentCodeStdin === true ? { currentCode: await askCurrentCode() } : {});
  self
    .command('show')
    .description('own challenge mode and provider, what may be chosen, phone, address, TOTP state')
    .action(async () => {
      const v = await cli.callSelf('self.show', { user: selfUser() });
      cli.print(v, () => formatSelf(v));
    });
  self
    .command('set')
    .description('change own challenge mode, provider, phone or alternate address')
    .addOption(new Option('--challenge <mode>', 'own challenge mode (not weaker than what the administrators set; inherit drops it)').choices(CHALLENGE_CHOICES))
    .addOption(new Option('--provider <provider>', "own provider (among those the platform allows users, unless an administrator set this mailbox's)").choices(PROVIDER_CHOICES))
    .option('--phone <E164|none>', 'own mobile number for SMS codes, with + and the country code')
    .option('--alt-email <address|none>', 'own alternate address')
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; needed to change the provider, phone or address of a mailbox with a second factor`)
    .action(async (f: { challenge?: (typeof CHALLENGE_CHOICES)[number]; provider?: (typeof PROVIDER_CHOICES)[number]; phone?: string; altEmail?: string; currentCodeStdin?: boolean }, cmd: Command) => {
      assertSomethingToSet(cmd, f, ['--current-code-stdin']);
      const params: ParamsOf<'self.set'> = { user: selfUser(), ...(await currentCode(f)) };
      if (f.challenge !== undefined) params.challenge = f.challenge;
      if (f.provider !== undefined) params.provider = f.provider;
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const v = await cli.callSelf('self.set', params);
      cli.print(v, () => formatSelf(v));
    });
  self
    .command('send-code')
    .option('--ip <ip>', "the user's client address, named in the message")
    .description('send a one-time code to the sms or email factor, to prove it with --current-code-stdin')
    .action(async (f: { ip?: string }) => {
      const r = await cli.callSelf('self.code.send', { user: selfUser(), ...(f.ip === undefined ? {} : { ip: f.ip }) });
      cli.print(r, () => formatSelfCodeSent(r));
    });
  self
    .command('enroll')
    .option('--restart', 'discard a pending secret and create a new one')
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; needed once the mailbox has a second factor`)
    .description('start own TOTP enrolment (prints the otpauth URI; confirm with self confirm)')
    .action(async (f: { restart?: boolean; currentCodeStdin?: boolean }) => {
      const e = await cli.callSelf('self.enroll.start', { user: selfUser(), restart: f.restart === true, ...(await currentCode(f)) });
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
  const appPassword = self.command('app-password').description('own app passwords, for mail clients that cannot ask for a second factor');
  addAppPasswordOptions(appPassword.command('add').description('create an own app password (printed once); needs the current second factor'))
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; always needed`)
    .action(async (f: AppPasswordFlags & { currentCodeStdin?: boolean }) => {
      const r = await cli.callSelf('self.app-password.add', { user: selfUser(), ...appPasswordParams(f), ...(await currentCode(f)) });
      cli.print(r, (c) => formatAppPasswordAdded(r, c));
    });
  appPassword
    .command('list')
    .description('own app passwords and when each was last used')
    .action(async () => {
      const r = await cli.callSelf('self.app-password.list', { user: selfUser() });
      cli.print(r, (c) => formatAppPasswordList(r, c));
    });
  appPassword
    .command('revoke')
    .argument('[id-or-name]', 'the app password to revoke, by its id or its name')
    .option('--all', 'revoke every own app password')
    .description('revoke an own app password (or all)')
    .action(async (ref: string | undefined, f: { all?: boolean }) => {
      const r = await cli.callSelf('self.app-password.revoke', { user: selfUser(), ...revokeTarget(ref, f.all, 'self app-password revoke') });
      cli.print(r, () => formatAppPasswordRevoked(r));
    });
  self
    .command('recovery-codes')
    .option('--current-code-stdin', `${CURRENT_CODE_HELP}; always needed`)
    .description('generate 10 new own recovery codes (shown once; the previous set stops working); needs the current second factor')
    .action(async (f: { currentCodeStdin?: boolean }) => {
      const r = await cli.callSelf('self.recovery.generate', { user: selfUser(), ...(await currentCode(f)) });
      cli.print(r, (c) => formatRecoveryCodes(r.address, r.codes, c));
    });
}
