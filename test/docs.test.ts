// The documentation must follow the code: every error code, verify reason, configuration key,
// command, option, protocol method and environment variable the code knows of must be in the man
// pages, and the README must carry the set-up commands. A new one added without docs fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { VERIFY_HELP } from '../src/cli/verify.js';
import { CONFIG_SPEC, type Section } from '../src/config/spec.js';
import { DECISION_REASONS } from '../src/core/decide.js';
import { PROVIDER_PROBLEMS } from '../src/core/provider-choice.js';
import { LOGIN_CHECK_REASONS } from '../src/core/protocol-login.js';
import { SETTING_LEVELS } from '../src/core/settings.js';
import { ERRORS, EXIT } from '../src/protocol/errors.js';
import { createExposition } from '../src/metrics/registry.js';
import { METHODS, SOCKET_KINDS, isDelegable, type MethodName } from '../src/protocol/methods.js';
import { VERSION } from '../src/version.js';
import { runCli } from './helpers/daemon.js';
import { stubSources } from './helpers/metrics-sources.js';

// Compiled to dist/test/docs.test.js: the repository is two levels up.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');

/** roff source as a reader sees it: escapes for hyphens, quotes and fonts resolved. */
function plain(roff: string): string {
  return roff
    .replace(/\\f(\[[^\]]*\]|\(..|.)/g, '') // font changes
    .replace(/\\-/g, '-')
    .replace(/\\\(dq/g, '"')
    .replace(/\\\(aq/g, "'")
    .replace(/\\\(en/g, '-')
    .replace(/\\\(em/g, '--')
    .replace(/\\&/g, '')
    .replace(/\\e/g, '\\')
    .replace(/\\ /g, ' ');
}

/** The roff source split into sections by .SH, keyed by the (plain) heading. */
function sections(roff: string): Map<string, string> {
  const out = new Map<string, string>();
  let name = '';
  let body: string[] = [];
  for (const line of roff.split('\n')) {
    const m = /^\.SH\s+(.*)$/.exec(line);
    if (m) {
      out.set(name, body.join('\n'));
      name = plain(m[1]!).replace(/^"|"$/g, '').trim();
      body = [];
    } else body.push(line);
  }
  out.set(name, body.join('\n'));
  return out;
}

const collapse = (s: string) => s.replace(/\s+/g, ' ');
/** Words of a line: runs of letters, digits, '_', '-' and (with dots) '.'. */
const tokens = (line: string, dots = false) => line.split(dots ? /[^A-Za-z0-9_.\-]+/ : /[^A-Za-z0-9_\-]+/).filter(Boolean);

const man1Source = read('man/memfa.1');
const man1Sections = sections(man1Source);
const man5Source = read('man/memfa.conf.5');

function section(name: string): string {
  const s = man1Sections.get(name);
  assert.ok(s !== undefined, `man/memfa.1 has no section ${name}`);
  return plain(s);
}

test('package.json names man pages that exist, and the man pages render as roff', () => {
  const pkg = JSON.parse(read('package.json')) as { man?: string[] };
  assert.ok(Array.isArray(pkg.man) && pkg.man.length >= 2, 'package.json "man" lists the pages');
  for (const page of pkg.man) assert.ok(existsSync(path.join(ROOT, page)), `${page} exists`);
  for (const src of [man1Source, man5Source, read('man/memfa-dovecot.7')]) {
    assert.match(src, /^\.TH /m);
    assert.match(src, /^\.SH NAME$/m);
    // A text line starting with a dot or quote would be swallowed as an unknown request.
    for (const line of src.split('\n')) {
      if (/^[.']/.test(line)) assert.match(line, /^(\.\\"|'\\"|\.[A-Za-z]{1,3}\b|\.$|\.T[SE]\b)/, `roff request line: ${line}`);
    }
  }
});

test('every error code is in memfa(1) ERRORS with its JSON-RPC code and exit status', () => {
  const lines = section('ERRORS').split('\n');
  for (const [code, spec] of Object.entries(ERRORS)) {
    const row = lines.find((l) => {
      const t = tokens(l);
      return t.includes(code) && t.includes(String(spec.rpc)) && t.includes(String(spec.exit));
    });
    assert.ok(row !== undefined, `memfa.1 ERRORS: no line with ${code}, ${spec.rpc} and exit ${spec.exit}`);
    assert.ok(collapse(section('ERRORS')).includes(spec.summary), `memfa.1 ERRORS: ${code}'s summary "${spec.summary}"`);
  }
});

test('every verify reason is in memfa(1) VERIFY REASONS with its description', () => {
  const text = collapse(section('VERIFY REASONS'));
  for (const { reason, description } of DECISION_REASONS) {
    assert.ok(tokens(text).includes(reason), `memfa.1 VERIFY REASONS: missing ${reason}`);
    assert.ok(text.includes(description), `memfa.1 VERIFY REASONS: ${reason}'s description "${description}"`);
  }
});

test('every login.check reason is in memfa(1) LOGIN CHECK REASONS with its result and description', () => {
  const text = collapse(section('LOGIN CHECK REASONS'));
  for (const { reason, result, description } of LOGIN_CHECK_REASONS) {
    assert.ok(text.includes(`${reason} ${result}: ${description}`), `memfa.1 LOGIN CHECK REASONS: "${reason} ${result}: ${description}"`);
  }
  const check = collapse(section('LOGIN CHECK'));
  for (const { reason } of LOGIN_CHECK_REASONS) assert.ok(tokens(check).includes(reason), `memfa.1 LOGIN CHECK: the order names ${reason}`);
});

test('memfa(1) shows a whole verify exchange, a login.check and an app password made through self-service', () => {
  const text = collapse(section('SOCKETS AND PROTOCOL'));
  const verify = text.split('A verify exchange')[1] ?? '';
  for (const answer of ['"result":"challenge"', '"code":"', '"result":"allow","reason":"code-valid"']) assert.ok(verify.includes(answer), `the verify exchange: ${answer}`);
  assert.match(text, /The webmail login sequence.*enroll.*75/, 'the webmail login sequence, with enroll and 75');
  for (const m of ['self.app-password.add', 'self.recovery.generate', 'self.app-password.list', 'self.app-password.revoke']) assert.ok(text.includes(m), `SOCKETS AND PROTOCOL: ${m}`);
  assert.ok(text.includes('"method":"self.app-password.add"'), 'an example exchange with self.app-password.add');
  assert.ok(collapse(section('LOGIN CHECK')).includes('"method":"login.check"'), 'an example exchange with login.check');
});

test('every exit status is in memfa(1) EXIT STATUS', () => {
  const t = tokens(section('EXIT STATUS'));
  for (const [name, value] of Object.entries(EXIT)) assert.ok(t.includes(String(value)), `memfa.1 EXIT STATUS: ${name} (${value})`);
});

function leafKeys(node: Section, prefix = ''): { key: string; def: unknown; required: boolean }[] {
  const out: { key: string; def: unknown; required: boolean }[] = [];
  for (const [name, child] of Object.entries(node.fields)) {
    const key = prefix ? `${prefix}.${name}` : name;
    if (child.kind === 'leaf') out.push({ key, def: child.default, required: node.required?.includes(name) === true });
    else out.push(...leafKeys(child, key));
  }
  return out;
}

test('every configuration key is in memfa.conf(5) with its default', () => {
  const keys = leafKeys(CONFIG_SPEC);
  assert.ok(keys.length > 50, 'the walk found the keys');
  const lines = man5Source.split('\n');
  for (const { key, def, required } of keys) {
    const at = lines.findIndex((l, i) => l === `.B ${key}` && lines[i - 1] === '.TP');
    assert.ok(at !== -1, `memfa.conf.5: no entry ".TP" ".B ${key}"`);
    const end = lines.findIndex((l, i) => i > at && /^\.(TP|SH|SS|PP)\b/.test(l));
    const body = collapse(plain(lines.slice(at + 1, end === -1 ? undefined : end).join('\n')));
    if (required) assert.match(body, /Required when/, `memfa.conf.5: ${key} is required`);
    else assert.ok(body.includes(`Default: ${JSON.stringify(def)}`), `memfa.conf.5: ${key} says Default: ${JSON.stringify(def)} (got: ${body})`);
  }
});

test('config/memfa.json, which memfa.conf(5) says holds the defaults, holds exactly the defaults', () => {
  const shipped = JSON.parse(read('config/memfa.json')) as Record<string, unknown>;
  let checked = 0;
  const walk = (value: Record<string, unknown>, node: Section, prefix: string) => {
    for (const [name, v] of Object.entries(value)) {
      const key = prefix ? `${prefix}.${name}` : name;
      const child = node.fields[name];
      assert.ok(child !== undefined, `config/memfa.json: ${key} is not a configuration key`);
      if (child.kind === 'leaf') {
        assert.deepEqual(v, child.default, `config/memfa.json: ${key} is ${JSON.stringify(v)}, its default is ${JSON.stringify(child.default)}`);
        checked++;
      } else if (v === null) assert.ok(child.nullable, `config/memfa.json: ${key} is null but is not a nullable section`);
      else walk(v as Record<string, unknown>, child, key);
    }
  };
  walk(shipped, CONFIG_SPEC, '');
  assert.ok(checked > 40, `the walk compared the keys (${checked})`);
});

function commands(cmd: Command, prefix = ''): { name: string; cmd: Command }[] {
  const out: { name: string; cmd: Command }[] = [];
  for (const sub of cmd.commands) {
    const name = prefix ? `${prefix} ${sub.name()}` : sub.name();
    out.push({ name, cmd: sub }, ...commands(sub, name));
  }
  return out;
}

test('every command and option is in memfa(1) COMMANDS', () => {
  const { program } = buildProgram();
  const all = commands(program);
  assert.ok(all.length > 30, 'the walk found the commands');
  const text = collapse(section('COMMANDS'));
  for (const { name, cmd } of all) {
    // "self show" is documented as "memfa self --user ADDRESS show".
    const parts = name.split(' ');
    const written = parts[0] === 'self' && parts.length > 1 ? `self --user address ${parts.slice(1).join(' ')}` : name;
    assert.ok(text.includes(`memfa ${written}`), `memfa.1 COMMANDS: "memfa ${written}"`);
    for (const opt of cmd.options) {
      const flag = opt.long ?? opt.short;
      assert.ok(flag && text.includes(flag), `memfa.1 COMMANDS: option ${flag} of "${name}"`);
    }
  }
});

test('every command has a description for its --help', () => {
  for (const { name, cmd } of commands(buildProgram().program)) {
    assert.ok(cmd.description().trim().length > 10, `"memfa ${name}" has a description`);
  }
});

test('every global option is in memfa(1) GLOBAL OPTIONS, and every verify option in VERIFY', () => {
  const { program } = buildProgram();
  const global = section('GLOBAL OPTIONS');
  for (const opt of program.options) {
    for (const flag of [opt.long, opt.short]) if (flag) assert.ok(global.includes(flag), `memfa.1 GLOBAL OPTIONS: ${flag}`);
  }
  const verify = section('VERIFY');
  for (const flag of VERIFY_HELP.match(/--[a-z][a-z-]*/g) ?? []) assert.ok(verify.includes(flag), `memfa.1 VERIFY: ${flag}`);
});

test('every member of the verify answer is named in verify --help and in memfa(1) JSON answer', () => {
  // The members of VerifyResult, read from its declaration (a type has no runtime form).
  const results = read('src/protocol/results.ts');
  const body = /export interface VerifyResult \{([\s\S]*?)\n\}/.exec(results)?.[1];
  assert.ok(body !== undefined, 'found interface VerifyResult');
  const fields = [...body.matchAll(/^\s+([A-Za-z]+)\??:/gm)].map((m) => m[1]!);
  assert.ok(fields.includes('result') && fields.includes('recoveryCodesLeft'), `the members: ${fields.join(', ')}`);
  const help = collapse(VERIFY_HELP);
  const answer = tokens(plain(man1Source.split(/^\.SS JSON answer$/m)[1]!.split(/^\.SS /m)[0]!));
  for (const f of fields) {
    assert.ok(new RegExp(`\\b${f}\\b`).test(help), `verify --help: --json names ${f}`);
    assert.ok(answer.includes(f), `memfa.1 JSON answer: ${f}`);
  }
});

test('verify accepts every global option, before and after the word verify', async () => {
  const { program } = buildProgram();
  const env = { MEMFA_CONFIG: '/nonexistent/memfa.json' };
  let checked = 0;
  for (const opt of program.options) {
    for (const flag of [opt.long, opt.short]) {
      if (!flag) continue;
      const given = opt.required || opt.optional ? [flag, '/nonexistent/value'] : [flag];
      for (const args of [[...given, 'verify', '--help'], ['verify', ...given, '--help']]) {
        const r = await runCli(args, { env });
        assert.equal(r.code, 0, `memfa ${args.join(' ')}: ${r.stderr}`);
        assert.ok(r.stdout.startsWith('Usage: memfa verify') || r.stdout === `${VERSION}\n`, `memfa ${args.join(' ')}: ${r.stdout}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 18, `checked ${checked} command lines`);
});

test('every protocol method is in memfa(1) SOCKETS AND PROTOCOL with its sockets', () => {
  const lines = section('SOCKETS AND PROTOCOL').split('\n');
  for (const name of Object.keys(METHODS) as MethodName[]) {
    const row = lines.find((l) => tokens(l, true)[0] === name);
    assert.ok(row !== undefined, `memfa.1 methods table: no row for ${name}`);
    const t = tokens(row, true);
    for (const socket of METHODS[name].sockets) assert.ok(t.includes(socket), `memfa.1 methods table: ${name} on ${socket}`);
    assert.equal(t.includes('token'), isDelegable(name), `memfa.1 methods table: ${name} is ${isDelegable(name) ? '' : 'not '}delegable`);
  }
  const text = collapse(section('SOCKETS AND PROTOCOL'));
  assert.ok(text.includes('65536'), 'the default frame limit');
  // The token goes in "auth" as it is: an example shows one, not a placeholder read as a word.
  assert.match(text, /"auth":"memfa_[0-9a-f]{16}_/, 'an example request with a domain administrator token in "auth"');
  for (const m of ['self.show', 'self.set', 'self.code.send', 'self.enroll.start', 'self.enroll.confirm']) {
    assert.ok(text.includes(`"method":"${m}"`), `an example exchange with ${m}`);
  }
});

test('every setting key is in memfa(1) SETTINGS and in the settings parameter of the methods', () => {
  const lines = man1Sections.get('SETTINGS')!.split('\n');
  const methods = collapse(section('SOCKETS AND PROTOCOL'));
  for (const key of Object.keys(SETTING_LEVELS)) {
    assert.ok(lines.some((l, i) => l === `.B ${key}` && lines[i - 1] === '.TP'), `memfa.1 SETTINGS: no entry ".TP" ".B ${key}"`);
    assert.ok(methods.includes(key), `memfa.1 SOCKETS AND PROTOCOL: the settings object's key ${key}`);
  }
});

test('memfa(1) SECURITY says what the holder of each socket can do, and what verify tells a caller', () => {
  const lines = man1Sections.get('SECURITY')!.split('\n');
  for (const kind of SOCKET_KINDS) {
    assert.ok(lines.some((l, i) => l === `.B ${kind} socket` && lines[i - 1] === '.TP'), `memfa.1 SECURITY: no entry ".TP" ".B ${kind} socket"`);
    assert.ok(collapse(section('SOCKETS AND PROTOCOL')).includes(`${kind} socket`), `memfa.1 SOCKETS AND PROTOCOL: the ${kind} socket`);
  }
  assert.match(section('SECURITY'), /What a hook-socket caller can learn/);
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

test('every environment variable the code reads is in memfa(1) ENVIRONMENT', () => {
  const names = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, 'src'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/env\[['"]([A-Z][A-Z0-9_]*)['"]\]/g)) names.add(m[1]!);
  }
  assert.ok(names.has('MEMFA_CONFIG') && names.has('MEMFA_UNSAFE_TEST_CLOCK'), `found the variables: ${[...names].join(', ')}`);
  const env = tokens(section('ENVIRONMENT'));
  for (const name of names) assert.ok(env.includes(name), `memfa.1 ENVIRONMENT: ${name}`);
  assert.match(collapse(section('ENVIRONMENT')), /MEMFA_UNSAFE_TEST_CLOCK For the test suite only; it must never be set in production/);
});

test('every log level the configuration accepts is one the daemon logs at', () => {
  const level = (CONFIG_SPEC.fields['log'] as Section).fields['level'];
  assert.ok(level?.kind === 'leaf');
  const levels = /must be one of (.*)$/.exec(level.check('?') ?? '')?.[1]?.split(', ') ?? [];
  assert.ok(levels.length >= 4, `the levels: ${levels.join(', ')}`);
  const daemon = sourceFiles(path.join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8')).join('\n');
  for (const l of levels) assert.match(daemon, new RegExp(`\\blog\\.${l}\\(`), `something logs at level ${l}`);
});

test("every audit action and log event of the daemon's own (the 'audit-…' names in src/audit) is in memfa(1)", () => {
  const names = new Set<string>();
  for (const file of sourceFiles(path.join(ROOT, 'src', 'audit'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'(audit-[a-z-]+)'/g)) names.add(m[1]!);
  }
  for (const expected of ['audit-gap', 'audit-lost', 'audit-recovered', 'audit-write-failed']) assert.ok(names.has(expected), `found ${expected}: ${[...names].join(', ')}`);
  const text = tokens(plain(man1Source));
  for (const name of names) assert.ok(text.includes(name), `memfa.1: ${name}`);
});

test('memfa-dovecot(7) explains every setting of the shipped Dovecot configuration', () => {
  const page = collapse(plain(read('man/memfa-dovecot.7')));
  const conf = read('examples/dovecot/05-memfa.conf');
  const settings = [...conf.matchAll(/^\s*(result_[a-z]+ = [a-z-]+)$/gm)].map((m) => m[1]!);
  assert.deepEqual(settings.map((s) => s.split(' ')[0]).sort(), ['result_failure', 'result_internalfail', 'result_success'], 'the shipped passdb sets its results');
  for (const s of settings) assert.ok(page.includes(s), `memfa-dovecot(7): ${s}`);
  const args = /^\s*args = (.*)$/m.exec(conf)?.[1] ?? '';
  for (const arg of args.split(/\s+/).filter((a) => a.includes('=') && !a.startsWith('file='))) assert.ok(page.includes(arg), `memfa-dovecot(7): passdb argument ${arg}`);
  for (const name of ['import_environment', 'MEMFA_HOOK_SOCKET', 'MEMFA_TIMEOUT_SECONDS', 'auth_mechanisms', 'vsz_limit', 'default_vsz_limit']) assert.ok(page.includes(name), `memfa-dovecot(7): ${name}`);
  const lua = read('examples/dovecot/memfa-passdb.lua');
  for (const env of lua.matchAll(/os\.getenv\("([A-Z_]+)"\)/g)) assert.ok(page.includes(env[1]!), `memfa-dovecot(7): the script's ${env[1]}`);
});

test('the README has the two set-up commands and links the man pages', () => {
  const readme = read('README.md');
  assert.match(readme, /^npm ci && npm start$/m, 'README: the daemon command');
  const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
  assert.match(scripts['start'] ?? '', /npm run build && node bin\/memfa --config config\/local\.json daemon/, 'npm start builds and runs the daemon on the local store');
  assert.match(readme, /^npm test$/m, 'README: npm test on its own line');
  assert.ok(existsSync(path.join(ROOT, 'config/local.json')), 'config/local.json exists');
  for (const link of ['man/memfa.1', 'man/memfa.conf.5', 'man/memfa-dovecot.7', 'examples/memfa.service', 'examples/pam-memfa-hook.sh', 'examples/dovecot/05-memfa.conf', 'examples/webmail/memfa.php']) {
    assert.ok(readme.includes(link), `README links ${link}`);
    assert.ok(existsSync(path.join(ROOT, link)), `${link} exists`);
  }
});

test('every reason a provider cannot be used is in memfa(1), under mailbox show', () => {
  const text = tokens(section('COMMANDS'));
  for (const problem of PROVIDER_PROBLEMS) assert.ok(text.includes(problem), `memfa.1 COMMANDS (mailbox show): the provider problem ${problem}`);
});

test('every metric is in memfa(1) METRICS: memfa\'s own each with its type and labels, the process ones by name', () => {
  const families = createExposition(stubSources()).families();
  assert.ok(families.filter((f) => f.name.startsWith('memfa_')).length >= 15, `the metrics: ${families.map((f) => f.name).join(', ')}`);
  const lines = man1Sections.get('METRICS')?.split('\n');
  assert.ok(lines !== undefined, 'man/memfa.1 has a section METRICS');
  const others = lines.findIndex((l, i) => l.startsWith('.B process_*') && lines[i - 1] === '.TP');
  assert.ok(others !== -1, 'memfa.1 METRICS: an entry for the process_* and nodejs_* metrics');
  const otherWords = tokens(plain(lines.slice(others).join('\n')));
  for (const f of families) {
    if (!f.name.startsWith('memfa_')) {
      for (const word of [f.name, ...f.labelNames]) assert.ok(otherWords.includes(word), `memfa.1 METRICS: ${f.name} (${word})`);
      continue;
    }
    const at = lines.findIndex((l, i) => l === `.B ${f.name}` && lines[i - 1] === '.TP');
    assert.ok(at !== -1, `memfa.1 METRICS: no entry ".TP" ".B ${f.name}"`);
    const end = lines.findIndex((l, i) => i > at && /^\.(TP|SH|SS|PP)\b/.test(l));
    const body = tokens(plain(lines.slice(at + 1, end).join('\n')));
    assert.equal(body[0], f.type, `memfa.1 METRICS: ${f.name} is a ${f.type}`);
    for (const label of f.labelNames) assert.ok(body.includes(label), `memfa.1 METRICS: ${f.name} has the label ${label}`);
    if (f.labelNames.length === 0) assert.ok(!body.slice(0, 3).includes('label') && !body.slice(0, 3).includes('labels'), `memfa.1 METRICS: ${f.name} has no label`);
  }
});
