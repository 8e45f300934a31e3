// The lockout rules in SQL (store/postgres/migrations/002_rules.sql) against the TypeScript they
// mirror (core/lockout.ts), on many generated inputs around every edge (thresholds, window and
// block ends, the distinct-mailbox limit, attempts in flight): the statements that decide in the
// database must decide as the file store does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import {
  ipSourceIdle,
  lockState,
  recordFailure,
  recordIpFailure,
  recordSuccess,
  reserveIpAttempt,
  settleIpAttempt,
  type AttemptOutcome,
  type IpSourceState,
  type IpThrottlePolicy,
  type IpThrottleRecord,
  type LockoutPolicy,
  IN_FLIGHT_RETRY_MS,
} from '../src/core/lockout.js';
import { emptyFailures, type FailureState } from '../src/core/model.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const CASES = 400;
const missing = postgresMissing();

/** A small deterministic generator (xorshift), so that a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  return {
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    chance: (p: number) => next() < p,
  };
}

const MAILBOXES = ['a@x', 'b@x', 'c@x', 'd@x', 'e@x'];

describe(`lockout rules in SQL = core/lockout.ts${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let db: Db;
  before(async () => {
    cluster = await startPostgres();
    db = new Db(createPool(pgSettings(cluster, await cluster.createDatabase(), { poolMax: 1 })));
    await migrate(db);
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  const q = async <R extends pg.QueryResultRow>(text: string, values: unknown[]) => (await db.query<R>(text, values)).rows[0]!;

  it('memfa_failed, memfa_succeeded, memfa_locked = recordFailure, recordSuccess, lockState', async () => {
    const r = rng(16);
    for (let i = 0; i < CASES; i++) {
      const policy: LockoutPolicy = { threshold: r.int(1, 6), baseDelayMs: r.pick([1, 1000, 60_000, 86_400_000]), maxDelayMs: r.pick([1000, 3_600_000, 604_800_000]), hardLockAfter: r.int(2, 12) };
      const now = T0 + r.int(0, 10) * 30_000;
      const f: FailureState | null = r.chance(0.2)
        ? null
        : { consecutive: r.pick([0, 1, 4, 5, 11, 60, 70, 1000]), lockedUntil: r.chance(0.5) ? null : T0 + r.int(-5, 15) * 30_000, hardLocked: r.chance(0.2), lastFailureAt: r.chance(0.3) ? null : T0 };
      const args = f === null ? [null, null, null, null] : [f.consecutive, f.lockedUntil, f.hardLocked, f.lastFailureAt];
      const sqlFailed = await q<{ consecutive: number; locked_until: number | null; hard_locked: boolean; last_failure_at: number | null }>(
        'SELECT (x).* FROM (SELECT memfa_failed($1::integer, $2::bigint, $3::boolean, $4::bigint, $5::integer, $6::bigint, $7::bigint, $8::integer) AS x) s',
        [...args.slice(0, 3), now, policy.threshold, policy.baseDelayMs, policy.maxDelayMs, policy.hardLockAfter],
      );
      const ts = recordFailure(f ?? emptyFailures(), now, policy);
      const label = JSON.stringify({ f, now, policy });
      assert.deepEqual({ consecutive: sqlFailed.consecutive, lockedUntil: sqlFailed.locked_until, hardLocked: sqlFailed.hard_locked, lastFailureAt: sqlFailed.last_failure_at }, ts, label);
      const sqlSucceeded = await q<{ consecutive: number | null; locked_until: number | null; hard_locked: boolean | null; last_failure_at: number | null }>(
        'SELECT (x).* FROM (SELECT memfa_succeeded($1::integer, $2::bigint, $3::boolean, $4::bigint) AS x) s',
        args,
      );
      // A kind's state after a success: null (nothing) unless a hard lock survives it.
      const after = f === null ? null : recordSuccess(f);
      const expected = after === null || !after.hardLocked ? null : after;
      const got = sqlSucceeded.consecutive === null && sqlSucceeded.hard_locked === null ? null : { consecutive: sqlSucceeded.consecutive, lockedUntil: sqlSucceeded.locked_until, hardLocked: sqlSucceeded.hard_locked, lastFailureAt: sqlSucceeded.last_failure_at };
      assert.deepEqual(got, expected, label);
      const locked = await q<{ l: boolean }>('SELECT memfa_locked($1::boolean, $2::bigint, $3::bigint) AS l', [f?.hardLocked ?? null, f?.lockedUntil ?? null, now]);
      assert.equal(locked.l, f === null ? false : lockState(f, now).locked, label);
    }
  });

  const ipPolicy = (r: ReturnType<typeof rng>): IpThrottlePolicy => ({ maxFailures: r.int(1, 5), windowMs: r.pick([60_000, 900_000]), distinctMailboxes: r.int(1, 4), blockMs: r.pick([30_000, 900_000]) });
  const windowRec = (r: ReturnType<typeof rng>): IpThrottleRecord | null =>
    r.chance(0.25)
      ? null
      : {
          failures: r.int(0, 6),
          mailboxes: MAILBOXES.slice(0, r.int(0, 4)),
          windowStart: T0 - r.int(0, 40) * 30_000,
          lockedUntil: r.chance(0.5) ? null : T0 + r.int(-10, 30) * 30_000,
        };

  it('memfa_ip_failed = recordIpFailure', async () => {
    const r = rng(1616);
    for (let i = 0; i < CASES; i++) {
      const policy = ipPolicy(r);
      const rec = windowRec(r);
      const mailbox = r.pick(MAILBOXES);
      const now = T0 + r.int(0, 20) * 30_000;
      const row = await q<{ failures: number; mailboxes: string[]; window_start: number; locked_until: number | null }>(
        'SELECT (x).* FROM (SELECT memfa_ip_failed($1::integer, $2::text[], $3::bigint, $4::bigint, $5::text, $6::bigint, $7::integer, $8::bigint, $9::integer, $10::bigint) AS x) s',
        [rec?.failures ?? null, rec?.mailboxes ?? null, rec?.windowStart ?? null, rec?.lockedUntil ?? null, mailbox, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, policy.blockMs],
      );
      assert.deepEqual({ failures: row.failures, mailboxes: row.mailboxes, windowStart: row.window_start, lockedUntil: row.locked_until }, recordIpFailure(rec, mailbox, now, policy), JSON.stringify({ rec, mailbox, now, policy }));
    }
  });

  interface SourceRow {
    refusal: string | null;
    refused_until: number | null;
    f_failures: number | null;
    f_mailboxes: string[] | null;
    f_window_start: number | null;
    f_locked_until: number | null;
    in_flight: string[];
    creating: number;
    created: number;
    created_since: number;
    idle_from: number | null;
  }

  const sourceArgs = (s: IpSourceState) => [s.failures?.failures ?? null, s.failures?.mailboxes ?? null, s.failures?.windowStart ?? null, s.failures?.lockedUntil ?? null, s.inFlight, s.creating, s.created, s.createdSince];
  const SOURCE = 'ROW(NULL, NULL, $1::integer, $2::text[], $3::bigint, $4::bigint, $5::text[], $6::integer, $7::integer, $8::bigint, NULL)::memfa_ip_source';
  const stateOf = (row: SourceRow): IpSourceState => ({
    failures: row.f_failures === null ? null : { failures: row.f_failures, mailboxes: row.f_mailboxes!, windowStart: row.f_window_start!, lockedUntil: row.f_locked_until },
    inFlight: row.in_flight,
    creating: row.creating,
    created: row.created,
    createdSince: row.created_since,
  });
  const genSource = (r: ReturnType<typeof rng>): IpSourceState => {
    const inFlight = Array.from({ length: r.int(0, 4) }, () => r.pick(MAILBOXES));
    return { failures: windowRec(r), inFlight, creating: r.int(0, inFlight.length), created: r.int(0, 6), createdSince: T0 - r.int(0, 40) * 30_000 };
  };

  it('memfa_ip_reserved = reserveIpAttempt', async () => {
    const r = rng(161616);
    let granted = 0;
    for (let i = 0; i < CASES; i++) {
      const policy = ipPolicy(r);
      const s = genSource(r);
      const mailbox = r.pick(MAILBOXES);
      const creates = r.chance(0.4);
      const now = T0 + r.int(0, 20) * 30_000;
      const row = await q<SourceRow>(`SELECT (x).* FROM (SELECT memfa_ip_reserved(${SOURCE}, $9::text, $10::boolean, $11::bigint, $12::integer, $13::bigint, $14::integer, $15::bigint) AS x) s`, [
        ...sourceArgs(s),
        mailbox,
        creates,
        now,
        policy.maxFailures,
        policy.windowMs,
        policy.distinctMailboxes,
        IN_FLIGHT_RETRY_MS,
      ]);
      const ts = reserveIpAttempt(s, mailbox, creates, now, policy);
      const label = JSON.stringify({ s, mailbox, creates, now, policy });
      if (ts.granted) {
        granted++;
        assert.equal(row.refusal, null, label);
        assert.deepEqual(stateOf(row), ts.state, label);
      } else {
        assert.deepEqual({ reason: row.refusal, until: row.refused_until }, { reason: ts.reason, until: ts.until }, label);
      }
    }
    assert.ok(granted > CASES / 10 && granted < CASES - CASES / 10, `both outcomes are exercised (${granted} granted)`);
  });

  it('memfa_ip_settled = settleIpAttempt, and its idle_from = ipSourceIdle', async () => {
    const r = rng(16161616);
    let idle = 0;
    for (let i = 0; i < CASES; i++) {
      const policy = ipPolicy(r);
      const s = genSource(r);
      const mailbox = r.chance(0.7) && s.inFlight.length > 0 ? r.pick(s.inFlight) : r.pick(MAILBOXES);
      const creates = r.chance(0.4);
      const outcome: AttemptOutcome = r.pick(['failure', 'created', 'none'] as const);
      const now = T0 + r.int(0, 20) * 30_000;
      const row = await q<SourceRow>(`SELECT (x).* FROM (SELECT memfa_ip_settled(${SOURCE}, $9::text, $10::boolean, $11::text, $12::bigint, $13::integer, $14::bigint, $15::integer, $16::bigint) AS x) s`, [
        ...sourceArgs(s),
        mailbox,
        creates,
        outcome,
        now,
        policy.maxFailures,
        policy.windowMs,
        policy.distinctMailboxes,
        policy.blockMs,
      ]);
      const ts = settleIpAttempt(s, mailbox, creates, outcome, now, policy);
      const label = JSON.stringify({ s, mailbox, creates, outcome, now, policy });
      const sqlIdle = row.idle_from !== null && row.idle_from <= now;
      assert.equal(sqlIdle, ts === null, label);
      assert.equal(sqlIdle, ipSourceIdle(stateOf(row), now, policy), label);
      if (ts === null) idle++;
      else assert.deepEqual(stateOf(row), ts, label);
      // Later, the source is idle exactly from idle_from (the sweep's condition).
      if (row.idle_from !== null && row.idle_from > now) {
        assert.equal(ipSourceIdle(stateOf(row), row.idle_from - 1, policy), false, label);
        assert.equal(ipSourceIdle(stateOf(row), row.idle_from, policy), true, label);
      }
    }
    assert.ok(idle > 0 && idle < CASES, `both outcomes are exercised (${idle} idle)`);
  });
});
