// Entry point of the memfa command. `--version` and `verify` take fast paths that load neither
// commander nor anything else they do not need: verify runs on every login.

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
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    const { VERSION } = await import('../version.js');
    process.stdout.write(VERSION + '\n');
    return 0;
  }
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
    process.stderr.write(`memfa: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 70; // EX_SOFTWARE (not importing the error catalogue keeps --version light)
  },
);
