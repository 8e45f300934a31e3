// What shell completion knows of the command line, read from commander's command tree (and, for
// verify, from its own help text, since verify has a parser of its own): the subcommands, options
// and arguments of every command, and what value each takes. Nothing dynamic: a mailbox address
// completes to nothing rather than to a daemon call.
import type { Argument, Command, Option } from 'commander';
import { VERIFY_HELP } from '../verify.js';

/** What a value completes to: file names, directory names, nothing, or a fixed list of words. */
export type ValueKind = { kind: 'file' } | { kind: 'dir' } | { kind: 'none' } | { kind: 'words'; words: string[] };

export interface OptionSpec {
  /** Every spelling, long and short: ['--help', '-h']. */
  flags: string[];
  /** null: a flag that takes no value. */
  value: ValueKind | null;
}

export interface CommandSpec {
  /** 'memfa', 'memfa mailbox', 'memfa mailbox set', ... */
  path: string;
  subcommands: string[];
  options: OptionSpec[];
  /** The positional arguments in order; `rest` completes every one after them. */
  args: ValueKind[];
  rest: ValueKind | null;
}

export interface CompletionTree {
  /** The root's options, accepted before or after any command. */
  globals: OptionSpec[];
  commands: CommandSpec[];
}

/** Words a completion script may carry unquoted: no spaces, quotes or shell syntax. */
const SAFE_WORD = /^[A-Za-z0-9_.,:@+=/-]+$/;

function words(list: readonly string[], where: string): ValueKind {
  for (const w of list) if (!SAFE_WORD.test(w)) throw new Error(`completion: ${where}: "${w}" is not a plain word`);
  return { kind: 'words', words: [...list] };
}

/** A value named `file`, `dir` or `path` completes to file names; anything else to nothing. */
function kindOfName(name: string): ValueKind {
  const n = name.toLowerCase().replace(/s$/, '');
  if (n === 'dir' || n === 'directory') return { kind: 'dir' };
  if (n === 'file' || n === 'path') return { kind: 'file' };
  return { kind: 'none' };
}

function optionSpec(opt: Option, where: string): OptionSpec {
  const flags = [opt.long, opt.short].filter((f): f is string => f !== undefined);
  if (!opt.required && !opt.optional) return { flags, value: null };
  if (opt.argChoices !== undefined) return { flags, value: words(opt.argChoices, `${where} ${flags[0]}`) };
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(opt.flags)?.[1] ?? '';
  return { flags, value: kindOfName(placeholder) };
}

function argumentKind(arg: Argument, where: string): ValueKind {
  if (arg.argChoices !== undefined) return words(arg.argChoices, `${where} <${arg.name()}>`);
  return kindOfName(arg.name());
}

/** verify's options, from the help text its own parser documents (cli/verify.ts). */
export function verifyOptions(help: string = VERIFY_HELP): OptionSpec[] {
  const specs: OptionSpec[] = [];
  for (const line of help.split('\n')) {
    const m = /^\s+(?:(-[A-Za-z]), )?(--[a-z][a-z-]*)(?: ([A-Z]+))?\s/.exec(line);
    if (m === null) continue;
    const flags = [m[2]!, ...(m[1] !== undefined ? [m[1]] : [])];
    specs.push({ flags, value: m[3] === undefined ? null : kindOfName(m[3]) });
  }
  return specs;
}

function walk(cmd: Command, path: string, out: CommandSpec[]): void {
  const help = cmd.createHelp();
  const subs = help.visibleCommands(cmd);
  const spec: CommandSpec = {
    path,
    subcommands: subs.map((s) => s.name()),
    options: help.visibleOptions(cmd).map((o) => optionSpec(o, path)),
    args: [],
    rest: null,
  };
  const args = cmd.registeredArguments;
  for (const [i, arg] of args.entries()) {
    if (arg.variadic && i === args.length - 1) spec.rest = argumentKind(arg, path);
    else spec.args.push(argumentKind(arg, path));
  }
  out.push(spec);
  for (const sub of subs) {
    const subPath = `${path} ${sub.name()}`;
    if (sub.name() === 'help' && !cmd.commands.includes(sub)) {
      // commander's implicit help command: `memfa mailbox help set`.
      out.push({ path: subPath, subcommands: [], options: [], args: [words(spec.subcommands.filter((s) => s !== 'help'), subPath)], rest: null });
    } else if (sub.name() === 'verify' && cmd.parent === null) {
      out.push({ path: subPath, subcommands: [], options: verifyOptions(), args: [], rest: null });
    } else walk(sub, subPath, out);
  }
}

export function completionTree(program: Command): CompletionTree {
  const commands: CommandSpec[] = [];
  walk(program, program.name(), commands);
  const root = commands[0]!;
  return { globals: root.options, commands };
}
