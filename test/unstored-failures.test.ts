// The failures of mailboxes without a stored record, as the state ports keep them
// (UnstoredFailureStore; here the file store's, over a store in memory): counted, bounded,
// forgotten, and never a record of their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LockoutPolicy } from '../src/core/lockout.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';

const T0 = 1_700_000_000_000;
const MIN = 60_000;
const POLICY: LockoutPolicy = { threshold: 2, baseDelayMs: MIN, maxDelayMs: 10 * MIN, hardLockAfter: 100 };

test('unstored failures: counted per address, cleared on demand', async () => {
  const store = new MemoryStore();
  const u = new FileStatePorts(store);
  await u.recordUnstoredFailure('a@example.com', T0, POLICY);
  await u.recordUnstoredFailure('a@example.com', T0 + 1, POLICY);
  assert.equal((await u.unstoredFailures('a@example.com', T0 + 2, POLICY))?.consecutive, 2);
  assert.equal((await u.unstoredFailures('a@example.com', T0 + 2, POLICY))?.lockedUntil, T0 + 1 + MIN);
  assert.equal(await u.unstoredFailures('b@example.com', T0, POLICY), undefined);
  assert.equal((await u.clearUnstoredFailures('a@example.com'))?.consecutive, 2);
  assert.equal(await u.unstoredFailures('a@example.com', T0 + 2, POLICY), undefined);
  assert.equal(store.getMailbox('a@example.com'), undefined, 'no record');
});

test('unstored failures: forgotten after the lockout window, and at most `max` kept, the least recently failed dropped', async () => {
  const u = new FileStatePorts(new MemoryStore(), { unstoredFailures: 3 });
  for (const [i, m] of ['a', 'b', 'c', 'd'].entries()) await u.recordUnstoredFailure(`${m}@example.com`, T0 + i, POLICY);
  assert.equal(u.unstoredTracked, 3);
  assert.equal(await u.unstoredFailures('a@example.com', T0 + 10, POLICY), undefined, 'the oldest went');
  await u.recordUnstoredFailure('b@example.com', T0 + 20, POLICY); // b is now the most recent
  await u.recordUnstoredFailure('e@example.com', T0 + 21, POLICY);
  assert.equal(await u.unstoredFailures('c@example.com', T0 + 22, POLICY), undefined);
  assert.equal((await u.unstoredFailures('b@example.com', T0 + 22, POLICY))?.consecutive, 2);
  // The lock of b's second failure ends at T0 + 20 + MIN; ten minutes after that it is gone.
  assert.notEqual(await u.unstoredFailures('b@example.com', T0 + 20 + 11 * MIN - 1, POLICY), undefined);
  assert.equal(await u.unstoredFailures('b@example.com', T0 + 20 + 11 * MIN, POLICY), undefined);
  // A failure sweeps what expired meanwhile.
  await u.recordUnstoredFailure('z@example.com', T0 + 60 * MIN, POLICY);
  assert.equal(u.unstoredTracked, 1);
});
