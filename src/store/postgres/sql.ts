// Small pieces the store's statements are built from: numbered parameters, and the failure
// columns of a mailbox (one set per kind of login, core/lockout.ts) as the rules of
// migrations/002_rules.sql read and write them. Only fixed words (a kind, a column) are ever put
// into a statement's text; every value is a parameter.
import type { FailureKind, LockoutPolicy } from '../../core/lockout.js';
import type { FailureState } from '../../core/model.js';

/** The parameters of one statement: add() returns the placeholder of a value, cast to `type`. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown, type?: 'bigint' | 'integer' | 'text' | 'boolean' | 'text[]' | 'bigint[]'): string {
    this.values.push(value);
    return type === undefined ? `$${this.values.length}` : `$${this.values.length}::${type}`;
  }
}

const FIELDS = ['consecutive', 'locked_until', 'hard_locked', 'last_failure_at'] as const;
const KINDS: readonly FailureKind[] = ['known', 'elsewhere'];

/** The kind as a column prefix: only the two words, whatever a caller passes at run time. */
function col(kind: FailureKind): FailureKind {
  if (!KINDS.includes(kind)) throw new Error(`not a failure kind: ${String(kind)}`);
  return kind;
}

/** `memfa_locked(...)` of `kind` on the row aliased `row`, at `now` (a placeholder). */
export function lockedExpr(row: string, kind: FailureKind, now: string): string {
  col(kind);
  return `memfa_locked(${row}.${kind}_hard_locked, ${row}.${kind}_locked_until, ${now})`;
}

/** The lock's end as lockState tells it: null for a hard lock. */
export function untilExpr(row: string, kind: FailureKind): string {
  col(kind);
  return `CASE WHEN ${row}.${kind}_hard_locked THEN NULL ELSE ${row}.${kind}_locked_until END`;
}

/** The state after one more failure of `kind` (core/lockout.ts recordFailure), as `memfa_failure`. */
export function failedExpr(row: string, kind: FailureKind, now: string, policy: LockoutPolicy, p: Params): string {
  col(kind);
  return `memfa_failed(${row}.${kind}_consecutive, ${row}.${kind}_locked_until, ${row}.${kind}_hard_locked, ${now}, ${p.add(policy.threshold, 'integer')}, ${p.add(
    policy.baseDelayMs,
    'bigint',
  )}, ${p.add(policy.maxDelayMs, 'bigint')}, ${p.add(policy.hardLockAfter, 'integer')})`;
}

/** The state after a success of `kind` (recordKindSuccess: a hard lock survives). */
export function succeededExpr(row: string, kind: FailureKind): string {
  col(kind);
  return `memfa_succeeded(${row}.${kind}_consecutive, ${row}.${kind}_locked_until, ${row}.${kind}_hard_locked, ${row}.${kind}_last_failure_at)`;
}

/**
 * The SET items of an UPDATE of mailboxes `m` FROM a verdict row `v` that carries `fail` and
 * `succ` (memfa_failure): the failure kind's columns take `fail` when `failWhen`, the success
 * kind's take `succ` when `succWhen`, everything else stays.
 */
export function failureSets(fail: { kind: FailureKind; when: string } | null, succ: { kind: FailureKind; when: string } | null): string {
  if (fail !== null) col(fail.kind);
  if (succ !== null) col(succ.kind);
  const items: string[] = [];
  for (const kind of KINDS) {
    const cases: string[] = [];
    for (const f of FIELDS) {
      const whens = [fail?.kind === kind ? `WHEN ${fail.when} THEN (v.fail).${f}` : '', succ?.kind === kind ? `WHEN ${succ.when} THEN (v.succ).${f}` : ''].filter((w) => w !== '');
      if (whens.length > 0) cases.push(`${kind}_${f} = CASE ${whens.join(' ')} ELSE m.${kind}_${f} END`);
    }
    items.push(...cases);
  }
  return items.join(',\n    ');
}

/** A memfa_failure composite read back as the record's FailureState. */
export function failureState(row: { consecutive: number; locked_until: number | null; hard_locked: boolean; last_failure_at: number | null }): FailureState {
  return { consecutive: row.consecutive, lockedUntil: row.locked_until, hardLocked: row.hard_locked, lastFailureAt: row.last_failure_at };
}
