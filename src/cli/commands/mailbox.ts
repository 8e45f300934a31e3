// memfa mailbox set | show | list | remove.
import { Option, type Command } from 'commander';
import { PROVIDERS, type ProviderName } from '../../protocol/vocabulary.js';
import type { ParamsOf } from '../../protocol/methods.js';
import type { Cli } from '../context.js';
import { addSettingOptions, assertSomethingToSet, parseLimit, settingsPatch, type SettingFlags } from '../flags.js';
import { formatMailbox, formatMailboxList, formatMailboxRemoved } from '../format.js';
import { warn } from '../io.js';

export function registerMailbox(program: Command, cli: Cli): void {
  const mailbox = program.command('mailbox').description('per-mailbox settings');
  addSettingOptions(mailbox.command('set').argument('<address>').description('change a mailbox\'s settings ("inherit" removes one)'), 'mailbox')
    .option('--phone <E164|none>', 'mobile number for SMS codes, with + and the country code')
    .option('--alt-email <address|none>', 'alternate address for email codes (not the mailbox itself)')
    .action(async (address: string, f: SettingFlags & { phone?: string; altEmail?: string }, cmd: Command) => {
      assertSomethingToSet(cmd, f);
      const params: ParamsOf<'mailbox.set'> = { address, settings: settingsPatch(f) };
      if (f.phone !== undefined) params.phone = f.phone === 'none' ? null : f.phone;
      if (f.altEmail !== undefined) params.altEmail = f.altEmail === 'none' ? null : f.altEmail;
      const m = await cli.call('mailbox.set', params);
      cli.print(m, (c) => formatMailbox(m, c));
      warn(m.warnings);
    });
  mailbox
    .command('show')
    .argument('<address>')
    .description('effective settings (and where each comes from), the provider in use where it differs, enrolment, locations, lock')
    .action(async (address: string) => {
      const m = await cli.call('mailbox.show', { address });
      cli.print(m, (c) => formatMailbox(m, c));
    });
  mailbox
    .command('list')
    .description('stored mailboxes; the filters given must all hold')
    .option('--domain <domain>', 'only this domain')
    .option('--locked', 'only mailboxes locked after failures (at remembered IPs or elsewhere)')
    .option('--not-enrolled', 'only mailboxes whose provider is totp and that have no active TOTP secret')
    .option('--pending', 'only mailboxes with an enrolment started and not confirmed')
    .addOption(new Option('--provider <provider>', 'only mailboxes with this effective provider').choices(PROVIDERS))
    .option('--limit <n>', 'at most n (of those that pass the filters)', parseLimit)
    .option('--after <address>', 'start after this address (paging)')
    .addHelpText('after', '\nThe total printed with --json counts the mailboxes that pass the filters.')
    .action(async (f: { domain?: string; limit?: number; after?: string; locked?: boolean; notEnrolled?: boolean; pending?: boolean; provider?: ProviderName }) => {
      const r = await cli.call('mailbox.list', f);
      const filtered = f.locked === true || f.notEnrolled === true || f.pending === true || f.provider !== undefined;
      cli.print(r, (c) => formatMailboxList(r, c, filtered));
    });
  mailbox
    .command('remove')
    .argument('<address>')
    .description('forget a mailbox entirely (settings, secret, locations); it then inherits')
    .action(async (address: string) => {
      const r = await cli.call('mailbox.remove', { address });
      cli.print(r, () => formatMailboxRemoved(address));
    });
}
