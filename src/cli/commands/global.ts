// memfa global set | show.
import type { Command } from 'commander';
import type { Cli } from '../context.js';
import { addSettingOptions, assertSomethingToSet, settingsPatch, type SettingFlags } from '../flags.js';
import { formatGlobal } from '../format.js';
import { warn } from '../io.js';

export function registerGlobal(program: Command, cli: Cli): void {
  const global = program.command('global').description('global settings, inherited by every domain');
  addSettingOptions(global.command('set').description('change a global setting ("inherit" falls back to the configuration default)'), 'global').action(async (f: SettingFlags, cmd: Command) => {
    assertSomethingToSet(cmd, f);
    const r = await cli.call('global.set', { settings: settingsPatch(f) });
    cli.print(r, (c) => formatGlobal(r, c));
    warn(r.warnings);
  });
  global
    .command('show')
    .description('the global settings in effect, and where each comes from')
    .action(async () => {
      const r = await cli.call('global.show', {});
      cli.print(r, (c) => formatGlobal(r, c));
    });
}
