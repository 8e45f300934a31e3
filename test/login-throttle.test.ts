// The in-memory parts of login.check: the throttle of wrong app passwords, and the coalesced
// writes of app password usage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { MemfaConfig } from '../src/config/types.js';
import { loadConfig } from '../src/config/load.js';
import { newMailbox, type AppPassword, type MailboxRecord } from '../src/core/model.js';
import { AppPasswordUsage, type AppPasswordUsagePorts } from '../src/services/app-password-usage.js';
import { LoginThrottle, MAILBOX_SCOPE, SOURCE_SCOPE } from '../src/services/login-throttle.js';
import { FileStatePorts, MAX_WINDOW_KEYS as MAX_TRACKED } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';
import { REPO } from './helpers/daemon.js';

const NOW = Date.UTC(2026, 5, 1);

function config(lockout: Partial<MemfaConfig['lockout']>, mailboxMaxFailures = 5): MemfaConfig {
  const base = loadConfig({ config: path.join(REPO, 'config', 'memfa.json') }, {});
  return { ...base, lockout: { ...base.lockout, ...lockout }, appPasswords: { ...base.appPasswords, mailboxMaxFailures } };
}

// The throttle's windows are the state ports' (WindowCounterStore): here over a store in memory.
const throttle = (c: MemfaConfig) => {
  const state = new FileStatePorts(new MemoryStore());
  return { t: new LoginThrottle(c, state), state };
};

test('the throttle: per source, per mailbox, never at a remembered address; a block ends', async () => {
  const { t } = throttle(config({ ipMaxFailures: 3, ipDistinctMailboxes: 100, ipWindowSeconds: 60, ipBlockSeconds: 120 }, 4));
  for (let i = 0; i < 3; i++) {
    assert.equal(await t.refusal('192.0.2.1', 'a@example.org', false, NOW), null);
    await t.fail('192.0.2.1', 'a@example.org', NOW);
  }
  assert.deepEqual(await t.refusal('192.0.2.1', 'b@example.org', false, NOW), { until: NOW + 120_000, by: 'source' }, 'the source, for every mailbox');
  assert.equal(await t.refusal('192.0.2.1', 'a@example.org', true, NOW), null, 'not at an address the mailbox remembers');
  assert.equal(await t.refusal('192.0.2.2', 'a@example.org', false, NOW), null, 'another source, the mailbox not yet at its limit');
  await t.fail('192.0.2.2', 'a@example.org', NOW);
  assert.deepEqual(await t.refusal('192.0.2.3', 'a@example.org', false, NOW), { until: NOW + 120_000, by: 'mailbox' });
  assert.equal(await t.refusal('192.0.2.3', 'b@example.org', false, NOW), null, 'other mailboxes from other sources');
  assert.equal(await t.refusal('192.0.2.1', 'b@example.org', false, NOW + 120_000), null, 'the block is over');
});

test('the throttle keeps at most MAX_TRACKED sources and mailboxes', async () => {
  const { t, state } = throttle(config({ ipMaxFailures: 1000, ipDistinctMailboxes: 100000, ipWindowSeconds: 3600 }, 1000));
  for (let i = 0; i < MAX_TRACKED + 50; i++) await t.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, `u${i}@example.org`, NOW);
  assert.deepEqual({ sources: state.windowKeys(SOURCE_SCOPE), mailboxes: state.windowKeys(MAILBOX_SCOPE) }, { sources: MAX_TRACKED, mailboxes: MAX_TRACKED });
});

/** Usage's state port: the file store's over a store in memory, holding `records`, counting its transactions. */
async function usagePorts(records: MailboxRecord[]): Promise<{ ports: AppPasswordUsagePorts; store: MemoryStore; writes: () => number }> {
  const store = new MemoryStore();
  const state = new FileStatePorts(store);
  for (const rec of records) await state.updateMailbox(rec.address, () => ({ next: rec, result: undefined }));
  const seeded = store.commits;
  return { ports: { state, log: { error: () => undefined } }, store, writes: () => store.commits - seeded };
}

test('usage: shown at once, written in one transaction per flush, revoked ones forgotten, a removed mailbox skipped', async () => {
  const ap = (id: string): AppPassword => ({ id, name: id, hash: 'h1:x', protocols: ['imap'], networks: [], createdAt: NOW, expiresAt: null, lastUsed: null, uses: 0 });
  const { ports, store, writes } = await usagePorts([{ ...newMailbox('a@example.org', NOW), appPasswords: [ap('one'), ap('two')] }]);
  const usage = new AppPasswordUsage(ports, 3_600_000);
  for (let i = 0; i < 10; i++) usage.note('a@example.org', 'one', { at: NOW + i, ip: '192.0.2.1', country: null });
  usage.note('a@example.org', 'two', { at: NOW, ip: '192.0.2.2', country: 'DE' });
  usage.note('gone@example.org', 'x', { at: NOW, ip: '192.0.2.3', country: null });
  assert.deepEqual(usage.view('a@example.org', ap('one')), { lastUsed: { at: NOW + 9, ip: '192.0.2.1', country: null }, uses: 10 });
  usage.forget('a@example.org', ['two']);
  assert.equal(writes(), 0, 'nothing written yet');
  await usage.flush();
  assert.equal(writes(), 1, 'one transaction for everything waiting');
  const rec = store.getMailbox('a@example.org')!;
  assert.deepEqual(rec.appPasswords.map((a) => [a.id, a.uses]), [['one', 10], ['two', 0]]);
  assert.equal(store.getMailbox('gone@example.org'), undefined, 'no record is made');
  assert.deepEqual(usage.view('a@example.org', rec.appPasswords[0]!), { lastUsed: { at: NOW + 9, ip: '192.0.2.1', country: null }, uses: 10 }, 'nothing counted twice');
  await usage.close();
  assert.equal(writes(), 1, 'nothing left to write');
});
