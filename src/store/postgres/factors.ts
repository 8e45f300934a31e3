// The check-then-acts of a second factor on the shared database (services/store-ports.ts
// FactorStore). Each decides in ONE statement: it locks the mailbox's row (FOR UPDATE, which under
// READ COMMITTED waits for another daemon's change and then reads the latest committed version),
// decides from that version with the rules of migrations/002_rules.sql, writes in the same
// statement and answers through RETURNING. What a success does besides (the login's location
// remembered, core/decide.ts rememberLocation) follows in the same transaction, under the row
// lock that statement took, so no other daemon sees the decision without it; or, when the record
// the service decided on is still the row's version, it is written by that statement itself
// (effectsAhead), one round trip and one commit instead of five round trips.
import { rememberLocation } from '../../core/decide.js';
import { kindLockState } from '../../core/lockout.js';
import type { FailureState, TotpState } from '../../core/model.js';
import { isNewCountry, type NoticeEvent } from '../../core/notices.js';
import { sameHash } from '../../security/hash.js';
import type { AttemptToSettle, FailureEffects, Locked, SuccessEffects } from '../../services/store-ports.js';
import type { Db, Queryable } from './pool.js';
import { placesParts, readMailboxRow, rowVersionOf, writeEffects, type Places } from './rows.js';
import { failedExpr, failureSets, failureState, lockedExpr, Params, succeededExpr, untilExpr } from './sql.js';
import { settlementCall } from './throttles.js';

type Verdict<O extends string> = { outcome: O; until: number | null };

function locked(v: { until: number | null }): Locked {
  return { outcome: 'locked', until: v.until };
}

/**
 * What a success does besides its verdict (store-ports.ts SuccessEffects), in its transaction
 * under the row lock the verdict took, as the file store's does it: the location remembered,
 * then `events` (the operation's own, and new-country when none of the countries remembered
 * before is the login's) queued on the record as it is after that. The record is read once, by a
 * statement of its own so that it sees the latest committed lists and the verdict's own writes,
 * and what changed is written in one statement.
 */
async function succeeded(c: Queryable, address: string, success: SuccessEffects, events: NoticeEvent[] = []): Promise<void> {
  const { location, notices } = success;
  if (location === null && (notices === undefined || events.length === 0)) return;
  const rec = await readMailboxRow(c, address);
  if (rec === undefined) return;
  const places = location === null ? undefined : rememberLocation(rec, location.ip, location.country, success.now, location.policy);
  if (notices === undefined) return writeEffects(c, address, { places });
  if (location !== null && isNewCountry(rec.countries, location.country, success.now, location.policy)) events.push({ kind: 'new-country' });
  const after = places === undefined ? rec : { ...rec, ips: places.ips, countries: places.countries };
  const queued = events.length === 0 ? after : notices.queue(after, events);
  await writeEffects(c, address, queued.notices === after.notices ? { places } : { places, notices: queued.notices });
}

/**
 * A counted failure's notice, in its transaction: mailbox-locked when its kind is locked now. The
 * statement that counted it refused a mailbox locked before ('locked'), so a lock now is the one
 * this failure started (core/notices.ts lockNotice).
 */
async function failed(c: Queryable, address: string, failure: FailureEffects): Promise<void> {
  if (failure.notices === undefined) return;
  const rec = await readMailboxRow(c, address);
  if (rec === undefined) return;
  const lock = kindLockState(rec.failures, failure.kind, failure.now);
  if (!lock.locked) return;
  const next = failure.notices.queue(rec, [{ kind: 'mailbox-locked', until: lock.until }]);
  if (next.notices !== rec.notices) await writeEffects(c, address, { notices: next.notices });
}

/**
 * A success's effects worked out from the record it was decided on (SuccessEffects.basis), for
 * the verdict's own statement to write when that record is still the row's latest version: its
 * remembered places, when it queues no notice (a new country's is left to the transaction, which
 * reads the record under the lock, unless the queue is inert for the record).
 */
interface Ahead {
  /** The version of the row the basis was read from (rows.ts rowVersionOf). */
  version: string;
  places: Places | undefined;
  /** The code check's reserved attempt, settled by the same statement (SuccessEffects.attempt); sweep: SourceSweepPacer's. */
  settle: { attempt: AttemptToSettle; sweep: boolean } | undefined;
}

/** How an operation of the state ports (state-ports.ts) lets a success's statement settle its attempt. */
export interface SettleWith {
  /** Whether a settlement now should sweep other sources' idle rows (SourceSweepPacer.due). */
  sweepDue(now: number): boolean;
}

/** Undefined: not ahead (no basis read by this store, or a notice to queue). */
function effectsAhead(success: SuccessEffects, settleWith: SettleWith | undefined): Ahead | undefined {
  const { basis, location, notices, attempt } = success;
  const version = basis === undefined ? undefined : rowVersionOf(basis);
  if (basis === undefined || version === undefined) return undefined;
  if (location !== null && notices !== undefined && !(notices.inert?.(basis) ?? false) && isNewCountry(basis.countries, location.country, success.now, location.policy)) return undefined;
  const places = location === null ? undefined : rememberLocation(basis, location.ip, location.country, success.now, location.policy);
  const settle = attempt === undefined || attempt.settled || settleWith === undefined ? undefined : { attempt, sweep: settleWith.sweepDue(attempt.now) };
  return { version, places, settle };
}

/**
 * One statement deciding on the mailbox's locked row; `decide` is the CASE naming the outcome.
 * With `ahead`, it writes only a success, and with it the success's effects, and only when the
 * locked row is the version they were worked out from (`fresh`); a failure or a stale basis
 * writes nothing and is decided again by the transaction.
 */
function verdictStatement(
  p: Params,
  address: string,
  at: { success: SuccessEffects | null; failure: FailureEffects | null; lockKind: SuccessEffects['kind'] },
  shape: { decide: string; extra?: string; sets: (failWhen: string, succWhen: string) => string; failOn: string[]; succeedOn: string[]; alsoSelect?: string },
  ahead?: Ahead,
): string {
  const a = p.add(address, 'text');
  const fail = at.failure === null ? 'NULL::memfa_failure' : failedExpr('cur', at.failure.kind, p.add(at.failure.now, 'bigint'), at.failure.policy, p);
  const succ = at.success === null ? 'NULL::memfa_failure' : succeededExpr('cur', at.success.kind);
  const inList = (xs: string[]) => (xs.length === 0 ? 'false' : `v.outcome IN (${xs.map((x) => `'${x}'`).join(', ')})`);
  const failWhen = inList(shape.failOn);
  const succWhen = inList(shape.succeedOn);
  const failures = failureSets(at.failure === null ? null : { kind: at.failure.kind, when: failWhen }, at.success === null ? null : { kind: at.success.kind, when: succWhen });
  const sNow = at.success === null ? 'NULL' : p.add(at.success.now, 'bigint');
  const fNow = at.failure === null ? 'NULL' : p.add(at.failure.now, 'bigint');
  const extra = [shape.extra, ahead === undefined ? undefined : `cur.row_version = ${p.add(ahead.version, 'text')} AS fresh`].filter((x) => x !== undefined);
  const writes = ahead === undefined ? `(${failWhen} OR ${succWhen})` : `v.fresh AND ${succWhen}`;
  const places = ahead?.places === undefined ? '' : `,\n  ${placesParts(p, address, ahead.places, writes)}`;
  // A success settles its attempt with outcome 'none' (it starts no block: nothing of the answer
  // is read). Referenced by the answer below: a CTE that only reads runs only when something reads it.
  const settle = ahead?.settle === undefined ? '' : `,\n  settled AS (SELECT ${settlementCall(p, ahead.settle.attempt, 'none', ahead.settle.sweep)} FROM v WHERE ${writes})`;
  const select = [shape.alsoSelect, ahead === undefined ? undefined : 'fresh', ahead?.settle === undefined ? undefined : '(SELECT count(*) FROM settled) AS settled'].filter((x) => x !== undefined);
  return `WITH cur AS (SELECT *${ahead === undefined ? '' : ', xmin::text AS row_version'} FROM mailboxes WHERE address = ${a} FOR UPDATE),
  v AS (SELECT cur.*, ${shape.decide} AS outcome, ${fail} AS fail, ${succ} AS succ,
    ${untilExpr('cur', at.lockKind)} AS until${extra.map((x) => `, ${x}`).join('')} FROM cur),
  upd AS (UPDATE mailboxes m SET ${[shape.sets(failWhen, succWhen), failures].filter((s) => s !== '').join(',\n    ')},
    updated_at = CASE WHEN ${succWhen} THEN ${sNow} WHEN ${failWhen} THEN ${fNow} ELSE m.updated_at END
    FROM v WHERE m.address = v.address AND ${writes})${places}${settle}
  SELECT outcome, until${select.map((x) => `, ${x}`).join('')} FROM v`;
}

/**
 * The verdict of `statement` (built with `ahead`) in one round trip and one commit, as the
 * answer when it needed nothing more: no row (undefined: the caller's 'changed'), an outcome that
 * writes nothing, or a success written with its effects. Null: the transaction decides again.
 */
async function decidedAhead<V extends { outcome: string }>(
  db: Db,
  statement: (p: Params, ahead: Ahead) => string,
  ahead: Ahead,
  succeedOn: string[],
  failOn: string[],
): Promise<(V & { fresh: boolean }) | undefined | null> {
  const p = new Params();
  const text = statement(p, ahead);
  const { rows } = await db.query<V & { fresh: boolean }>(text, p.values);
  const v = rows[0];
  if (v === undefined) return undefined;
  if (succeedOn.includes(v.outcome)) {
    if (!v.fresh) return null;
    if (ahead.settle !== undefined) ahead.settle.attempt.settled = true;
    return v;
  }
  return failOn.includes(v.outcome) ? null : v;
}

export async function acceptTotpStep(db: Db, address: string, sealedSecret: string, step: number, at: { success: SuccessEffects; failure: FailureEffects }, settleWith?: SettleWith) {
  type Outcome = 'accepted' | 'reused' | 'changed';
  const FAIL_ON = ['reused'];
  const SUCCEED_ON = ['accepted'];
  const statement = (p: Params, ahead?: Ahead) => {
    const now = p.add(at.success.now, 'bigint');
    const secret = p.add(sealedSecret, 'text');
    const s = p.add(step, 'bigint');
    return verdictStatement(p, address, { ...at, lockKind: at.success.kind }, {
      decide: `CASE WHEN cur.totp_sealed IS DISTINCT FROM ${secret} THEN 'changed'
        WHEN ${lockedExpr('cur', at.success.kind, now)} THEN 'locked'
        WHEN cur.totp_last_step IS NOT NULL AND ${s} <= cur.totp_last_step THEN 'reused' ELSE 'accepted' END`,
      sets: (_f, succWhen) => `totp_last_step = CASE WHEN ${succWhen} THEN ${s} ELSE m.totp_last_step END`,
      failOn: FAIL_ON,
      succeedOn: SUCCEED_ON,
    }, ahead);
  };
  const ahead = effectsAhead(at.success, settleWith);
  if (ahead !== undefined) {
    const v = await decidedAhead<Verdict<Outcome | 'locked'>>(db, statement, ahead, SUCCEED_ON, FAIL_ON);
    if (v === undefined) return { outcome: 'changed' as const };
    if (v !== null) return v.outcome === 'locked' ? locked(v) : { outcome: v.outcome };
  }
  return db.tx(async (c): Promise<{ outcome: Outcome } | Locked> => {
    const p = new Params();
    const text = statement(p);
    const { rows } = await c.query<Verdict<Outcome | 'locked'>>(text, p.values);
    const v = rows[0];
    if (v === undefined) return { outcome: 'changed' };
    if (v.outcome === 'locked') return locked(v);
    if (v.outcome === 'accepted') await succeeded(c, address, at.success);
    if (v.outcome === 'reused') await failed(c, address, at.failure);
    return { outcome: v.outcome };
  });
}

export async function recordFailure(db: Db, address: string, failure: FailureEffects): Promise<{ outcome: 'counted'; state: FailureState } | Locked | null> {
  const p = new Params();
  const now = p.add(failure.now, 'bigint');
  const text = verdictStatement(p, address, { success: null, failure, lockKind: failure.kind }, {
    decide: `CASE WHEN ${lockedExpr('cur', failure.kind, now)} THEN 'locked' ELSE 'counted' END`,
    sets: () => '',
    failOn: ['counted'],
    succeedOn: [],
    alsoSelect: '(fail).consecutive, (fail).locked_until, (fail).hard_locked, (fail).last_failure_at',
  });
  return db.tx(async (c) => {
    const { rows } = await c.query<Verdict<'counted' | 'locked'> & { consecutive: number; locked_until: number | null; hard_locked: boolean; last_failure_at: number | null }>(text, p.values);
    const v = rows[0];
    if (v === undefined) return null;
    if (v.outcome === 'locked') return locked(v);
    await failed(c, address, failure);
    return { outcome: 'counted' as const, state: failureState(v) };
  });
}

const CODE_COLUMNS = ['code_hash', 'code_sealed', 'code_provider', 'code_destination', 'code_created_at', 'code_expires_at', 'code_sends', 'code_last_sent_at'];

export async function tryOpenCode(db: Db, address: string, hash: string, at: { maxTries: number; success: SuccessEffects; failure: FailureEffects }, settleWith?: SettleWith) {
  type Outcome = 'ok' | 'code-invalid' | 'code-expired' | 'no-open-code';
  const FAIL_ON = ['code-invalid', 'code-expired', 'no-open-code'];
  const SUCCEED_ON = ['ok'];
  const statement = (p: Params, ahead?: Ahead) => {
    const now = p.add(at.success.now, 'bigint');
    const h = p.add(hash, 'text');
    const max = p.add(at.maxTries, 'integer');
    // The code is compared by its keyed hash: equality of two HMACs tells nothing of the code.
    return verdictStatement(p, address, { ...at, lockKind: at.success.kind }, {
      decide: `CASE WHEN ${lockedExpr('cur', at.success.kind, now)} THEN 'locked' WHEN cur.code_hash IS NULL THEN 'no-open-code'
        WHEN cur.code_expires_at <= ${now} THEN 'code-expired' WHEN cur.code_hash = ${h} THEN 'ok' ELSE 'code-invalid' END`,
      extra: `(cur.code_hash IS NOT NULL AND (cur.code_expires_at <= ${now} OR cur.code_hash = ${h} OR cur.code_failed_tries + 1 >= ${max})) AS clear`,
      sets: () =>
        [
          ...CODE_COLUMNS.map((col) => `${col} = CASE WHEN v.clear AND v.outcome <> 'locked' THEN NULL ELSE m.${col} END`),
          `code_failed_tries = CASE WHEN v.outcome = 'locked' THEN m.code_failed_tries WHEN v.clear THEN NULL WHEN v.outcome = 'code-invalid' THEN m.code_failed_tries + 1 ELSE m.code_failed_tries END`,
        ].join(',\n    '),
      failOn: FAIL_ON,
      succeedOn: SUCCEED_ON,
      alsoSelect: 'code_provider AS provider',
    }, ahead);
  };
  type Row = Verdict<Outcome | 'locked'> & { provider: 'sms' | 'email' | null };
  // Ahead only for the code the record was holding: any other is a failure, which the
  // transaction decides (one statement ahead would be wasted on every wrong code).
  const open = at.success.basis?.openCode;
  const ahead = open !== null && open !== undefined && sameHash(open.hash, hash) ? effectsAhead(at.success, settleWith) : undefined;
  if (ahead !== undefined) {
    const v = await decidedAhead<Row>(db, statement, ahead, SUCCEED_ON, FAIL_ON);
    if (v === undefined) return { outcome: 'no-open-code' as const, provider: null };
    if (v !== null) return v.outcome === 'locked' ? locked(v) : { outcome: v.outcome, provider: v.provider };
  }
  return db.tx(async (c): Promise<{ outcome: Outcome; provider: 'sms' | 'email' | null } | Locked> => {
    const p = new Params();
    const text = statement(p);
    const { rows } = await c.query<Row>(text, p.values);
    const v = rows[0];
    if (v === undefined) return { outcome: 'no-open-code', provider: null };
    if (v.outcome === 'locked') return locked(v);
    if (v.outcome === 'ok') await succeeded(c, address, at.success);
    else await failed(c, address, at.failure);
    return { outcome: v.outcome, provider: v.outcome === 'no-open-code' ? null : v.provider };
  });
}

export async function consumeRecoveryCode(db: Db, address: string, hash: string, at: { success: SuccessEffects; failure: FailureEffects }) {
  return db.tx(async (c): Promise<{ outcome: 'ok'; left: number } | { outcome: 'code-invalid' } | Locked> => {
    const p = new Params();
    const a = p.add(address, 'text');
    const now = p.add(at.success.now, 'bigint');
    const h = p.add(hash, 'text');
    const fNow = p.add(at.failure.now, 'bigint');
    // The code's row goes in the same statement that decides: of two daemons consuming the same
    // code, the second's DELETE finds it gone (and counts a failure). A replacement of all the
    // codes committed while this statement waited for the row lock is not seen by its snapshot:
    // the code is then refused, never accepted twice.
    const text = `WITH cur AS (SELECT * FROM mailboxes WHERE address = ${a} FOR UPDATE),
      l AS (SELECT cur.*, ${lockedExpr('cur', at.success.kind, now)} AS locked FROM cur),
      del AS (DELETE FROM recovery_codes r USING l WHERE r.address = l.address AND NOT l.locked
        AND r.ord = (SELECT min(x.ord) FROM recovery_codes x WHERE x.address = ${a} AND x.hash = ${h}) RETURNING r.ord),
      v AS (SELECT l.*, CASE WHEN l.locked THEN 'locked' WHEN EXISTS (SELECT 1 FROM del) THEN 'ok' ELSE 'code-invalid' END AS outcome,
        ${failedExpr('l', at.failure.kind, fNow, at.failure.policy, p)} AS fail, ${succeededExpr('l', at.success.kind)} AS succ,
        ${untilExpr('l', at.success.kind)} AS until FROM l),
      upd AS (UPDATE mailboxes m SET ${failureSets({ kind: at.failure.kind, when: "v.outcome = 'code-invalid'" }, { kind: at.success.kind, when: "v.outcome = 'ok'" })},
        updated_at = CASE WHEN v.outcome = 'ok' THEN ${now} ELSE ${fNow} END
        FROM v WHERE m.address = v.address AND v.outcome <> 'locked')
      SELECT outcome, until FROM v`;
    const { rows } = await c.query<Verdict<'ok' | 'code-invalid' | 'locked'>>(text, p.values);
    const v = rows[0];
    if (v === undefined) return { outcome: 'code-invalid' };
    if (v.outcome === 'locked') return locked(v);
    if (v.outcome === 'code-invalid') {
      await failed(c, address, at.failure);
      return { outcome: 'code-invalid' };
    }
    // A statement of its own, under the row lock: it sees every change committed before it.
    const counted = await c.query<{ n: number }>('SELECT count(*) AS n FROM recovery_codes WHERE address = $1', [address]);
    const left = counted.rows[0]!.n;
    await succeeded(c, address, at.success, [{ kind: 'recovery-code-used', left }]);
    return { outcome: 'ok', left };
  });
}

export async function activatePending(db: Db, address: string, sealedSecret: string, step: number | null, at: { success: SuccessEffects; requireProved: boolean }) {
  return db.tx(async (c): Promise<{ outcome: 'activated' | 'changed' | 'unproved' } | Locked> => {
    const p = new Params();
    const now = p.add(at.success.now, 'bigint');
    const secret = p.add(sealedSecret, 'text');
    const s = p.add(step, 'bigint');
    // A forced activation (no code) is an administrator's; a code is checked like any factor.
    const checkLock = step === null ? 'false' : lockedExpr('cur', at.success.kind, now);
    const text = verdictStatement(p, address, { success: at.success, failure: null, lockKind: at.success.kind }, {
      decide: `CASE WHEN cur.pending_sealed IS DISTINCT FROM ${secret} OR cur.pending_expires_at <= ${now} THEN 'changed'
        WHEN ${checkLock} THEN 'locked' WHEN ${p.add(at.requireProved, 'boolean')} AND cur.pending_proved IS NOT TRUE THEN 'unproved' ELSE 'activated' END`,
      sets: (_f, succWhen) =>
        [
          `totp_sealed = CASE WHEN ${succWhen} THEN ${secret} ELSE m.totp_sealed END`,
          `totp_activated_at = CASE WHEN ${succWhen} THEN ${now} ELSE m.totp_activated_at END`,
          `totp_last_step = CASE WHEN ${succWhen} THEN ${s} ELSE m.totp_last_step END`,
          ...['pending_sealed', 'pending_created_at', 'pending_expires_at', 'pending_proved'].map((col) => `${col} = CASE WHEN ${succWhen} THEN NULL ELSE m.${col} END`),
        ].join(',\n    '),
      failOn: [],
      succeedOn: ['activated'],
    });
    const { rows } = await c.query<Verdict<'activated' | 'changed' | 'unproved' | 'locked'>>(text, p.values);
    const v = rows[0];
    if (v === undefined) return { outcome: 'changed' };
    if (v.outcome === 'locked') return locked(v);
    if (v.outcome === 'activated') await succeeded(c, address, at.success, [{ kind: 'totp-enrolled' }]);
    return { outcome: v.outcome };
  });
}

export async function createEnrolled(db: Db, address: string, totp: TotpState, success: SuccessEffects): Promise<'created' | 'exists'> {
  return db.tx(async (c) => {
    const { rows } = await c.query(
      `INSERT INTO mailboxes (address, totp_sealed, totp_activated_at, totp_last_step, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (address) DO NOTHING RETURNING address`,
      [address, totp.sealedSecret, totp.activatedAt, totp.lastAcceptedStep, success.now],
    );
    if (rows.length === 0) return 'exists';
    await succeeded(c, address, success, [{ kind: 'totp-enrolled' }]);
    return 'created';
  });
}
