// The contract every backend of the services' state ports (services/store-ports.ts) must pass:
// one set of tests, run against the file store now and the PostgreSQL store next. It checks what
// makes several daemons act as one: each check-then-act is atomic under concurrency, and time is
// what the caller passes in.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RememberPolicy } from '../../src/core/decide.js';
import type { IpThrottlePolicy, LockoutPolicy } from '../../src/core/lockout.js';
import { newMailbox, type MailboxRecord, type OpenCode } from '../../src/core/model.js';
import type { NoticeEvent, PendingNotice } from '../../src/core/notices.js';
import type { FailureEffects, NoticeQueue, StatePorts, SuccessEffects } from '../../src/services/store-ports.js';

export interface ContractBackend {
  ports: StatePorts;
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);
const LOCKOUT: LockoutPolicy = { threshold: 1000, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 5000 };
const STRICT: LockoutPolicy = { threshold: 3, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 100 };
const REMEMBER: RememberPolicy = { maxEntries: 20, maxAgeMs: 180 * 86_400_000 };
const SOURCES: IpThrottlePolicy = { maxFailures: 10, windowMs: 900_000, distinctMailboxes: 1000, blockMs: 900_000 };

const success = (now = T0, ip = '192.0.2.1'): SuccessEffects => ({ kind: 'elsewhere', now, location: { ip, country: 'DE', policy: REMEMBER } });
const failure = (now = T0, policy = LOCKOUT): FailureEffects => ({ kind: 'elsewhere', now, policy });

async function seed(ports: StatePorts, record: MailboxRecord): Promise<void> {
  await ports.updateMailbox(record.address, () => ({ next: record, result: undefined }));
}

function enrolled(address: string, sealed = 'v1.k.sealed'): MailboxRecord {
  return { ...newMailbox(address, T0), totp: { sealedSecret: sealed, activatedAt: T0, lastAcceptedStep: 100 } };
}

const count = <T>(xs: T[], pred: (x: T) => boolean) => xs.filter(pred).length;

/** A NoticeQueue that records what it was asked and queues each event on the record it is given. */
function recordingQueue(): { queue: NoticeQueue; calls: { address: string; events: NoticeEvent[] }[] } {
  const calls: { address: string; events: NoticeEvent[] }[] = [];
  const queue: NoticeQueue = {
    queue(rec, events) {
      calls.push({ address: rec.address, events: events.map((e) => ({ ...e })) });
      const added = events.map((e, i): PendingNotice => ({ id: `${calls.length}-${i}`, kind: e.kind, at: T0, ip: null, country: null, ...(e.until === undefined ? {} : { until: e.until }), ...(e.left === undefined ? {} : { left: e.left }), to: [rec.address], attempts: 0, nextAt: T0 }));
      return { ...rec, notices: { pending: [...(rec.notices?.pending ?? []), ...added], recent: rec.notices?.recent ?? [] } };
    },
  };
  return { queue, calls };
}

const queued = (rec: MailboxRecord | undefined) => rec?.notices?.pending.map((n) => n.kind) ?? [];

/** Registers the contract's tests for one backend; `open` gives a fresh, empty state each time. */
export function runStateContract(name: string, open: () => Promise<ContractBackend>): void {
  describe(`state contract: ${name}`, () => {
    const withBackend = (fn: (p: StatePorts) => Promise<void>) => async () => {
      const b = await open();
      try {
        await fn(b.ports);
      } finally {
        await b.close();
      }
    };

    it('50 concurrent uses of one TOTP step: exactly one accepted, the rest counted as reused', withBackend(async (p) => {
      await seed(p, enrolled('race@c.test'));
      const results = await Promise.all(Array.from({ length: 50 }, () => p.acceptTotpStep('race@c.test', 'v1.k.sealed', 101, { success: success(), failure: failure() })));
      assert.equal(count(results, (r) => r.outcome === 'accepted'), 1);
      assert.equal(count(results, (r) => r.outcome === 'reused'), 49);
      const rec = await p.getMailbox('race@c.test');
      assert.equal(rec?.totp?.lastAcceptedStep, 101);
      assert.equal(rec?.failures.elsewhere?.consecutive, 49);
      assert.deepEqual(rec?.ips.map((e) => e.ip), ['192.0.2.1'], 'the accepted step remembered the location');
    }));

    it('a step at or before the last accepted is reused; another secret is changed', withBackend(async (p) => {
      await seed(p, enrolled('old@c.test'));
      assert.equal((await p.acceptTotpStep('old@c.test', 'v1.k.sealed', 100, { success: success(), failure: failure() })).outcome, 'reused');
      assert.equal((await p.acceptTotpStep('old@c.test', 'v1.k.other', 200, { success: success(), failure: failure() })).outcome, 'changed');
      assert.equal((await p.acceptTotpStep('nobody@c.test', 'v1.k.sealed', 200, { success: success(), failure: failure() })).outcome, 'changed');
    }));

    it('N concurrent failures raise the counter by exactly N, and lock at the threshold', withBackend(async (p) => {
      await seed(p, newMailbox('count@c.test', T0));
      const states = await Promise.all(Array.from({ length: 40 }, () => p.recordFailure('count@c.test', failure())));
      assert.equal((await p.getMailbox('count@c.test'))?.failures.elsewhere?.consecutive, 40);
      assert.deepEqual([...new Set(states.map((s) => (s?.outcome === 'counted' ? s.state.consecutive : null)))].length, 40, 'each saw its own count');
      await seed(p, newMailbox('lock@c.test', T0));
      for (let i = 0; i < 3; i++) await p.recordFailure('lock@c.test', failure(T0, STRICT));
      const locked = await p.acceptTotpStep('lock@c.test', 'x', 1, { success: success(T0 + 1000), failure: failure(T0 + 1000, STRICT) });
      assert.equal(locked.outcome, 'changed', 'no secret: nothing to accept');
      await seed(p, { ...enrolled('lock2@c.test'), failures: (await p.getMailbox('lock@c.test'))!.failures });
      const r = await p.acceptTotpStep('lock2@c.test', 'v1.k.sealed', 101, { success: success(T0 + 1000), failure: failure(T0 + 1000, STRICT) });
      assert.equal(r.outcome, 'locked');
      // Time is what the caller says: past the lock, the same call succeeds.
      const later = await p.acceptTotpStep('lock2@c.test', 'v1.k.sealed', 101, { success: success(T0 + 3_600_000), failure: failure(T0 + 3_600_000, STRICT) });
      assert.equal(later.outcome, 'accepted');
      assert.equal(await p.recordFailure('absent@c.test', failure()), null);
    }));

    it('a failure is not counted while the mailbox is locked for its kind, by the caller time', withBackend(async (p) => {
      await seed(p, newMailbox('held@c.test', T0));
      const counted = await Promise.all(Array.from({ length: 10 }, () => p.recordFailure('held@c.test', failure(T0, STRICT))));
      assert.equal(count(counted, (r) => r?.outcome === 'counted'), STRICT.threshold, 'concurrent failures stop at the lock');
      assert.equal(count(counted, (r) => r?.outcome === 'locked'), 10 - STRICT.threshold);
      const rec = await p.getMailbox('held@c.test');
      assert.equal(rec?.failures.elsewhere?.consecutive, STRICT.threshold);
      assert.equal(rec?.failures.known, null, 'the other kind is untouched');
      const locked = counted.find((r) => r?.outcome === 'locked');
      assert.deepEqual(locked, { outcome: 'locked', until: rec!.failures.elsewhere!.lockedUntil });
      // The other kind is not locked: counted there.
      assert.equal((await p.recordFailure('held@c.test', { kind: 'known', now: T0, policy: STRICT }))?.outcome, 'counted');
      // Past the lock, by the caller's time, a failure counts again.
      assert.equal((await p.recordFailure('held@c.test', failure(rec!.failures.elsewhere!.lockedUntil!, STRICT)))?.outcome, 'counted');
    }));

    it("one code's tries are counted exactly: 10 concurrent wrong codes with 5 tries", withBackend(async (p) => {
      const code: OpenCode = { hash: 'h1:right', provider: 'sms', destination: '+12015550123', createdAt: T0, expiresAt: T0 + 300_000, failedTries: 0, sends: 1, lastSentAt: T0 };
      await seed(p, newMailbox('tries@c.test', T0));
      assert.equal(await p.openCode('tries@c.test', code), 'opened');
      const results = await Promise.all(Array.from({ length: 10 }, () => p.tryOpenCode('tries@c.test', 'h1:wrong', { maxTries: 5, success: success(), failure: failure() })));
      assert.equal(count(results, (r) => r.outcome === 'code-invalid'), 5);
      assert.equal(count(results, (r) => r.outcome === 'no-open-code'), 5, 'void after its tries');
      assert.equal((await p.getMailbox('tries@c.test'))?.failures.elsewhere?.consecutive, 10);
      // A right code: used once.
      await p.openCode('tries@c.test', { ...code, hash: 'h1:again' });
      const right = await Promise.all(Array.from({ length: 10 }, () => p.tryOpenCode('tries@c.test', 'h1:again', { maxTries: 5, success: success(), failure: failure() })));
      assert.equal(count(right, (r) => r.outcome === 'ok'), 1);
      // Past its expiry, by the caller's time.
      await p.openCode('tries@c.test', { ...code, hash: 'h1:late' });
      assert.equal((await p.tryOpenCode('tries@c.test', 'h1:late', { maxTries: 5, success: success(T0 + 300_000), failure: failure(T0 + 300_000) })).outcome, 'code-expired');
    }));

    it('a recovery code is consumed once, whatever the concurrency', withBackend(async (p) => {
      await seed(p, { ...newMailbox('rc@c.test', T0), recoveryCodeHashes: ['h1:a', 'h1:b', 'h1:c'] });
      const results = await Promise.all(Array.from({ length: 20 }, () => p.consumeRecoveryCode('rc@c.test', 'h1:b', { success: success(), failure: failure() })));
      assert.equal(count(results, (r) => r.outcome === 'ok'), 1);
      assert.deepEqual((await p.getMailbox('rc@c.test'))?.recoveryCodeHashes, ['h1:a', 'h1:c']);
      assert.equal((await p.consumeRecoveryCode('rc@c.test', 'h1:zzz', { success: success(), failure: failure() })).outcome, 'code-invalid');
    }));

    it('a pending secret is activated once; a record for an unstored mailbox is created once', withBackend(async (p) => {
      const fresh = { sealedSecret: 'v1.k.pending', createdAt: T0, expiresAt: T0 + 86_400_000 };
      const pending = await p.pendingOrNew('new@c.test', fresh, T0, { restart: false, needProved: false });
      assert.deepEqual(pending, fresh);
      assert.deepEqual(await p.pendingOrNew('new@c.test', { ...fresh, sealedSecret: 'v1.k.other' }, T0 + 1, { restart: false, needProved: false }), fresh, 'the same pending secret until it expires');
      const results = await Promise.all(Array.from({ length: 10 }, () => p.activatePending('new@c.test', 'v1.k.pending', 5, { success: success(), requireProved: false })));
      assert.equal(count(results, (r) => r.outcome === 'activated'), 1);
      assert.equal((await p.getMailbox('new@c.test'))?.totp?.lastAcceptedStep, 5);
      const totp = { sealedSecret: 'v1.k.first', activatedAt: T0, lastAcceptedStep: 7 };
      const created = await Promise.all(Array.from({ length: 10 }, () => p.createEnrolled('first@c.test', totp, success())));
      assert.equal(count(created, (r) => r === 'created'), 1);
    }));

    it('grace logins are counted up to their limit, no further, under concurrency', withBackend(async (p) => {
      await seed(p, newMailbox('grace@c.test', T0));
      const results = await Promise.all(Array.from({ length: 30 }, () => p.countGraceLogin('grace@c.test', 5, T0)));
      assert.equal(count(results, (r) => r !== null), 5);
      assert.equal((await p.getMailbox('grace@c.test'))?.enrolmentGraceLogins, 5);
    }));

    it('one send claim per cooldown; the hourly cap; a released claim gives its slot back', withBackend(async (p) => {
      const limits = { cooldownMs: 30_000, hourlyLimit: 3 };
      const claims = await Promise.all(Array.from({ length: 20 }, () => p.claimSend(['m:a@c.test', 'd:+12015550123'], T0, limits)));
      assert.equal(count(claims, (c) => c.ok), 1);
      const refused = claims.find((c) => !c.ok);
      assert.deepEqual(refused, { ok: false, retryAfterMs: 30_000, limit: 'cooldown', key: 'm:a@c.test' });
      assert.equal((await p.claimSend(['m:a@c.test'], T0 + 30_000, limits)).ok, true);
      assert.equal((await p.claimSend(['m:a@c.test'], T0 + 60_000, limits)).ok, true);
      const capped = await p.claimSend(['m:a@c.test'], T0 + 90_000, limits);
      assert.deepEqual(capped, { ok: false, retryAfterMs: 3_600_000 - 90_000, limit: 'hourly', key: 'm:a@c.test' });
      await p.releaseSend(['m:a@c.test'], T0 + 60_000);
      assert.equal((await p.claimSend(['m:a@c.test'], T0 + 90_000, limits)).ok, true);
      // The refusal names the key with the longest wait: here the destination, shared by two mailboxes.
      assert.equal((await p.claimSend(['m:b@c.test', 'd:+12015550123'], T0 + 10_000, limits)).ok, false);
      assert.deepEqual(await p.claimSend(['m:b@c.test', 'd:+12015550123'], T0 + 10_000, limits), { ok: false, retryAfterMs: 20_000, limit: 'cooldown', key: 'd:+12015550123' });
      // A refused claim takes no slot: past the cooldown the other mailbox claims at once.
      assert.equal((await p.claimSend(['m:b@c.test', 'd:+12015550123'], T0 + 30_000, limits)).ok, true);
    }));

    it('a send claimed and its code opened in one operation: concurrent challenges send one code, and the refused ones see it', withBackend(async (p) => {
      const limits = { cooldownMs: 30_000, hourlyLimit: 3 };
      const keys = ['m:sms@c.test', 'd:+12015550123'];
      const codeFor = (i: number, now = T0, destination = '+12015550123'): OpenCode => ({ hash: `h1:${i}`, sealedCode: `v1.k.${i}`, provider: 'sms', destination, createdAt: now, expiresAt: now + 300_000, failedTries: 0, sends: 1, lastSentAt: now });
      assert.deepEqual(await p.claimAndOpen('absent@c.test', ['m:absent@c.test'], T0, limits, codeFor(0)), { outcome: 'missing' });
      assert.equal((await p.claimSend(['m:absent@c.test'], T0, limits)).ok, true, 'a missing mailbox takes no slot');
      await seed(p, { ...newMailbox('sms@c.test', T0), phone: '+12015550123' });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => p.claimAndOpen('sms@c.test', keys, T0, limits, codeFor(i + 1))));
      const opened = results.filter((r) => r.outcome === 'opened');
      assert.equal(opened.length, 1, 'one claim, one code');
      const code = opened[0]!.outcome === 'opened' ? opened[0]!.open : null;
      for (const r of results.filter((x) => x.outcome !== 'opened')) {
        assert.deepEqual(r, { outcome: 'refused', open: code, retryAfterMs: 30_000, limit: 'cooldown', key: 'm:sms@c.test' }, 'a refused challenge sees the code the winner stored');
      }
      assert.deepEqual((await p.getMailbox('sms@c.test'))?.openCode, code);
      // Past the cooldown, the open code (same provider and destination, still valid) is kept to be sent again.
      assert.deepEqual(await p.claimAndOpen('sms@c.test', keys, T0 + 30_000, limits, codeFor(99, T0 + 30_000)), { outcome: 'kept', open: code });
      assert.deepEqual((await p.getMailbox('sms@c.test'))?.openCode, code, 'fresh is not stored when the open code is kept');
      // Another destination: the new code replaces it.
      const other = codeFor(100, T0 + 60_000, '+12015550199');
      assert.deepEqual(await p.claimAndOpen('sms@c.test', ['m:sms@c.test', 'd:+12015550199'], T0 + 60_000, limits, other), { outcome: 'opened', open: other });
      // The hourly cap: refused, with the open code while it is valid, and none once it has expired.
      const capped = await p.claimAndOpen('sms@c.test', keys, T0 + 90_000, limits, codeFor(101, T0 + 90_000));
      assert.deepEqual(capped, { outcome: 'refused', open: other, retryAfterMs: 3_600_000 - 90_000, limit: 'hourly', key: 'm:sms@c.test' });
      const late = await p.claimAndOpen('sms@c.test', keys, T0 + 400_000, limits, codeFor(102, T0 + 400_000));
      assert.deepEqual(late, { outcome: 'refused', open: null, retryAfterMs: 3_600_000 - 400_000, limit: 'hourly', key: 'm:sms@c.test' });
      assert.equal((await p.getMailbox('sms@c.test'))?.openCode?.hash, other.hash, 'a refused claim changes no code');
    }));

    it('an open code keeps what the service sealed into it through tries and re-sends', withBackend(async (p) => {
      const code: OpenCode = { hash: 'h1:right', sealedCode: 'v1.k.code', provider: 'email', destination: 'x@home.test', createdAt: T0, expiresAt: T0 + 300_000, failedTries: 0, sends: 1, lastSentAt: T0 };
      assert.equal(await p.openCode('absent@c.test', code), 'missing', 'no record is made for a code');
      await seed(p, newMailbox('sealed@c.test', T0));
      assert.equal(await p.openCode('sealed@c.test', code), 'opened');
      assert.equal((await p.tryOpenCode('sealed@c.test', 'h1:wrong', { maxTries: 5, success: success(), failure: failure() })).outcome, 'code-invalid');
      assert.equal(await p.codeResent('sealed@c.test', 'h1:right', T0 + 40_000), 'resent');
      assert.equal(await p.codeResent('sealed@c.test', 'h1:other', T0 + 40_000), 'changed');
      assert.deepEqual((await p.getMailbox('sealed@c.test'))?.openCode, { ...code, failedTries: 1, sends: 2, lastSentAt: T0 + 40_000 });
      // Closed by its hash only: a newer code stays open.
      await p.closeCode('sealed@c.test', 'h1:other');
      assert.equal((await p.getMailbox('sealed@c.test'))?.openCode?.hash, 'h1:right');
      await p.closeCode('sealed@c.test', 'h1:right');
      assert.equal((await p.getMailbox('sealed@c.test'))?.openCode, null);
    }));

    it('the notices of an outcome are queued by the operation that decides it, in its own write', withBackend(async (p) => {
      const n = recordingQueue();
      const ok = (now: number, country: string) => ({ kind: 'elsewhere' as const, now, location: { ip: '192.0.2.1', country, policy: REMEMBER }, notices: n.queue });
      const bad = (now = T0, policy = STRICT): FailureEffects => ({ kind: 'elsewhere', now, policy, notices: n.queue });
      // A second factor from a country the mailbox does not remember: new-country; from one it does, nothing.
      await seed(p, { ...enrolled('n@c.test'), countries: [{ country: 'FR', firstSeen: T0, lastSeen: T0 }], recoveryCodeHashes: ['r1', 'r2'] });
      assert.equal((await p.acceptTotpStep('n@c.test', 'v1.k.sealed', 101, { success: ok(T0, 'DE'), failure: bad() })).outcome, 'accepted');
      assert.deepEqual(queued(await p.getMailbox('n@c.test')), ['new-country']);
      assert.equal((await p.acceptTotpStep('n@c.test', 'v1.k.sealed', 102, { success: ok(T0 + 1, 'FR'), failure: bad() })).outcome, 'accepted');
      assert.equal(n.calls.length, 1, 'a remembered country is no notice');
      // A recovery code used: its notice says how many are left.
      assert.deepEqual(await p.consumeRecoveryCode('n@c.test', 'r2', { success: ok(T0 + 2, 'FR'), failure: bad() }), { outcome: 'ok', left: 1 });
      assert.deepEqual(n.calls[1]?.events, [{ kind: 'recovery-code-used', left: 1 }]);
      assert.deepEqual(queued(await p.getMailbox('n@c.test')), ['new-country', 'recovery-code-used']);
      // Failures: only the one that starts the lock has a notice; a locked mailbox counts nothing more.
      for (let i = 0; i < 2; i++) await p.recordFailure('n@c.test', bad(T0 + 3));
      assert.equal(n.calls.length, 2);
      await p.tryOpenCode('n@c.test', 'nothing-open', { maxTries: 3, success: ok(T0 + 3, 'FR'), failure: bad(T0 + 3) });
      assert.deepEqual(n.calls[2]?.events, [{ kind: 'mailbox-locked', until: T0 + 3 + STRICT.baseDelayMs }]);
      assert.equal((await p.recordFailure('n@c.test', bad(T0 + 4)))?.outcome, 'locked');
      assert.equal(n.calls.length, 3);
      assert.deepEqual(queued(await p.getMailbox('n@c.test')), ['new-country', 'recovery-code-used', 'mailbox-locked']);
      // Enrolled: by activating the pending secret, or by storing a mailbox nobody had configured.
      await seed(p, { ...newMailbox('e@c.test', T0), pendingTotp: { sealedSecret: 'v1.k.p', createdAt: T0, expiresAt: T0 + 600_000 } });
      assert.equal((await p.activatePending('e@c.test', 'v1.k.p', 7, { success: { kind: 'elsewhere', now: T0, location: null, notices: n.queue }, requireProved: false })).outcome, 'activated');
      assert.deepEqual(queued(await p.getMailbox('e@c.test')), ['totp-enrolled']);
      assert.equal(await p.createEnrolled('new@c.test', { sealedSecret: 'v1.k.n', activatedAt: T0, lastAcceptedStep: 7 }, ok(T0, 'DE')), 'created');
      assert.deepEqual(queued(await p.getMailbox('new@c.test')), ['totp-enrolled']);
      // The sender's start finds every mailbox with notices, and only those.
      await seed(p, newMailbox('quiet@c.test', T0));
      const found = await p.mailboxNotices();
      assert.deepEqual(found.map((m) => m.address).sort(), ['e@c.test', 'n@c.test', 'new@c.test']);
      assert.deepEqual(found.find((m) => m.address === 'e@c.test')?.notices.pending.map((x) => x.kind), ['totp-enrolled']);
    }));

    it('concurrent failures that reach the lock queue its notice once', withBackend(async (p) => {
      const n = recordingQueue();
      await seed(p, enrolled('many@c.test'));
      const results = await Promise.all(Array.from({ length: 20 }, () => p.acceptTotpStep('many@c.test', 'v1.k.sealed', 100, { success: success(), failure: { ...failure(T0, STRICT), notices: n.queue } })));
      assert.equal(count(results, (r) => r.outcome === 'reused'), STRICT.threshold);
      assert.equal(count(results, (r) => r.outcome === 'locked'), 20 - STRICT.threshold);
      assert.deepEqual(n.calls.map((c) => c.events.map((e) => e.kind)), [['mailbox-locked']]);
      assert.deepEqual(queued(await p.getMailbox('many@c.test')), ['mailbox-locked']);
    }));

    it('a settled attempt and a window failure say the block they started, once', withBackend(async (p) => {
      const started = [];
      for (let i = 0; i < SOURCES.maxFailures + 2; i++) {
        await p.reserveAttempt('198.51.100.9', `s${i}@c.test`, false, T0, SOURCES);
        started.push(await p.settleAttempt('198.51.100.9', `s${i}@c.test`, false, 'failure', T0, SOURCES));
      }
      assert.equal(count(started, (b) => b !== null), 1);
      assert.equal(started[SOURCES.maxFailures - 1]?.reason, 'ip-failures');
      assert.equal(started[SOURCES.maxFailures - 1]?.until, T0 + SOURCES.blockMs);
      const windows = [];
      for (let i = 0; i < 5; i++) windows.push((await p.recordWindowFailure('test-scope', 'k', `m${i}`, T0, { ...SOURCES, maxFailures: 3 })).started);
      assert.deepEqual(windows, [null, null, { locked: true, until: T0 + SOURCES.blockMs, reason: 'ip-failures' }, null, null]);
    }));

    it('attempts of a source are reserved atomically: 200 concurrent, at most the limit granted', withBackend(async (p) => {
      const grants = await Promise.all(Array.from({ length: 200 }, (_, i) => p.reserveAttempt('198.51.100.7', `m${i}@c.test`, false, T0, SOURCES)));
      assert.equal(count(grants, (g) => g.granted), SOURCES.maxFailures);
      for (let i = 0; i < SOURCES.maxFailures; i++) await p.settleAttempt('198.51.100.7', `m${i}@c.test`, false, 'failure', T0, SOURCES);
      const after = await p.reserveAttempt('198.51.100.7', 'x@c.test', false, T0 + 1, SOURCES);
      assert.equal(after.granted, false);
      assert.ok((await p.listSources()).some((s) => s.source === '198.51.100.7'));
      assert.notEqual(await p.clearSource('198.51.100.7', T0 + 2, SOURCES), null);
      assert.equal((await p.reserveAttempt('198.51.100.7', 'x@c.test', false, T0 + 3, SOURCES)).granted, true);
    }));

    it('a source is cleared only when it has a block or failures', withBackend(async (p) => {
      assert.equal(await p.clearSource('198.51.100.8', T0, SOURCES), null, 'untracked');
      assert.equal((await p.reserveAttempt('198.51.100.8', 'a@c.test', true, T0, SOURCES)).granted, true);
      await p.settleAttempt('198.51.100.8', 'a@c.test', true, 'created', T0, SOURCES);
      assert.equal(await p.clearSource('198.51.100.8', T0 + 1, SOURCES), null, 'one enrolment is neither a block nor a failure');
      assert.equal((await p.listSources()).find((s) => s.source === '198.51.100.8')?.state.created, 1, 'and it is kept');
      assert.equal((await p.reserveAttempt('198.51.100.8', 'b@c.test', false, T0 + 2, SOURCES)).granted, true);
      await p.settleAttempt('198.51.100.8', 'b@c.test', false, 'failure', T0 + 2, SOURCES);
      const before = await p.clearSource('198.51.100.8', T0 + 3, SOURCES);
      assert.equal(before?.failures?.failures, 1, 'the state before the clear');
      assert.equal(await p.clearSource('198.51.100.8', T0 + 4, SOURCES), null, 'nothing left to clear');
    }));

    it('failures of unstored mailboxes are counted, expire by the caller time, and never make a record', withBackend(async (p) => {
      const counted = await Promise.all(Array.from({ length: 5 }, () => p.recordUnstoredFailure('ghost@c.test', T0, STRICT)));
      assert.equal(count(counted, (r) => r.outcome === 'counted'), 3, 'none counted once they lock it');
      assert.equal((await p.unstoredFailures('ghost@c.test', T0, STRICT))?.consecutive, 3);
      // Which of the concurrent calls comes last is not promised (several daemons): any refused one.
      assert.deepEqual(counted.find((r) => r.outcome === 'locked'), { outcome: 'locked', until: T0 + STRICT.baseDelayMs });
      assert.equal((await p.clearUnstoredFailures('ghost@c.test'))?.consecutive, 3);
      assert.equal(await p.unstoredFailures('ghost@c.test', T0, STRICT), undefined, 'cleared');
      for (let i = 0; i < 3; i++) await p.recordUnstoredFailure('ghost@c.test', T0, STRICT);
      assert.equal(await p.getMailbox('ghost@c.test'), undefined);
      assert.equal(await p.unstoredFailures('ghost@c.test', T0 + 10 * 3_600_000, STRICT), undefined);
    }));

    it('read-modify-writes of one mailbox, domain and meta are serialised', withBackend(async (p) => {
      await Promise.all(Array.from({ length: 100 }, () => p.updateMailbox('rmw@c.test', (cur) => {
        const rec = cur ?? newMailbox('rmw@c.test', T0);
        return { next: { ...rec, recoveryCodeHashes: [...rec.recoveryCodeHashes, 'x'] }, result: null };
      })));
      assert.equal((await p.getMailbox('rmw@c.test'))?.recoveryCodeHashes.length, 100);
      await Promise.all(Array.from({ length: 50 }, () => p.updateMeta<number, null>('counter', (n) => ({ next: (n ?? 0) + 1, result: null }))));
      assert.equal(await p.getMeta<number>('counter'), 50);
      await p.updateDomain('d.test', () => ({ next: { domain: 'd.test', settings: { challenge: 'always' }, updatedAt: T0 }, result: null }));
      assert.deepEqual((await p.loginView('a@d.test')).domain, { challenge: 'always' });
      await p.updateGlobal(() => ({ challenge: 'new-ip' }));
      assert.deepEqual((await p.loginView('a@d.test')).global, { challenge: 'new-ip' });
      await p.updateMailbox('rmw@c.test', () => ({ next: null, result: null }));
      assert.equal(await p.getMailbox('rmw@c.test'), undefined);
    }));
  });
}
