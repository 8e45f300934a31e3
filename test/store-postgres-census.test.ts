// The census of locks (services/lock-census.ts) on the PostgreSQL store (store/postgres/census.ts),
// on a throwaway cluster: counted by the database with the rules of the core, the same counts as
// the scan of the file store's records, in the background and at most once per interval, read at
// once from the last count; and through the metrics' census as the services build it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IpThrottlePolicy, LockoutPolicy } from '../src/core/lockout.js';
import { newMailbox, type MailboxRecord } from '../src/core/model.js';
import { countLocks, LockCensus } from '../src/services/lock-census.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const STRICT: LockoutPolicy = { threshold: 2, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 4 };
const SOURCES: IpThrottlePolicy = { maxFailures: 2, windowMs: 900_000, distinctMailboxes: 100, blockMs: 900_000 };
const missing = postgresMissing();

describe(`the census of locks on PostgreSQL${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let db: Db;
  let ports: PgStatePorts;
  before(async () => {
    cluster = await startPostgres();
    db = new Db(createPool(pgSettings(cluster, await cluster.createDatabase(), { poolMax: 4 })));
    await migrate(db);
    ports = new PgStatePorts(db);
  });
  after(async () => {
    await ports?.census.settled();
    await db?.close();
    await cluster?.stop();
  });
  const seed = (rec: MailboxRecord) => ports.updateMailbox(rec.address, () => ({ next: rec, result: null }));

  it('the census of locks: counted by the database, in the background, at most once per interval', async () => {
    const now = T0 + 1000;
    const recs: MailboxRecord[] = [
      { ...newMailbox('timed@census.test', T0), failures: { known: null, elsewhere: { consecutive: 2, lockedUntil: T0 + 60_000, hardLocked: false, lastFailureAt: T0 } } },
      { ...newMailbox('hard@census.test', T0), failures: { known: { consecutive: 9, lockedUntil: T0 - 1, hardLocked: true, lastFailureAt: T0 }, elsewhere: { consecutive: 2, lockedUntil: T0 + 60_000, hardLocked: false, lastFailureAt: T0 } } },
      { ...newMailbox('over@census.test', T0), failures: { known: { consecutive: 3, lockedUntil: T0 - 1, hardLocked: false, lastFailureAt: T0 }, elsewhere: null } },
      { ...newMailbox('fine@census.test', T0), failures: { known: { consecutive: 1, lockedUntil: null, hardLocked: false, lastFailureAt: T0 }, elsewhere: null } },
      newMailbox('never@census.test', T0),
    ];
    for (const r of recs) await seed(r);
    for (let i = 0; i < STRICT.threshold; i++) await ports.recordUnstoredFailure('ghost@census.test', T0, STRICT);
    await ports.recordUnstoredFailure('once@census.test', T0, STRICT);
    // A source blocked by its failures, another by its enrolments, a third with one failure only.
    for (const source of ['198.51.100.0/24', '203.0.113.0/24']) {
      for (let i = 0; i < SOURCES.maxFailures; i++) {
        const creates = source.startsWith('203');
        await ports.reserveAttempt(source, `x${i}@census.test`, creates, T0, SOURCES);
        await ports.settleAttempt(source, `x${i}@census.test`, creates, creates ? 'created' : 'failure', T0, SOURCES);
      }
    }
    await ports.reserveAttempt('192.0.2.0/24', 'y@census.test', false, T0, SOURCES);
    await ports.settleAttempt('192.0.2.0/24', 'y@census.test', false, 'failure', T0, SOURCES);

    assert.equal(ports.lockCounts(now, 30_000, SOURCES), undefined, 'nothing counted yet: the count starts');
    await ports.census.settled();
    const counts = ports.lockCounts(now, 30_000, SOURCES);
    const unstored = [(await ports.unstoredFailures('ghost@census.test', now, STRICT))!, (await ports.unstoredFailures('once@census.test', now, STRICT))!];
    const expected = countLocks(recs, unstored, now);
    assert.deepEqual(expected, { lockout: 2, hardLock: 1 }, 'the case: timed and ghost locked, hard hard-locked');
    assert.deepEqual(counts, { ...expected, blockedSources: 2, countedAt: now }, 'the same counts as the scan of the file store');

    // Within the interval: the last count, and no new one started (a new lock is not seen yet).
    await seed({ ...newMailbox('later@census.test', T0), failures: { known: null, elsewhere: { consecutive: 9, lockedUntil: null, hardLocked: true, lastFailureAt: T0 } } });
    assert.deepEqual(ports.lockCounts(now + 29_000, 30_000, SOURCES), counts);
    await ports.census.settled();
    assert.deepEqual(ports.lockCounts(now + 29_500, 30_000, SOURCES), counts);
    // Past it: the last count answers, and the next one is started.
    assert.deepEqual(ports.lockCounts(now + 30_000, 30_000, SOURCES), counts);
    await ports.census.settled();
    assert.deepEqual(ports.lockCounts(now + 30_001, 30_000, SOURCES), { lockout: 2, hardLock: 2, blockedSources: 2, countedAt: now + 30_000 });

    // Through the metrics' census, as the services build it (handlers.ts).
    let clock = now + 60_000;
    const census = new LockCensus(() => [], { states: () => [] }, { blockedCount: () => 0 }, () => clock, 30_000, (at, maxAgeMs) => ports.lockCounts(at, maxAgeMs, SOURCES));
    assert.deepEqual(census.counts(), { lockout: 2, hardLock: 2, blockedSources: 2, countedAt: now + 30_000 });
    await ports.census.settled();
    clock += 1;
    // The timed locks have run out by then (T0 + 60 s): the database's count says so.
    assert.deepEqual(census.counts(), { lockout: 0, hardLock: 2, blockedSources: 2, countedAt: now + 60_000 });
  });
});
