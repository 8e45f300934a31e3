// memfa app-password add | list | revoke: app passwords for mail clients (IMAP, POP3, SMTP,
// ManageSieve, CalDAV/CardDAV), made by an administrator for a mailbox.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { formatAppPasswordAdded, formatAppPasswordList, formatAppPasswordRevoked } from '../format-app-passwords.js';
import { usage } from '../io.js';

/** A comma-separated list from the command line, blanks dropped. */
export const commaList = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

export interface AppPasswordFlags {
  name: string;
  protocols?: string;
  networks?: string;
  expires?: string;
}

/** The options of app-password add, shared with self app-password add. */
export function addAppPasswordOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--name <name>', 'a label for the user, unique in the mailbox (e.g. "phone", "Thunderbird at home")')
    .option('--protocols <list|all>', 'what it may be used for: imap, pop3, smtp, sieve, dav, comma-separated, or all (default: all)')
    .option('--networks <CIDR,..>', 'only from these networks (default: any)')
    .option('--expires <when>', 'when it stops working: a duration (90d, 12h), an ISO 8601 date or time, or never (default: never)');
}

export function appPasswordParams(f: AppPasswordFlags): { name: string; protocols?: string[]; networks?: string[]; expires?: string | null } {
  const params: { name: string; protocols?: string[]; networks?: string[]; expires?: string | null } = { name: f.name };
  if (f.protocols !== undefined) params.protocols = commaList(f.protocols);
  if (f.networks !== undefined) params.networks = commaList(f.networks);
  if (f.expires !== undefined) params.expires = f.expires === 'never' ? null : f.expires;
  return params;
}

/** ID|NAME or --all, for revoke. */
export function revokeTarget(ref: string | undefined, all: boolean | undefined, command: string): { idOrName: string } | { all: true } {
  if ((ref === undefined) === (all !== true)) throw usage(`${command}: give the id or name of one app password, or --all`);
  return ref === undefined ? { all: true } : { idOrName: ref };
}

export function registerAppPasswords(program: Command, cli: Cli): void {
  const group = program.command('app-password').description('app passwords: what mail clients (IMAP, POP3, SMTP, ManageSieve, DAV) log in with once MFA is on');
  addAppPasswordOptions(group.command('add').argument('<address>').description('create an app password for a mailbox (printed once; only a keyed hash is kept)')).action(
    async (address: string, f: AppPasswordFlags) => {
      const r = await cli.call('app-password.add', { address, ...appPasswordParams(f) });
      cli.print(r, (c) => formatAppPasswordAdded(r, c));
    },
  );
  group
    .command('list')
    .argument('<address>')
    .description('the app passwords of a mailbox: name, id, protocols, networks, created, expiry, last use (time, IP, country) and use count')
    .action(async (address: string) => {
      const r = await cli.call('app-password.list', { address });
      cli.print(r, (c) => formatAppPasswordList(r, c));
    });
  group
    .command('revoke')
    .argument('<address>')
    .argument('[id-or-name]', 'the app password to revoke, by its id or its name')
    .option('--all', 'revoke every app password of the mailbox')
    .description('revoke an app password (or all): it stops working at once')
    .action(async (address: string, ref: string | undefined, f: { all?: boolean }) => {
      const r = await cli.call('app-password.revoke', { address, ...revokeTarget(ref, f.all, 'app-password revoke') });
      cli.print(r, () => formatAppPasswordRevoked(r));
    });
}
