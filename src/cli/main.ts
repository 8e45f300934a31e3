// Entry point of the memfa command, loaded by bin/memfa (which answers `--version` itself).
// `verify` takes a fast path that loads neither commander nor anything else it does not need: it
// runs on every login.

const argv = process.argv.slice(2);
/** Global options that take a value (see program.ts); needed to find the command word. */
const VALUE_OPTIONS = new Set(['--config', '--socket', '--data-dir', '--run-dir', '--token-file']);

function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return i;
  }
  return -1;
}

async function main(): Promise<number> {
  const first = commandIndex(argv);
  if (first !== -1 && argv[first] === 'verify') {
    const { runVerify } = await import('./verify.js');
    return runVerify([...argv.slice(0, first), ...argv.slice(first + 1)]);
  }
  const { runProgram } = await import('./program.js');
  return runProgram(argv);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const message = (err as Error)?.message ?? String(err);
    // --json promises one error document for every failure (memfa(1), ERRORS).
    if (argv.includes('--json')) process.stdout.write(JSON.stringify({ result: 'error', error: { code: 'INTERNAL', message } }, null, 2) + '\n');
    process.stderr.write(`memfa: internal error: ${(err as Error)?.stack ?? message}\n`);
    process.exitCode = 70; // EX_SOFTWARE (not importing the error catalogue keeps verify light)
  },
);
