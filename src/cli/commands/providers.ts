// memfa providers list | enable | disable | set: the platform's provider policy.
import type { Command } from 'commander';
import { isMember, POLICY_NAMES } from '../../protocol/vocabulary.js';
import type { Cli } from '../context.js';
import { yesNo } from '../flags.js';
import { formatProviderRow } from '../format.js';
import { usage } from '../io.js';

type Change = { enabled?: boolean; domainAdmins?: boolean; endUsers?: boolean };

export function registerProviders(program: Command, cli: Cli): void {
  const providers = program.command('providers').description('the platform\'s provider policy: which providers exist and who may assign them');
  providers
    .command('list')
    .description('each provider: enabled, who may assign it, its gateway, the mailboxes that use it')
    .action(async () => {
      const r = await cli.call('providers.list', {});
      cli.print(r, (c) => r.providers.map((p) => formatProviderRow(p, c)).join('\n'));
    });
  const changeProvider = async (name: string, change: Change) => {
    if (!isMember(POLICY_NAMES, name)) throw usage(`the provider is ${POLICY_NAMES.slice(0, -1).join(', ')} or ${POLICY_NAMES.at(-1)} (who may create app passwords)`);
    const r = await cli.call('providers.set', { provider: name, ...change });
    const all = await cli.call('providers.list', {});
    const row = all.providers.find((p) => p.name === name)!;
    cli.print(r, (c) => `${formatProviderRow(row, c)}\n${r.effect}`);
  };
  providers
    .command('enable')
    .argument('<provider>')
    .description('enable a provider (sms and email need their gateway configured), or app-password: accept app passwords')
    .action((name: string) => changeProvider(name, { enabled: true }));
  providers
    .command('disable')
    .argument('<provider>')
    .description('disable a provider; says how many mailboxes use it and what verify does for them (app-password: no app password is accepted or created)')
    .action((name: string) => changeProvider(name, { enabled: false }));
  providers
    .command('set')
    .argument('<provider>')
    .description('whether domain administrators may assign a provider, and end users choose it (app-password: who may create app passwords)')
    .option('--domain-admins <yes|no>', 'whether domain administrators may assign it', yesNo)
    .option('--end-users <yes|no>', 'whether end users may choose it', yesNo)
    .action((name: string, f: { domainAdmins?: boolean; endUsers?: boolean }) => {
      if (f.domainAdmins === undefined && f.endUsers === undefined) throw usage('providers set: give --domain-admins and/or --end-users');
      return changeProvider(name, f);
    });
}
