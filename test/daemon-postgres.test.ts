// The real daemon on store.backend "postgres", driven through bin/memfa, against a throwaway
// PostgreSQL: it serves logins and administration from the database; two daemons on one database
// act as one (an admin change through one holds on the other at once, a code accepted on one is
// refused on the other); the key file rule; the database stopped and started again under running
// daemons; a start against a database that is not there.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { Keyring } from '../src/security/keyring.js';
import pg from 'pg';
import { makeTempDir, rawExchange, rpcLine, runCli, startDaemon, waitExit, type TestDaemon } from './helpers/daemon.js';
import { pgLocation, pgStoreConfig, startPgDaemon } from './helpers/pg-daemon.js';
import { postgresMissing, sql, startPostgres, type PgCluster } from './helpers/postgres.js';

const missing = postgresMissing();
const run = promisify(execFile);

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

  const storeConfig = (database: string, extra: Record<string, unknown> = {}) => pgStoreConfig(cluster, database, extra);

  /** A daemon on `database`; `keyFrom`: the daemon whose key file it is given (a node of the same farm). */
  async function daemonOn(database: string, keyFrom?: TestDaemon, options: { expectFailure?: boolean; config?: Record<string, unknown> } = {}): Promise<TestDaemon> {
    const d = await startPgDaemon(cluster, database, { ...(keyFrom === undefined ? {} : { keyFrom }), ...options });
    daemons.push(d);
    return d;
  }

  it('serves enrolment, verify and administration from the database, and says so in status and the ready line', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db);
    assert.match(d.log(), /"event":"ready".*"backend":"postgres"/);
    assert.ok(d.log().includes(`"store":"${pgLocation(cluster, db)}"`), d.log());
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
    assert.equal(status.store, pgLocation(cluster, db));
    assert.deepEqual([status.mailboxes, status.domains], [1, 1]);
    const metrics = await d.cli(['metrics']);
    assert.equal(metrics.code, 0, metrics.stderr);
    assert.match(metrics.stdout, /^memfa_store_mailboxes 1$/m);
    assert.match(metrics.stdout, /^memfa_store_journal_bytes 0$/m);
    assert.match(metrics.stdout, /^memfa_locked_mailboxes\{reason="lockout"\} 0$/m);
    // The audit trail is the database's, one chain per stream for every node, each line naming its node.
    const node = (await readFile(path.join(d.dataDir, 'node-id'), 'utf8')).trim();
    await d.stop();
    const lines = await sql(cluster.clientConfig(db), 'SELECT stream, node, count(*)::int AS n FROM audit_lines GROUP BY stream, node ORDER BY stream');
    assert.deepEqual(lines.rows.map((r) => [r.stream, r.node]), [['logins', node], ['security', node]]);
    assert.ok(lines.rows.every((r) => r.n > 0));
    const anchors = await sql(cluster.clientConfig(db), "SELECT key FROM meta WHERE key LIKE 'auditAnchor.%'");
    assert.equal(anchors.rows.length, 0, 'the head rows are the anchors: none in meta');
    await d.restart();
    const verified = await d.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /^audit log intact: \d+ lines in the database \(security \d+ lines?, logins \d+ lines?\)$/m);
    const json = await d.json<{ ok: boolean; files: number; database?: boolean }>(['audit', 'verify']);
    assert.deepEqual([json.ok, json.files, json.database], [true, 0, true]);
    assert.doesNotMatch(d.log(), /audit-gap/);
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
    // One audit trail for the farm: either node shows and verifies what both wrote.
    const trail = await b.json<{ entries: { action: string; result: string }[] }>(['audit', '--mailbox', 'carol@farm.example']);
    assert.ok(trail.entries.some((l) => l.action === 'verify' && l.result === 'allow'), 'b lists the allow a wrote');
    assert.ok(trail.entries.some((l) => l.action === 'verify' && l.result === 'deny'), 'and its own refusal');
    const verified = await a.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
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

  it('key rotation with several daemons: add on one, copy the key file, rotate once (refused while a running daemon lacks the key); every daemon seals with the new key', async () => {
    const db = await cluster.createDatabase();
    const a = await daemonOn(db);
    const b = await daemonOn(db, a);
    const c = await daemonOn(db, a);
    await a.json(['domain', 'set', 'keys.example', '--challenge', 'always', '--provider', 'totp']);
    const before = secretOf((await a.json<{ otpauthUri: string }>(['enroll', 'old@keys.example', '--no-confirm'])).otpauthUri);
    // A fresh key would be on one node only.
    const fresh = await b.cli(['--json', 'key', 'rotate']);
    assert.equal(fresh.code, 65, fresh.stdout + fresh.stderr);
    assert.match(fresh.stdout, /no key was added to make current, and other daemons run on this store/);
    const added = await a.json<{ kid: string; current: string }>(['key', 'add']);
    assert.notEqual(added.kid, added.current);
    const preAdd = path.join(await makeTempDir(), 'memfa.key');
    await copyFile(path.join(c.dataDir, 'memfa.key'), preAdd);
    await copyFile(path.join(a.dataDir, 'memfa.key'), path.join(b.dataDir, 'memfa.key'));
    // c has not been given the key file yet: the rotation is refused, naming c.
    const cNode = (await readFile(path.join(c.dataDir, 'node-id'), 'utf8')).trim();
    let refused = await b.cli(['--json', 'key', 'rotate']);
    for (let i = 0; i < 20 && refused.code === 65 && !refused.stdout.includes(`nodes ${cNode} lack it`); i++) refused = await b.cli(['--json', 'key', 'rotate']);
    assert.equal(refused.code, 65, refused.stdout + refused.stderr);
    assert.ok(refused.stdout.includes(`key ${added.kid} is not in the key file of every running daemon (nodes ${cNode} lack it)`), refused.stdout);
    await copyFile(path.join(a.dataDir, 'memfa.key'), path.join(c.dataDir, 'memfa.key'));
    await waitFor(() => c.log().includes('"why":"check"'), 'c looks at its key file and takes the copy', 15_000);
    let rotated = await b.cli(['--json', 'key', 'rotate']);
    for (let i = 0; i < 20 && rotated.code === 65; i++) {
      await new Promise((r) => setTimeout(r, 500));
      rotated = await b.cli(['--json', 'key', 'rotate']);
    }
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    const r = JSON.parse(rotated.stdout) as { kid: string; resealed: number; retired: string[] };
    assert.deepEqual([r.kid, r.resealed, r.retired], [added.kid, 1, [added.current]]);
    const ring = await sql(cluster.clientConfig(db), "SELECT value FROM meta WHERE key = 'keyRing'");
    assert.equal(ring.rows[0].value.current, added.kid, 'the database names the new key current');
    // a's own file still names the old key current: a seals with the database's.
    await waitFor(() => a.log().includes('"event":"key-current-changed"'), 'a takes the new current key');
    const after1 = secretOf((await a.json<{ otpauthUri: string }>(['enroll', 'new@keys.example', '--no-confirm'])).otpauthUri);
    const after2 = secretOf((await c.json<{ otpauthUri: string }>(['enroll', 'third@keys.example', '--no-confirm'])).otpauthUri);
    const sealed = await sql(cluster.clientConfig(db), "SELECT address, totp_sealed FROM mailboxes WHERE address LIKE '%@keys.example' ORDER BY address");
    assert.equal(sealed.rows.length, 3);
    for (const row of sealed.rows) assert.equal(String(row.totp_sealed).split('.')[1], added.kid, `${row.address} is sealed with the new key`);
    assert.equal((await b.cli(['verify', '--user', 'new@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(after1) })).code, 0, 'b opens what a sealed');
    assert.equal((await b.cli(['verify', '--user', 'third@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(after2) })).code, 0, 'b opens what c sealed');
    assert.equal((await a.cli(['verify', '--user', 'old@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(before) })).code, 0, 'a opens what b re-sealed');
    // The file of the node that rotated lacks the retired key, which a and c hold: they take it all
    // the same (the database recorded that key retired), at their next look.
    await copyFile(path.join(b.dataDir, 'memfa.key'), path.join(c.dataDir, 'memfa.key'));
    await waitFor(() => (c.log().match(/"why":"check"/g) ?? []).length >= 2, 'c takes the rotated file', 15_000);
    assert.doesNotMatch(c.log(), /key-file-not-taken/);
    // A node that was down all along, with the key file from before the add, is refused at start.
    const late = await makeTempDir();
    await mkdir(path.join(late, 'data'), { mode: 0o700 });
    await copyFile(preAdd, path.join(late, 'data', 'memfa.key'));
    const stale = await startDaemon({ dir: late, config: storeConfig(db), expectFailure: true });
    daemons.push(stale);
    assert.equal(await waitExit(stale.proc), 78);
    assert.ok(stale.log().includes(`lacks key ${added.kid}, which the store makes current; refusing to start`), stale.log());
    // a restarts with its own file (old key current, new key held): the database's current key is in it.
    await a.stop();
    await a.restart();
    assert.equal((await a.cli(['verify', '--user', 'new@keys.example', '--ip', '192.0.2.1', '--code-stdin'], { stdin: code(after1, 1) })).code, 0);
  });

  it('MEMFA_UNSAFE_TEST_CLOCK moves the time a daemon on PostgreSQL passes to the database: a lockout ends when its clock passes it', async () => {
    const db = await cluster.createDatabase();
    const dir = await makeTempDir();
    const clockFile = path.join(dir, 'clock');
    await writeFile(clockFile, '0');
    const d = await startDaemon({ dir, config: { ...storeConfig(db), lockout: { threshold: 3 } }, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
    daemons.push(d);
    assert.match(d.log(), /"event":"clock-offset".*"source":"database"/);
    await d.json(['domain', 'set', 'time.example', '--challenge', 'always', '--provider', 'totp']);
    const key = secretOf((await d.json<{ otpauthUri: string }>(['enroll', 'erin@time.example', '--no-confirm'])).otpauthUri);
    const wrong = code(key) === '000000' ? '111111' : '000000';
    for (let i = 0; i < 3; i++) await d.cli(['verify', '--user', 'erin@time.example', '--ip', '198.51.100.2', '--code-stdin'], { stdin: wrong });
    const locked = await d.cli(['verify', '--user', 'erin@time.example', '--ip', '198.51.100.2', '--code-stdin', '--json'], { stdin: code(key) });
    assert.equal(JSON.parse(locked.stdout).reason, 'locked', locked.stdout);
    await writeFile(clockFile, String(3 * 3600_000));
    const later = await d.cli(['verify', '--user', 'erin@time.example', '--ip', '198.51.100.2', '--code-stdin', '--json'], { stdin: totpCode(key, Date.now() + 3 * 3600_000, TOTP) });
    assert.equal(JSON.parse(later.stdout).reason, 'code-valid', later.stdout);
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
      assert.ok(w.stderr.includes(`the database ${pgLocation(cluster, db)} could not be used`), w.stderr);
    } finally {
      await cluster.start();
    }
    const v = await d.cli(['verify', '--user', 'dave@down.example', '--ip', '192.0.2.9', '--code-stdin'], { stdin: code(key, 1) });
    assert.equal(v.code, 0, v.stdout + v.stderr);
    await d.json(['domain', 'set', 'down.example', '--challenge', 'new-ip']);
    assert.equal((await d.json<{ settings: { challenge?: string } }>(['domain', 'show', 'down.example'])).settings.challenge, 'new-ip');
    assert.equal(d.proc.exitCode, null, 'the same daemon');
  });

  it('a stream of writes while the database restarts: every acknowledged write is there after, the failed ones fail as STORE_FAILED naming the database', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db);
    const acknowledged: string[] = [];
    const failed: string[] = [];
    for (let i = 0; i < 30; i++) {
      if (i === 10) await cluster.pause();
      if (i === 20) await cluster.start();
      const address = `w${i}@stream.example`;
      const { lines } = await rawExchange(d.adminSocket, [rpcLine('mailbox.set', { address, settings: { challenge: 'always' } }, i)], { untilLines: 1, timeoutMs: 10_000 });
      const answer = lines[0] as { result?: unknown; error?: { message: string; data?: { code?: string } } };
      if (answer.result !== undefined) acknowledged.push(address);
      else {
        assert.equal(answer.error?.data?.code, 'STORE_FAILED', JSON.stringify(answer));
        assert.ok(answer.error?.message.startsWith(`the database ${pgLocation(cluster, db)} could not be used`), answer.error?.message);
        failed.push(address);
      }
    }
    assert.ok(failed.length >= 10 && acknowledged.length >= 10, `acknowledged ${acknowledged.length}, failed ${failed.length}`);
    const rows = await sql(cluster.clientConfig(db), "SELECT address FROM mailboxes WHERE address LIKE '%@stream.example' ORDER BY address");
    const stored = new Set(rows.rows.map((r) => String(r.address)));
    for (const a of acknowledged) assert.ok(stored.has(a), `acknowledged ${a} is stored`);
    for (const f of failed) assert.ok(!stored.has(f), `failed ${f} changed nothing`);
  });

  it('a row another client holds locked: the request fails within the lock timeout (75), the pool serves everything else meanwhile, and afterwards it works', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db, undefined, { config: storeConfig(db, { poolSize: 2, lockTimeoutMs: 500 }) });
    await d.json(['domain', 'set', 'lock.example', '--challenge', 'always', '--provider', 'totp']);
    const key = secretOf((await d.json<{ otpauthUri: string }>(['enroll', 'held@lock.example', '--no-confirm'])).otpauthUri);
    const holder = new pg.Client(cluster.clientConfig(db));
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query("SELECT 1 FROM mailboxes WHERE address = 'held@lock.example' FOR UPDATE");
      const started = Date.now();
      const held = await d.cli(['verify', '--user', 'held@lock.example', '--ip', '192.0.2.3', '--code-stdin'], { stdin: code(key) });
      assert.equal(held.code, 75, held.stdout + held.stderr);
      assert.ok(Date.now() - started < 5000, `bounded by the lock timeout: ${Date.now() - started} ms`);
      // Many requests at once over a pool of two, one of them stuck behind the lock each time.
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          rawExchange(d.hookSocket, [rpcLine('verify', i % 10 === 0 ? { user: 'held@lock.example', ip: '192.0.2.3', code: '000000' } : { user: `u${i}@free.example`, ip: '192.0.2.4' }, i)], { untilLines: 1, timeoutMs: 15_000 }),
        ),
      );
      const results = answers.map((a) => a.lines[0] as { result?: { result: string }; error?: { data?: { code?: string } } });
      for (const [i, r] of results.entries()) {
        if (i % 10 === 0) assert.equal(r.error?.data?.code, 'STORE_FAILED', JSON.stringify(r));
        else assert.equal(r.result?.result, 'allow', JSON.stringify(r));
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    assert.equal((await d.cli(['verify', '--user', 'held@lock.example', '--ip', '192.0.2.3', '--code-stdin'], { stdin: code(key, 1) })).code, 0);
  });

  it('a database that hangs (its processes stopped, connections open): requests fail within the timeouts (75) and work again once it answers', async () => {
    const db = await cluster.createDatabase();
    const d = await daemonOn(db, undefined, { config: storeConfig(db, { poolSize: 3, statementTimeoutMs: 1000, connectTimeoutMs: 1000 }) });
    await d.json(['domain', 'set', 'hang.example', '--challenge', 'always', '--provider', 'totp']);
    const key = secretOf((await d.json<{ otpauthUri: string }>(['enroll', 'hung@hang.example', '--no-confirm'])).otpauthUri);
    // The server's processes, by id: the postmaster (first line of its pid file) and its children.
    const postmaster = Number((await readFile(path.join(cluster.socketDir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const children = (await run('pgrep', ['-P', String(postmaster)]).catch(() => ({ stdout: '' }))).stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
    const pids = [postmaster, ...children];
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const [v, w] = await Promise.all([
        d.cli(['verify', '--user', 'hung@hang.example', '--ip', '192.0.2.5', '--code-stdin'], { stdin: code(key) }),
        d.cli(['domain', 'set', 'hang.example', '--challenge', 'new-ip']),
      ]);
      const took = Date.now() - started;
      assert.equal(v.code, 75, v.stdout + v.stderr);
      assert.equal(w.code, 75, w.stdout + w.stderr);
      // statementTimeoutMs plus the client's margin (2 s), or connectTimeoutMs, with room for a loaded machine.
      assert.ok(took < 10_000, `bounded: ${took} ms`);
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    const until = Date.now() + 10_000;
    let again = await d.cli(['verify', '--user', 'hung@hang.example', '--ip', '192.0.2.5', '--code-stdin'], { stdin: code(key, 1) });
    while (again.code === 75 && Date.now() < until) again = await d.cli(['verify', '--user', 'hung@hang.example', '--ip', '192.0.2.5', '--code-stdin'], { stdin: code(key, 1) });
    assert.equal(again.code, 0, again.stdout + again.stderr);
  });

  it('a start against a database that is not there exits 75 naming it; config check passes without it', async () => {
    const dir = await makeTempDir();
    const gone = path.join(dir, 'no-server');
    await mkdir(gone);
    await writeFile(path.join(dir, 'pg.pw'), 'hunter2-not-for-logs\n', { mode: 0o600 });
    const d = await startDaemon({ dir, config: { store: { backend: 'postgres', postgres: { host: gone, database: 'memfa', user: 'memfa', passwordFile: 'pg.pw', connectTimeoutMs: 1000 } } }, expectFailure: true });
    daemons.push(d);
    assert.equal(await waitExit(d.proc), 75);
    assert.match(d.log(), /"event":"start-failed".*the database postgres:\/\/memfa@\S+no-server:5432\/memfa cannot be used/);
    assert.ok(!d.log().includes('hunter2'), 'the password is never logged');
    const check = await runCli(['config', 'check', d.configFile]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.ok(!(check.stdout + check.stderr).includes('hunter2'));
  });
});
