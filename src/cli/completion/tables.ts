// The completion tree as the four lookup tables both shell scripts read. Keys are command paths
// ('memfa mailbox set'), never empty (zsh refuses an empty key), joined with '|' to an option or
// an argument position:
//   subs  path          -> its subcommands
//   opts  path          -> its options (for the root: the global options)
//   vals  path|--option -> what the option's value completes to (absent: a flag without value)
//   args  path|N, path|* -> what positional argument N, and every one after the last, complete to
// A value is '@file', '@dir', '@none' or a list of words.
import type { CompletionTree, OptionSpec, ValueKind } from './tree.js';

export interface Tables {
  subs: [string, string][];
  opts: [string, string][];
  vals: [string, string][];
  args: [string, string][];
}

function value(v: ValueKind): string {
  return v.kind === 'words' ? v.words.join(' ') : `@${v.kind}`;
}

/** The option words of one command; `offered` are left out (the scripts add the globals). */
function optionRows(path: string, options: OptionSpec[], vals: [string, string][], offered: ReadonlySet<string>): string {
  for (const o of options) if (o.value !== null) for (const f of o.flags) vals.push([`${path}|${f}`, value(o.value)]);
  return options
    .flatMap((o) => o.flags)
    .filter((f) => !offered.has(f))
    .join(' ');
}

export function tables(tree: CompletionTree): Tables {
  const t: Tables = { subs: [], opts: [], vals: [], args: [] };
  const globals = new Set(tree.globals.flatMap((o) => o.flags));
  for (const [i, c] of tree.commands.entries()) {
    if (c.subcommands.length > 0) t.subs.push([c.path, c.subcommands.join(' ')]);
    const opts = optionRows(c.path, c.options, t.vals, i === 0 ? new Set() : globals);
    if (opts !== '') t.opts.push([c.path, opts]);
    c.args.forEach((a, i) => t.args.push([`${c.path}|${i}`, value(a)]));
    if (c.rest !== null) t.args.push([`${c.path}|*`, value(c.rest)]);
  }
  return t;
}

/** Single-quoted for either shell; the tree holds plain words only (tree.ts), this is a guard. */
export function quote(s: string): string {
  if (s.includes("'")) throw new Error(`completion: a quote in "${s}"`);
  return `'${s}'`;
}
