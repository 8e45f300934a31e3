// memfa domain set | show | list | remove.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { addSettingOptions, assertSomethingToSet, settingsPatch, type SettingFlags } from '../flags.js';
import { formatDomain, formatDomainList, formatDomainRemoved } from '../format.js';
import { warn } from '../io.js';

export function registerDomain(program: Command, cli: Cli): void {
  const domain = program.command('domain').description('per-domain settings, inherited by its mailboxes');
  addSettingOptions(domain.command('set').argument('<domain>').description('change a domain\'s settings ("inherit" removes one)'), 'domain').action(
    async (d: string, f: SettingFlags, cmd: Command) => {
      assertSomethingToSet(cmd, f);
      const r = await cli.call('domain.set', { domain: d, settings: settingsPatch(f) });
      cli.print(r, (c) => formatDomain(r, c));
      warn(r.warnings);
    },
  );
  domain
    .command('show')
    .argument('<domain>')
    .description("a domain's own settings, and what its mailboxes inherit")
    .action(async (d: string) => {
      const r = await cli.call('domain.show', { domain: d });
      cli.print(r, (c) => formatDomain(r, c));
    });
  domain
    .command('list')
    .description('the domains that have settings, with their numbers of stored mailboxes and their settings')
    .action(async () => {
      const r = await cli.call('domain.list', {});
      cli.print(r, () => formatDomainList(r));
    });
  domain
    .command('remove')
    .argument('<domain>')
    .description("remove a domain's settings (its mailboxes then inherit the global ones); a domain administrator removes only those they may set")
    .action(async (d: string) => {
      const r = await cli.call('domain.remove', { domain: d });
      cli.print(r, () => formatDomainRemoved(d, r.kept));
    });
}
