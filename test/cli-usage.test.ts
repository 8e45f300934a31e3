// The memfa command line without a daemon: usage errors, --json on every failure, help, and a
// standard output closed early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { runCli, runCliClosedStdout } from './helpers/daemon.js';

// No daemon and no configuration: every command here fails or answers before it would call one.
const env = { MEMFA_CONFIG: '/nonexistent/memfa.json' };

test('--json: a refused command line prints one JSON error document, wherever --json is', async () => {
  const cases: { args: string[]; message: RegExp; hint: string }[] = [
    { args: ['--json', 'mailbox', 'set'], message: /missing required argument 'address'/, hint: 'memfa mailbox set --help' },
    { args: ['--json', 'bogus'], message: /unknown command 'bogus'/, hint: 'memfa --help' },
    { args: ['--json', 'mailbox', 'set', 'a@example.com', '--challenge', 'sometimes'], message: /'sometimes' is invalid/, hint: 'memfa mailbox set --help' },
    { args: ['--json', 'explain', 'a@example.com'], message: /required option '--ip <ip>'/, hint: 'memfa explain --help' },
    { args: ['mailbox', 'show', '--json'], message: /missing required argument 'address'/, hint: 'memfa mailbox show --help' },
    { args: ['domain', 'set', 'example.com', '--bogus', '--json'], message: /unknown option '--bogus'/, hint: 'memfa domain set --help' },
    { args: ['--json', 'mailbox'], message: /memfa mailbox: give a command \(set, show, list, remove\)/, hint: 'memfa mailbox --help' },
    { args: ['--json', 'verify', '--user', 'a@example.com'], message: /--ip IP is required/, hint: 'memfa --help' },
    { args: ['verify', '--bogus', '--json'], message: /bogus/, hint: 'memfa --help' },
  ];
  for (const { args, message, hint } of cases) {
    const r = await runCli(args, { env });
    const what = `memfa ${args.join(' ')}`;
    assert.equal(r.code, 64, `${what}: ${r.stderr}`);
    let doc: { result: string; error: { code: string; message: string; hint?: string } };
    assert.doesNotThrow(() => (doc = JSON.parse(r.stdout)), `${what}: one JSON document on stdout, got ${JSON.stringify(r.stdout)}`);
    assert.equal(doc!.result, 'error', what);
    assert.equal(doc!.error.code, 'USAGE', what);
    assert.match(doc!.error.message, message, what);
    assert.ok(doc!.error.hint?.includes(hint), `${what}: hint names ${hint}: ${doc!.error.hint}`);
    assert.notEqual(r.stderr, '', `${what}: the error also goes to stderr`);
  }
});

test('--json: a usage error raised by a command, and a configuration error, are JSON documents too', async () => {
  const reset = await runCli(['--json', 'reset', 'a@example.com'], { env });
  assert.equal(reset.code, 64, reset.stderr);
  assert.equal(JSON.parse(reset.stdout).error.code, 'USAGE');
  const limit = await runCli(['--json', 'mailbox', 'list', '--limit', '0'], { env });
  assert.equal(limit.code, 64, limit.stderr);
  assert.equal(JSON.parse(limit.stdout).error.code, 'USAGE');
  const config = await runCli(['--json', 'status'], { env });
  assert.equal(config.code, 78, config.stderr);
  assert.equal(JSON.parse(config.stdout).error.code, 'CONFIG_INVALID');
});

test('a standard output closed early ends the command quietly, with its own exit status', async () => {
  for (const { args, code } of [
    { args: ['--help'], code: 0 },
    { args: ['--version'], code: 0 },
    { args: ['mailbox', 'set', '--help'], code: 0 },
    { args: ['verify', '--help'], code: 0 },
    { args: ['--json', 'bogus'], code: 64 },
    { args: ['--json', 'status'], code: 78 },
  ]) {
    const r = await runCliClosedStdout(args, { env });
    assert.equal(r.code, code, `memfa ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled|at .*\(/, `memfa ${args.join(' ')}: no stack trace`);
  }
});

function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.flatMap((sub) => [[...prefix, sub.name()], ...commandPaths(sub, [...prefix, sub.name()])]);
}

test('help: every command\'s help fits 80 columns; memfa help COMMAND and --help exit 0', async () => {
  const { program } = buildProgram();
  const paths = commandPaths(program);
  assert.ok(paths.length > 30, 'the walk found the commands');
  // The text each --help prints where standard output is not a terminal (80 columns).
  const byPath = (p: string[]) => p.reduce((cmd, name) => cmd.commands.find((c) => c.name() === name)!, program);
  for (const p of [[], ...paths]) {
    const cmd = byPath(p).configureOutput({ getOutHelpWidth: () => 80 });
    for (const line of cmd.helpInformation().split('\n')) assert.ok(line.length <= 80, `memfa ${p.join(' ')} --help: a line of ${line.length} columns: ${line}`);
  }
  // The exit status, through the real command: help is not an error.
  const helps = [['--help'], ['mailbox', 'set', '--help'], ['verify', '--help'], ['help'], ['help', '--help'], ...paths.filter((p) => p.length === 1).map((p) => ['help', p[0]!])];
  for (const args of helps) {
    const r = await runCli(args, { env });
    const what = `memfa ${args.join(' ')}`;
    assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: memfa/m, `${what} prints the usage`);
    assert.equal(r.stderr, '', what);
  }
});

test('a refused command line points at that command\'s help, not only at memfa --help', async () => {
  for (const [args, help] of [
    [['mailbox', 'set'], 'memfa mailbox set --help'],
    [['mailbox', 'list', '--limit', '0'], 'memfa mailbox list --help'],
    [['providers', 'set', 'sms', '--end-users', 'maybe'], 'memfa providers set --help'],
    [['domain', 'bogus'], 'memfa domain --help'],
    [['reset', 'a@example.com'], 'memfa reset --help'],
    [['bogus'], 'memfa --help'],
  ] as const) {
    const r = await runCli([...args], { env });
    assert.equal(r.code, 64, `memfa ${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(help), `memfa ${args.join(' ')} names ${help}:\n${r.stderr}`);
  }
});
