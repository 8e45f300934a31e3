// The throttles on the shared database, so that they hold across daemons: failures of mailboxes
// without a record, send limits, the per-source reservation of code checks, the failure windows of
// login.check. A check-then-act is one statement on a row it locks; where the row may not exist
// yet, an INSERT ... ON CONFLICT DO NOTHING before makes it (an empty state, which decides
// nothing), and the deciding statement runs on the row it then finds (for the per-source ones,
// which every code check makes twice, both inside one function call of migrations 007 and 008).
// Rows whose state no longer matters are deleted a few at a time by the statements that make new
// ones (for the sources, by the settlements that leave a row, and by one a second per daemon), so
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
import type { AttemptToSettle, Locked } from '../../services/store-ports.js';
import type { Db, Queryable } from './pool.js';
import { Params } from './sql.js';

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

/** The select list of a call that returns a state before and after (`before_state`, `after_state`): `col` after, `before_col` before. */
const statesSelect = (cols: readonly string[]) => cols.map((col) => `(after_state).${col}, (before_state).${col} AS before_${col}`).join(', ');

/** A row selected with statesSelect, as the two states' columns. */
function splitStates(row: Record<string, unknown>, cols: readonly string[]): { before: Record<string, unknown>; after: Record<string, unknown> } {
  return { before: Object.fromEntries(cols.map((col) => [col, row[`before_${col}`]])), after: Object.fromEntries(cols.map((col) => [col, row[col]])) };
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

/** unstoredFailureExpired in SQL, on the row aliased `u` (memfa_unstored_failure, migration 007, spells it out too). */
const EXPIRED = (now: string, maxDelay: string) => `${now} >= GREATEST(COALESCE(u.locked_until, 0), COALESCE(u.last_failure_at, 0)) + ${maxDelay}`;

export async function unstoredFailures(db: Db, address: string, now: number, policy: LockoutPolicy): Promise<FailureState | undefined> {
  const { rows } = await db.query<UnstoredRow>(`SELECT * FROM unstored_failures u WHERE address = $1 AND NOT (${EXPIRED('$2::bigint', '$3::bigint')})`, [address, now, policy.maxDelayMs]);
  return rows[0] === undefined ? undefined : unstoredOf(rows[0]);
}

export async function recordUnstoredFailure(db: Db, address: string, now: number, policy: LockoutPolicy): Promise<{ outcome: 'counted'; state: FailureState } | Locked> {
  // One call (migration 007): counted or refused on the row's latest version, under its lock.
  const { rows } = await db.query<UnstoredRow & { counted: boolean }>(
    `SELECT counted, (state).consecutive, (state).locked_until, (state).hard_locked, (state).last_failure_at
     FROM memfa_unstored_failure($1::text, $2::bigint, $3::integer, $4::bigint, $5::bigint, $6::integer, $7::integer)`,
    [address, now, policy.threshold, policy.baseDelayMs, policy.maxDelayMs, policy.hardLockAfter, SWEEP_ROWS],
  );
  const r = rows[0]!;
  if (r.counted) return { outcome: 'counted', state: unstoredOf(r) };
  const lock = lockState(unstoredOf(r), now);
  return { outcome: 'locked', until: lock.locked ? lock.until : null };
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
  // One call (migrations/007_throttle_calls.sql, 008_source_versions.sql): the row made, locked,
  // decided on and written (a new source's inserted reserved), in a transaction of its own with
  // one commit, and one round trip.
  const { rows } = await db.query<{ refusal: IpRefusal['reason'] | null; refused_until: number | null }>(
    'SELECT refusal, refused_until FROM memfa_reserve_source($1::text, $2::text, $3::boolean, $4::bigint, $5::integer, $6::bigint, $7::integer, $8::bigint, $9::integer)',
    [source, mailbox, creates, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, IN_FLIGHT_RETRY_MS, ENSURE_TRIES],
  );
  const r = rows[0];
  if (r === undefined) throw keptDisappearing('source');
  return r.refusal === null ? { granted: true as const } : { granted: false as const, reason: r.refusal, until: r.refused_until! };
}

/** The columns of a source's state (SourceRow without the source). */
const SOURCE_STATE = ['f_failures', 'f_mailboxes', 'f_window_start', 'f_locked_until', 'in_flight', 'creating', 'created', 'created_since'];

/** How often a daemon's settlements sweep other sources' idle rows when they leave none themselves. */
export const SOURCE_SWEEP_EVERY_MS = 1000;

/**
 * When this daemon's next settlement that leaves no row of its own should sweep the idle rows of
 * other sources anyway: at most once per SOURCE_SWEEP_EVERY_MS of the settlements' own clock.
 * A settlement that leaves a row idle until later always sweeps (migration 008), so that idle rows
 * go at least as fast as they come; this takes those whose windows end when no failures come.
 */
export class SourceSweepPacer {
  #last = -Infinity;

  due(now: number): boolean {
    // A clock set back makes the next settlement sweep rather than none for as long.
    if (now - this.#last < SOURCE_SWEEP_EVERY_MS && now >= this.#last) return false;
    this.#last = now;
    return true;
  }
}

/**
 * Settles a reserved attempt: the block of `source` it started, if any (core/lockout.ts
 * sourceBlockStarted, on the row before and after). `sweep`: sweep other sources' idle rows even
 * if this settlement leaves no row to be swept later (SourceSweepPacer).
 */
export async function settleAttempt(db: Db, source: string, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy, sweep: boolean): Promise<IpSourceBlock | null> {
  // As a reservation, one call: the settlement (the row deleted when nothing is left worth
  // keeping, settleIpAttempt's null), and the sweep of idle rows after it when due.
  const p = new Params();
  const { rows } = await db.query<Record<string, unknown>>(`SELECT ${statesSelect(SOURCE_STATE)} FROM ${settlementCall(p, { source, mailbox, creates, now, policy }, outcome, sweep)}`, p.values);
  const row = rows[0];
  if (row === undefined) throw keptDisappearing('source');
  const { before, after } = splitStates(row, SOURCE_STATE);
  return sourceBlockStarted(sourceOf(before as unknown as SourceRow), sourceOf(after as unknown as SourceRow), now, policy);
}

/**
 * The call of memfa_settle_source that settles `attempt` with `outcome`, its parameters added to
 * `p`: settleAttempt's statement, and a success's verdict statement (factors.ts), which settles
 * its attempt without a round trip and a commit of its own.
 */
export function settlementCall(p: Params, attempt: Omit<AttemptToSettle, 'settled'>, outcome: AttemptOutcome, sweep: boolean): string {
  const { policy } = attempt;
  const args = [
    p.add(attempt.source, 'text'),
    p.add(attempt.mailbox, 'text'),
    p.add(attempt.creates, 'boolean'),
    p.add(outcome, 'text'),
    p.add(attempt.now, 'bigint'),
    p.add(policy.maxFailures, 'integer'),
    p.add(policy.windowMs, 'bigint'),
    p.add(policy.distinctMailboxes, 'integer'),
    p.add(policy.blockMs, 'bigint'),
    p.add(SWEEP_ROWS, 'integer'),
    p.add(ENSURE_TRIES, 'integer'),
    p.add(sweep, 'boolean'),
  ];
  return `memfa_settle_source(${args.join(', ')})`;
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

const WINDOW_STATE = ['failures', 'mailboxes', 'window_start', 'locked_until'];

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
  // One call (migration 007): the window read under its lock, counted, and the sweep after.
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${statesSelect(WINDOW_STATE)} FROM memfa_window_failure($1::text, $2::text, $3::text, $4::bigint, $5::integer, $6::bigint, $7::integer, $8::bigint, $9::integer)`,
    [scope, key, member, now, policy.maxFailures, policy.windowMs, policy.distinctMailboxes, policy.blockMs, SWEEP_ROWS],
  );
  const { before, after } = splitStates(rows[0]!, WINDOW_STATE);
  const record = windowOf(after as unknown as WindowRow);
  return { record, started: ipBlockStarted(before['failures'] === null ? undefined : windowOf(before as unknown as WindowRow), record, now, policy) };
}
