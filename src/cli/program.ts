// The administrative commands, built with commander. Loaded for everything except the fast paths.
// This file builds the root program and its global options; each command group lives in
// commands/, its human output in format.ts.
import { Command, CommanderError } from 'commander';
import { EXIT } from '../protocol/errors.js';
import { VERSION } from '../version.js';
import { registerAdmins } from './commands/admins.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerAppPasswords } from './commands/app-passwords.js';
import { registerDaemon } from './commands/daemon.js';
import { registerDomain } from './commands/domain.js';
import { registerGateways } from './commands/gateways.js';
import { registerGlobal } from './commands/global.js';
import { registerIpBlocks } from './commands/ip-blocks.js';
import { registerImport } from './commands/import.js';
import { registerKeysAndAudit } from './commands/keys-audit.js';
import { registerMailbox } from './commands/mailbox.js';
import { registerMonitoring } from './commands/monitoring.js';
import { registerProviders } from './commands/providers.js';
import { registerSelf } from './commands/self.js';
import { registerStore } from './commands/store.js';
import { registerSupport } from './commands/support.js';
import { Cli } from './context.js';
import { printErrorDocument, reportError } from './io.js';
import { afterErrorText, everyCommand, fromCommander, jsonRequested, pointToHelp } from './usage.js';

/** The command groups, in the order `memfa --help` lists them. */
const GROUPS = [registerDaemon, registerMailbox, registerDomain, registerGlobal, registerSupport, registerAppPasswords, registerIpBlocks, registerKeysAndAudit, registerProviders, registerAdmins, registerSelf, registerGateways];
/** Operations: checking the configuration, monitoring, shell completion, importing from other tools, moving the store. */
const OPERATIONS = [registerConfig, registerMonitoring, registerCompletion, registerImport, registerStore];

export interface Program {
  program: Command;
  cli: Cli;
  /** The command whose parsing commander refused, once it has. */
  refusedBy(): Command | undefined;
}

export function buildProgram(): Program {
  const program = new Command();
  const cli = new Cli(program);
  program
    .name('memfa')
    .description('multi-factor authentication for mail servers')
    .version(VERSION, '-V, --version', 'print the version')
    .option('--config <file>', 'configuration file (default: $MEMFA_CONFIG, /etc/memfa/memfa.json, the shipped default)')
    .option('--socket <path>', 'talk to this socket instead of the configured one')
    .option('--data-dir <dir>', 'data directory (overrides the configuration; also $MEMFA_DATA_DIR)')
    .option('--run-dir <dir>', 'socket directory (overrides the configuration; also $MEMFA_RUN_DIR)')
    .option('--token-file <file>', 'act as a domain administrator with the token in this file (also $MEMFA_TOKEN)')
    .option('--json', 'print one JSON document on stdout')
    .option('--no-color', 'no colour (also NO_COLOR, and when stdout is not a terminal)')
    // Commander leaves descriptions unwrapped when fewer than 40 columns remain beside the option
    // names, as for the settings options of domain set and global set.
    .configureHelp({ minWidthToWrap: 24 })
    .exitOverride();
  for (const register of [...GROUPS, ...OPERATIONS]) register(program, cli);
  let refused: Command | undefined;
  for (const cmd of everyCommand(program)) {
    cmd.showHelpAfterError(afterErrorText(cmd));
    cmd.exitOverride((err) => {
      refused = cmd;
      throw err;
    });
  }
  return { program, cli, refusedBy: () => refused };
}

export async function runProgram(argv: string[]): Promise<number> {
  const { program, cli, refusedBy } = buildProgram();
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let running = program;
  program.hook('preAction', (_root, action) => {
    running = action;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    // A refused command line may have stopped before --json was parsed.
    const opts = { ...cli.opts(), json: cli.opts().json === true || jsonRequested(argv) };
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander refuses is a usage error,
      // which commander has already described on stderr.
      // `memfa help X` ends with 'commander.help' and status 0; a group run without one of its
      // commands shows its help as an error, status 1.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0)) return 0;
      if (opts.json) printErrorDocument(fromCommander(err, refusedBy() ?? program));
      return EXIT.USAGE;
    }
    return reportError(pointToHelp(err, running), opts);
  }
}
