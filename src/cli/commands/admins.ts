// memfa admin add | list | remove: domain administrators and their tokens.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { formatAdminAdded, formatAdminList, formatAdminRemoved } from '../format.js';

export function registerAdmins(program: Command, cli: Cli): void {
  const admin = program.command('admin').description('domain administrators and their tokens');
  admin
    .command('add')
    .argument('<name>')
    .requiredOption('--domain <domain>', 'a domain this administrator manages (repeatable)', (v: string, all: string[] = []) => [...all, v])
    .description('issue a token (shown once) that lets NAME manage the mailboxes of the given domains')
    .action(async (name: string, f: { domain: string[] }) => {
      const r = await cli.call('admin.add', { name, domains: f.domain });
      cli.print(r, (c) => formatAdminAdded(r, c));
    });
  admin
    .command('list')
    .description('the domain administrators: names, domains and when their tokens were issued')
    .action(async () => {
      const r = await cli.call('admin.list', {});
      cli.print(r, () => formatAdminList(r));
    });
  admin
    .command('remove')
    .argument('<name>')
    .description('revoke an administrator\'s token')
    .action(async (name: string) => {
      const r = await cli.call('admin.remove', { name });
      cli.print(r, () => formatAdminRemoved(name));
    });
}
