import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyFailures, noFailures, type FailureState, type MailboxFailures } from '../src/core/model.js';
import { validateConfig } from '../src/config/load.js';
import {
  IN_FLIGHT_RETRY_MS,
  adminUnlock,
  adminUnlockAll,
  clearIpSource,
  failureCount,
  failureKind,
  ipSource,
  ipSourceBlock,
  ipSourceFailures,
  ipThrottleState,
  kindLockState,
  lockState,
  newIpThrottle,
  recordFailure,
  recordIpFailure,
  recordKindFailure,
  recordKindSuccess,
  recordSuccess,
  reserveIpAttempt,
  settleIpAttempt,
  unstoredFailureExpired,
  type IpSourceState,
  type IpThrottlePolicy,
  type IpThrottleRecord,
  type LockoutPolicy,
} from '../src/core/lockout.js';
import { lockoutPolicy } from '../src/services/context.js';
import { SourceThrottle } from '../src/services/ip-throttle.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';

// The configuration's defaults (config/spec.ts) are the only defaults; the daemon turns them into
// these policies the same way.
const DEFAULTS = validateConfig({}, '/defaults/memfa.json', {}, {});
const DEFAULT_LOCKOUT = lockoutPolicy(DEFAULTS);
const { policy: DEFAULT_IP_THROTTLE, grouping: DEFAULT_SOURCE_GROUPING } = new SourceThrottle(DEFAULTS, new FileStatePorts(new MemoryStore()));

const T0 = 1_700_000_000_000;
const MIN = 60_000;

test('the default lockout policy matches the documented defaults', () => {
  assert.deepEqual({ ...DEFAULT_LOCKOUT }, { threshold: 5, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 100 });
});

test('lockout: timing sequence with the defaults', () => {
  // Failure n at T0 + n seconds: the delay each one sets, in minutes (null: not locked).
  const want: (number | null)[] = [null, null, null, null, 1, 2, 4, 8, 16, 32, 60, 60, 60];
  let f: FailureState = emptyFailures();
  want.forEach((minutes, i) => {
    const now = T0 + i * 1000;
    f = recordFailure(f, now, DEFAULT_LOCKOUT);
    assert.equal(f.consecutive, i + 1);
    assert.equal(f.lastFailureAt, now);
    assert.equal(f.hardLocked, false);
    if (minutes === null) {
      assert.equal(f.lockedUntil, null, `failure ${i + 1}`);
      assert.deepEqual(lockState(f, now), { locked: false });
    } else {
      assert.equal(f.lockedUntil, now + minutes * MIN, `failure ${i + 1}`);
      assert.deepEqual(lockState(f, now), { locked: true, until: now + minutes * MIN, reason: 'lockout' });
    }
  });
});

test('lockout: the lock ends exactly at lockedUntil', () => {
  let f = emptyFailures();
  for (let i = 0; i < 5; i++) f = recordFailure(f, T0, DEFAULT_LOCKOUT);
  assert.equal(f.lockedUntil, T0 + MIN);
  assert.deepEqual(lockState(f, T0 + MIN - 1), { locked: true, until: T0 + MIN, reason: 'lockout' });
  assert.deepEqual(lockState(f, T0 + MIN), { locked: false });
  // The next failure after the lock doubles the delay.
  f = recordFailure(f, T0 + MIN, DEFAULT_LOCKOUT);
  assert.equal(f.lockedUntil, T0 + 3 * MIN);
});

test('lockout: a later failure never shortens an existing lock', () => {
  const policy: LockoutPolicy = { threshold: 1, baseDelayMs: MIN, maxDelayMs: 10 * MIN, hardLockAfter: 1000 };
  const f: FailureState = { consecutive: 0, lockedUntil: T0 + 60 * MIN, hardLocked: false, lastFailureAt: null };
  assert.equal(recordFailure(f, T0, policy).lockedUntil, T0 + 60 * MIN);
});

test('lockout: hard lock at hardLockAfter, until an administrator unlocks', () => {
  const policy: LockoutPolicy = { threshold: 3, baseDelayMs: 1000, maxDelayMs: 5000, hardLockAfter: 6 };
  let f = emptyFailures();
  for (let i = 1; i <= 5; i++) f = recordFailure(f, T0, policy);
  assert.equal(f.hardLocked, false);
  f = recordFailure(f, T0, policy);
  assert.equal(f.hardLocked, true);
  assert.deepEqual(lockState(f, T0 + 365 * 86_400_000), { locked: true, until: null, reason: 'hard-lock' });
  // A success that slips through does not undo it; only adminUnlock does.
  assert.deepEqual(recordSuccess(f), f);
  assert.notEqual(recordSuccess(f), f);
  assert.deepEqual(adminUnlock(), emptyFailures());
  assert.deepEqual(lockState(adminUnlock(), T0), { locked: false });
});

test('lockout: exponent overflow is capped', () => {
  const f: FailureState = { consecutive: 5000, lockedUntil: null, hardLocked: false, lastFailureAt: null };
  const next = recordFailure(f, T0, { ...DEFAULT_LOCKOUT, hardLockAfter: 1e9 });
  assert.equal(next.lockedUntil, T0 + DEFAULT_LOCKOUT.maxDelayMs);
});

test('lockout: success resets; inputs are not modified', () => {
  let f = emptyFailures();
  for (let i = 0; i < 7; i++) f = recordFailure(f, T0, DEFAULT_LOCKOUT);
  const snapshot = structuredClone(f);
  recordFailure(f, T0, DEFAULT_LOCKOUT);
  assert.deepEqual(f, snapshot);
  assert.deepEqual(recordSuccess(f), emptyFailures());
  assert.deepEqual(f, snapshot);
});

// ---------------------------------------------------------------------------------------------

const IP_POLICY: IpThrottlePolicy = { maxFailures: 5, windowMs: 10 * MIN, distinctMailboxes: 3, blockMs: 15 * MIN };

test('the default source throttle: 20 failures or 10 mailboxes per 15 minutes, 15 minute block', () => {
  assert.deepEqual({ ...DEFAULT_IP_THROTTLE }, { maxFailures: 20, windowMs: 15 * MIN, distinctMailboxes: 10, blockMs: 15 * MIN });
});

test('ip throttle: blocks at maxFailures within a window', () => {
  let rec: IpThrottleRecord | null = null;
  for (let i = 1; i <= 4; i++) {
    rec = recordIpFailure(rec, 'a@example.com', T0 + i * 1000, IP_POLICY);
    assert.equal(rec.failures, i);
    assert.deepEqual(ipThrottleState(rec, T0 + i * 1000, IP_POLICY), { locked: false });
  }
  rec = recordIpFailure(rec, 'a@example.com', T0 + 5000, IP_POLICY);
  assert.deepEqual(rec.mailboxes, ['a@example.com']);
  assert.equal(rec.windowStart, T0 + 1000);
  assert.deepEqual(ipThrottleState(rec, T0 + 5000, IP_POLICY), { locked: true, until: T0 + 5000 + 15 * MIN, reason: 'ip-failures' });
  assert.deepEqual(ipThrottleState(rec, T0 + 5000 + 15 * MIN - 1, IP_POLICY).locked, true);
  assert.deepEqual(ipThrottleState(rec, T0 + 5000 + 15 * MIN, IP_POLICY), { locked: false });

  // After the block: a fresh budget, the block record kept only as history.
  const after = recordIpFailure(rec, 'a@example.com', T0 + 5000 + 15 * MIN, IP_POLICY);
  assert.deepEqual(after, { failures: 1, mailboxes: ['a@example.com'], windowStart: T0 + 5000 + 15 * MIN, lockedUntil: null });
});

test('ip throttle: blocks when failures span distinctMailboxes mailboxes (spraying)', () => {
  let rec = recordIpFailure(undefined, 'a@example.com', T0, IP_POLICY);
  rec = recordIpFailure(rec, 'a@example.com', T0 + 1, IP_POLICY);
  rec = recordIpFailure(rec, 'b@example.com', T0 + 2, IP_POLICY);
  assert.deepEqual(ipThrottleState(rec, T0 + 2, IP_POLICY), { locked: false });
  rec = recordIpFailure(rec, 'c@example.com', T0 + 3, IP_POLICY);
  assert.deepEqual(rec.mailboxes, ['a@example.com', 'b@example.com', 'c@example.com']);
  assert.deepEqual(ipThrottleState(rec, T0 + 3, IP_POLICY), { locked: true, until: T0 + 3 + 15 * MIN, reason: 'ip-mailboxes' });
});

test('ip throttle: a new window starts after windowMs with empty counters', () => {
  let rec = newIpThrottle(T0);
  for (let i = 0; i < 4; i++) rec = recordIpFailure(rec, `m${i % 2}@example.com`, T0 + i, IP_POLICY);
  assert.equal(rec.failures, 4);
  rec = recordIpFailure(rec, 'x@example.com', T0 + 10 * MIN - 1, IP_POLICY);
  assert.equal(ipThrottleState(rec, T0 + 10 * MIN - 1, IP_POLICY).locked, true, 'the 5th failure within the window');

  let slow = newIpThrottle(T0);
  for (let i = 0; i < 4; i++) slow = recordIpFailure(slow, 'a@example.com', T0 + i, IP_POLICY);
  slow = recordIpFailure(slow, 'a@example.com', T0 + 10 * MIN, IP_POLICY);
  assert.deepEqual(slow, { failures: 1, mailboxes: ['a@example.com'], windowStart: T0 + 10 * MIN, lockedUntil: null });
});

test('ip throttle: failures recorded during a block extend it; the mailbox list stays bounded', () => {
  let rec: IpThrottleRecord | undefined;
  for (let i = 0; i < 3; i++) rec = recordIpFailure(rec, `m${i}@example.com`, T0, IP_POLICY);
  assert.equal(rec?.lockedUntil, T0 + 15 * MIN);
  for (let i = 3; i < 50; i++) rec = recordIpFailure(rec, `m${i}@example.com`, T0 + i * 1000, IP_POLICY);
  assert.equal(rec?.lockedUntil, T0 + 49_000 + 15 * MIN);
  assert.equal(rec?.mailboxes.length, IP_POLICY.distinctMailboxes);
});

test('ip throttle: no record is not locked; inputs are not modified', () => {
  assert.deepEqual(ipThrottleState(null, T0, IP_POLICY), { locked: false });
  assert.deepEqual(ipThrottleState(undefined, T0, IP_POLICY), { locked: false });
  const rec = recordIpFailure(null, 'a@example.com', T0, IP_POLICY);
  const snapshot = structuredClone(rec);
  recordIpFailure(rec, 'b@example.com', T0 + 1, IP_POLICY);
  assert.deepEqual(rec, snapshot);
});

// ---------------------------------------------------------------------------------------------
// Two kinds of location

const REMEMBER = { maxEntries: 10, maxAgeMs: 90 * 86_400_000 };

test('failure kind: a fresh remembered IP is known; a stale one, another one or none is elsewhere', () => {
  const ips = [{ ip: '192.0.2.1', firstSeen: T0, lastSeen: T0 }];
  assert.equal(failureKind(ips, '192.0.2.1', T0 + 1000, REMEMBER), 'known');
  assert.equal(failureKind(ips, '192.0.2.2', T0 + 1000, REMEMBER), 'elsewhere');
  assert.equal(failureKind(ips, '192.0.2.1', T0 + REMEMBER.maxAgeMs + 1, REMEMBER), 'elsewhere');
  assert.equal(failureKind(ips, null, T0, REMEMBER), 'elsewhere');
});

test('two kinds: each has its own count, delays and hard lock; a login is locked only by its own kind', () => {
  const policy: LockoutPolicy = { threshold: 3, baseDelayMs: MIN, maxDelayMs: 10 * MIN, hardLockAfter: 5 };
  let f: MailboxFailures = noFailures();
  for (let i = 0; i < 5; i++) f = recordKindFailure(f, 'elsewhere', T0 + i, policy);
  assert.equal(f.known, null, 'the other kind is untouched');
  assert.deepEqual(kindLockState(f, 'elsewhere', T0 + 365 * 86_400_000), { locked: true, until: null, reason: 'hard-lock' });
  assert.deepEqual(kindLockState(f, 'known', T0), { locked: false });
  f = recordKindFailure(f, 'known', T0 + 10, policy);
  assert.equal(f.known?.consecutive, 1);
  assert.equal(failureCount(f), 6);
  assert.deepEqual(adminUnlockAll(), { known: null, elsewhere: null });
});

test('two kinds: a success resets only its own kind; a hard lock survives it; nothing to reset returns the same object', () => {
  let f: MailboxFailures = noFailures();
  assert.equal(recordKindSuccess(f, 'known'), f);
  f = recordKindFailure(recordKindFailure(f, 'elsewhere', T0, DEFAULT_LOCKOUT), 'known', T0, DEFAULT_LOCKOUT);
  const afterKnown = recordKindSuccess(f, 'known');
  assert.deepEqual(afterKnown, { known: null, elsewhere: f.elsewhere }, 'a success at a remembered address leaves the elsewhere count');
  assert.deepEqual(recordKindSuccess(f, 'elsewhere'), { known: f.known, elsewhere: null });
  const hard: MailboxFailures = { known: { consecutive: 100, lockedUntil: null, hardLocked: true, lastFailureAt: T0 }, elsewhere: null };
  assert.deepEqual(recordKindSuccess(hard, 'known'), hard);
});

test('unstored failures are forgotten maxDelayMs after the later of the last failure and the end of the lock', () => {
  const policy: LockoutPolicy = { threshold: 2, baseDelayMs: MIN, maxDelayMs: 10 * MIN, hardLockAfter: 100 };
  let f = recordFailure(emptyFailures(), T0, policy);
  assert.equal(unstoredFailureExpired(f, T0 + 10 * MIN - 1, policy), false);
  assert.equal(unstoredFailureExpired(f, T0 + 10 * MIN, policy), true);
  f = { ...f, lockedUntil: T0 + 30 * MIN };
  assert.equal(unstoredFailureExpired(f, T0 + 40 * MIN - 1, policy), false);
  assert.equal(unstoredFailureExpired(f, T0 + 40 * MIN, policy), true);
});

// ---------------------------------------------------------------------------------------------
// Sources and reservations

test('sources: IPv4 per address and IPv6 per /64 by default; other prefixes on request', () => {
  assert.equal(ipSource('198.51.100.7', DEFAULT_SOURCE_GROUPING), '198.51.100.7');
  assert.equal(ipSource('2001:db8:1:2::c8', DEFAULT_SOURCE_GROUPING), '2001:db8:1:2::/64');
  assert.equal(ipSource('2001:db8:1:2:ffff:ffff:ffff:ffff', DEFAULT_SOURCE_GROUPING), '2001:db8:1:2::/64');
  assert.notEqual(ipSource('2001:db8:1:3::1', DEFAULT_SOURCE_GROUPING), ipSource('2001:db8:1:2::1', DEFAULT_SOURCE_GROUPING));
  assert.equal(ipSource('198.51.100.7', { ipv4Prefix: 24, ipv6Prefix: 64 }), '198.51.100.0/24');
  assert.equal(ipSource('2001:db8:1:2::c8', { ipv4Prefix: 32, ipv6Prefix: 128 }), '2001:db8:1:2::c8');
  assert.equal(ipSource('2001:db8:1:2::c8', { ipv4Prefix: 32, ipv6Prefix: 48 }), '2001:db8:1::/48');
});

function reserve(s: IpSourceState | null, mailbox: string, now = T0, creates = false): IpSourceState | { until: number; reason: string } {
  const r = reserveIpAttempt(s, mailbox, creates, now, IP_POLICY);
  return r.granted ? r.state : { until: r.until, reason: r.reason };
}
const isState = (v: unknown): v is IpSourceState => typeof v === 'object' && v !== null && 'inFlight' in v;

test('reservations: attempts in flight count toward maxFailures before any has failed', () => {
  let s: IpSourceState | null = null;
  for (let i = 0; i < IP_POLICY.maxFailures; i++) {
    const r = reserve(s, 'a@example.com');
    assert.ok(isState(r), `attempt ${i + 1}`);
    s = r;
  }
  assert.deepEqual(reserve(s, 'a@example.com'), { until: T0 + IN_FLIGHT_RETRY_MS, reason: 'ip-failures' });
  // A success releases its place without counting.
  s = settleIpAttempt(s, 'a@example.com', false, 'none', T0, IP_POLICY);
  assert.ok(s !== null && s.inFlight.length === IP_POLICY.maxFailures - 1 && s.failures === null);
  assert.ok(isState(reserve(s, 'a@example.com')));
  // Failures convert: after maxFailures of them the source is blocked for blockMs.
  for (let i = 0; i < IP_POLICY.maxFailures - 1; i++) s = settleIpAttempt(s, 'a@example.com', false, 'failure', T0, IP_POLICY);
  assert.equal(s?.failures?.failures, IP_POLICY.maxFailures - 1);
  const r = reserve(s, 'a@example.com');
  assert.ok(isState(r));
  s = settleIpAttempt(r, 'a@example.com', false, 'failure', T0, IP_POLICY);
  assert.deepEqual(reserve(s, 'a@example.com'), { until: T0 + IP_POLICY.blockMs, reason: 'ip-failures' });
});

test('reservations: mailboxes in flight count toward distinctMailboxes', () => {
  let s: IpSourceState | null = null;
  for (const m of ['a', 'b', 'c']) {
    const r = reserve(s, `${m}@example.com`);
    assert.ok(isState(r));
    s = r;
  }
  assert.deepEqual(reserve(s, 'd@example.com'), { until: T0 + IN_FLIGHT_RETRY_MS, reason: 'ip-mailboxes' });
  assert.ok(isState(reserve(s, 'a@example.com')), 'another attempt on a mailbox already counted');
  for (const m of ['a', 'b', 'c']) s = settleIpAttempt(s, `${m}@example.com`, false, 'failure', T0, IP_POLICY);
  assert.deepEqual(reserve(s, 'd@example.com'), { until: T0 + IP_POLICY.blockMs, reason: 'ip-mailboxes' });
});

test('reservations: settling what was all released leaves nothing to keep; a failure is kept until its window ends', () => {
  const r = reserve(null, 'a@example.com');
  assert.ok(isState(r));
  assert.equal(settleIpAttempt(r, 'a@example.com', false, 'none', T0, IP_POLICY), null);
  const failed = settleIpAttempt(r, 'a@example.com', false, 'failure', T0, IP_POLICY);
  assert.equal(failed?.failures?.failures, 1);
  const later = reserve(failed, 'b@example.com', T0 + IP_POLICY.windowMs);
  assert.ok(isState(later));
  assert.equal(settleIpAttempt(later, 'b@example.com', false, 'none', T0 + IP_POLICY.windowMs, IP_POLICY), null, 'the old window no longer counts');
  assert.deepEqual(r.inFlight, ['a@example.com'], 'inputs are not modified');
});

test('reservations: records created count apart, at most maxFailures per window, without blocking other attempts', () => {
  let s: IpSourceState | null = null;
  for (let i = 0; i < IP_POLICY.maxFailures; i++) {
    const r = reserve(s, `n${i}@example.com`, T0 + i, true);
    assert.ok(isState(r), `creation ${i + 1}`);
    s = settleIpAttempt(r, `n${i}@example.com`, true, 'created', T0 + i, IP_POLICY);
  }
  assert.deepEqual(reserve(s, 'x@example.com', T0 + 100, true), { until: T0 + IP_POLICY.windowMs, reason: 'ip-enrolments' });
  assert.ok(isState(reserve(s, 'x@example.com', T0 + 100, false)), 'an attempt that creates nothing is not refused for it');
  assert.ok(isState(reserve(s, 'x@example.com', T0 + IP_POLICY.windowMs, true)), 'a new window');
  // Creations in flight count too.
  let t: IpSourceState | null = null;
  for (let i = 0; i < IP_POLICY.maxFailures; i++) {
    const r = reserve(t, 'same@example.com', T0, true);
    assert.ok(isState(r));
    t = r;
  }
  assert.deepEqual(reserve(t, 'same@example.com', T0, true), { until: T0 + IN_FLIGHT_RETRY_MS, reason: 'ip-failures' });
});

test('source blocks as an administrator sees them, and clearing one keeps the attempts in flight', () => {
  let s: IpSourceState | null = null;
  for (let i = 0; i < IP_POLICY.maxFailures - 1; i++) {
    const r = reserve(s, 'a@example.com');
    assert.ok(isState(r));
    s = settleIpAttempt(r, 'a@example.com', false, 'failure', T0, IP_POLICY);
  }
  assert.ok(s !== null);
  assert.equal(ipSourceBlock(s, T0, IP_POLICY), null, 'failures under the limit are no block');
  assert.equal(ipSourceFailures(s, T0, IP_POLICY), IP_POLICY.maxFailures - 1);
  assert.equal(ipSourceFailures(s, T0 + IP_POLICY.windowMs, IP_POLICY), 0, 'a window that is over counts nothing');
  const r = reserve(s, 'a@example.com');
  assert.ok(isState(r));
  const blocked = settleIpAttempt(r, 'a@example.com', false, 'failure', T0, IP_POLICY)!;
  assert.deepEqual(ipSourceBlock(blocked, T0, IP_POLICY), { reason: 'ip-failures', until: T0 + IP_POLICY.blockMs, failures: IP_POLICY.maxFailures });
  assert.equal(ipSourceBlock(blocked, T0 + IP_POLICY.blockMs, IP_POLICY), null, 'a block ends');
  // Cleared with nothing in flight: nothing is left.
  assert.equal(clearIpSource(blocked, T0), null);
  // Cleared with an attempt in flight: that one still counts, the rest is gone.
  const inFlight = reserve({ ...blocked, failures: null }, 'b@example.com');
  assert.ok(isState(inFlight));
  const cleared = clearIpSource({ ...inFlight, failures: blocked.failures }, T0)!;
  assert.deepEqual([cleared.failures, cleared.inFlight, cleared.created], [null, ['b@example.com'], 0]);
  assert.equal(ipSourceBlock(cleared, T0, IP_POLICY), null);
  assert.equal(settleIpAttempt(cleared, 'b@example.com', false, 'none', T0, IP_POLICY), null, 'it settles as usual');
  // Too many records created in the window: an enrolment block, until the window ends.
  let e: IpSourceState | null = null;
  for (let i = 0; i < IP_POLICY.maxFailures; i++) {
    const q = reserve(e, `n${i}@example.com`, T0, true);
    assert.ok(isState(q));
    e = settleIpAttempt(q, `n${i}@example.com`, true, 'created', T0, IP_POLICY);
  }
  assert.deepEqual(ipSourceBlock(e!, T0 + 5, IP_POLICY), { reason: 'ip-enrolments', until: T0 + IP_POLICY.windowMs, failures: 0 });
  assert.equal(clearIpSource(e!, T0 + 5), null);
});
