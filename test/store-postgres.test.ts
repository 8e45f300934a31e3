// The PostgreSQL store on a throwaway cluster: its migrations (daemons starting together take
// turns, a newer or changed schema is refused, a failing migration leaves nothing behind), the
// clock check at start, and faults (the database stopped: typed errors; back: the same pools work
// again without a restart).
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newMailbox } from '../src/core/model.js';
import { MemfaError } from '../src/protocol/errors.js';
import { loadMigrations, migrate, MIGRATIONS_DIR, type Migration } from '../src/store/postgres/migrate.js';
import { CLOCK_SKEW_WARN_MS, openPostgres, postgresSettings } from '../src/store/postgres/open.js';
import { createPool, Db, tlsOptions } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, serverLog, sql, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const missing = postgresMissing();

test('the package ships the migrations where the compiled store looks for them', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
  const dir = `${path.relative(root, MIGRATIONS_DIR)}/`;
  assert.ok(files.some((f) => dir.startsWith(f)), `package.json "files" lacks ${dir}`);
  assert.ok(loadMigrations().length >= 2);
});

const code = (err: unknown) => (err instanceof MemfaError ? err.code : `not a MemfaError: ${String(err)}`);

describe(`PostgreSQL store${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  const opened: Db[] = [];
  const db = async (overrides = {}) => {
    const name = await cluster.createDatabase();
    const d = new Db(createPool(pgSettings(cluster, name, overrides)));
    opened.push(d);
    return { d, name };
  };
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await Promise.all(opened.map((d) => d.close().catch(() => {})));
    await cluster?.stop();
  });

  describe('migrations', () => {
    it('apply every shipped file once, recorded with its checksum; a second start applies nothing', async () => {
      const { d } = await db();
      const shipped = loadMigrations();
      assert.ok(shipped.length >= 2);
      const first = await migrate(d);
      assert.deepEqual(first.applied, shipped.map((m) => m.name));
      assert.equal(first.version, shipped.at(-1)!.version);
      const again = await migrate(d);
      assert.deepEqual(again.applied, []);
      const { rows } = await d.query<{ version: number; sha256: string }>('SELECT version, sha256 FROM schema_migrations ORDER BY version');
      assert.deepEqual(rows, shipped.map((m) => ({ version: m.version, sha256: m.sha256 })));
    });

    it('daemons starting together wait for each other: one applies, the others find it done', async () => {
      const { name } = await db();
      const pools = Array.from({ length: 6 }, () => new Db(createPool(pgSettings(cluster, name, { poolMax: 1 }))));
      opened.push(...pools);
      const reports = await Promise.all(pools.map((p) => migrate(p)));
      assert.equal(reports.filter((r) => r.applied.length > 0).length, 1, 'exactly one start applied the migrations');
      assert.ok(reports.every((r) => r.version === reports[0]!.version));
      const { rows } = await pools[0]!.query<{ n: number }>('SELECT count(*) AS n FROM schema_migrations');
      assert.equal(rows[0]!.n, loadMigrations().length);
    });

    it('refuse a database set up by a newer memfa (a migration this one does not know)', async () => {
      const { d } = await db();
      await migrate(d);
      await d.query("INSERT INTO schema_migrations (version, name, sha256) VALUES (999, '999_future.sql', 'x')");
      await assert.rejects(migrate(d), (err) => code(err) === 'STORE_CORRUPT' && /999_future\.sql.*newer memfa/.test((err as Error).message));
    });

    it('refuse a migration whose file differs from the one applied', async () => {
      const { d } = await db();
      await migrate(d);
      const changed: Migration[] = loadMigrations().map((m, i) => (i === 0 ? { ...m, sha256: 'f'.repeat(64) } : m));
      await assert.rejects(migrate(d, changed), (err) => code(err) === 'STORE_CORRUPT' && /001_state\.sql differs/.test((err as Error).message));
      await d.query("UPDATE schema_migrations SET sha256 = 'tampered' WHERE version = 2");
      await assert.rejects(migrate(d), (err) => code(err) === 'STORE_CORRUPT' && /002_rules\.sql differs/.test((err as Error).message));
    });

    it('a failing migration leaves nothing behind: all of them are one transaction', async () => {
      const { d } = await db();
      const broken: Migration[] = [...loadMigrations(), { version: 3, name: '003_broken.sql', sql: 'CREATE TABLE later (x int); SELECT no_such_function();', sha256: '0'.repeat(64) }];
      await assert.rejects(migrate(d, broken), (err) => code(err) === 'STORE_FAILED');
      const { rows } = await d.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t UNION ALL SELECT to_regclass('mailboxes')::text UNION ALL SELECT to_regclass('later')::text");
      assert.deepEqual(rows.map((r) => r.t), [null, null, null]);
    });

    it('refuse a folder with a stray or a missing file', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'memfa-mig-'));
      try {
        await writeFile(path.join(dir, '001_a.sql'), 'SELECT 1');
        await writeFile(path.join(dir, '003_c.sql'), 'SELECT 1');
        assert.throws(() => loadMigrations(dir), /migration 2 is missing before 003_c\.sql/);
        await writeFile(path.join(dir, 'notes.txt'), '');
        assert.throws(() => loadMigrations(dir), /notes\.txt: not a migration/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('start', () => {
    it('warns when this node’s clock is more than a second off the database’s, not otherwise', async () => {
      const { name } = await db();
      const events: [string, string, Record<string, unknown>][] = [];
      const log = { info: (e: string, f: Record<string, unknown>) => void events.push(['info', e, f]), warn: (e: string, f: Record<string, unknown>) => void events.push(['warn', e, f]) };
      const a = await openPostgres(pgSettings(cluster, name), log);
      try {
        assert.ok(Math.abs(a.clock.skewMs) < CLOCK_SKEW_WARN_MS, `the same machine: ${a.clock.skewMs} ms`);
        assert.deepEqual(events.map(([l, e]) => `${l} ${e}`), ['info store-migrated']);
      } finally {
        await a.close();
      }
      events.length = 0;
      const b = await openPostgres(pgSettings(cluster, name), log, () => Date.now() + 5000);
      try {
        assert.ok(b.clock.skewMs < -4000 && b.clock.skewMs > -6000, `skew ${b.clock.skewMs}`);
        const warned = events.filter(([l, e]) => l === 'warn' && e === 'clock-skew');
        assert.equal(warned.length, 1);
        assert.equal(warned[0]![2]['skewMs'], b.clock.skewMs);
      } finally {
        await b.close();
      }
    });

    it('reads the password from store.postgres.passwordFile and names the key when it cannot', async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'memfa-pgpw-'));
      try {
        const file = path.join(dir, 'pw');
        await writeFile(file, 's3cret\n', { mode: 0o600 });
        const base = { host: '/run/postgresql', port: 5432, database: 'memfa', user: 'memfa', tls: 'verify-full' as const, caFile: null, poolSize: 3, connectTimeoutMs: 1000, statementTimeoutMs: 1000, lockTimeoutMs: 500, cacheTtlMs: 2000, cacheEntries: 0 };
        const s = await postgresSettings({ ...base, passwordFile: file });
        assert.equal(s.password, 's3cret');
        assert.equal(s.poolMax, 3);
        assert.equal(s.cache, null, 'cacheEntries 0: no cache');
        await assert.rejects(postgresSettings({ ...base, passwordFile: path.join(dir, 'absent') }), (err) => code(err) === 'CONFIG_INVALID' && /store\.postgres\.passwordFile/.test((err as Error).message));
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('TLS: verify-full checks the chain and the host name; require only encrypts; a socket directory has none', () => {
      assert.deepEqual(tlsOptions({ host: 'db.example.org', ssl: { mode: 'verify-full', ca: null } }), { rejectUnauthorized: true, servername: 'db.example.org' });
      assert.deepEqual(tlsOptions({ host: '192.0.2.5', ssl: { mode: 'verify-full', ca: null } }), { rejectUnauthorized: true });
      assert.deepEqual(tlsOptions({ host: 'db.example.org', ssl: { mode: 'require', ca: null } }), { rejectUnauthorized: false });
      assert.equal(tlsOptions({ host: 'db.example.org', ssl: { mode: 'disable', ca: null } }), false);
      assert.equal(tlsOptions({ host: '/run/postgresql', ssl: { mode: 'verify-full', ca: null } }), false);
    });
  });

  describe('faults', () => {
    it('with the database stopped, operations reject with STORE_FAILED; once it is back, the same pools work again', async () => {
      const { d } = await db({ connectTimeoutMs: 2000, statementTimeoutMs: 3000 });
      await migrate(d);
      const ports = new PgStatePorts(d);
      await ports.updateMailbox('f@x.test', () => ({ next: { ...newMailbox('f@x.test', T0), totp: { sealedSecret: 's', activatedAt: T0, lastAcceptedStep: 1 } }, result: null }));
      // Connections in the pool before the stop: the restart must not leave them broken.
      await Promise.all(Array.from({ length: 5 }, () => ports.loginView('f@x.test')));
      await cluster.pause();
      try {
        const policy = { threshold: 5, baseDelayMs: 1000, maxDelayMs: 10_000, hardLockAfter: 100 };
        const effects = { success: { kind: 'elsewhere' as const, now: T0, location: null }, failure: { kind: 'elsewhere' as const, now: T0, policy } };
        const failures = await Promise.allSettled([
          ports.loginView('f@x.test'),
          ports.acceptTotpStep('f@x.test', 's', 2, effects),
          ports.recordFailure('f@x.test', effects.failure),
          ports.updateGlobal(() => ({ challenge: 'always' })),
          ports.claimSend(['m:f@x.test'], T0, { cooldownMs: 1000, hourlyLimit: 5 }),
        ]);
        for (const f of failures) {
          assert.equal(f.status, 'rejected');
          assert.equal(code((f as PromiseRejectedResult).reason), 'STORE_FAILED', String((f as PromiseRejectedResult).reason));
        }
      } finally {
        await cluster.start();
      }
      const effects = { success: { kind: 'elsewhere' as const, now: T0, location: null }, failure: { kind: 'elsewhere' as const, now: T0, policy: { threshold: 5, baseDelayMs: 1000, maxDelayMs: 10_000, hardLockAfter: 100 } } };
      // The first uses after the restart may meet connections the server closed: bounded retries
      // by the caller (as a login hook retries after exit 75), then every operation works.
      let recovered = false;
      for (let i = 0; i < 20 && !recovered; i++) {
        recovered = await ports.loginView('f@x.test').then(() => true, () => false);
        if (!recovered) await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(recovered, `no recovery; server log:\n${await serverLog(cluster)}`);
      assert.equal((await ports.acceptTotpStep('f@x.test', 's', 2, effects)).outcome, 'accepted', 'the step the failed call did not take');
      assert.equal((await ports.getMailbox('f@x.test'))?.totp?.lastAcceptedStep, 2);
    });

    it('a statement that runs past statementTimeoutMs is cancelled with STORE_FAILED, and its connection is given back', async () => {
      const { d } = await db({ statementTimeoutMs: 300, poolMax: 1 });
      await assert.rejects(d.query('SELECT pg_sleep(5)'), (err) => code(err) === 'STORE_FAILED' && /57014/.test((err as Error).message));
      const { rows } = await d.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]!.one, 1, 'the only connection of the pool is free again');
    });

    it('a lock held by another daemon past lockTimeoutMs fails the waiting operation with STORE_FAILED', async () => {
      const { d, name } = await db({ lockTimeoutMs: 200 });
      await migrate(d);
      const ports = new PgStatePorts(d);
      await ports.updateMailbox('held@x.test', () => ({ next: newMailbox('held@x.test', T0), result: null }));
      const other = new Db(createPool(pgSettings(cluster, name)));
      opened.push(other);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = other.tx(async (c) => {
        await c.query('SELECT 1 FROM mailboxes WHERE address = $1 FOR UPDATE', ['held@x.test']);
        locked();
        await held;
      });
      await isLocked;
      try {
        const policy = { threshold: 5, baseDelayMs: 1000, maxDelayMs: 10_000, hardLockAfter: 100 };
        await assert.rejects(ports.recordFailure('held@x.test', { kind: 'elsewhere', now: T0, policy }), (err) => code(err) === 'STORE_FAILED' && /55P03/.test((err as Error).message));
      } finally {
        release();
        await holder;
      }
      const rec = await ports.getMailbox('held@x.test');
      assert.equal(rec?.failures.elsewhere, null, 'nothing was counted by the refused operation');
    });
  });

  describe('bounds', () => {
    it('a pool taken by slow work makes others wait at most connectTimeoutMs, then STORE_FAILED; freed, it serves again', async () => {
      const { d } = await db({ poolMax: 1, connectTimeoutMs: 300 });
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const slow = d.tx(async (c) => {
        await c.query('SELECT 1');
        await held;
      });
      try {
        await assert.rejects(d.query('SELECT 1'), (err) => code(err) === 'STORE_FAILED' && /timeout/i.test((err as Error).message));
      } finally {
        release();
        await slow;
      }
      assert.equal((await d.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
    });

    it('a server that stops answering mid-statement is given up a little after statementTimeoutMs, and the pool goes on', async () => {
      const { d } = await db({ poolMax: 2, statementTimeoutMs: 500 });
      const pid = (await d.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // The connection's server process frozen: it can neither answer nor cancel the statement.
      process.kill(pid, 'SIGSTOP');
      const started = Date.now();
      try {
        // The pool hands out its idle connection (the frozen one) first.
        await assert.rejects(d.query('SELECT 1'), (err) => code(err) === 'STORE_FAILED');
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      assert.ok(Date.now() - started < 30_000, 'bounded');
      assert.equal((await d.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
    });
  });

  describe('TLS to a network host', () => {
    let secure: PgCluster;
    let name: string;
    before(async () => {
      secure = await startPostgres({ tls: true });
      name = await secure.createDatabase();
    });
    after(async () => {
      await secure?.stop();
    });
    const tcp = (ssl: { mode: 'verify-full' | 'require' | 'disable'; ca: string | null }, host = 'localhost') =>
      ({ ...pgSettings(secure, name), host, ssl, connectTimeoutMs: 5000 });
    const encrypted = async (settings: ReturnType<typeof tcp>) => {
      const d = new Db(createPool(settings));
      try {
        return (await d.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0]!.ssl;
      } finally {
        await d.close();
      }
    };

    it('verify-full connects, encrypted, to the server its CA signed for that host name', async () => {
      assert.equal(await encrypted(tcp({ mode: 'verify-full', ca: secure.tls!.caFile })), true);
    });

    it('verify-full refuses a certificate for another name, or one no trusted CA signed (STORE_FAILED)', async () => {
      // The certificate names localhost only, not the address.
      await assert.rejects(encrypted(tcp({ mode: 'verify-full', ca: secure.tls!.caFile }, '127.0.0.1')), (err) => code(err) === 'STORE_FAILED' && /altnames|IP: 127\.0\.0\.1/i.test((err as Error).message));
      // Without caFile: the system's roots, which did not sign the throwaway CA.
      await assert.rejects(encrypted(tcp({ mode: 'verify-full', ca: null })), (err) => code(err) === 'STORE_FAILED' && /self[- ]signed|unable to (get|verify)/i.test((err as Error).message));
    });

    it('require encrypts without checking the certificate; disable speaks plain text', async () => {
      assert.equal(await encrypted(tcp({ mode: 'require', ca: null }, '127.0.0.1')), true);
      assert.equal(await encrypted(tcp({ mode: 'disable', ca: null })), false);
    });
  });

  it('a statement error never carries a parameter value out (only its SQLSTATE)', async () => {
    const { d } = await db();
    await assert.rejects(d.query('SELECT $1::integer', ['sealed-secret-value']), (err) => code(err) === 'STORE_FAILED' && !(err as Error).message.includes('sealed-secret-value'));
  });

  it('the throwaway cluster is reached over its socket only', async () => {
    const { name } = await db();
    const { rows } = await sql(cluster.clientConfig(name), "SELECT current_setting('listen_addresses') AS l");
    assert.equal(rows[0].l, '');
  });
});
