// One-time codes by email, in process over in-memory ports and a clock the test moves: the send
// limits (claimed through the state ports, so that several daemons share them), the same code sent
// again while it is open, a code's tries, its expiry, and a send that reached nobody.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newMailbox } from '../src/core/model.js';
import { MemfaError } from '../src/protocol/errors.js';
import { serviceRig, T0 } from './helpers/services.js';

const EMAIL = { challenge: 'always' as const, provider: 'email' as const };
const ROOMY = { lockout: { threshold: 100, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 } };
const LOGIN = { user: 'mail@example.org', ip: '192.0.2.1' };

async function emailRig(raw: Record<string, unknown> = {}) {
  const rig = serviceRig({ ...ROOMY, ...raw });
  await rig.seed({ ...newMailbox('mail@example.org', T0), settings: EMAIL, altEmail: 'me@elsewhere.test' });
  return rig;
}

test('codes: a challenge sends one; within the cooldown it answers with the open code and sends nothing', async () => {
  const rig = await emailRig();
  const first = await rig.call('verify', LOGIN);
  assert.deepEqual([first.result, first.provider, first.sent, first.resent], ['challenge', 'email', true, false]);
  assert.equal(first.expiresAt, T0 + 300_000, 'codes.ttlSeconds');
  assert.equal(rig.email.sent.length, 1);
  assert.equal(rig.email.sent[0]!.to, 'me@elsewhere.test');
  const code = rig.email.lastCode;
  assert.equal(rig.mailbox('mail@example.org')!.openCode?.hash.includes(code), false, 'the store holds no plain code');

  rig.clock.now += 10_000;
  const held = await rig.call('verify', LOGIN);
  assert.deepEqual([held.sent, held.resent, held.retryAfter, held.expiresAt], [false, false, 20, first.expiresAt]);
  assert.equal(rig.email.sent.length, 1, 'nothing sent within codes.cooldownSeconds');

  rig.clock.now += 20_000;
  const again = await rig.call('verify', LOGIN);
  assert.deepEqual([again.sent, again.resent, again.expiresAt], [true, true, first.expiresAt]);
  assert.equal(rig.email.lastCode, code, 'the same code, opened from the store');
  assert.equal(rig.mailbox('mail@example.org')!.openCode?.sends, 2);

  const ok = await rig.call('verify', { ...LOGIN, code });
  assert.deepEqual([ok.result, ok.reason, ok.provider], ['allow', 'code-valid', 'email']);
  assert.equal(rig.mailbox('mail@example.org')!.openCode, null, 'used up');
  assert.equal((await rig.call('verify', { ...LOGIN, code })).reason, 'no-open-code', 'once');
});

test('codes: 20 concurrent challenges send exactly one code', async () => {
  const rig = await emailRig();
  const answers = await Promise.all(Array.from({ length: 20 }, () => rig.call('verify', LOGIN)));
  assert.equal(rig.email.sent.length, 1);
  assert.equal(answers.filter((a) => a.sent === true).length, 1);
  assert.ok(answers.every((a) => a.result === 'challenge' && a.expiresAt === T0 + 300_000), 'every challenge answered with the one open code');
});

test("codes: a code's tries are counted exactly, also under concurrency; past codes.maxTries it is void", async () => {
  const rig = await emailRig();
  await rig.call('verify', LOGIN);
  const code = rig.email.lastCode;
  const wrong = code === '000000' ? '111111' : '000000';
  const answers = await Promise.all(Array.from({ length: 4 }, () => rig.call('verify', { ...LOGIN, code: wrong })));
  assert.ok(answers.every((a) => a.reason === 'code-invalid'));
  assert.equal(rig.mailbox('mail@example.org')!.openCode?.failedTries, 4);
  assert.equal(rig.mailbox('mail@example.org')!.failures.elsewhere?.consecutive, 4, 'each try a failure of the mailbox too');
  assert.equal((await rig.call('verify', { ...LOGIN, code: wrong })).reason, 'code-invalid', 'the fifth try');
  assert.equal(rig.mailbox('mail@example.org')!.openCode, null, 'void after codes.maxTries');
  assert.equal((await rig.call('verify', { ...LOGIN, code })).reason, 'no-open-code', 'the right code no longer works');
});

test('codes: an expired code is dropped and counted', async () => {
  const rig = await emailRig();
  await rig.call('verify', LOGIN);
  const code = rig.email.lastCode;
  rig.clock.now += 300_000;
  const late = await rig.call('verify', { ...LOGIN, code });
  assert.deepEqual([late.result, late.reason], ['deny', 'code-expired']);
  assert.equal(rig.mailbox('mail@example.org')!.openCode, null);
  assert.equal(rig.mailbox('mail@example.org')!.failures.elsewhere?.consecutive, 1);
});

test('codes: a send that fails leaves no code open and uses up no send budget', async () => {
  const rig = await emailRig();
  rig.email.failing = true;
  await assert.rejects(rig.call('verify', LOGIN), (e: unknown) => e instanceof MemfaError && e.code === 'DELIVERY_FAILED');
  assert.equal(rig.mailbox('mail@example.org')!.openCode, null);
  assert.deepEqual(rig.warnings, ['delivery-failed']);
  rig.email.failing = false;
  const retry = await rig.call('verify', LOGIN);
  assert.deepEqual([retry.sent, retry.resent], [true, false], 'sent at once: the failed send claimed no cooldown');
});

test('codes: the hourly cap counts every send, re-sends included, and names its limit', async () => {
  const rig = await emailRig({ codes: { cooldownSeconds: 30, hourlyLimit: 3, ttlSeconds: 600 } });
  for (let i = 0; i < 3; i++) {
    assert.equal((await rig.call('verify', LOGIN)).sent, true, `send ${i + 1}`);
    rig.clock.now += 30_000;
  }
  const capped = await rig.call('verify', LOGIN);
  assert.deepEqual([capped.sent, capped.retryAfter], [false, 3600 - 90], 'held: the open code answers until the hour of the first send is over');
  assert.equal(rig.email.sent.length, 3);
  // The open code gone, the cap is an error that says which limit.
  await rig.state.closeCode('mail@example.org', rig.mailbox('mail@example.org')!.openCode!.hash);
  await assert.rejects(rig.call('verify', LOGIN), (e: unknown) => e instanceof MemfaError && e.code === 'RATE_LIMITED' && /codes\.hourlyLimit/.test(e.message));
  rig.clock.now = T0 + 3_600_000;
  assert.equal((await rig.call('verify', LOGIN)).sent, true, 'an hour after the first send');
});

test('codes: self.code.send shares the send limits with verify', async () => {
  const rig = await emailRig();
  await rig.call('verify', LOGIN);
  const self = await rig.call('self.code.send', { user: 'mail@example.org' }, { socket: 'self', actor: 'self' });
  assert.deepEqual([self.sent, self.provider], [false, 'email']);
  assert.equal(rig.email.sent.length, 1);
});
