// Configuration: lookup order, validation that reports every bad key at once, and paths resolved
// against the configuration file. Unit tests of config/load.ts plus the real daemon refusing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BIN, REPO, makeTempDir, rawExchange, rpcLine, runCli, startDaemon } from './helpers/daemon.js';
import { assertStatusOk, runDaemonExpectingExit, writeJson } from './helpers/protocol-tools.js';
import { SHIPPED_CONFIG, findConfigFile, loadConfig, validateConfig } from '../src/config/load.js';
import { URI as IndependentUri } from 'otpauth';
import { MemfaError } from '../src/protocol/errors.js';
import { DEFAULT_COMPACT_JOURNAL_BYTES } from '../src/store/file-store.js';

function configError(fn: () => unknown): MemfaError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MemfaError, String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(err.exitCode, 78);
    return err;
  }
  assert.fail('expected CONFIG_INVALID');
}

test('validateConfig reports every bad key at once, each named', () => {
  const e = configError(() =>
    validateConfig(
      {
        limits: { maxFrameBytes: 'big', idleTimeoutMs: 5 },
        colour: 'red',
        sockets: { admin: { mode: '999', owner: 'root' } },
        smtp: { port: 25 },
        log: 'loud',
      },
      '/etc/memfa/test.json',
    ),
  );
  const errors = e.data?.['errors'] as string[];
  const keys = errors.map((l) => l.split(':')[0]).sort();
  assert.deepEqual(keys, ['colour', 'limits.idleTimeoutMs', 'limits.maxFrameBytes', 'log', 'smtp.from', 'smtp.host', 'sockets.admin.mode', 'sockets.admin.owner'].sort());
  assert.match(e.message, /\/etc\/memfa\/test\.json/);
  for (const k of keys) assert.ok(e.message.includes(k), `message names ${k}`);
});

test('validateConfig: a non-object top level, and null/array sections, are errors not crashes', () => {
  for (const raw of [[], 'x', 42, null]) configError(() => validateConfig(raw, '/x/memfa.json'));
  const e = configError(() => validateConfig({ limits: [], totp: null }, '/x/memfa.json'));
  assert.deepEqual((e.data?.['errors'] as string[]).map((l) => l.split(':')[0]).sort(), ['limits', 'totp']);
  const proto = configError(() => validateConfig(JSON.parse('{"__proto__":{"dataDir":"/evil"}}'), '/x/memfa.json'));
  assert.match(proto.message, /__proto__: unknown key/);
});

test('issuer: a colon is refused, naming the key (it would split the otpauth:// label)', () => {
  for (const issuer of ['Acme: Mail', 'a:b', ':']) {
    const e = configError(() => validateConfig({ issuer }, '/x/memfa.json'));
    assert.deepEqual(e.data?.['errors'], ['issuer: must not contain a colon (it separates the issuer from the account in the otpauth:// label)']);
  }
  assert.equal(validateConfig({ issuer: 'Acme Mail & Co.' }, '/x/memfa.json', {}, {}).issuer, 'Acme Mail & Co.');
});

test('an enrolment URI, parsed by an independent parser, names the configured issuer and the mailbox', async (t) => {
  const d = await startDaemon({ config: { issuer: 'Acme Mail' } });
  t.after(() => d.cleanup());
  const e = await d.json<{ otpauthUri: string; secret: string }>(['enroll', 'jo@acme.example', '--no-confirm']);
  const parsed = IndependentUri.parse(e.otpauthUri);
  assert.deepEqual([parsed.issuer, parsed.label, parsed.secret.base32], ['Acme Mail', 'jo@acme.example', e.secret]);
});

test('the shipped default configuration is valid', () => {
  const c = validateConfig(JSON.parse(readFileSync(SHIPPED_CONFIG, 'utf8')), SHIPPED_CONFIG, {}, {});
  assert.equal(c.limits.maxFrameBytes, 65536);
  assert.equal(c.sockets.admin.mode, 0o660);
  assert.equal(SHIPPED_CONFIG, path.join(REPO, 'config', 'memfa.json'));
});

test("the configuration's default compaction threshold is the store's own", () => {
  // Two literals, since the configuration must not load the store (and lowdb) on every CLI start.
  const c = validateConfig({}, 'test.json', {}, {});
  assert.equal(c.store.compactJournalBytes, DEFAULT_COMPACT_JOURNAL_BYTES);
});

test('relative paths are resolved against the configuration file, not the working directory', () => {
  const c = validateConfig({ dataDir: 'data', runDir: '../run', sockets: { hook: { path: 'h.sock' } }, store: { file: 'db/store.json' }, audit: { file: '/var/log/memfa.audit' } }, '/srv/mail/memfa/memfa.json', {}, {});
  assert.equal(c.dataDir, '/srv/mail/memfa/data');
  assert.equal(c.runDir, '/srv/mail/run');
  assert.equal(c.sockets.admin.path, '/srv/mail/run/admin.sock');
  assert.equal(c.sockets.hook.path, '/srv/mail/run/h.sock', 'a relative socket path is inside the run dir');
  assert.equal(c.store.file, '/srv/mail/memfa/data/db/store.json');
  assert.equal(c.keyFile, '/srv/mail/memfa/data/memfa.key');
  assert.equal(c.audit.file, '/var/log/memfa.audit', 'absolute paths stay');
  // Overrides from the command line and the environment are relative to the working directory.
  const o = validateConfig({ dataDir: 'data' }, '/srv/mail/memfa/memfa.json', { dataDir: 'here' }, { MEMFA_RUN_DIR: 'sockets' });
  assert.equal(o.dataDir, path.resolve('here'));
  assert.equal(o.runDir, path.resolve('sockets'));
  const s = validateConfig({}, '/srv/m/memfa.json', {}, { MEMFA_ADMIN_SOCKET: '/tmp/a.sock', MEMFA_SELF_SOCKET: 'w.sock' });
  assert.equal(s.sockets.admin.path, '/tmp/a.sock');
  assert.equal(s.sockets.self.path, path.resolve('w.sock'));
  assert.equal(c.sockets.self.path, '/srv/mail/run/self.sock', 'the self socket defaults to runDir/self.sock');
});

test('two sockets on one path are refused, naming both keys', () => {
  const e = configError(() => validateConfig({ sockets: { self: { path: 'hook.sock' } } }, '/srv/m/memfa.json', {}, {}));
  assert.match(e.message, /sockets\.self\.path: the same path as sockets\.hook\.path/);
  const env = configError(() => validateConfig({}, '/srv/m/memfa.json', {}, { MEMFA_SELF_SOCKET: '/run/x.sock', MEMFA_ADMIN_SOCKET: '/run/x.sock' }));
  assert.match(env.message, /sockets\.self\.path: the same path as sockets\.admin\.path/);
});

test('lookup order: --config, then $MEMFA_CONFIG, then /etc/memfa/memfa.json, then the shipped default', () => {
  assert.equal(findConfigFile('rel/x.json', { MEMFA_CONFIG: '/env.json' }), path.resolve('rel/x.json'));
  assert.equal(findConfigFile(undefined, { MEMFA_CONFIG: '/env.json' }), '/env.json');
  const fallback = findConfigFile(undefined, {});
  assert.equal(fallback, existsSync('/etc/memfa/memfa.json') ? '/etc/memfa/memfa.json' : SHIPPED_CONFIG);
});

test('loadConfig: invalid JSON and a missing file are CONFIG_INVALID naming the file', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bad = path.join(dir, 'bad.json');
  await writeFile(bad, '{ "dataDir": "data", }');
  const e = configError(() => loadConfig({ config: bad }, {}));
  assert.ok(e.message.includes(bad), e.message);
  assert.match(e.message, /not valid JSON/);
  const missing = path.join(dir, 'missing.json');
  const m = configError(() => loadConfig({}, { MEMFA_CONFIG: missing }));
  assert.ok(m.message.includes(missing), m.message);
});

test('daemon: a config with two bad keys is refused with exit 78 naming both', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', limits: { maxFrameBytes: 'big' }, colour: 'blue' });
  const r = await runDaemonExpectingExit(cfg);
  assert.equal(r.code, 78, r.stderr);
  assert.match(r.stderr, /limits\.maxFrameBytes/);
  assert.match(r.stderr, /colour: unknown key/);
  assert.ok(r.stderr.includes(cfg), 'names the file');
  assert.equal(existsSync(path.join(dir, 'data')), false, 'nothing was created');
  assert.equal(existsSync(path.join(dir, 'run')), false);
});

test('daemon: invalid JSON config is refused with exit 78 naming the file; so is a missing one', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeFile(cfg, '{"dataDir": "data"');
  const r = await runDaemonExpectingExit(cfg);
  assert.equal(r.code, 78, r.stderr);
  assert.ok(r.stderr.includes(cfg), r.stderr);
  const missing = await runDaemonExpectingExit(path.join(dir, 'nope.json'));
  assert.equal(missing.code, 78, missing.stderr);
  assert.ok(missing.stderr.includes(path.join(dir, 'nope.json')), missing.stderr);
  // The CLI refuses a broken configuration the same way.
  const cli = await runCli(['status'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(cli.code, 78);
  assert.ok(cli.stderr.includes(cfg), cli.stderr);
});

test('daemon and CLI find the configuration through $MEMFA_CONFIG; relative paths follow the file', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  // The daemon is started with $MEMFA_CONFIG only (no --config), from the repository as working directory.
  await writeJson(cfg, { dataDir: 'state', runDir: 'sock', sockets: { admin: { path: 'adm.sock' } } });
  const proc = spawn(process.execPath, [BIN, 'daemon'], { env: { ...process.env, MEMFA_CONFIG: cfg }, cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => {
    proc.kill('SIGKILL');
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (b: Buffer) => {
      log += b.toString();
      if (log.includes('"event":"ready"')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`daemon exited ${code}:\n${log}`)));
  });
  assert.equal(existsSync(path.join(dir, 'state', 'memfa.json')), true, 'store under the config file directory');
  assert.equal(existsSync(path.join(dir, 'sock', 'adm.sock')), true, 'admin socket under the run dir');
  assert.equal(existsSync(path.join(REPO, 'state')), false, 'nothing relative to the working directory');

  const r = await runCli(['--json', 'status'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.store, path.join(dir, 'state', 'memfa.json'));
  assert.equal(doc.sockets.admin, path.join(dir, 'sock', 'adm.sock'));
  // --config wins over $MEMFA_CONFIG.
  const other = path.join(dir, 'other.json');
  await writeJson(other, { dataDir: 'x', runDir: 'elsewhere' });
  const r2 = await runCli(['--config', other, 'status'], { env: { MEMFA_CONFIG: cfg } });
  assert.equal(r2.code, 69);
  assert.ok(r2.stderr.includes(path.join(dir, 'elsewhere', 'admin.sock')), r2.stderr);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  assert.equal(proc.exitCode, 0);
});

test('limits from the configuration are applied (maxFrameBytes)', async (t) => {
  const d = await startDaemon({ config: { limits: { maxFrameBytes: 2048 } } });
  t.after(() => d.cleanup());
  const r = await rawExchange(d.adminSocket, [rpcLine('ping', { pad: 'x'.repeat(3000) })], { timeoutMs: 2000 });
  assert.equal(r.closed, true);
  assert.equal((r.lines[0]?.['error'] as { data: { code: string } }).data.code, 'FRAME_TOO_LARGE');
  await assertStatusOk(d);
});
