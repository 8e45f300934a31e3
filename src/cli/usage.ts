// Usage errors of the commander program: which command failed, where its help is, and the error
// document that --json promises for every failure, parse errors included.
import { CommanderError, type Command } from 'commander';
import { MemfaError } from '../protocol/errors.js';
import { GENERIC_USAGE_HINT } from './io.js';

export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

export function everyCommand(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap((sub) => everyCommand(sub))];
}

/** The hint of a usage error in `cmd`: its own help, not the root's. */
export function helpHint(cmd: Command): string {
  return cmd.parent === null ? GENERIC_USAGE_HINT : `see ${commandPath(cmd)} --help or man memfa`;
}

/** What commander prints after a refused command line: where to read the usage. */
export function afterErrorText(cmd: Command): string {
  if (cmd.parent === null) return '(memfa --help lists the commands)';
  return cmd.commands.length > 0 ? `(${commandPath(cmd)} --help lists its commands)` : `(${commandPath(cmd)} --help shows its usage)`;
}

/** True when --json was asked for, even if the command line failed before it was parsed. */
export function jsonRequested(argv: string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** A refusal by commander as a memfa usage error (commander has already told stderr). */
export function fromCommander(err: CommanderError, cmd: Command): MemfaError {
  // A command group run without one of its commands: commander shows the help, as an error.
  const message =
    err.code === 'commander.help'
      ? `${commandPath(cmd)}: give a command (${cmd.commands.map((c) => c.name()).join(', ')})`
      : err.message.replace(/^error: /, '');
  return new MemfaError('USAGE', message, { hint: helpHint(cmd) });
}

/** A usage error thrown by a command's action, pointed at that command's help. */
export function pointToHelp(err: unknown, cmd: Command): unknown {
  if (!(err instanceof MemfaError) || err.code !== 'USAGE' || err.hint !== GENERIC_USAGE_HINT) return err;
  return new MemfaError('USAGE', err.message, { hint: helpHint(cmd), ...(err.data ? { data: err.data } : {}) });
}
