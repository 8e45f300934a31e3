// memfa daemon, memfa status, and the help entry of memfa verify.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { formatLock, formatStatus } from '../format.js';
import { configFor, out } from '../io.js';
import { VERIFY_HELP } from '../verify.js';

export function registerDaemon(program: Command, cli: Cli): void {
  program
    .command('daemon')
    .description('run the daemon in the foreground (logs to stderr; stop with SIGTERM)')
    .action(async () => {
      const { runDaemon } = await import('../../daemon/main.js');
      process.exitCode = await runDaemon(configFor(cli.opts()));
    });

  program
    .command('status')
    .argument('[address]', 'a mailbox: whether and why it is locked, and until when')
    .description('daemon version, uptime, store, mailbox count, provider status and audit log health; or one mailbox\'s lock')
    .action(async (address: string | undefined) => {
      if (address !== undefined) {
        const m = await cli.call('mailbox.show', { address });
        cli.print({ address: m.address, lock: m.lock }, (c) => formatLock(m, c));
        return;
      }
      const s = await cli.call('status', {});
      cli.print(s, (c) => formatStatus(s, c));
    });

  // verify runs through its own light parser (cli/verify.ts, see main.ts); it is listed here so
  // that `memfa --help` and `memfa help verify` show it.
  const verify = program
    .command('verify')
    .description('ask whether a login needs a second factor, or check one (for login hooks)')
    .helpOption(false)
    .allowUnknownOption()
    .argument('[args...]')
    .action(() => {
      out(VERIFY_HELP);
    });
  verify.helpInformation = () => VERIFY_HELP;
}
