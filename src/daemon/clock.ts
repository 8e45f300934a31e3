// The daemon's clock. The services take every time from it and hand it to the state ports as an
// argument (services/store-ports.ts): with several daemons on one database, those times are
// compared across nodes (locks, expiries, send windows, job claims), so on PostgreSQL the clock
// is this node's corrected by its measured offset to the database's clock, measured again
// periodically. A measurement is taken only when its round trip is short (its error is at most
// half of it); the correction is bounded, and logged when it moves. On the file store, the clock
// is this node's.
//
// Tests of expiry and lockout timing set MEMFA_UNSAFE_TEST_CLOCK to a file holding an offset in
// milliseconds, read at every tick, on top; production never sets it, and the daemon warns loudly
// when it is set.
import { readFileSync } from 'node:fs';
import type { ClockCheck } from '../store/postgres/open.js';
import type { Logger } from './logger.js';

/** How often the offset to the database's clock is measured again. */
export const CLOCK_MEASURE_MS = 60_000;
/** A measurement whose round trip took longer says too little (its error is half of it): skipped. */
export const CLOCK_MAX_ROUND_TRIP_MS = 250;
/** The largest correction applied; a larger difference is logged as an error and corrected this far only. */
export const CLOCK_MAX_CORRECTION_MS = 10 * 60_000;
/** A change of the offset smaller than this is noise of the measurement, not logged. */
const CLOCK_LOG_MOVE_MS = 100;

export interface DaemonClock {
  now: () => number;
  /** The correction applied now, in ms (the database's clock minus this node's). */
  offsetMs(): number;
  stop(): void;
}

/** MEMFA_UNSAFE_TEST_CLOCK's offset reader, or null when it is not set. */
function testOffset(log: Logger): (() => number) | null {
  const file = process.env['MEMFA_UNSAFE_TEST_CLOCK'];
  if (!file) return null;
  log.warn('unsafe-test-clock', { file, why: 'MEMFA_UNSAFE_TEST_CLOCK is set: time can be shifted by whoever writes this file; never set it in production' });
  return () => {
    try {
      return Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      return 0;
    }
  };
}

function bounded(skewMs: number): number {
  return Math.max(-CLOCK_MAX_CORRECTION_MS, Math.min(CLOCK_MAX_CORRECTION_MS, skewMs));
}

/**
 * The clock of a daemon: this node's, or (with `measure`, PostgreSQL) this node's corrected by the
 * offset to the database's, starting from `first` and measured again every `intervalMs`.
 */
export function daemonClock(log: Logger, database: { measure: (now: () => number) => Promise<ClockCheck>; first: ClockCheck; intervalMs?: number } | null): DaemonClock {
  const test = testOffset(log);
  let offset = 0;
  let timer: NodeJS.Timeout | null = null;
  const take = (check: ClockCheck, initial: boolean) => {
    if (check.roundTripMs > CLOCK_MAX_ROUND_TRIP_MS) {
      log.debug('clock-measure-skipped', { roundTripMs: check.roundTripMs, limitMs: CLOCK_MAX_ROUND_TRIP_MS });
      return;
    }
    const next = bounded(check.skewMs);
    if (next !== check.skewMs) log.error('clock-skew-too-large', { skewMs: check.skewMs, correctedMs: next, hint: "synchronise this node's clock and the database's (NTP)" });
    if (initial || Math.abs(next - offset) >= CLOCK_LOG_MOVE_MS) log.info('clock-offset', { offsetMs: next, previousMs: initial ? null : offset, roundTripMs: check.roundTripMs, source: 'database' });
    offset = next;
  };
  if (database !== null) {
    take(database.first, true);
    const measure = database.measure;
    timer = setInterval(() => {
      measure(Date.now).then(
        (check) => take(check, false),
        // The database unreachable for a while: the last offset holds (the clocks drift slowly).
        (err: Error) => log.debug('clock-measure-failed', { error: err.message }),
      );
    }, database.intervalMs ?? CLOCK_MEASURE_MS);
    timer.unref();
  }
  const now = test === null ? () => Date.now() + offset : () => Date.now() + offset + test();
  return {
    now,
    offsetMs: () => offset,
    stop: () => {
      if (timer !== null) clearInterval(timer);
    },
  };
}
