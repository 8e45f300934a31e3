// The in-memory failures of mailboxes without a stored record: counted, bounded, forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LockoutPolicy } from '../src/core/lockout.js';
import { UnstoredFailures } from '../src/services/unstored-failures.js';

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const POLICY: LockoutPolicy = { threshold: 2, baseDelayMs: MIN, maxDelayMs: 10 * MIN, hardLockAfter: 100 };

test('unstored failures: counted per address, cleared on demand', () => {
  const u = new UnstoredFailures(POLICY);
  u.fail('a@example.com', T0);
  u.fail('a@example.com', T0 + 1);
  assert.equal(u.get('a@example.com', T0 + 2)?.consecutive, 2);
  assert.equal(u.get('a@example.com', T0 + 2)?.lockedUntil, T0 + 1 + MIN);
  assert.equal(u.get('b@example.com', T0), undefined);
  assert.equal(u.clear('a@example.com')?.consecutive, 2);
  assert.equal(u.get('a@example.com', T0 + 2), undefined);
});

test('unstored failures: forgotten after the lockout window, and at most `max` kept, the least recently failed dropped', () => {
  const u = new UnstoredFailures(POLICY, 3);
  for (const [i, m] of ['a', 'b', 'c', 'd'].entries()) u.fail(`${m}@example.com`, T0 + i);
  assert.equal(u.size, 3);
  assert.equal(u.get('a@example.com', T0 + 10), undefined, 'the oldest went');
  u.fail('b@example.com', T0 + 20); // b is now the most recent
  u.fail('e@example.com', T0 + 21);
  assert.equal(u.get('c@example.com', T0 + 22), undefined);
  assert.equal(u.get('b@example.com', T0 + 22)?.consecutive, 2);
  // The lock of b's second failure ends at T0 + 20 + MIN; ten minutes after that it is gone.
  assert.notEqual(u.get('b@example.com', T0 + 20 + 11 * MIN - 1), undefined);
  assert.equal(u.get('b@example.com', T0 + 20 + 11 * MIN), undefined);
  // A failure sweeps what expired meanwhile.
  u.fail('z@example.com', T0 + 60 * MIN);
  assert.equal(u.size, 1);
});
