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

/**
 * A reader that stops early (`memfa audit | head`, `memfa --help | true`) closes the pipe: the rest
 * of the output is dropped quietly, as other Unix tools do, and the exit status stays the
 * command's own (for verify, the verdict). Other write errors still surface.
 */
function dropOutputOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

async function main(): Promise<number> {
  const first = commandIndex(argv);
  // Not for the daemon: its standard error is its log, and a lost log is not to be ignored.
  if (first === -1 || argv[first] !== 'daemon') {
    dropOutputOnClosedPipe(process.stdout);
    dropOutputOnClosedPipe(process.stderr);
  }
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
