// Three daemons' worth of PostgreSQL ports (each its own pool) on one database, acting as one, at
// the level of the state ports: the farm cases of issue 16 that do not need the daemons' wiring.
// A code is accepted once across the farm, failures add up and the lock holds on every node, one
// send slot per cooldown, a change on one node is what every other reads next (nothing cached),
// and the throttles' rows go once they no longer matter.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LockoutPolicy } from '../src/core/lockout.js';
import { newMailbox } from '../src/core/model.js';
import type { FailureEffects, SuccessEffects } from '../src/services/store-ports.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const POLICY: LockoutPolicy = { threshold: 5, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 1000 };
const success = (now = T0): SuccessEffects => ({ kind: 'elsewhere', now, location: { ip: '192.0.2.9', country: 'NL', policy: { maxEntries: 20, maxAgeMs: 86_400_000 } } });
const failure = (now = T0): FailureEffects => ({ kind: 'elsewhere', now, policy: POLICY });
const missing = postgresMissing();

describe(`three daemons on one database${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let dbs: Db[] = [];
  let nodes: PgStatePorts[] = [];
  before(async () => {
    cluster = await startPostgres();
    const name = await cluster.createDatabase();
    // Generous waits: the cases are about what is decided; the machine may be loaded.
    dbs = [1, 2, 3].map(() => new Db(createPool(pgSettings(cluster, name, { poolMax: 5, connectTimeoutMs: 60_000, statementTimeoutMs: 60_000, lockTimeoutMs: 60_000 }))));
    await Promise.all(dbs.map((d) => migrate(d)));
    nodes = dbs.map((d) => new PgStatePorts(d));
  });
  after(async () => {
    await Promise.all(dbs.map((d) => d.close()));
    await cluster?.stop();
  });
  const node = (i: number) => nodes[i % nodes.length]!;

  it('200 concurrent uses of one TOTP code spread over the nodes: exactly one accepted', async () => {
    await node(0).updateMailbox('one@farm.test', () => ({ next: { ...newMailbox('one@farm.test', T0), totp: { sealedSecret: 'v1.s', activatedAt: T0, lastAcceptedStep: 10 } }, result: null }));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => node(i).acceptTotpStep('one@farm.test', 'v1.s', 11, { success: success(), failure: failure() })));
    assert.equal(results.filter((r) => r.outcome === 'accepted').length, 1);
    // Past the threshold the refused ones are told 'locked' (nothing counted), before that 'reused'.
    assert.equal(results.filter((r) => r.outcome === 'reused').length, POLICY.threshold);
    assert.equal(results.filter((r) => r.outcome === 'locked').length, 200 - 1 - POLICY.threshold);
    for (const n of nodes) assert.equal((await n.getMailbox('one@farm.test'))?.totp?.lastAcceptedStep, 11);
  });

  it('wrong codes across the nodes add up exactly, and every node sees the lock at once', async () => {
    await node(0).updateMailbox('guess@farm.test', () => ({ next: newMailbox('guess@farm.test', T0), result: null }));
    const n = POLICY.threshold - 1;
    const states = await Promise.all(Array.from({ length: n }, (_, i) => node(i).recordFailure('guess@farm.test', failure())));
    assert.deepEqual(states.map((s) => (s?.outcome === 'counted' ? s.state.consecutive : null)).sort(), Array.from({ length: n }, (_, i) => i + 1));
    for (const x of nodes) assert.equal((await x.getMailbox('guess@farm.test'))?.failures.elsewhere?.consecutive, n);
    assert.equal((await node(1).recordFailure('guess@farm.test', failure()))?.outcome, 'counted', 'the threshold-th failure locks');
    for (const x of nodes) {
      const r = await x.acceptTotpStep('guess@farm.test', 'any', 1, { success: success(T0 + 1), failure: failure(T0 + 1) });
      assert.equal(r.outcome, 'changed', 'no secret to accept');
      assert.deepEqual(await x.recordFailure('guess@farm.test', failure(T0 + 1)), { outcome: 'locked', until: T0 + POLICY.baseDelayMs });
    }
  });

  it('one send slot per cooldown across the nodes, and the destination is shared', async () => {
    const limits = { cooldownMs: 30_000, hourlyLimit: 5 };
    const claims = await Promise.all(Array.from({ length: 60 }, (_, i) => node(i).claimSend(['m:sms@farm.test', 'd:+31612345678'], T0, limits)));
    assert.equal(claims.filter((c) => c.ok).length, 1);
    const other = await node(2).claimSend(['m:other@farm.test', 'd:+31612345678'], T0 + 5_000, limits);
    assert.deepEqual(other, { ok: false, retryAfterMs: 25_000, limit: 'cooldown', key: 'd:+31612345678' });
  });

  it('a setting changed on one node is what the others read next', async () => {
    await node(0).updateDomain('farm.test', () => ({ next: { domain: 'farm.test', settings: { challenge: 'always' }, updatedAt: T0 }, result: null }));
    for (const x of nodes) assert.deepEqual((await x.loginView('who@farm.test')).domain, { challenge: 'always' });
    await node(1).updateGlobal(() => ({ challenge: 'new-country' }));
    for (const x of nodes) assert.deepEqual((await x.loginView('who@farm.test')).global, { challenge: 'new-country' });
    await node(2).updateMailbox('who@farm.test', () => ({ next: { ...newMailbox('who@farm.test', T0), settings: { challenge: 'never' } }, result: null }));
    for (const x of nodes) assert.deepEqual((await x.loginView('who@farm.test')).mailbox?.settings, { challenge: 'never' });
  });

  it("one source's attempts reserved and settled at once over the nodes: each counted once, its row made again after it went", async () => {
    const policy = { maxFailures: 1000, windowMs: 60_000, distinctMailboxes: 1000, blockMs: 60_000 };
    const source = '203.0.113.7';
    const attempt = async (i: number, outcome: 'none' | 'failure') => {
      const r = await node(i).reserveAttempt(source, `m${i}@farm.test`, false, T0, policy);
      await node(i + 1).settleAttempt(source, `m${i}@farm.test`, false, outcome, T0, policy);
      return r.granted;
    };
    // Each settlement that leaves nothing takes the row, while other nodes make and lock it again.
    assert.deepEqual(new Set(await Promise.all(Array.from({ length: 60 }, (_, i) => attempt(i, 'none')))), new Set([true]));
    assert.equal((await node(0).listSources()).some((s) => s.source === source), false);
    await Promise.all(Array.from({ length: 60 }, (_, i) => attempt(i, i % 2 === 0 ? 'failure' : 'none')));
    const state = (await node(2).listSources()).find((s) => s.source === source)?.state;
    assert.equal(state?.failures?.failures, 30);
    assert.deepEqual(state?.inFlight, []);
    await node(0).clearSource(source, T0, policy);
    assert.equal((await node(1).listSources()).some((s) => s.source === source), false);
  });

  it("settlements that leave nothing sweep other sources' idle rows at most once a second per node; one that leaves a row always does", async () => {
    const policy = { maxFailures: 3, windowMs: 60_000, distinctMailboxes: 10, blockMs: 60_000 };
    const T1 = T0 + 36_000_000;
    const ours = async (n: number) => (await node(n).listSources()).filter((s) => s.source.startsWith('198.51.100.')).map((s) => s.source);
    const settle = async (n: number, source: string, outcome: 'none' | 'failure', now: number) => {
      assert.equal((await node(n).reserveAttempt(source, 'p@farm.test', false, now, policy)).granted, true);
      await node(n).settleAttempt(source, 'p@farm.test', false, outcome, now, policy);
    };
    for (const i of [1, 2, 3]) await settle(0, `198.51.100.${i}`, 'failure', T1);
    // Idle from T1 + 60 s, the end of their windows.
    await settle(2, '198.51.100.50', 'none', T1 + 59_900);
    assert.deepEqual(await ours(1), ['198.51.100.1', '198.51.100.2', '198.51.100.3'], 'not idle yet');
    await settle(2, '198.51.100.51', 'none', T1 + 60_500);
    await settle(2, '198.51.100.52', 'none', T1 + 60_800);
    assert.deepEqual(await ours(1), ['198.51.100.1', '198.51.100.2', '198.51.100.3'], 'node 2 swept 600 and 900 ms before');
    await settle(2, '198.51.100.53', 'failure', T1 + 60_850);
    assert.deepEqual(await ours(1), ['198.51.100.53'], 'a settlement leaving a row to sweep later sweeps the idle ones, due or not');
    await settle(0, '198.51.100.4', 'failure', T1 + 60_960);
    await settle(2, '198.51.100.54', 'none', T1 + 200_000);
    assert.deepEqual(await ours(1), [], 'a second on, the next settlement leaving nothing sweeps');
  });

  it("the previous version's settlement call still settles, and sweeps every time (a daemon not yet upgraded)", async () => {
    const policy = { maxFailures: 3, windowMs: 60_000, distinctMailboxes: 10, blockMs: 60_000 };
    const T2 = T0 + 72_000_000;
    const ours = async () => (await node(0).listSources()).filter((s) => s.source.startsWith('198.51.101.')).map((s) => s.source);
    const oldSettle = (source: string, outcome: string, now: number) =>
      dbs[1]!.query<{ before: string; after: string }>('SELECT before_state::text AS before, after_state::text AS after FROM memfa_settle_attempt($1, $2, false, $3, $4, 3, 60000, 10, 60000, 100, 5)', [source, 'q@farm.test', outcome, now]);
    await node(0).reserveAttempt('198.51.101.1', 'q@farm.test', false, T2, policy);
    const { rows } = await oldSettle('198.51.101.1', 'failure', T2);
    assert.equal(rows.length, 1);
    assert.match(rows[0]!.before, /^\(,,,,,,\{q@farm\.test\},0,0,/, 'before: the attempt in flight');
    assert.match(rows[0]!.after, /^\(,,1,\{q@farm\.test\},/, 'after: one failure counted');
    assert.deepEqual(await ours(), ['198.51.101.1']);
    await node(0).reserveAttempt('198.51.101.2', 'q@farm.test', false, T2 + 60_000, policy);
    await oldSettle('198.51.101.2', 'none', T2 + 60_000);
    assert.deepEqual(await ours(), [], 'its own row gone, and the idle one swept');
  });

  it("a source's row goes once nothing in it matters, and a flood's rows are swept", async () => {
    const policy = { maxFailures: 3, windowMs: 60_000, distinctMailboxes: 10, blockMs: 60_000 };
    assert.equal((await node(0).reserveAttempt('203.0.113.1', 'a@farm.test', false, T0, policy)).granted, true);
    await node(1).settleAttempt('203.0.113.1', 'a@farm.test', false, 'none', T0, policy);
    assert.equal((await node(2).listSources()).some((s) => s.source === '203.0.113.1'), false, 'a released attempt leaves nothing');
    for (let i = 0; i < 50; i++) {
      await node(i).reserveAttempt(`203.0.113.${100 + i}`, 'a@farm.test', false, T0, policy);
      await node(i + 1).settleAttempt(`203.0.113.${100 + i}`, 'a@farm.test', false, 'failure', T0, policy);
    }
    assert.equal((await node(0).listSources()).length, 50);
    // Past their windows, the next settlement anywhere sweeps them.
    await node(0).reserveAttempt('203.0.113.2', 'b@farm.test', false, T0 + 120_000, policy);
    await node(1).settleAttempt('203.0.113.2', 'b@farm.test', false, 'none', T0 + 120_000, policy);
    assert.deepEqual(await node(2).listSources(), []);
  });
});
