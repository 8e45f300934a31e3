// A factor's success decided and written in one statement when the record it was decided on is
// still the stored version (factors.ts effectsAhead): one round trip and one commit instead of a
// transaction of five, and never a stale record's places or notices written over a newer one.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LockoutPolicy } from '../src/core/lockout.js';
import { newMailbox, type MailboxRecord } from '../src/core/model.js';
import type { FailureEffects, NoticeQueue, SuccessEffects } from '../src/services/store-ports.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const POLICY: LockoutPolicy = { threshold: 5, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 1000 };
const REMEMBER = { maxEntries: 20, maxAgeMs: 86_400_000 };
const missing = postgresMissing();

/** Counts the statements and transactions a Db is asked for. */
function counted(db: Db): { queries: number; txs: number } {
  const seen = { queries: 0, txs: 0 };
  const query = db.query.bind(db);
  const tx = db.tx.bind(db);
  db.query = ((...args: Parameters<Db['query']>) => {
    seen.queries += 1;
    return query(...args);
  }) as Db['query'];
  db.tx = ((...args: Parameters<Db['tx']>) => {
    seen.txs += 1;
    return tx(...args);
  }) as Db['tx'];
  return seen;
}

describe(`a factor's success written with its verdict${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let dbs: Db[] = [];
  let nodes: PgStatePorts[] = [];
  let seen: { queries: number; txs: number }[] = [];
  before(async () => {
    cluster = await startPostgres();
    const name = await cluster.createDatabase();
    dbs = [1, 2].map(() => new Db(createPool(pgSettings(cluster, name, { poolMax: 5, connectTimeoutMs: 60_000, statementTimeoutMs: 60_000, lockTimeoutMs: 60_000 }))));
    await migrate(dbs[0]!);
    seen = dbs.map(counted);
    nodes = dbs.map((d) => new PgStatePorts(d));
  });
  after(async () => {
    await Promise.all(dbs.map((d) => d.close()));
    await cluster?.stop();
  });
  const reset = () => seen.forEach((s) => ((s.queries = 0), (s.txs = 0)));
  const success = (basis: MailboxRecord | undefined, ip: string, now = T0, notices?: NoticeQueue): SuccessEffects => ({ kind: 'elsewhere', now, location: { ip, country: 'NL', policy: REMEMBER }, notices, basis });
  const failure = (now = T0, notices?: NoticeQueue): FailureEffects => ({ kind: 'elsewhere', now, policy: POLICY, notices });
  const enrolled = async (address: string, extra: Partial<MailboxRecord> = {}) => {
    await nodes[0]!.updateMailbox(address, () => ({
      next: { ...newMailbox(address, T0), totp: { sealedSecret: 'v1.s', activatedAt: T0, lastAcceptedStep: 10 }, countries: [{ country: 'NL', firstSeen: T0, lastSeen: T0 }], ...extra },
      result: null,
    }));
    const rec = await nodes[0]!.getMailbox(address);
    assert.ok(rec !== undefined);
    return rec;
  };

  it('a TOTP success on the stored version: one statement, the step, the failures reset and the place remembered', async () => {
    const basis = await enrolled('one@ahead.test', { failures: { known: null, elsewhere: { consecutive: 2, lockedUntil: null, hardLocked: false, lastFailureAt: T0 - 1 } } });
    reset();
    const r = await nodes[0]!.acceptTotpStep('one@ahead.test', 'v1.s', 11, { success: success(basis, '192.0.2.1'), failure: failure() });
    assert.deepEqual(r, { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 1, txs: 0 });
    const after = await nodes[1]!.getMailbox('one@ahead.test');
    assert.equal(after?.totp?.lastAcceptedStep, 11);
    assert.equal(after?.failures.elsewhere, null);
    assert.deepEqual(after?.ips, [{ ip: '192.0.2.1', firstSeen: T0, lastSeen: T0 }]);
    assert.equal(after?.updatedAt, T0);
  });

  it("a basis another node changed meanwhile is not written: decided again on the latest record, keeping the other node's place", async () => {
    const stale = await enrolled('two@ahead.test');
    const fresh = await nodes[1]!.getMailbox('two@ahead.test');
    assert.deepEqual(await nodes[1]!.acceptTotpStep('two@ahead.test', 'v1.s', 11, { success: success(fresh, '192.0.2.2', T0 + 1), failure: failure() }), { outcome: 'accepted' });
    reset();
    assert.deepEqual(await nodes[0]!.acceptTotpStep('two@ahead.test', 'v1.s', 12, { success: success(stale, '192.0.2.3', T0 + 2), failure: failure() }), { outcome: 'accepted' });
    assert.equal(seen[0]!.txs, 1, 'the stale basis sent the success to the transaction');
    const after = await nodes[0]!.getMailbox('two@ahead.test');
    assert.deepEqual(after?.ips.map((e) => e.ip).sort(), ['192.0.2.2', '192.0.2.3']);
    assert.equal(after?.totp?.lastAcceptedStep, 12);
  });

  it("a code check's reserved attempt is settled by the success's own statement; a stale basis or a failure leaves it to the caller", async () => {
    const SOURCES = { maxFailures: 10, windowMs: 600_000, distinctMailboxes: 5, blockMs: 600_000 };
    const sourceRows = async (source: string) => (await dbs[0]!.query<{ n: number }>('SELECT count(*)::int AS n FROM ip_sources WHERE source = $1', [source])).rows[0]!.n;
    const attempt = (source: string, mailbox: string, now: number) => ({ source, mailbox, creates: false, now, policy: SOURCES, settled: false });
    const reserved = async (source: string, mailbox: string, now: number) => {
      assert.deepEqual(await nodes[0]!.reserveAttempt(source, mailbox, false, now, SOURCES), { granted: true });
      assert.equal(await sourceRows(source), 1, 'the reservation is a row');
      return attempt(source, mailbox, now);
    };
    const basis = await enrolled('settle@ahead.test');
    const a = await reserved('192.0.2.50', 'settle@ahead.test', T0);
    reset();
    assert.deepEqual(await nodes[0]!.acceptTotpStep('settle@ahead.test', 'v1.s', 11, { success: { ...success(basis, '192.0.2.50'), attempt: a }, failure: failure() }), { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 1, txs: 0 }, 'verdict, place and settlement: one statement');
    assert.equal(a.settled, true);
    assert.equal(await sourceRows('192.0.2.50'), 0, 'settled: nothing in flight, nothing failed, the row is gone');

    // A basis another node changed: the transaction decides, and the attempt is the caller's to settle.
    const stale = await enrolled('settle-stale@ahead.test');
    await nodes[1]!.acceptTotpStep('settle-stale@ahead.test', 'v1.s', 11, { success: success(await nodes[1]!.getMailbox('settle-stale@ahead.test'), '192.0.2.51'), failure: failure() });
    const b = await reserved('192.0.2.52', 'settle-stale@ahead.test', T0 + 1);
    assert.deepEqual(await nodes[0]!.acceptTotpStep('settle-stale@ahead.test', 'v1.s', 12, { success: { ...success(stale, '192.0.2.52', T0 + 1), attempt: b }, failure: failure(T0 + 1) }), { outcome: 'accepted' });
    assert.equal(b.settled, false);
    assert.equal(await sourceRows('192.0.2.52'), 1, 'still reserved');
    assert.equal(await nodes[0]!.settleAttempt('192.0.2.52', 'settle-stale@ahead.test', false, 'none', T0 + 1, SOURCES), null);
    assert.equal(await sourceRows('192.0.2.52'), 0);

    // A failure (a step used before) settles nothing either.
    const c = await reserved('192.0.2.53', 'settle@ahead.test', T0 + 2);
    const latest = await nodes[0]!.getMailbox('settle@ahead.test');
    assert.deepEqual(await nodes[0]!.acceptTotpStep('settle@ahead.test', 'v1.s', 11, { success: { ...success(latest, '192.0.2.53', T0 + 2), attempt: c }, failure: failure(T0 + 2) }), { outcome: 'reused' });
    assert.equal(c.settled, false);
    assert.equal(await sourceRows('192.0.2.53'), 1);
  });

  it('a reused step with a basis is counted by the transaction, never written ahead', async () => {
    const basis = await enrolled('three@ahead.test');
    reset();
    assert.deepEqual(await nodes[0]!.acceptTotpStep('three@ahead.test', 'v1.s', 10, { success: success(basis, '192.0.2.4'), failure: failure() }), { outcome: 'reused' });
    assert.equal(seen[0]!.txs, 1);
    const after = await nodes[0]!.getMailbox('three@ahead.test');
    assert.equal(after?.failures.elsewhere?.consecutive, 1);
    assert.deepEqual(after?.ips, [], 'a failure remembers no place');
  });

  it('200 concurrent uses of one code, each with the same basis, over two nodes: one accepted, its place written once', async () => {
    const basis = await enrolled('many@ahead.test');
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => nodes[i % 2]!.acceptTotpStep('many@ahead.test', 'v1.s', 11, { success: success(basis, `198.51.100.${i}`), failure: failure() })));
    assert.equal(results.filter((r) => r.outcome === 'accepted').length, 1);
    assert.equal(results.filter((r) => r.outcome === 'reused').length, POLICY.threshold);
    assert.equal(results.filter((r) => r.outcome === 'locked').length, 200 - 1 - POLICY.threshold);
    const after = await nodes[1]!.getMailbox('many@ahead.test');
    assert.equal(after?.ips.length, 1);
    assert.equal(after?.failures.elsewhere?.consecutive, POLICY.threshold);
  });

  it('a sent code on the stored version: one statement, the code used up', async () => {
    const code = { hash: 'h-right', provider: 'sms' as const, destination: '+31612345678', createdAt: T0, expiresAt: T0 + 600_000, failedTries: 0, sends: 1, lastSentAt: T0 };
    const basis = await enrolled('code@ahead.test', { openCode: code, totp: null });
    reset();
    const r = await nodes[0]!.tryOpenCode('code@ahead.test', 'h-right', { maxTries: 3, success: success(basis, '192.0.2.5', T0 + 10), failure: failure(T0 + 10) });
    assert.deepEqual(r, { outcome: 'ok', provider: 'sms' });
    assert.deepEqual(seen[0], { queries: 1, txs: 0 });
    const after = await nodes[1]!.getMailbox('code@ahead.test');
    assert.equal(after?.openCode, null);
    assert.deepEqual(after?.ips.map((e) => e.ip), ['192.0.2.5']);
  });

  it('a success that queues a new-country notice is left to the transaction, which queues it', async () => {
    const basis = await enrolled('abroad@ahead.test');
    const queued: string[] = [];
    const notices: NoticeQueue = {
      queue(rec, events) {
        queued.push(...events.map((e) => e.kind));
        return { ...rec, notices: { pending: [], recent: events.map((e) => ({ kind: e.kind, at: T0 })) } };
      },
    };
    reset();
    const at = { success: { ...success(basis, '203.0.113.9', T0, notices), location: { ip: '203.0.113.9', country: 'BR', policy: REMEMBER } }, failure: failure(T0, notices) };
    assert.deepEqual(await nodes[0]!.acceptTotpStep('abroad@ahead.test', 'v1.s', 11, at), { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 0, txs: 1 });
    assert.deepEqual(queued, ['new-country']);
    const after = await nodes[1]!.getMailbox('abroad@ahead.test');
    assert.deepEqual(after?.notices?.recent, [{ kind: 'new-country', at: T0 }]);
    assert.deepEqual(after?.countries.map((c) => c.country).sort(), ['BR', 'NL']);
  });

  it('a new country whose queue is inert for the record (no gateway, notices off) is written ahead', async () => {
    const basis = await enrolled('quiet@ahead.test');
    const notices: NoticeQueue = { inert: () => true, queue: () => assert.fail('an inert queue is not called') };
    reset();
    const at = { success: { ...success(basis, '203.0.113.8', T0, notices), location: { ip: '203.0.113.8', country: 'BR', policy: REMEMBER } }, failure: failure(T0, notices) };
    assert.deepEqual(await nodes[0]!.acceptTotpStep('quiet@ahead.test', 'v1.s', 11, at), { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 1, txs: 0 });
    const after = await nodes[1]!.getMailbox('quiet@ahead.test');
    assert.equal(after?.notices, undefined);
    assert.deepEqual(after?.countries.map((c) => c.country).sort(), ['BR', 'NL']);
  });

  it('a known country with notices on, and a record read elsewhere (no basis of this store), are both right', async () => {
    const basis = await enrolled('home@ahead.test');
    const notices: NoticeQueue = { queue: () => assert.fail('nothing to queue for a known country') };
    reset();
    assert.deepEqual(await nodes[0]!.acceptTotpStep('home@ahead.test', 'v1.s', 11, { success: success(basis, '192.0.2.6', T0, notices), failure: failure(T0, notices) }), { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 1, txs: 0 });
    reset();
    const copy = structuredClone(basis);
    assert.deepEqual(await nodes[0]!.acceptTotpStep('home@ahead.test', 'v1.s', 12, { success: success(copy, '192.0.2.7', T0 + 1), failure: failure() }), { outcome: 'accepted' });
    assert.deepEqual(seen[0], { queries: 0, txs: 1 });
    assert.deepEqual((await nodes[1]!.getMailbox('home@ahead.test'))?.ips.map((e) => e.ip).sort(), ['192.0.2.6', '192.0.2.7']);
  });
});
