// store.backend and store.postgres: validated like every key (each problem names its key), paths
// resolved against the configuration file, and a daemon asked for "postgres" refused at start,
// with the same verdict from memfa config check, while its services still run on the file store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { validateConfig } from '../src/config/load.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir, runCli } from './helpers/daemon.js';
import { runDaemonExpectingExit, writeJson } from './helpers/protocol-tools.js';

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
    cacheTtlMs: 2000,
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

test('a daemon asked for the postgres backend refuses to start, as config check says, and makes nothing', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cfg = path.join(dir, 'memfa.json');
  await writeJson(cfg, { dataDir: 'data', runDir: 'run', store: { backend: 'postgres', postgres: { host: '/run/postgresql' } } });
  const check = await runCli(['--json', 'config', 'check', cfg]);
  assert.equal(check.code, 78, check.stderr);
  const doc = JSON.parse(check.stdout) as { error: { code: string; errors: string[] } };
  assert.equal(doc.error.code, 'CONFIG_INVALID');
  assert.deepEqual(doc.error.errors.filter((e) => e.startsWith('store.')), ['store.backend: "postgres" is not served by this version of the daemon yet (its services still run on the file store); use "file"']);
  const daemon = await runDaemonExpectingExit(cfg);
  assert.equal(daemon.code, 78, daemon.stderr);
  assert.match(daemon.stderr, /store\.backend: \\"postgres\\" is not served/);
  assert.equal(existsSync(path.join(dir, 'data')), false, 'no data directory was made');
});
