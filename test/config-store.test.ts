// store.backend and store.postgres: validated like every key (each problem names its key), paths
// resolved against the configuration file, and what memfa config check can judge of store.postgres
// without the database (the daemon on PostgreSQL: daemon-postgres.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { validateConfig } from '../src/config/load.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir, runCli } from './helpers/daemon.js';
import { writeJson } from './helpers/protocol-tools.js';

function problems(raw: unknown): string[] {
  try {
    validateConfig(raw, '/etc/memfa/memfa.json', {}, {});
  } catch (err) {
    assert.ok(err instanceof MemfaError && err.code === 'CONFIG_INVALID', String(err));
    return err.data?.['errors'] as string[];
  }
  return [];
}

test('store.backend is file by default, or postgres with store.postgres', () => {
  const c = validateConfig({}, '/etc/memfa/memfa.json', {}, {});
  assert.equal(c.store.backend, 'file');
  assert.equal(c.store.postgres, null);
  assert.deepEqual(problems({ store: { backend: 'mysql' } }), ['store.backend: must be one of file, postgres']);
  assert.deepEqual(problems({ store: { backend: 'postgres' } }), [
    'store.backend: "postgres" needs store.postgres (at least its host: a host name, or the directory of the server\'s socket)',
  ]);
  assert.deepEqual(problems({ store: { backend: 'postgres', postgres: { host: '/run/postgresql' } } }), []);
});

test('store.postgres: its defaults, and every bad key named', () => {
  const c = validateConfig({ store: { postgres: { host: 'db.example.org', passwordFile: 'pg.pw', caFile: '/etc/ssl/db-ca.pem' } } }, '/etc/memfa/memfa.json', {}, {});
  assert.deepEqual(c.store.postgres, {
    host: 'db.example.org',
    port: 5432,
    database: 'memfa',
    user: 'memfa',
    passwordFile: '/etc/memfa/pg.pw',
    tls: 'verify-full',
    caFile: '/etc/ssl/db-ca.pem',
    poolSize: 10,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 5000,
    lockTimeoutMs: 2000,
    cacheTtlMs: 30000,
    cacheEntries: 20000,
  });
  assert.deepEqual(problems({ store: { postgres: {} } }), ['store.postgres.host: is required when store.postgres is configured']);
  assert.deepEqual(
    problems({ store: { postgres: { host: 'db', port: 0, tls: 'prefer', poolSize: 0, statementTimeoutMs: 10, lockTimeoutMs: 'soon', connectTimeoutMs: 1e9, database: '', user: 7, sslmode: 'x' } } }),
    [
      'store.postgres.sslmode: unknown key',
      'store.postgres.port: must be an integer from 1 to 65535',
      'store.postgres.database: must be a string of 1 to 63 characters',
      'store.postgres.user: must be a string of 1 to 63 characters',
      'store.postgres.tls: must be one of verify-full, require, disable',
      'store.postgres.poolSize: must be an integer from 1 to 1000',
      'store.postgres.connectTimeoutMs: must be an integer from 100 to 120000',
      'store.postgres.statementTimeoutMs: must be an integer from 100 to 600000',
      'store.postgres.lockTimeoutMs: must be an integer from 10 to 600000',
    ],
  );
  assert.deepEqual(problems({ store: { postgres: { host: 'db', cacheTtlMs: 99, cacheEntries: -1 } } }), [
    'store.postgres.cacheTtlMs: must be an integer from 100 to 60000',
    'store.postgres.cacheEntries: must be an integer from 0 to 10000000',
  ]);
  assert.deepEqual(problems({ store: { postgres: 'postgres://db' } }), ['store.postgres: must be an object or null']);
});

test('memfa config check judges store.postgres without the database: its password and CA files, TLS without a check', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  // No server anywhere: the check must not need one.
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', store: { backend: 'postgres', postgres: { host: 'db.invalid', passwordFile: 'pg.pw', caFile: 'ca.pem' } } });
  const check = await runCli(['--json', 'config', 'check', cfg]);
  assert.equal(check.code, 78, check.stderr);
  const doc = JSON.parse(check.stdout) as { error: { code: string; errors: string[] } };
  assert.equal(doc.error.code, 'CONFIG_INVALID');
  assert.deepEqual(doc.error.errors.filter((e) => e.startsWith('store.')), [
    `store.postgres.passwordFile: ${path.join(dir, 'pg.pw')} cannot be read (ENOENT)`,
    `store.postgres.caFile: ${path.join(dir, 'ca.pem')} cannot be read (ENOENT)`,
  ]);
  await writeFile(path.join(dir, 'pg.pw'), 'secret\n', { mode: 0o600 });
  await writeFile(path.join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n', { mode: 0o644 });
  const ok = await runCli(['--json', 'config', 'check', cfg]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(existsSync(path.join(dir, 'data')), false, 'the check made nothing');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', store: { backend: 'postgres', postgres: { host: 'db.example.org', tls: 'require' } } });
  const warned = await runCli(['config', 'check', cfg]);
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stdout + warned.stderr, /store\.postgres\.tls: "require" does not check the server's certificate/);
});
