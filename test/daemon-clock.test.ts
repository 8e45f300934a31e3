// The daemon's clock on PostgreSQL: this node's, corrected by the offset to the database's clock
// as measured (against a real server), measured again periodically; a measurement with a long
// round trip is skipped, a correction is bounded, and MEMFA_UNSAFE_TEST_CLOCK applies on top.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLOCK_MAX_CORRECTION_MS, CLOCK_MAX_ROUND_TRIP_MS, daemonClock } from '../src/daemon/clock.js';
import type { Logger } from '../src/daemon/logger.js';
import { checkClock, type ClockCheck } from '../src/store/postgres/open.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

type Line = { level: string; event: string; fields: Record<string, unknown> };
function logger(lines: Line[]): Logger {
  const at = (level: string) => (event: string, fields: Record<string, unknown> = {}) => void lines.push({ level, event, fields });
  return { debug: at('debug'), info: at('info'), notice: at('notice'), warn: at('warn'), error: at('error') } as Logger;
}

const missing = postgresMissing();

describe(`the daemon's clock against the database's${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let db: Db;
  before(async () => {
    cluster = await startPostgres();
    db = new Db(createPool(pgSettings(cluster, await cluster.createDatabase())));
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  it('takes the measured offset (the same host: within the round trip), logs it, and measures again', async () => {
    const lines: Line[] = [];
    const first = await checkClock(db);
    let measured = 0;
    const clock = daemonClock(logger(lines), { measure: (now) => (measured++, checkClock(db, now)), first, intervalMs: 50 });
    try {
      if (first.roundTripMs <= CLOCK_MAX_ROUND_TRIP_MS) assert.equal(clock.offsetMs(), first.skewMs, 'the measured offset is the correction');
      // One host, one clock: the offset is the measurement's error, at most half the round trip (+ rounding).
      assert.ok(Math.abs(clock.offsetMs()) <= first.roundTripMs / 2 + 1, `offset ${clock.offsetMs()} ms, round trip ${first.roundTripMs} ms`);
      assert.ok(Math.abs(clock.now() - Date.now()) <= first.roundTripMs / 2 + 2);
      assert.equal(lines.filter((l) => l.event === 'clock-offset').length, 1, 'logged at start');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(measured >= 2, `measured again: ${measured}`);
    } finally {
      clock.stop();
    }
  });

  it('skips a measurement with a long round trip, bounds a large correction, logs when it moves, and adds the test clock on top', async (t) => {
    const lines: Line[] = [];
    const checks: ClockCheck[] = [
      { skewMs: 900_000_000, roundTripMs: CLOCK_MAX_ROUND_TRIP_MS + 1 },
      { skewMs: 2_000, roundTripMs: 4 },
      { skewMs: 2_030, roundTripMs: 4 },
      { skewMs: 3 * CLOCK_MAX_CORRECTION_MS, roundTripMs: 4 },
    ];
    let i = 0;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'memfa-clock-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'offset');
    await writeFile(file, '60000');
    process.env['MEMFA_UNSAFE_TEST_CLOCK'] = file;
    let clock;
    try {
      clock = daemonClock(logger(lines), { measure: async () => checks[Math.min(i++, checks.length - 1)]!, first: { skewMs: 500, roundTripMs: 2 }, intervalMs: 20 });
    } finally {
      delete process.env['MEMFA_UNSAFE_TEST_CLOCK'];
    }
    try {
      assert.equal(clock.offsetMs(), 500);
      assert.ok(Math.abs(clock.now() - (Date.now() + 500 + 60_000)) < 50, 'the test clock on top');
      assert.ok(lines.some((l) => l.event === 'unsafe-test-clock' && l.level === 'warn'));
      const until = Date.now() + 5000;
      while (i < checks.length + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.equal(clock.offsetMs(), CLOCK_MAX_CORRECTION_MS, 'bounded');
      const moves = lines.filter((l) => l.event === 'clock-offset').map((l) => l.fields['offsetMs']);
      assert.deepEqual(moves, [500, 2_000, CLOCK_MAX_CORRECTION_MS], 'the skipped one and the 30 ms move are not logged as moves');
      assert.ok(lines.some((l) => l.event === 'clock-skew-too-large' && l.level === 'error'));
    } finally {
      clock.stop();
    }
  });
});
