// The notice sender (services/notify.ts) over a real file store, with a clock and a gateway the
// test controls: retries with backoff, giving up after maxAttempts, the bound on the queue, and
// the record left as it was once nothing is worth keeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { AuditEvent } from '../src/audit/entry.js';
import { validateConfig } from '../src/config/load.js';
import { DAY_MS } from '../src/core/notices.js';
import { newMailbox } from '../src/core/model.js';
import { createLogger } from '../src/daemon/logger.js';
import type { OutgoingNotice } from '../src/delivery/types.js';
import { MemfaError } from '../src/protocol/errors.js';
import { renderNotice } from '../src/delivery/notice.js';
import { Notifier, type NotifierPorts } from '../src/services/notify.js';
import { FileStore } from '../src/store/file-store.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { makeTempDir } from './helpers/daemon.js';
import { waitFor } from './helpers/protocol-tools.js';

const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

async function setup(t: import('node:test').TestContext, notifications: Record<string, unknown> = {}) {
  const dir = await makeTempDir();
  const store = await FileStore.open(path.join(dir, 'memfa.json'));
  const clock = { now: T0 };
  const audit: AuditEvent[] = [];
  const logLines: Record<string, unknown>[] = [];
  const sent: OutgoingNotice[] = [];
  const gateway = { up: true, tries: 0 };
  const config = validateConfig({ dataDir: dir, notifications: { retryInitialSeconds: 60, retryMaxSeconds: 240, maxAttempts: 3, ...notifications } }, path.join(dir, 'config.json'));
  const ports = {
    config,
    state: new FileStatePorts(store),
    clock: () => clock.now,
    log: createLogger('debug', (line) => logLines.push(JSON.parse(line) as Record<string, unknown>), { priorityPrefix: false }),
    audit: { append: async (e: AuditEvent) => audit.push(e) },
  } as unknown as NotifierPorts;
  const sender = {
    transport: 'test',
    async sendNotice(msg: OutgoingNotice) {
      gateway.tries++;
      if (!gateway.up) throw new MemfaError('DELIVERY_FAILED', 'gateway down (test)');
      sent.push(msg);
      return { messageId: `<${sent.length}@test>` };
    },
  };
  const render = (n: Parameters<typeof renderNotice>[0], mailbox: string) => renderNotice(n, mailbox, config.notifications.templates, config.notifications.support);
  const notifier = new Notifier(ports, { sender, render });
  await notifier.start();
  t.after(async () => {
    await notifier.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const put = (address: string, altEmail: string | null = null) => store.transact((tx) => tx.putMailbox({ ...newMailbox(address, clock.now), altEmail }));
  const event = (address: string, kind: Parameters<Notifier['notify']>[1]['kind']) => notifier.notify(address, { kind, ip: '192.0.2.1', country: 'GB' });
  const advance = (ms: number) => {
    clock.now += ms;
    notifier.wake();
  };
  return { store, clock, audit, logLines, sent, gateway, notifier, put, event, advance, ports };
}

test('a failed notice is retried after retryInitialSeconds, doubling, and given up after maxAttempts; each outcome audited', async (t) => {
  const s = await setup(t);
  await s.put('ann@example.org', 'ann@home.example');
  s.gateway.up = false;
  await s.event('ann@example.org', 'totp-enrolled');
  assert.equal(s.notifier.pending, 1);
  await waitFor(() => s.audit.length === 1, 3000, 'the first failed attempt');
  // The next attempt waits: nothing happens before 60 s, then one attempt; the next after 120 s more.
  s.advance(59_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.gateway.tries, 1);
  s.advance(1_000);
  await waitFor(() => s.audit.length === 2, 3000, 'the second attempt');
  s.advance(119_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.gateway.tries, 2);
  s.advance(1_000);
  await waitFor(() => s.audit.length === 3, 3000, 'the third and last attempt');
  assert.deepEqual(s.audit.map((e) => [e.action, e.result, e.reason, e.details?.['attempts']]), [
    ['notify', 'retrying', 'totp-enrolled', 1],
    ['notify', 'retrying', 'totp-enrolled', 2],
    ['notify', 'abandoned', 'totp-enrolled', 3],
  ]);
  assert.deepEqual(s.audit[0]!.details?.['to'], ['a***@example.org', 'a***@home.example']);
  assert.equal(s.audit[0]!.details?.['retryAt'], new Date(T0 + 60_000).toISOString());
  assert.equal(s.notifier.pending, 0);
  assert.deepEqual(s.logLines.filter((l) => String(l['event']).startsWith('notification-')).map((l) => [l['event'], l['level']]), [
    ['notification-failed', 'warn'],
    ['notification-failed', 'warn'],
    ['notification-abandoned', 'error'],
  ]);
  // Given up: never tried again.
  s.advance(DAY_MS);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.gateway.tries, 3);
});

test('once sent and a day old, nothing of the notices stays on the record; a gateway back up delivers what waited', async (t) => {
  const s = await setup(t);
  await s.put('ben@example.org');
  s.gateway.up = false;
  await s.event('ben@example.org', 'recovery-codes-generated');
  await waitFor(() => s.gateway.tries === 1, 3000, 'the first attempt');
  s.gateway.up = true;
  s.advance(60_000);
  await waitFor(() => s.sent.length === 1, 3000, 'the notice, sent');
  assert.deepEqual(s.sent[0]!.to, ['ben@example.org']);
  assert.match(s.sent[0]!.subject, /New recovery codes for ben@example\.org/);
  // The recent entry (for the per-kind bound) stays for a day, then the field goes.
  await waitFor(() => s.store.getMailbox('ben@example.org')?.notices?.pending.length === 0, 3000, 'the sent notice removed');
  assert.equal(s.store.getMailbox('ben@example.org')!.notices!.recent.length, 1);
  s.advance(DAY_MS);
  await waitFor(() => s.store.getMailbox('ben@example.org')!.notices === undefined, 3000, 'the notices field dropped');
  assert.ok(!('notices' in s.store.getMailbox('ben@example.org')!));
});

test('the queue is bounded by notifications.maxPending: a notice past it is dropped, audited and logged', async (t) => {
  const s = await setup(t, { maxPending: 2 });
  s.gateway.up = false;
  for (const m of ['a', 'b', 'c']) await s.put(`${m}@example.org`);
  for (const m of ['a', 'b', 'c']) await s.event(`${m}@example.org`, 'totp-reset');
  assert.equal(s.notifier.pending, 2);
  await waitFor(() => s.audit.some((e) => e.result === 'dropped'), 3000, 'the dropped entry');
  const dropped = s.audit.filter((e) => e.result === 'dropped');
  assert.deepEqual(dropped.map((e) => [e.mailbox, e.reason, e.details?.['why']]), [['c@example.org', 'totp-reset', 'queue-full']]);
  assert.equal(s.store.getMailbox('c@example.org')!.notices, undefined);
  assert.ok(s.logLines.some((l) => l['event'] === 'notification-dropped' && l['mailbox'] === 'c@example.org'));
});

test('a mailbox whose settings turn notifications off gets none, and nothing is stored for it', async (t) => {
  const s = await setup(t);
  await s.store.transact((tx) => tx.putMailbox({ ...newMailbox('quiet@example.org', T0), settings: { notifications: false } }));
  await s.event('quiet@example.org', 'new-country');
  assert.equal(s.store.getMailbox('quiet@example.org')!.notices, undefined);
  assert.equal(s.notifier.pending, 0);
});

test('a queue is inert only where it would queue and record nothing: no gateway, or the mailbox notices off', async (t) => {
  const s = await setup(t);
  const levels = { global: {}, domain: undefined };
  const on = { ...newMailbox('on@example.org', T0), settings: { notifications: true } };
  const off = { ...newMailbox('off@example.org', T0), settings: { notifications: false } };
  const queue = s.notifier.queueFor(levels, T0, { ip: '192.0.2.1', country: 'GB' });
  assert.equal(queue.inert?.(on), false);
  assert.equal(queue.inert?.(off), true);
  assert.equal(queue.queue(off, [{ kind: 'new-country' }]), off, 'the record back as it was');
  assert.notEqual(queue.queue(on, [{ kind: 'new-country' }]).notices, undefined, 'a notice queued where it is not inert');
  const none = new Notifier(s.ports, undefined);
  const gatewayless = none.queueFor(levels, T0, null);
  assert.equal(gatewayless.inert?.(on), true);
  assert.equal(gatewayless.queue(on, [{ kind: 'new-country' }]), on);
  assert.equal(s.audit.length, 0, 'nothing recorded by either');
});
