// The real daemon on store.backend "postgres", driven through bin/memfa, against a throwaway
// PostgreSQL: it serves logins and administration from the database; two daemons on one database
// act as one (an admin change through one holds on the other at once, a code accepted on one is
// refused on the other); the key file rule; the database stopped and started again under running
// daemons; a start against a database that is not there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { Keyring } from '../src/security/keyring.js';
import { makeTempDir, runCli, startDaemon, waitExit, type TestDaemon } from './helpers/daemon.js';
import { PG_USER, postgresMissing, sql, startPostgres, type PgCluster } from './helpers/postgres.js';

const missing = postgresMissing();

function secretOf(uri: string): Buffer {
  return fromBase32(new URL(uri).searchParams.get('secret')!);
}

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
async function waitFor(ok: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const code = (key: Buffer, stepOffset = 0) => totpCode(key, Date.now() + stepOffset * 30_000, TOTP);

describe(`the daemon on PostgreSQL${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  const daemons: TestDaemon[] = [];
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    for (const d of daemons) await d.cleanup();
    await cluster?.stop();
  });

  const storeConfig = (database: string, extra: Record<string, unknown> = {}) => ({
    store: { backend: 'postgres', postgres: { host: cluster.socketDir, port: cluster.port, database, user: PG_USER, connectTimeoutMs: 2000, statementTimeoutMs: 3000, lockTimeoutMs: 1000, ...extra } },
  });

  /** A daemon on `database`; `keyFrom`: the daemon whose key file it is given (a node of the same farm). */
  async function daemonOn(database: string, keyFrom?: TestDaemon, options: { expectFailure?: boolean; config?: Record<string, unknown> } = {}): Promise<TestDaemon> {
    const dir = await makeTempDir();
    if (keyFrom !== undefined) {
      await mkdir(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
      await copyFile(path.join(keyFrom.dataDir, 'memfa.key'), path.join(dir, 'data', 'memfa.key'));
    }
    const d = await startDaemon({ dir, config: { ...storeConfig(database), ...options.config }, ...(options.expectFailure === true ? { expectFailure: true } : {}) });
    daemons.push(d);
    return d;
  }

  it('serves enrolment, verify and administration from the database, and says so in status and the ready line', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db);
    assert.match(d.log(), /"event":"ready".*"backend":"postgres"/);
    assert.ok(d.log().includes(`"store":"postgres://${PG_USER}@${cluster.socketDir}:${cluster.port}/${db}"`), d.log());
    await d.json(['domain', 'set', 'pg.example', '--challenge', 'always', '--provider', 'totp']);
    const e = await d.json<{ otpauthUri: string; activated: boolean }>(['enroll', 'bob@pg.example', '--no-confirm']);
    assert.equal(e.activated, true);
    const key = secretOf(e.otpauthUri);
    const c = code(key);
    const ok = await d.cli(['verify', '--user', 'bob@pg.example', '--ip', '192.0.2.7', '--code-stdin'], { stdin: c });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const again = await d.cli(['verify', '--user', 'bob@pg.example', '--ip', '192.0.2.7', '--code-stdin', '--json'], { stdin: c });
    assert.equal(again.code, 1, 'a code is accepted once');
    assert.equal(JSON.parse(again.stdout).reason, 'code-reused');
    // Kept in the database, not in a store file of the daemon.
    const rows = await sql(cluster.clientConfig(db), 'SELECT count(*)::int AS n FROM mailboxes');
    assert.equal(rows.rows[0].n, 1);
    const status = await d.json<{ store: string; storeBackend: string; mailboxes: number; domains: number }>(['status']);
    assert.equal(status.storeBackend, 'postgres');
    assert.equal(status.store, `postgres://${PG_USER}@${cluster.socketDir}:${cluster.port}/${db}`);
    assert.deepEqual([status.mailboxes, status.domains], [1, 1]);
    const metrics = await d.cli(['metrics']);
    assert.equal(metrics.code, 0, metrics.stderr);
    assert.match(metrics.stdout, /^memfa_store_mailboxes 1$/m);
    assert.match(metrics.stdout, /^memfa_store_journal_bytes 0$/m);
    assert.match(metrics.stdout, /^memfa_locked_mailboxes\{reason="lockout"\} 0$/m);
  });

  it('two daemons on one database: an admin change through one holds on the other at once, a code accepted on one is refused on the other', async () => {
    const db = await cluster.createDatabase();
    const a = await daemonOn(db);
    const b = await daemonOn(db, a);
    await a.json(['domain', 'set', 'farm.example', '--challenge', 'always', '--provider', 'totp']);
    const shown = await b.json<{ settings: { challenge?: string } }>(['domain', 'show', 'farm.example']);
    assert.equal(shown.settings.challenge, 'always');
    const e = await b.json<{ otpauthUri: string }>(['enroll', 'carol@farm.example', '--no-confirm']);
    const key = secretOf(e.otpauthUri);
    const c = code(key);
    assert.equal((await a.cli(['verify', '--user', 'carol@farm.example', '--ip', '192.0.2.8', '--code-stdin'], { stdin: c })).code, 0, 'a opens what b sealed');
    assert.equal((await b.cli(['verify', '--user', 'carol@farm.example', '--ip', '192.0.2.8', '--code-stdin'], { stdin: c })).code, 1, 'b refuses the code a accepted');
    // The provider policy as each request finds it stored: disabled through a, at once on b.
    await a.json(['providers', 'disable', 'totp']);
    const refused = await b.cli(['verify', '--user', 'carol@farm.example', '--ip', '198.51.100.9', '--json']);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.equal(JSON.parse(refused.stdout).reason, 'provider-disabled');
    await b.json(['providers', 'enable', 'totp']);
    const challenged = await a.cli(['verify', '--user', 'carol@farm.example', '--ip', '198.51.100.9', '--json']);
    assert.equal(JSON.parse(challenged.stdout).result, 'challenge');
  });

  it('the key file: the first daemon creates it; another without a copy, or with another key file, refuses to start naming the fix', async () => {
    const db = await cluster.createDatabase();
    const a = await daemonOn(db);
    const none = await daemonOn(db, undefined, { expectFailure: true });
    assert.equal(await waitExit(none.proc), 78);
    assert.match(none.log(), /the key file \S+ is missing, and this node did not create the store's key file/);
    assert.match(none.log(), /copy \S+memfa\.key from the node that created it \(node [0-9a-f]{16}\)/);
    // A key file of its own (another MAC seed, other keys): refused too, nothing created.
    const dir = await makeTempDir();
    await mkdir(path.join(dir, 'data'), { mode: 0o700 });
    await Keyring.load(path.join(dir, 'data', 'memfa.key'), { create: true });
    const other = await startDaemon({ dir, config: storeConfig(db), expectFailure: true });
    daemons.push(other);
    assert.equal(await waitExit(other.proc), 78);
    assert.match(other.log(), /is not the one of this store \(another MAC seed\); refusing to start/);
    // With a copy of a's key file, it starts.
    await copyFile(path.join(a.dataDir, 'memfa.key'), path.join(dir, 'data', 'memfa.key'));
    await other.restart();
    assert.match(other.log(), /"event":"ready"/);
  });

  it('key rotation with several daemons: add on one, copy the key file, rotate once; every daemon seals with the new key, one without it refuses to seal until given the file', async () => {
    const db = await cluster.createDatabase();
    const a = await daemonOn(db);
    const b = await daemonOn(db, a);
    const c = await daemonOn(db, a);
    await a.json(['domain', 'set', 'keys.example', '--challenge', 'always', '--provider', 'totp']);
    const before = secretOf((await a.json<{ otpauthUri: string }>(['enroll', 'old@keys.example', '--no-confirm'])).otpauthUri);
    const added = await a.json<{ kid: string; current: string }>(['key', 'add']);
    assert.notEqual(added.kid, added.current);
    await copyFile(path.join(a.dataDir, 'memfa.key'), path.join(b.dataDir, 'memfa.key'));
    // c is left with the key file from before the add.
    const rotated = await b.json<{ kid: string; resealed: number; retired: string[] }>(['key', 'rotate']);
    assert.deepEqual([rotated.kid, rotated.resealed, rotated.retired], [added.kid, 1, [added.current]]);
    const ring = await sql(cluster.clientConfig(db), "SELECT value FROM meta WHERE key = 'keyRing'");
    assert.equal(ring.rows[0].value.current, added.kid, 'the database names the new key current');
    // a's own file still names the old key current: a seals with the database's.
    await waitFor(() => a.log().includes('"event":"key-current-changed"'), 'a takes the new current key');
    const fresh = secretOf((await a.json<{ otpauthUri: string }>(['enroll', 'new@keys.example', '--no-confirm'])).otpauthUri);
    const sealed = await sql(cluster.clientConfig(db), "SELECT address, totp_sealed FROM mailboxes WHERE address IN ('old@keys.example', 'new@keys.example') ORDER BY address");
    for (const row of sealed.rows) assert.equal(String(row.totp_sealed).split('.')[1], added.kid, `${row.address} is sealed with the new key`);
    assert.equal((await b.cli(['verify', '--user', 'new@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(fresh) })).code, 0, 'b opens what a sealed');
    assert.equal((await a.cli(['verify', '--user', 'old@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(before) })).code, 0, 'a opens what b re-sealed');
    // c lacks the new key: it neither opens nor seals with another key.
    await waitFor(() => c.log().includes('"event":"key-current-changed"'), 'c reads the new current key');
    const refused = await c.cli(['--json', 'enroll', 'third@keys.example', '--no-confirm']);
    assert.equal(refused.code, 78, refused.stdout + refused.stderr);
    assert.match(refused.stdout, new RegExp(`lacks key ${added.kid}, which the store makes current`));
    assert.equal((await sql(cluster.clientConfig(db), "SELECT count(*)::int AS n FROM mailboxes WHERE address = 'third@keys.example' AND totp_sealed IS NOT NULL")).rows[0].n, 0);
    // The file of the node that rotated lacks the retired key, which c holds: c may take it all the
    // same, the database having recorded that key retired.
    await copyFile(path.join(b.dataDir, 'memfa.key'), path.join(c.dataDir, 'memfa.key'));
    const third = secretOf((await c.json<{ otpauthUri: string }>(['enroll', 'third@keys.example', '--no-confirm'])).otpauthUri);
    assert.equal((await a.cli(['verify', '--user', 'third@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(third) })).code, 0, 'given the file, c seals with the new key');
    // a restarts with its own file (old key current, new key held): the database's current key is in it.
    await a.stop();
    await a.restart();
    assert.equal((await a.cli(['verify', '--user', 'new@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(fresh, 1) })).code, 0);
  });

  it('the database stopped: verify exits 75 and an admin write fails naming the store; started again, both work without restarting the daemon', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db);
    await d.json(['domain', 'set', 'down.example', '--challenge', 'always', '--provider', 'totp']);
    const e = await d.json<{ otpauthUri: string }>(['enroll', 'dave@down.example', '--no-confirm']);
    const key = secretOf(e.otpauthUri);
    await cluster.pause();
    try {
      const v = await d.cli(['verify', '--user', 'dave@down.example', '--ip', '192.0.2.9', '--code-stdin'], { stdin: code(key) });
      assert.equal(v.code, 75, v.stdout + v.stderr);
      const fast = await d.cli(['verify', '--user', 'nobody@elsewhere.example', '--ip', '192.0.2.9']);
      assert.equal(fast.code, 75, 'fail closed: no answer without the store, not even allow');
      const w = await d.cli(['domain', 'set', 'down.example', '--challenge', 'new-ip']);
      assert.equal(w.code, 75, w.stdout + w.stderr);
      assert.match(w.stderr, /STORE_FAILED|database/);
    } finally {
      await cluster.start();
    }
    const v = await d.cli(['verify', '--user', 'dave@down.example', '--ip', '192.0.2.9', '--code-stdin'], { stdin: code(key, 1) });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    await d.json(['domain', 'set', 'down.example', '--challenge', 'new-ip']);
    assert.equal((await d.json<{ settings: { challenge?: string } }>(['domain', 'show', 'down.example'])).settings.challenge, 'new-ip');
    assert.equal(d.proc.exitCode, null, 'the same daemon');
  });

  it('a start against a database that is not there exits 75 naming it; config check passes without it', async () => {
    const dir = await makeTempDir();
    const gone = path.join(dir, 'no-server');
    await mkdir(gone);
    const d = await startDaemon({ dir, config: { store: { backend: 'postgres', postgres: { host: gone, database: 'memfa', user: 'memfa', connectTimeoutMs: 1000 } } }, expectFailure: true });
    daemons.push(d);
    assert.equal(await waitExit(d.proc), 75);
    assert.match(d.log(), /"event":"start-failed".*the database postgres:\/\/memfa@\S+no-server:5432\/memfa cannot be used/);
    const check = await runCli(['config', 'check', d.configFile]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.ok(!(await readFile(d.configFile, 'utf8')).includes('password'), 'no password in this configuration to leak');
  });
});
