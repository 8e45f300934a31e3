// memfa mailbox set | show | list | remove.
import type { Command } from 'commander';
import type { ParamsOf } from '../../protocol/methods.js';
import type { MailboxListResult, MailboxView, SetWarnings } from '../../protocol/results.js';
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
      const m = (await cli.call('mailbox.set', params)) as MailboxView & SetWarnings;
      cli.print(m, (c) => formatMailbox(m, c));
      warn(m.warnings);
    });
  mailbox
    .command('show')
    .argument('<address>')
    .description('effective settings (and where each comes from), enrolment, locations, lock')
    .action(async (address: string) => {
      const m = (await cli.call('mailbox.show', { address })) as MailboxView;
      cli.print(m, (c) => formatMailbox(m, c));
    });
  mailbox
    .command('list')
    .description('stored mailboxes')
    .option('--domain <domain>', 'only this domain')
    .option('--limit <n>', 'at most n', parseLimit)
    .option('--after <address>', 'start after this address (paging)')
    .action(async (f: { domain?: string; limit?: number; after?: string }) => {
      const r = (await cli.call('mailbox.list', f)) as MailboxListResult;
      cli.print(r, (c) => formatMailboxList(r, c));
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
