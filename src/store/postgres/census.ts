// The census of locks (services/lock-census.ts) on the shared database: the daemon keeps no
// mailbox's failures in memory, so the database counts them, with the rules of
// migrations/002_rules.sql (memfa_locked) as core/lockout.ts's lockState and ipSourceBlock say.
// One statement, over the mailboxes that have failures (an index of those alone), the failures
// of mailboxes without a record and the per-source throttle's rows; run in the background at most
// once per census interval, the census reading the last count at once.
import type { IpThrottlePolicy } from '../../core/lockout.js';
import type { BackendLockCounts } from '../../services/store-ports.js';
import type { Db } from './pool.js';

async function countLocks(db: Db, now: number, sources: IpThrottlePolicy): Promise<BackendLockCounts> {
  const { rows } = await db.query<{ lockout: number; hard_lock: number; blocked: number }>(
    `WITH m AS (
       SELECT COALESCE(known_hard_locked, false) OR COALESCE(elsewhere_hard_locked, false) AS hard,
              memfa_locked(known_hard_locked, known_locked_until, $1) OR memfa_locked(elsewhere_hard_locked, elsewhere_locked_until, $1) AS locked
       FROM mailboxes WHERE known_consecutive IS NOT NULL OR elsewhere_consecutive IS NOT NULL
       UNION ALL
       SELECT hard_locked, memfa_locked(hard_locked, locked_until, $1) FROM unstored_failures)
     SELECT (SELECT count(*) FROM m WHERE locked AND NOT hard) AS lockout,
            (SELECT count(*) FROM m WHERE hard) AS hard_lock,
            (SELECT count(*) FROM ip_sources
              WHERE (f_failures IS NOT NULL AND f_locked_until IS NOT NULL AND $1 < f_locked_until)
                 OR ($1 - created_since < $2 AND created >= $3)) AS blocked`,
    [now, sources.windowMs, sources.maxFailures],
  );
  const r = rows[0]!;
  return { lockout: r.lockout, hardLock: r.hard_lock, blockedSources: r.blocked, countedAt: now };
}

/** The last count, and the next one started when it is older than the census asks. */
export class PgLockCensus {
  private last: BackendLockCounts | undefined;
  private running: Promise<void> | null = null;
  /** The last count that failed, for the tests and the logs: the census keeps the count before it. */
  lastError: Error | null = null;

  constructor(private readonly db: Db) {}

  lockCounts(now: number, maxAgeMs: number, sources: IpThrottlePolicy): BackendLockCounts | undefined {
    const stale = this.last === undefined || now - this.last.countedAt >= maxAgeMs || now < this.last.countedAt;
    if (stale && this.running === null) {
      this.running = countLocks(this.db, now, sources).then(
        (counts) => {
          this.last = counts;
          this.lastError = null;
        },
        (err: unknown) => {
          this.lastError = err instanceof Error ? err : new Error(String(err));
        },
      );
      void this.running.finally(() => {
        this.running = null;
      });
    }
    return this.last;
  }

  /** Resolves when the count under way (if any) is done: for a shutdown, and for the tests. */
  async settled(): Promise<void> {
    await this.running;
  }
}
