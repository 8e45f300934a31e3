// The PostgreSQL store against the file store's ports (over the in-memory store the service tests
// use), on the same generated sequence of operations: every answer and, at the end, every record
// and throttle state must be the same. The contract suite tests what each operation promises; this
// catches what it does not spell out (the order of remembered places, updatedAt, what a refused
// operation leaves).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IpThrottlePolicy, LockoutPolicy } from '../src/core/lockout.js';
import { newMailbox, noFailures, type OpenCode } from '../src/core/model.js';
import type { FailureEffects, StatePorts, SuccessEffects } from '../src/services/store-ports.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const STEPS = 1500;
const MAILBOXES = ['a@d.test', 'b@d.test', 'c@e.test'];
const IPS = ['192.0.2.1', '192.0.2.2', '198.51.100.3', '2001:db8::1'];
const LOCKOUT: LockoutPolicy = { threshold: 3, baseDelayMs: 60_000, maxDelayMs: 600_000, hardLockAfter: 12 };
const SOURCES: IpThrottlePolicy = { maxFailures: 4, windowMs: 300_000, distinctMailboxes: 2, blockMs: 120_000 };
const missing = postgresMissing();

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
  return { int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!, chance: (p: number) => next() < p };
}

describe(`PostgreSQL store = file store on one sequence of operations${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let db: Db;
  before(async () => {
    cluster = await startPostgres();
    db = new Db(createPool(pgSettings(cluster, await cluster.createDatabase())));
    await migrate(db);
  });
  after(async () => {
    await db?.close();
    await cluster?.stop();
  });

  it(`${STEPS} generated operations: the same answers, records and throttle states`, async () => {
    const file: StatePorts = new FileStatePorts(new MemoryStore());
    const pgPorts: StatePorts = new PgStatePorts(db);
    const r = rng(2026);
    let now = T0;
    // `op` runs twice (once per backend): every random draw is made before it, never inside.
    const both = async <T>(label: string, op: (p: StatePorts) => Promise<T>): Promise<void> => {
      const [a, b] = [await op(file), await op(pgPorts)];
      if (process.env['DIFF_TRACE']) console.log(label, JSON.stringify(a));
      assert.deepEqual(b, a, `step ${label}`);
    };
    for (const address of MAILBOXES.slice(0, 2)) {
      const rec = { ...newMailbox(address, T0), totp: { sealedSecret: 'v1.s', activatedAt: T0, lastAcceptedStep: 0 }, recoveryCodeHashes: ['h:1', 'h:2', 'h:3', 'h:1'] };
      await both('seed', (p) => p.updateMailbox(address, () => ({ next: rec, result: null })));
    }
    let step = 1;
    for (let i = 0; i < STEPS; i++) {
      now += r.pick([0, 1, 1000, 30_000, 61_000, 200_000]);
      const address = r.pick(MAILBOXES);
      const ip = r.pick(IPS);
      const kind = r.chance(0.3) ? ('known' as const) : ('elsewhere' as const);
      const success: SuccessEffects = { kind, now, location: r.chance(0.8) ? { ip, country: r.pick(['DE', 'NL', null]), policy: { maxEntries: 2, maxAgeMs: 900_000 } } : null };
      const failure: FailureEffects = { kind, now, policy: LOCKOUT };
      const label = `${i} (${address})`;
      switch (r.int(0, 14)) {
        case 0: {
          step += r.int(-1, 2);
          const secret = r.chance(0.9) ? 'v1.s' : 'v1.other';
          await both(`${label} acceptTotpStep`, (p) => p.acceptTotpStep(address, secret, step, { success, failure }));
          break;
        }
        case 1:
          await both(`${label} recordFailure`, (p) => p.recordFailure(address, failure));
          break;
        case 2: {
          const code: OpenCode = { hash: `c:${r.int(1, 3)}`, provider: r.pick(['sms', 'email'] as const), destination: 'x', createdAt: now, expiresAt: now + r.pick([1000, 120_000]), failedTries: 0, sends: 1, lastSentAt: now };
          await both(`${label} openCode`, (p) => p.openCode(address, code));
          break;
        }
        case 3: {
          const hash = `c:${r.int(1, 3)}`;
          await both(`${label} tryOpenCode`, (p) => p.tryOpenCode(address, hash, { maxTries: 2, success, failure }));
          break;
        }
        case 4: {
          const hash = `h:${r.int(1, 4)}`;
          await both(`${label} consumeRecoveryCode`, (p) => p.consumeRecoveryCode(address, hash, { success, failure }));
          break;
        }
        case 5:
          await both(`${label} countGraceLogin`, (p) => p.countGraceLogin(address, 3, now));
          break;
        case 6: {
          const fresh = { sealedSecret: `v1.p${r.int(1, 2)}`, createdAt: now, expiresAt: now + r.pick([60_000, 600_000]), ...(r.chance(0.5) ? { factorProved: true as const } : {}) };
          const opts = { restart: r.chance(0.2), needProved: r.chance(0.3) };
          await both(`${label} pendingOrNew`, (p) => p.pendingOrNew(address, fresh, now, opts));
          break;
        }
        case 7: {
          const secret = `v1.p${r.int(1, 2)}`;
          const s = r.chance(0.3) ? null : step;
          const requireProved = r.chance(0.3);
          await both(`${label} activatePending`, (p) => p.activatePending(address, secret, s, { success, requireProved }));
          break;
        }
        case 8: {
          const keys = [`m:${address}`, `d:${r.int(1, 2)}`];
          await both(`${label} claimSend`, (p) => p.claimSend(keys, now, { cooldownMs: 30_000, hourlyLimit: 3 }));
          break;
        }
        case 9: {
          const source = r.pick(IPS);
          const creates = r.chance(0.3);
          await both(`${label} reserveAttempt`, (p) => p.reserveAttempt(source, address, creates, now, SOURCES));
          const outcome = r.pick(['failure', 'created', 'none'] as const);
          await both(`${label} settleAttempt`, (p) => p.settleAttempt(source, address, creates, outcome, now, SOURCES));
          break;
        }
        case 10: {
          const ghost = `ghost${r.int(1, 2)}@d.test`;
          await both(`${label} recordUnstoredFailure ${ghost} at ${now}`, (p) => p.recordUnstoredFailure(ghost, now, LOCKOUT));
          break;
        }
        case 11: {
          const hash = `c:${r.int(1, 3)}`;
          if (r.chance(0.5)) await both(`${label} codeResent`, (p) => p.codeResent(address, hash, now));
          else await both(`${label} closeCode`, (p) => p.closeCode(address, hash));
          break;
        }
        case 12: {
          const key = r.pick(IPS);
          await both(`${label} recordWindowFailure`, (p) => p.recordWindowFailure('app', key, address, now, SOURCES));
          break;
        }
        case 14:
          // An administrator's unlock, so that the sequence does not end with every mailbox locked.
          await both(`${label} unlock`, (p) => p.updateMailbox(address, (cur) => (cur === undefined ? { result: false } : { next: { ...cur, failures: noFailures(), updatedAt: now }, result: true })));
          break;
        case 13: {
          const totp = { sealedSecret: 'v1.s', activatedAt: now, lastAcceptedStep: step };
          await both(`${label} createEnrolled`, (p) => p.createEnrolled(address, totp, success));
          break;
        }
      }
      if (i % 100 === 99) {
        for (const a of MAILBOXES) await both(`${label} record ${a}`, (p) => p.getMailbox(a));
      }
    }
    for (const a of MAILBOXES) await both(`end: record ${a}`, (p) => p.getMailbox(a));
    for (const g of ['ghost1@d.test', 'ghost2@d.test']) await both(`end: unstored ${g}`, (p) => p.unstoredFailures(g, now, LOCKOUT));
    await both('end: sources', async (p) => (await p.listSources()).sort((x, y) => (x.source < y.source ? -1 : 1)));
    for (const key of IPS) await both(`end: window ${key}`, (p) => p.windowState('app', key));
  });
});
