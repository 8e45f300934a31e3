// memfa config check and the cross-key rules of the validator: every problem at once, the same
// verdict as the daemon's start for each check it runs, no daemon needed and nothing written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { validateConfig } from '../src/config/load.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir, runCli, startDaemon } from './helpers/daemon.js';
import { runDaemonExpectingExit, writeJson } from './helpers/protocol-tools.js';

function problems(raw: unknown): string[] {
  try {
    validateConfig(raw, '/x/memfa.json', {}, {});
  } catch (err) {
    assert.ok(err instanceof MemfaError && err.code === 'CONFIG_INVALID', String(err));
    return err.data?.['errors'] as string[];
  }
  return [];
}

test('cross-key rules: each names both keys; equal values and the defaults pass', () => {
  assert.deepEqual(problems({ lockout: { baseDelaySeconds: 7200, maxDelaySeconds: 3600 } }), ['lockout.baseDelaySeconds: must not exceed lockout.maxDelaySeconds (7200 > 3600)']);
  assert.deepEqual(problems({ lockout: { threshold: 101 } }), ['lockout.threshold: must not exceed lockout.hardLockAfter (101 > 100)']);
  assert.deepEqual(problems({ smpp: { host: 'h', systemId: 's', reconnectInitialMs: 2000, reconnectMaxMs: 1000 } }), [
    'smpp.reconnectInitialMs: must not exceed smpp.reconnectMaxMs (2000 > 1000)',
  ]);
  assert.deepEqual(problems({ lockout: { baseDelaySeconds: 60, maxDelaySeconds: 60, threshold: 7, hardLockAfter: 7 }, smpp: { host: 'h', systemId: 's', reconnectInitialMs: 500, reconnectMaxMs: 500 } }), []);
  assert.deepEqual(problems({ notifications: { retryInitialSeconds: 7200, retryMaxSeconds: 3600 } }), ['notifications.retryInitialSeconds: must not exceed notifications.retryMaxSeconds (7200 > 3600)']);
  assert.deepEqual(problems({}), []);
  // A key that failed its own check is not compared with anything (its value is not the file's).
  assert.deepEqual(problems({ lockout: { threshold: 'many' } }), ['lockout.threshold: must be an integer from 1 to 1000']);
});

test('socket modes: nothing beyond 0660 unless sockets.KIND.allowWideMode is true', () => {
  for (const mode of ['0600', '0640', '0660', '600', '0000']) assert.deepEqual(problems({ sockets: { hook: { mode } } }), [], mode);
  for (const mode of ['0666', '0662', '0670', '0700', '0760']) {
    assert.deepEqual(problems({ sockets: { self: { mode } } }), [
      `sockets.self.mode: "${mode}" grants more than 0660 (read and write for the owner and the group); set sockets.self.allowWideMode to true if that is meant`,
    ]);
  }
  const c = validateConfig({ sockets: { admin: { mode: '0666', allowWideMode: true } } }, '/x/memfa.json', {}, {});
  assert.equal(c.sockets.admin.mode, 0o666);
  assert.deepEqual(problems({ sockets: { admin: { allowWideMode: 'yes' } } }), ['sockets.admin.allowWideMode: must be true or false']);
});

test('smpp.dataCoding is checked by the validator: only the codings memfa can encode', () => {
  for (const dataCoding of [0, 1, 3, 8]) assert.deepEqual(problems({ smpp: { host: 'h', systemId: 's', dataCoding } }), []);
  assert.deepEqual(problems({ smpp: { host: 'h', systemId: 's', dataCoding: 4 } }), ['smpp.dataCoding: must be one of 0, 1, 3, 8']);
});

test('the daemon refuses a wide socket mode (exit 78, naming the key) and starts with allowWideMode', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', sockets: { hook: { mode: '0666' } } });
  const r = await runDaemonExpectingExit(cfg);
  assert.equal(r.code, 78, r.stderr);
  assert.match(r.stderr, /sockets\.hook\.mode: "0666" grants more than 0660/);
  assert.equal(existsSync(path.join(dir, 'run', 'hook.sock')), false, 'no socket was created');
  const d = await startDaemon({ config: { sockets: { hook: { mode: '0666', allowWideMode: true } } } });
  t.after(() => d.cleanup());
  assert.equal((await d.cli(['status'])).code, 0);
});

interface Case {
  name: string;
  key: string;
  config: Record<string, unknown>;
  /** Prepares the data directory. */
  prepare?: (dataDir: string) => Promise<void>;
}

const CASES: Case[] = [
  { name: 'a cross-key rule', key: 'lockout.threshold', config: { lockout: { threshold: 500, hardLockAfter: 400 } } },
  { name: 'a template without {code}', key: 'smtp.text', config: { smtp: { host: '127.0.0.1', from: 'mfa@example.org', text: 'your code: {kode}' } } },
  { name: 'an SMPP data coding', key: 'smpp.dataCoding', config: { smpp: { host: '127.0.0.1', systemId: 'memfa', dataCoding: 2 } } },
  { name: 'a socket group that does not exist', key: 'sockets.admin.group', config: { sockets: { admin: { group: 'memfa-no-such-group' } } } },
  {
    name: 'a malformed key file',
    key: 'keyFile',
    config: {},
    prepare: async (dataDir) => {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      await writeFile(path.join(dataDir, 'memfa.key'), '{"version":1}', { mode: 0o600 });
    },
  },
  {
    name: 'a key file others can read',
    key: 'keyFile',
    config: {},
    prepare: async (dataDir) => {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const key = Buffer.alloc(32, 7).toString('base64');
      await writeFile(path.join(dataDir, 'memfa.key'), JSON.stringify({ version: 1, current: 'k1', keys: { k1: key }, mac: key }));
      await chmod(path.join(dataDir, 'memfa.key'), 0o644);
    },
  },
];

for (const c of CASES) {
  test(`config check and the daemon agree: ${c.name} (${c.key})`, async (t) => {
    const dir = await makeTempDir();
    t.after(() => rm(dir, { recursive: true, force: true }));
    const cfg = path.join(dir, 'memfa.json');
    await writeJson(cfg, { dataDir: 'data', runDir: 'run', ...c.config });
    await c.prepare?.(path.join(dir, 'data'));
    const check = await runCli(['--json', 'config', 'check', cfg]);
    assert.equal(check.code, 78, check.stderr);
    const doc = JSON.parse(check.stdout) as { error: { code: string; errors: string[] } };
    assert.equal(doc.error.code, 'CONFIG_INVALID');
    assert.ok(doc.error.errors.length >= 1);
    for (const e of doc.error.errors) assert.ok(e.startsWith(`${c.key}: `), `only ${c.key} is named: ${e}`);
    const daemon = await runDaemonExpectingExit(cfg);
    assert.equal(daemon.code, 78, daemon.stderr);
    assert.ok(daemon.stderr.includes(c.key === 'keyFile' ? path.join(dir, 'data', 'memfa.key') : c.key), `the daemon names ${c.key}:\n${daemon.stderr}`);
  });
}

test('config check lists every problem at once, needs no daemon and writes nothing', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, {
    dataDir: 'data',
    runDir: 'run',
    colour: 'blue',
    lockout: { baseDelaySeconds: 9000 },
    sockets: { hook: { mode: '0666', group: 'memfa-no-such-group' }, self: { path: 'hook.sock' } },
    smtp: { host: 'mail', from: 'mfa@example.org', subject: 'code for {who}' },
    smpp: { host: 'sms', systemId: 'memfa', dataCoding: 5, reconnectInitialMs: 9000, reconnectMaxMs: 100, template: 'no code here' },
    // A notice has no {code} to carry: a template that asks for one is refused.
    notifications: { templates: { 'mailbox-locked': { text: 'locked; your code was {code}' }, 'no-such-kind': { text: 'x' } } },
  });
  const before = readdirSync(dir);
  const r = await runCli(['config', 'check', cfg]);
  assert.equal(r.code, 78, r.stderr);
  const keys = ['colour', 'lockout.baseDelaySeconds', 'sockets.hook.mode', 'sockets.hook.group', 'sockets.self.path', 'smtp.subject', 'smpp.dataCoding', 'smpp.reconnectInitialMs', 'smpp.template', 'notifications.templates.no-such-kind', 'notifications.templates.mailbox-locked.text'];
  for (const key of keys) assert.match(r.stderr, new RegExp(`^  ${key.replaceAll('.', '\\.')}: `, 'm'), `names ${key}:\n${r.stderr}`);
  assert.equal(r.stdout, '');
  assert.deepEqual(readdirSync(dir), before, 'nothing was created');
  const j = await runCli(['--json', 'config', 'check', cfg]);
  assert.equal(j.code, 78);
  const doc = JSON.parse(j.stdout) as { result: string; error: { file: string; errors: string[]; warnings: string[] } };
  assert.equal(doc.result, 'error');
  assert.equal(doc.error.file, cfg);
  assert.deepEqual(doc.error.errors.map((e) => e.slice(0, e.indexOf(':'))).sort(), keys.sort());
});

test('config check of a valid file: exit 0; FILE wins over --config; warnings for what is not checked', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const good = path.join(dir, 'good.json');
  await writeJson(good, { dataDir: 'data', runDir: 'run', providers: { email: { transport: 'log' } } });
  const bad = path.join(dir, 'bad.json');
  await writeJson(bad, { colour: 'blue' });
  const r = await runCli(['--config', bad, 'config', 'check', good]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${good}: valid (2 warnings)\n`);
  assert.match(r.stderr, /^warning: providers\.email\.transport: "log" writes every code in plain text/m);
  assert.match(r.stderr, /^warning: keyFile: .* does not exist yet; the daemon creates it at its first start$/m);
  const j = await runCli(['--json', 'config', 'check'], { env: { MEMFA_CONFIG: good } });
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), { result: 'ok', file: good, errors: [], warnings: JSON.parse(j.stdout).warnings });
  assert.equal((JSON.parse(j.stdout) as { warnings: string[] }).warnings.length, 2);
  assert.equal(existsSync(path.join(dir, 'data')), false, 'no data directory was created');
  const missing = await runCli(['config', 'check', path.join(dir, 'nope.json')]);
  assert.equal(missing.code, 78);
  assert.match(missing.stderr, /cannot read configuration .*nope\.json: not found/);
});

test('config check of a running daemon\'s configuration: its key file is fine; a missing key file beside a store is an error', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  assert.equal((await d.cli(['mailbox', 'set', 'kf@example.org', '--challenge', 'always'])).code, 0);
  const ok = await d.cli(['config', 'check']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '', 'no warning: the key file was checked');
  await d.stop();
  await rm(path.join(d.dataDir, 'memfa.key'));
  const r = await d.cli(['--json', 'config', 'check']);
  assert.equal(r.code, 78, r.stderr);
  const errors = (JSON.parse(r.stdout) as { error: { errors: string[] } }).error.errors;
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /^keyFile: .*memfa\.key is missing but the store .* exists; the daemon refuses to start/);
});

test('config check run by another user than the key file\'s owner warns instead of judging the owner', { skip: process.getuid?.() === 0 ? false : 'needs root to give the file away' }, async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run' });
  await mkdir(path.join(dir, 'data'), { mode: 0o700 });
  const keyFile = path.join(dir, 'data', 'memfa.key');
  const key = Buffer.alloc(32, 9).toString('base64');
  await writeFile(keyFile, JSON.stringify({ version: 1, current: 'k1', keys: { k1: key }, mac: key }), { mode: 0o600 });
  await chown(keyFile, 65534, 65534);
  const r = await runCli(['config', 'check', cfg]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^warning: keyFile: .*memfa\.key is owned by uid 65534, not by uid 0 running this check; run the check as the daemon's user/m);
});
