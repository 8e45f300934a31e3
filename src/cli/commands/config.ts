// memfa config check: the configuration as the daemon's start would judge it, without a daemon.
import path from 'node:path';
import type { Command } from 'commander';
import { CONFIG_HINT, findConfigFile } from '../../config/load.js';
import { MemfaError } from '../../protocol/errors.js';
import type { Cli } from '../context.js';
import { out, printJson } from '../io.js';

export function registerConfig(program: Command, cli: Cli): void {
  const config = program.command('config').description('the configuration file (memfa.conf(5))');
  config
    .command('check')
    .argument('[file]', 'the file to check (default: the one every command reads)')
    .description('check a configuration as the daemon would at start (keys, cross-key rules, templates, socket groups, key file); needs no daemon, writes nothing')
    .action(async (file: string | undefined) => {
      const opts = cli.opts();
      // Loaded here only: the checks read the key file and the group database, which no other
      // command needs.
      const { checkConfiguration } = await import('../../daemon/preflight.js');
      const target = file !== undefined ? path.resolve(file) : findConfigFile(opts.config);
      const report = await checkConfiguration(target, opts);
      if (opts.json !== true) for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      if (report.errors.length > 0) {
        throw new MemfaError('CONFIG_INVALID', `invalid configuration in ${target}:\n  ${report.errors.join('\n  ')}`, {
          data: { file: target, errors: report.errors, warnings: report.warnings },
          hint: CONFIG_HINT,
        });
      }
      if (opts.json === true) printJson({ result: 'ok', file: target, errors: [], warnings: report.warnings });
      else out(`${target}: valid${report.warnings.length > 0 ? ` (${report.warnings.length === 1 ? '1 warning' : `${report.warnings.length} warnings`})` : ''}`);
    });
}
