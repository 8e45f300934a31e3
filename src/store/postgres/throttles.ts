// The throttles on the shared database, so that they hold across daemons: failures of mailboxes
// without a record, send limits, the per-source reservation of code checks, the failure windows of
// login.check. A check-then-act is one statement on a row it locks; where the row may not exist
// yet, an INSERT ... ON CONFLICT DO NOTHING before makes it (an empty state, which decides
// nothing), and the deciding statement runs on the row it then finds (for the per-source ones,
// which every code check makes twice, both inside one function call of migration 007). Rows whose
// state no longer matters are deleted a few at a time by the statements that make new ones, so
// that the tables shrink back after a flood as the file store's bounded maps do.
import {
  clearIpSource,
  ipBlockStarted,
  ipSourceBlock,
  sourceBlockStarted,
  type IpSourceBlock,
  type IpThrottleState,
  ipSourceFailures,
  lockState,
  type AttemptOutcome,
  type IpRefusal,
  type IpSourceState,
  type IpThrottlePolicy,
  type IpThrottleRecord,
  type LockoutPolicy,
  IN_FLIGHT_RETRY_MS,
} from '../../core/lockout.js';
import type { FailureState } from '../../core/model.js';
import { MemfaError } from '../../protocol/errors.js';
import type { Locked } from '../../services/store-ports.js';
import type { Db, Queryable } from './pool.js';

const HOUR_MS = 3_600_000;
/** Rows a sweep deletes at most: a statement's work stays bounded. */
const SWEEP_ROWS = 100;
/** Tries of ensure-then-decide when a sweep took the row in between (it only goes when idle). */
const ENSURE_TRIES = 5;

/** A row made for a decision that a sweep took before it could be locked, ENSURE_TRIES times over. */
const keptDisappearing = (what: string) => new MemfaError('STORE_FAILED', `the database could not be used: the ${what} row kept disappearing`);

async function ensured<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < ENSURE_TRIES; i++) {
    const r = await attempt();
    if (r !== undefined) return r;
  }
  throw keptDisappearing(what);
}

// ---------------------------------------------------------------------------------------------
// Failures of mailboxes without a record

interface UnstoredRow {
  consecutive: number;
  locked_until: number | null;
  hard_locked: boolean;
  last_failure_at: number | null;
}

const unstoredOf = (r: UnstoredRow): FailureState => ({ consecutive: r.consecutive, lockedUntil: r.locked_until, hardLocked: r.hard_locked, lastFailureAt: r.last_failure_at });

/** unstoredFailureExpired in SQL, on the row aliased `u`. */
const EXPIRED = (now: string, maxDelay: string) => `${now} >= GREATEST(COALESCE(u.locked_until, 0), COALESCE(u.last_failure_at, 0)) + ${maxDelay}`;

export async function unstoredFailures(db: Db, address: string, now: number, policy: LockoutPolicy): Promise<FailureState | undefined> {
  const { rows } = await db.query<UnstoredRow>(`SELECT * FROM unstored_failures u WHERE address = $1 AND NOT (${EXPIRED('$2::bigint', '$3::bigint')})`, [address, now, policy.maxDelayMs]);
  return rows[0] === undefined ? undefined : unstoredOf(rows[0]);
}

export async function recordUnstoredFailure(db: Db, address: string, now: number, policy: LockoutPolicy): Promise<{ outcome: 'counted'; state: FailureState } | Locked> {
  return db.tx(async (c) => {
    // The conflict path locks the existing row and decides on its latest version: an expired
    // entry starts again from none; a locked one is left as it is (no row comes back).
    const policyArgs = '$3::integer, $4::bigint, $5::bigint, $6::integer';
    const { rows } = await c.query<UnstoredRow>(
      `INSERT INTO unstored_failures AS u (address, consecutive, locked_until, hard_locked, last_failure_at, expires_at)
       SELECT $1, (f).consecutive, (f).locked_until, (f).hard_locked, (f).last_failure_at,
              GREATEST(COALESCE((f).locked_until, 0), $2::bigint) + $5::bigint
       FROM (SELECT memfa_failed(NULL, NULL, NULL, $2::bigint, ${policyArgs}) AS f) x
       ON CONFLICT (address) DO UPDATE SET (consecutive, locked_until, hard_locked, last_failure_at, expires_at) =
         (SELECT (f).consecutive, (f).locked_until, (f).hard_locked, (f).last_failure_at, GREATEST(COALESCE((f).locked_until, 0), $2::bigint) + $5::bigint
          FROM (SELECT CASE WHEN ${EXPIRED('$2::bigint', '$5::bigint')} THEN memfa_failed(NULL, NULL, NULL, $2::bigint, ${policyArgs})
                ELSE memfa_failed(u.consecutive, u.locked_until, u.hard_locked, $2::bigint, ${policyArgs}) END AS f) y)
       WHERE ${EXPIRED('$2::bigint', '$5::bigint')} OR NOT memfa_locked(u.hard_locked, u.locked_until, $2::bigint)
       RETURNING consecutive, locked_until, hard_locked, last_failure_at`,
      [address, now, policy.threshold, policy.baseDelayMs, policy.maxDelayMs, policy.hardLockAfter],
    );
    if (rows[0] !== undefined) {
      await c.query(`DELETE FROM unstored_failures WHERE address IN (SELECT address FROM unstored_failures WHERE expires_at <= $1 LIMIT ${SWEEP_ROWS} FOR UPDATE SKIP LOCKED)`, [now]);
      return { outcome: 'counted' as const, state: unstoredOf(rows[0]) };
    }
    // Locked: the row is this transaction's (ON CONFLICT locked it), so this reads what decided.
    const held = await c.query<UnstoredRow>('SELECT * FROM unstored_failures WHERE address = $1', [address]);
    const lock = lockState(unstoredOf(held.rows[0]!), now);
    return { outcome: 'locked' as const, until: lock.locked ? lock.until : null };
  });
}

export async function clearUnstoredFailures(db: Db, address: string): Promise<FailureState | undefined> {
  const { rows } = await db.query<UnstoredRow>('DELETE FROM unstored_failures WHERE address = $1 RETURNING *', [address]);
  return rows[0] === undefined ? undefined : unstoredOf(rows[0]);
}

// ---------------------------------------------------------------------------------------------
// Send limits

export type SendClaim = { ok: true } | { ok: false; retryAfterMs: number; limit: 'cooldown' | 'hourly'; key: string };

/**
 * Claims a send to each of `keys`, through `db` or within a transaction of the caller's (`c`,
 * CodeStore claimAndOpen: there it holds the mailbox's row first; the keys' rows are made and
 * locked in key order, and the sweep skips rows another claim holds, so no two claims wait for
 * each other in a circle).
 */
export async function claimSend(db: Queryable, keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }): Promise<SendClaim> {
  const distinct = [...new Set(keys)];
  return ensured('send limit', async (): Promise<SendClaim | undefined> => {
    await db.query(`INSERT INTO send_limits (key, times, touched_at) SELECT k, '{}', $2 FROM unnest($1::text[]) AS k ORDER BY k ON CONFLICT (key) DO NOTHING`, [distinct, now]);
    // One statement: every key's row locked (in key order, so that two claims cannot deadlock),
    // the longest wait of them all (the first key given wins a tie, as in the file store), and
    // the claim recorded on every key only when nothing has to wait.
    const { rows } = await db.query<{ found: number; wait: number | null; lim: 'cooldown' | 'hourly' | null; key: string | null }>(
      `WITH k AS (SELECT key, o FROM unnest($1::text[]) WITH ORDINALITY AS k(key, o)),
       cur AS (SELECT s.key, s.times, k.o FROM send_limits s JOIN k ON k.key = s.key ORDER BY s.key FOR UPDATE OF s),
       w AS (SELECT cur.key, cur.o, l.live,
               CASE WHEN x.last IS NOT NULL AND $2::bigint - x.last < $3::bigint THEN x.last + $3::bigint - $2::bigint ELSE 0 END AS cw,
               CASE WHEN x.n >= $4::integer THEN x.first + ${HOUR_MS} - $2::bigint ELSE 0 END AS hw
             FROM cur, LATERAL (SELECT ARRAY(SELECT t FROM unnest(cur.times) AS t WHERE $2::bigint - t < ${HOUR_MS} ORDER BY t) AS live) l,
                  LATERAL (SELECT max(t) AS last, min(t) AS first, count(t) AS n FROM unnest(l.live) AS t) x),
       best AS (SELECT key, GREATEST(cw, hw) AS wait, CASE WHEN hw > cw THEN 'hourly' ELSE 'cooldown' END AS lim FROM w ORDER BY GREATEST(cw, hw) DESC, o LIMIT 1),
       upd AS (UPDATE send_limits s SET times = w.live || $2::bigint, touched_at = GREATEST(s.touched_at, $2::bigint)
               FROM w WHERE s.key = w.key AND (SELECT count(*) FROM cur) = cardinality($1::text[]) AND (SELECT wait FROM best) <= 0)
       SELECT (SELECT count(*) FROM cur) AS found, (SELECT wait FROM best) AS wait, (SELECT lim FROM best) AS lim, (SELECT key FROM best) AS key`,
      [distinct, now, limits.cooldownMs, limits.hourlyLimit],
    );
    const r = rows[0]!;
    if (r.found !== distinct.length) return undefined;
    if (r.wait !== null && r.wait > 0) return { ok: false, retryAfterMs: r.wait, limit: r.lim!, key: r.key! };
    await db.query(`DELETE FROM send_limits WHERE key IN (SELECT key FROM send_limits WHERE touched_at <= $1 LIMIT ${SWEEP_ROWS} FOR UPDATE SKIP LOCKED)`, [now - HOUR_MS]);
    return { ok: true };
  });
}

export async function releaseSend(db: Db, keys: readonly string[], claimedAt: number): Promise<void> {
  // The latest claim at that time goes, one per key (another send may have claimed the same ms).
  await db.query(
    `UPDATE send_limits SET times = COALESCE((SELECT array_agg(t ORDER BY i) FROM unnest(times) WITH ORDINALITY AS u(t, i)
       WHERE i <> (SELECT max(j) FROM unnest(times) WITH ORDINALITY AS v(x, j) WHERE x = $2::bigint)), '{}')
     WHERE key = ANY ($1::text[]) AND $2::bigint = ANY (times)`,
    [[...new Set(keys)], claimedAt],
  );
}

// ---------------------------------------------------------------------------------------------
// Per source

interface SourceRow {
  source: string;
  f_failures: number | null;
  f_mailboxes: string[] | null;
  f_window_start: number | null;
  f_locked_until: number | null;
  in_flight: string[];
  creating: number;
  created: number;
  created_since: number;
}

function sourceOf(r: SourceRow): IpSourceState {
  return {
    failures: r.f_failures === null ? null : { failures: r.f_failures, mailboxes: r.f_mailboxes ?? [], windowStart: r.f_window_start!, lockedUntil: r.f_locked_until },
    inFlight: r.in_flight,
    creating: r.creating,
    created: r.created,
    createdSince: r.created_since,
  };
}

export async function reserveAttempt(db: Db, source: string, mailbox: string, creates: boolean, now: number, policy: IpThrottlePolicy): Promise<{ granted: true } | ({ granted: false } & IpRefusal)> {
  // One call (migrations/007_source_attempts.sql): the row made, locked, decided on and written,
  // in a transaction of its own with one commit, and one round trip.
  const { rows } = await db.query<{ refusal: IpRefusal['reason'] | null; refused_until: number | null }>(
    'SELECT refusal, refused_until FROM memfa_reserve_attempt($1::text, $2::text, $3::boolean, $4::bigint, $5::integer, $6::bigint, $7::integer, $8::bigint, $9::integer)',
    [source, mailbox, creates, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, IN_FLIGHT_RETRY_MS, ENSURE_TRIES],
  );
  const r = rows[0];
  if (r === undefined) throw keptDisappearing('source');
  return r.refusal === null ? { granted: true as const } : { granted: false as const, reason: r.refusal, until: r.refused_until! };
}

/** The columns of a source's state, read from the settlement's state before (`before_state`) and after (`after_state`). */
const SOURCE_STATE = ['f_failures', 'f_mailboxes', 'f_window_start', 'f_locked_until', 'in_flight', 'creating', 'created', 'created_since'];

/** Settles a reserved attempt: the block of `source` it started, if any (core/lockout.ts sourceBlockStarted, on the row before and after). */
export async function settleAttempt(db: Db, source: string, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy): Promise<IpSourceBlock | null> {
  // As a reservation, one call: the settlement, and the sweep of idle rows after it (this source
  // among them when nothing is left worth keeping, settleIpAttempt's null).
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${SOURCE_STATE.map((col) => `(after_state).${col}, (before_state).${col} AS before_${col}`).join(', ')}
     FROM memfa_settle_attempt($1::text, $2::text, $3::boolean, $4::text, $5::bigint, $6::integer, $7::bigint, $8::integer, $9::bigint, $10::integer, $11::integer)`,
    [source, mailbox, creates, outcome, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, policy.blockMs, SWEEP_ROWS, ENSURE_TRIES],
  );
  const row = rows[0];
  if (row === undefined) throw keptDisappearing('source');
  const before = Object.fromEntries([['source', source], ...SOURCE_STATE.map((col) => [col, row[`before_${col}`]])]) as unknown as SourceRow;
  const after = { source, ...row } as unknown as SourceRow;
  return sourceBlockStarted(sourceOf(before), sourceOf(after), now, policy);
}

export async function listSources(db: Db): Promise<{ source: string; state: IpSourceState }[]> {
  const { rows } = await db.query<SourceRow>('SELECT * FROM ip_sources ORDER BY source');
  return rows.map((r) => ({ source: r.source, state: sourceOf(r) }));
}

export async function clearSource(db: Db, source: string, now: number, policy: IpThrottlePolicy): Promise<IpSourceState | null> {
  // An administrator's act, not a login's: decided by the core's own rules on the locked row.
  return db.tx(async (c: Queryable) => {
    const { rows } = await c.query<SourceRow>('SELECT * FROM ip_sources WHERE source = $1 FOR UPDATE', [source]);
    if (rows[0] === undefined) return null;
    const state = sourceOf(rows[0]);
    if (ipSourceBlock(state, now, policy) === null && ipSourceFailures(state, now, policy) === 0) return null;
    const next = clearIpSource(state, now);
    if (next === null) await c.query('DELETE FROM ip_sources WHERE source = $1', [source]);
    else {
      await c.query(
        `UPDATE ip_sources SET f_failures = NULL, f_mailboxes = NULL, f_window_start = NULL, f_locked_until = NULL, created = 0, created_since = $2, expires_at = NULL, touched_at = $2 WHERE source = $1`,
        [source, now],
      );
    }
    return state;
  });
}

// ---------------------------------------------------------------------------------------------
// Failure windows by key

interface WindowRow {
  failures: number;
  mailboxes: string[];
  window_start: number;
  locked_until: number | null;
}

const windowOf = (r: WindowRow): IpThrottleRecord => ({ failures: r.failures, mailboxes: r.mailboxes, windowStart: r.window_start, lockedUntil: r.locked_until });

export async function windowState(db: Db, scope: string, key: string): Promise<IpThrottleRecord | undefined> {
  const { rows } = await db.query<WindowRow>('SELECT * FROM window_counters WHERE scope = $1 AND key = $2', [scope, key]);
  return rows[0] === undefined ? undefined : windowOf(rows[0]);
}

/**
 * One failure of `key`: the record after it, and the block it started (core/lockout.ts
 * ipBlockStarted, on the row before, read under its lock in the same transaction, and after). Of
 * two daemons making a key's first row at once, the second sees none before: only a block started
 * by the very first failure (maxFailures 1) would then be told twice.
 */
export async function recordWindowFailure(
  db: Db,
  scope: string,
  key: string,
  member: string,
  now: number,
  policy: IpThrottlePolicy,
): Promise<{ record: IpThrottleRecord; started: Extract<IpThrottleState, { locked: true }> | null }> {
  const args = '$3::text, $4::bigint, $5::integer, $6::bigint, $7::integer, $8::bigint';
  const values = [scope, key, member, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, policy.blockMs];
  const done = await db.tx(async (c) => {
    const old = await c.query<WindowRow>('SELECT * FROM window_counters WHERE scope = $1 AND key = $2 FOR UPDATE', [scope, key]);
    const { rows } = await c.query<WindowRow>(
    `INSERT INTO window_counters AS w (scope, key, failures, mailboxes, window_start, locked_until, expires_at)
     SELECT $1, $2, (x).failures, (x).mailboxes, (x).window_start, (x).locked_until, GREATEST((x).window_start + $6::bigint, COALESCE((x).locked_until, 0))
     FROM (SELECT memfa_ip_failed(NULL, NULL, NULL, NULL, ${args}) AS x) s
     ON CONFLICT (scope, key) DO UPDATE SET (failures, mailboxes, window_start, locked_until, expires_at) =
       (SELECT (x).failures, (x).mailboxes, (x).window_start, (x).locked_until, GREATEST((x).window_start + $6::bigint, COALESCE((x).locked_until, 0))
        FROM (SELECT memfa_ip_failed(w.failures, w.mailboxes, w.window_start, w.locked_until, ${args}) AS x) s)
     RETURNING failures, mailboxes, window_start, locked_until`,
      values,
    );
    const record = windowOf(rows[0]!);
    return { record, started: ipBlockStarted(old.rows[0] === undefined ? undefined : windowOf(old.rows[0]), record, now, policy) };
  });
  await db.query(`DELETE FROM window_counters WHERE (scope, key) IN (SELECT scope, key FROM window_counters WHERE expires_at <= $1 LIMIT ${SWEEP_ROWS} FOR UPDATE SKIP LOCKED) AND expires_at <= $1`, [now]);
  return done;
}
