// Enrolment and recovery codes, in process over in-memory ports and a clock the test moves: the
// pending secret (kept until it expires), its activation (once, by the step that confirmed it),
// the proof self-service asks for once a mailbox has a factor, and recovery codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newMailbox } from '../src/core/model.js';
import { fromBase32 } from '../src/core/totp.js';
import { MemfaError } from '../src/protocol/errors.js';
import { ADMIN, SELF, serviceRig, T0 } from './helpers/services.js';

const ROOMY = { lockout: { threshold: 100, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 } };
const keyOf = (uri: string) => fromBase32(new URL(uri).searchParams.get('secret')!);
const rejectsWith = (code: string, reason?: string) => (e: unknown) =>
  e instanceof MemfaError && e.code === code && (reason === undefined || (e.data as { reason?: string } | undefined)?.reason === reason);

test('enrolment: the pending secret is kept until it expires; a wrong code is counted; the right one activates it once', async () => {
  const rig = serviceRig(ROOMY);
  const started = await rig.call('enroll.start', { address: 'en@example.org' }, ADMIN);
  rig.clock.now += 60_000;
  const again = await rig.call('enroll.start', { address: 'en@example.org' }, ADMIN);
  assert.equal(again.otpauthUri, started.otpauthUri, 'the same QR code on a reload');
  const key = keyOf(started.otpauthUri);

  await assert.rejects(rig.call('enroll.confirm', { address: 'en@example.org', code: rig.totp(key) === '000000' ? '111111' : '000000' }, ADMIN), rejectsWith('CONFLICT', 'code-invalid'));
  assert.equal(rig.mailbox('en@example.org')!.failures.elsewhere?.consecutive, 1);

  const code = rig.totp(key);
  const confirms = await Promise.allSettled(Array.from({ length: 10 }, () => rig.call('enroll.confirm', { address: 'en@example.org', code }, ADMIN)));
  assert.equal(confirms.filter((r) => r.status === 'fulfilled').length, 1, 'activated once');
  assert.ok(confirms.every((r) => r.status === 'fulfilled' || rejectsWith('CONFLICT')(r.reason)), 'the others find no pending secret');
  const rec = rig.mailbox('en@example.org')!;
  assert.equal(rec.pendingTotp, null);
  assert.equal(rec.failures.elsewhere?.consecutive ?? 0, 0, 'a success resets the failures');

  await rig.seed({ ...rig.mailbox('en@example.org')!, settings: { challenge: 'always' } });
  const replay = await rig.call('verify', { user: 'en@example.org', ip: '192.0.2.1', code });
  assert.equal(replay.reason, 'code-reused', 'the code that confirmed the secret cannot then log in');
  assert.equal((await rig.call('verify', { user: 'en@example.org', ip: '192.0.2.1', code: rig.totp(key, 1) })).reason, 'code-valid');
});

test('enrolment: a pending secret expires by the clock; restart replaces it', async () => {
  const rig = serviceRig();
  const started = await rig.call('enroll.start', { address: 'exp@example.org' }, ADMIN);
  const restarted = await rig.call('enroll.start', { address: 'exp@example.org', restart: true }, ADMIN);
  assert.notEqual(restarted.otpauthUri, started.otpauthUri);
  rig.clock.now += rig.config.totp.enrolmentTtlSeconds * 1000;
  await assert.rejects(rig.call('enroll.confirm', { address: 'exp@example.org', code: rig.totp(keyOf(restarted.otpauthUri)) }, ADMIN), rejectsWith('CONFLICT'));
  const fresh = await rig.call('enroll.start', { address: 'exp@example.org' }, ADMIN);
  assert.notEqual(fresh.otpauthUri, restarted.otpauthUri, 'a new one once the old expired');
});

test('verify enrols a stored mailbox with the first right code of its pending secret', async () => {
  const rig = serviceRig(ROOMY);
  await rig.seed({ ...newMailbox('first@example.org', T0), settings: { challenge: 'always', provider: 'totp' } });
  const offer = await rig.call('verify', { user: 'first@example.org', ip: '192.0.2.1' });
  assert.deepEqual([offer.result, offer.reason], ['enroll', 'enroll-required']);
  const key = keyOf(offer.otpauthUri!);
  assert.equal((await rig.call('verify', { user: 'first@example.org', ip: '192.0.2.1', code: rig.totp(key) === '000000' ? '111111' : '000000' })).reason, 'code-invalid');
  const answers = await Promise.all(Array.from({ length: 5 }, () => rig.call('verify', { user: 'first@example.org', ip: '192.0.2.1', code: rig.totp(key) })));
  assert.equal(answers.filter((a) => a.reason === 'enrolled').length, 1);
  assert.equal(answers.filter((a) => a.result === 'deny').length, 4);
  assert.notEqual(rig.mailbox('first@example.org')!.totp, null);
});

test('self-service: once a mailbox has a factor, a new secret needs proof of it, and only a proved one is activated', async () => {
  const rig = serviceRig(ROOMY);
  const key = await rig.enrolled('self@example.org', { settings: { challenge: 'always', provider: 'totp' } });
  await assert.rejects(rig.call('self.enroll.start', { user: 'self@example.org' }, SELF), rejectsWith('FORBIDDEN'));
  const wrong = rig.totp(key) === '000000' ? '111111' : '000000';
  await assert.rejects(rig.call('self.enroll.start', { user: 'self@example.org', currentCode: wrong }, SELF), (e: unknown) => e instanceof MemfaError);
  assert.equal(rig.mailbox('self@example.org')!.failures.elsewhere?.consecutive, 1, 'a wrong proof is counted');
  assert.equal(rig.mailbox('self@example.org')!.pendingTotp, null, 'and starts nothing');

  const started = await rig.call('self.enroll.start', { user: 'self@example.org', currentCode: rig.totp(key) }, SELF);
  assert.equal(rig.mailbox('self@example.org')!.pendingTotp?.factorProved, true);
  const next = keyOf(started.otpauthUri);
  rig.clock.now += 30_000;
  // An administrator's restart replaces it with one started without proof: self-service refuses that one.
  const unproved = keyOf((await rig.call('enroll.start', { address: 'self@example.org', restart: true }, ADMIN)).otpauthUri);
  await assert.rejects(rig.call('self.enroll.confirm', { user: 'self@example.org', code: rig.totp(unproved) }, SELF), rejectsWith('FORBIDDEN'));
  assert.notEqual(next.toString('hex'), unproved.toString('hex'));
  assert.equal((await rig.call('verify', { user: 'self@example.org', ip: '192.0.2.1', code: rig.totp(key) })).reason, 'code-valid', 'the old factor stays');
});

test('recovery codes: a new set voids the old; each code is spent once; self-service needs proof', async () => {
  const rig = serviceRig(ROOMY);
  const key = await rig.enrolled('rec@example.org', { settings: { challenge: 'always', provider: 'totp' } });
  const old = await rig.call('recovery.generate', { address: 'rec@example.org' }, ADMIN);
  await assert.rejects(rig.call('self.recovery.generate', { user: 'rec@example.org', currentCode: old.codes[0]!.replace(/./, (c) => (c === 'a' ? 'b' : 'a')) }, SELF), (e: unknown) => e instanceof MemfaError);
  const fresh = await rig.call('self.recovery.generate', { user: 'rec@example.org', currentCode: old.codes[0]! }, SELF);
  assert.equal(fresh.codes.length, 10);
  assert.equal(rig.mailbox('rec@example.org')!.recoveryCodeHashes.length, 10, 'the proof spent a code of the old set, the new set replaced it');
  assert.equal((await rig.call('verify', { user: 'rec@example.org', ip: '192.0.2.1', code: old.codes[1]! })).reason, 'code-invalid', 'the old set is void');
  const used = await rig.call('verify', { user: 'rec@example.org', ip: '192.0.2.1', code: fresh.codes[1]! });
  assert.deepEqual([used.result, used.reason, used.recoveryCodesLeft], ['allow', 'recovery-code-used', 9]);
  assert.equal((await rig.call('verify', { user: 'rec@example.org', ip: '192.0.2.1', code: fresh.codes[1]! })).reason, 'code-invalid', 'spent');
  assert.equal((await rig.call('verify', { user: 'rec@example.org', ip: '192.0.2.1', code: rig.totp(key) })).reason, 'code-valid', 'the TOTP factor is untouched');
});
