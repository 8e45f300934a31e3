// The memfa command as users and scripts meet it: exit codes, messages with hints, --json, --version.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { REPO, makeTempDir, runCli, runCliClosedStdout, startDaemon } from './helpers/daemon.js';
import { writeJson } from './helpers/protocol-tools.js';

test('daemon not running: memfa status exits 69 naming the socket, with a hint to run memfa daemon', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run' });
  const admin = path.join(dir, 'run', 'admin.sock');

  const r = await runCli(['--config', cfg, 'status']);
  assert.equal(r.code, 69, r.stderr);
  assert.ok(r.stderr.includes(admin), `stderr names ${admin}:\n${r.stderr}`);
  assert.match(r.stderr, /hint: .*memfa daemon/);
  assert.equal(r.stdout, '', 'nothing on stdout');
  assert.ok(r.stderr.trim().split('\n').length <= 3, `short: ${r.stderr}`);

  // --json: one JSON document on stdout describing the error, the same exit code.
  const j = await runCli(['--config', cfg, '--json', 'status']);
  assert.equal(j.code, 69);
  const doc = JSON.parse(j.stdout);
  assert.equal(doc.result, 'error');
  assert.equal(doc.error.code, 'DAEMON_UNAVAILABLE');
  assert.equal(doc.error.socket, admin);

  // An explicit --socket is the one named.
  const s = await runCli(['--config', cfg, '--socket', path.join(dir, 'nowhere.sock'), 'status']);
  assert.equal(s.code, 69);
  assert.ok(s.stderr.includes(path.join(dir, 'nowhere.sock')), s.stderr);
});

test('memfa --version prints the package.json version', async () => {
  const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await runCli([flag]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, pkg.version + '\n');
    assert.equal(r.stderr, '');
  }
});

test('a launcher whose program was never built says to build it and exits 70', async (t) => {
  // A copy of bin/ and package.json without dist/: what a checkout looks like before npm run build.
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'bin'));
  for (const f of ['bin/memfa', 'bin/package.json', 'package.json']) await copyFile(path.join(REPO, f), path.join(dir, f));
  const run = (args: string[]) => spawnSync(process.execPath, [path.join(dir, 'bin', 'memfa'), ...args], { encoding: 'utf8' });
  const r = run(['status']);
  assert.equal(r.status, 70, r.stderr);
  assert.match(r.stderr, /^memfa: cannot load the program \(run `npm run build` first\)/);
  assert.equal(r.stdout, '');
  // --version needs no build: it is answered by the launcher.
  const v = run(['--version']);
  assert.equal(v.status, 0, v.stderr);
  assert.equal(v.stdout, (JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version + '\n');
});

test('usage errors exit 64: unknown command, unknown option, missing argument', async () => {
  for (const args of [['bogus-command'], ['--bogus-option', 'status'], ['mailbox', 'show'], ['reset', 'a@example.com']]) {
    const r = await runCli(args, { env: { MEMFA_CONFIG: '/nonexistent/memfa.json' } });
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.notEqual(r.stderr, '', 'says what is wrong');
    assert.equal(r.stdout, '');
  }
});

test('memfa --json status prints exactly one JSON document; plain status is for people', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const r = await d.cli(['--json', 'status']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as Record<string, any>; // throws if there is more than one document
  assert.equal(typeof doc['version'], 'string');
  assert.equal(typeof doc['uptimeSeconds'], 'number');
  assert.equal(doc['store'], path.join(d.dataDir, 'memfa.json'));
  assert.equal(doc['mailboxes'], 0);
  assert.deepEqual(doc['sockets'], { admin: d.adminSocket, hook: d.hookSocket, self: d.selfSocket });
  assert.ok(Array.isArray(doc['providers']) && doc['providers'].length > 0);
  assert.equal(r.stderr, '');

  const plain = await d.cli(['status']);
  assert.equal(plain.code, 0);
  assert.throws(() => JSON.parse(plain.stdout));
  assert.match(plain.stdout, /mailboxes\s+0/);
  assert.doesNotMatch(plain.stdout, /\u001b\[/, 'no colour when stdout is not a terminal');

  // The mailbox count follows the store.
  assert.equal((await d.cli(['mailbox', 'set', 'one@example.com', '--challenge', 'always'])).code, 0);
  assert.equal((await d.json<{ mailboxes: number }>(['status'])).mailboxes, 1);
});

test('daemon errors map to documented exit codes through the CLI', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const bad = await d.cli(['mailbox', 'set', 'not-an-address', '--challenge', 'always']);
  assert.equal(bad.code, 64, bad.stderr);
  assert.match(bad.stderr, /^memfa: /);
  const missing = await d.cli(['mailbox', 'remove', 'nobody@example.com']);
  assert.equal(missing.code, 67, missing.stderr);
});

test('a closed standard output keeps the exit status: mailbox show exits 0, verify its verdict', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  assert.equal((await d.cli(['mailbox', 'set', 'pipe@example.com', '--challenge', 'always'])).code, 0);
  const env = { MEMFA_CONFIG: d.configFile };
  const show = await runCliClosedStdout(['mailbox', 'show', 'pipe@example.com'], { env });
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stderr, '');
  // No TOTP secret yet: the verdict is enroll (3), whether or not anyone reads the answer.
  for (const json of [[], ['--json']]) {
    const verify = await runCliClosedStdout(['verify', ...json, '--user', 'pipe@example.com', '--ip', '192.0.2.7'], { env });
    assert.equal(verify.code, 3, verify.stderr);
    assert.equal(verify.stderr, '');
  }
});
