// memfa completion bash|zsh: scripts generated from the command tree, exercised in the real
// shells: bash's completion function is called as readline would call it, with COMP_WORDS and
// COMP_CWORD; zsh's (when zsh is installed) with its compadd and _files stubbed to print.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { REPO, makeTempDir, runCli } from './helpers/daemon.js';

const hasZsh = spawnSync('zsh', ['-c', 'true']).status === 0;

/** The script, written beside (not into) `dir`, where completion lists files. */
async function script(shell: 'bash' | 'zsh', dir: string): Promise<string> {
  const r = await runCli(['completion', shell]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const file = `${dir}.${shell}`;
  await writeFile(file, r.stdout);
  return file;
}

/** What bash offers for the last of `words` (the word under the cursor; '' for a new word). */
function bashComplete(file: string, words: string[], cwd: string): string[] {
  const r = spawnSync(
    'bash',
    ['-c', 'source "$1" || exit 9; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _memfa; printf "%s\\n" "${COMPREPLY[@]}"', 'bash', file, ...words],
    { cwd, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', `no error from bash for ${words.join(' ')}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

/** What zsh's completion function hands to compadd (unfiltered: compadd itself filters by prefix). */
function zshComplete(file: string, words: string[], cwd: string): string[] {
  const stubs = [
    'compdef() { :; }',
    'compadd() { while [[ $1 == -* ]]; do [[ $1 == -- ]] && { shift; break; }; shift; done; print -rl -- "$@"; }',
    '_files() { print -r -- "@files $*"; }',
    "_message() { print -r -- '@message'; }",
    "compset() { :; }",
  ].join('\n');
  const r = spawnSync('zsh', ['-f', '-c', `${stubs}\nsource "$1" || exit 9; shift; words=("$@"); CURRENT=$#; _memfa`, 'zsh', file, ...words], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', `no error from zsh for ${words.join(' ')}`);
  return r.stdout.split('\n').filter(Boolean).sort();
}

const CHALLENGES = ['always', 'inherit', 'never', 'new-country', 'new-ip'];

test('bash: the script registers itself and completes commands, options, choices and files', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(() => rm(`${dir}.bash`, { force: true }));
  t.after(() => rm(`${dir}.zsh`, { force: true }));
  const file = await script('bash', dir);
  const reg = spawnSync('bash', ['-c', 'source "$1"; complete -p memfa', 'bash', file], { encoding: 'utf8' });
  assert.equal(reg.stdout.trim(), 'complete -F _memfa memfa');
  await writeFile(path.join(dir, 'memfa.json'), '{}');
  await mkdir(path.join(dir, 'state'));
  const c = (...words: string[]) => bashComplete(file, ['memfa', ...words], dir);

  const top = c('');
  for (const w of ['daemon', 'verify', 'mailbox', 'config', 'completion', 'help']) assert.ok(top.includes(w), `top level offers ${w}: ${top.join(' ')}`);
  assert.ok(!top.some((w) => w.startsWith('-')), 'no options without a dash');
  assert.deepEqual(c('mailbox', 's'), ['set', 'show']);
  assert.deepEqual(c('mailbox', 'set', 'alice@example.org', '--challenge', ''), CHALLENGES);
  assert.deepEqual(c('mailbox', 'set', '--challenge', '=', ''), CHALLENGES, '--challenge= split at the = by readline');
  assert.deepEqual(c('mailbox', 'set', '--challenge', '=', 'new'), ['new-country', 'new-ip']);
  assert.deepEqual(c('domain', 'set', 'example.org', '--users-may-configure', ''), ['inherit', 'no', 'yes']);
  const setOptions = c('mailbox', 'set', 'alice@example.org', '--');
  for (const o of ['--challenge', '--phone', '--alt-email', '--json', '--config', '--help']) assert.ok(setOptions.includes(o), `mailbox set offers ${o}`);
  assert.ok(!setOptions.includes('--limit'), 'not another command\'s option');
  // Global options and their values are skipped on the way to the command.
  assert.deepEqual(c('--config', 'memfa.json', '--json', 'mailbox', 'l'), ['list']);
  assert.deepEqual(c('--config', ''), ['memfa.json', 'state']);
  assert.deepEqual(c('mailbox', 'list', '--data-dir', ''), ['state'], 'a directory option offers directories only');
  assert.deepEqual(c('config', 'check', ''), ['memfa.json', 'state']);
  // Mailbox addresses: nothing (no daemon is asked).
  assert.deepEqual(c('enroll', ''), []);
  assert.deepEqual(c('mailbox', 'show', 'a'), []);
  assert.deepEqual(c('explain', 'bob@example.org', '--ip', ''), []);
  assert.deepEqual(c('completion', ''), ['bash', 'zsh']);
  assert.deepEqual(c('help', 'ma'), ['mailbox']);
  assert.deepEqual(c('mailbox', 'help', ''), ['list', 'remove', 'set', 'show']);
  // verify has its own parser; its options come from its help text.
  const verify = c('verify', '--');
  for (const o of ['--user', '--ip', '--code', '--code-stdin', '--json', '--socket']) assert.ok(verify.includes(o), `verify offers ${o}`);
  assert.deepEqual(c('verify', '--user', 'a@b.c', '--config', 'm'), ['memfa.json']);
  assert.deepEqual(c('self', '--user', 'a@b.c', 'se'), ['send-code', 'set']);
  assert.deepEqual(c('mailbox', '--help', ''), [], 'nothing after --help');
});

function commandsOf(cmd: Command, prefix: string[] = []): { words: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((sub) => [{ words: [...prefix, sub.name()], cmd: sub }, ...commandsOf(sub, [...prefix, sub.name()])]);
}

test('bash: every command and every option of the tree is offered where it belongs', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(() => rm(`${dir}.bash`, { force: true }));
  t.after(() => rm(`${dir}.zsh`, { force: true }));
  const file = await script('bash', dir);
  const { program } = buildProgram();
  let checked = 0;
  for (const { words, cmd } of commandsOf(program)) {
    const parent = bashComplete(file, ['memfa', ...words.slice(0, -1), ''], dir);
    assert.ok(parent.includes(words.at(-1)!), `"memfa ${words.slice(0, -1).join(' ')}" offers ${words.at(-1)}`);
    if (words[0] === 'verify') continue;
    const options = bashComplete(file, ['memfa', ...words, '--'], dir);
    for (const o of cmd.options) {
      const flag = o.long ?? o.short!;
      if (flag.startsWith('--')) assert.ok(options.includes(flag), `"memfa ${words.join(' ')}" offers ${flag}`);
      checked++;
    }
  }
  assert.ok(checked > 40, `checked ${checked} options`);
});

test('the scripts ask nothing of memfa or the daemon at completion time', async () => {
  for (const shell of ['bash', 'zsh'] as const) {
    const code = (await runCli(['completion', shell])).stdout
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    assert.match(code, /_memfa\(\) \{/);
    assert.doesNotMatch(code, /\$\(\s*memfa|`|compgen -C|\bnc\b|socat|\.sock\b/, `${shell}: no call of memfa, no socket`);
  }
  const bad = await runCli(['completion', 'fish']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /bash, zsh/);
});

test('zsh: the script parses, and completes like the bash one', { skip: hasZsh ? false : 'zsh is not installed' }, async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  t.after(() => rm(`${dir}.bash`, { force: true }));
  t.after(() => rm(`${dir}.zsh`, { force: true }));
  const file = await script('zsh', dir);
  const n = spawnSync('zsh', ['-n', file], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  const c = (...words: string[]) => zshComplete(file, ['memfa', ...words], dir);
  assert.ok(c('').includes('mailbox'));
  assert.ok(c('mailbox', '').includes('show'));
  assert.deepEqual(c('mailbox', 'set', 'a@b.c', '--challenge', ''), CHALLENGES);
  assert.deepEqual(c('mailbox', 'set', '--challenge=n'), CHALLENGES);
  assert.deepEqual(c('--config', ''), ['@files ']);
  assert.deepEqual(c('--data-dir', ''), ['@files -/']);
  assert.deepEqual(c('enroll', ''), ['@message']);
  assert.deepEqual(c('completion', ''), ['bash', 'zsh']);
  assert.deepEqual(c('--json', 'mailbox', 'list', '--domain', ''), ['@message']);
  const verify = c('verify', '--');
  assert.ok(verify.includes('--code-stdin') && verify.includes('--user'));
});

test("README's production steps install both scripts where the shells look for them", () => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const production = readme.split(/^## Production$/m)[1]?.split(/^## /m)[0] ?? '';
  assert.match(production, /`memfa completion bash > \/etc\/bash_completion\.d\/memfa`/);
  assert.match(production, /`memfa completion zsh > \/usr\/local\/share\/zsh\/site-functions\/_memfa`/);
});
