// memfa ip-block list | clear: the client sources whose code checks the daemon refuses.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { parseLimit } from '../flags.js';
import { formatIpBlockCleared, formatIpBlocks } from '../format.js';
import { usage } from '../io.js';

export function registerIpBlocks(program: Command, cli: Cli): void {
  const group = program.command('ip-block').description('client sources blocked after failed codes (kept in the daemon\'s memory)');
  group
    .command('list')
    .description('the blocked sources: source, reason, until, failures')
    .option('--limit <n>', 'at most n, those whose block ends first (default 1000)', parseLimit)
    .action(async (f: { limit?: number }) => {
      const r = await cli.call('ip-block.list', f);
      cli.print(r, () => formatIpBlocks(r));
    });
  group
    .command('clear')
    .argument('[source]', 'an address (its source is cleared) or a source as ip-block list shows it')
    .description('forget the failures and block of one source, or of all')
    .option('--all', 'every source')
    .action(async (source: string | undefined, f: { all?: boolean }) => {
      if ((source === undefined) === (f.all !== true)) throw usage('ip-block clear: give a SOURCE or --all');
      const r = await cli.call('ip-block.clear', f.all === true ? { all: true } : { source: source! });
      cli.print(r, () => formatIpBlockCleared(r));
    });
}
