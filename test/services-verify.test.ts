// verify and the lockout, in process over in-memory ports (helpers/services.ts) and a clock the
// test moves: what the end-to-end tests check through a daemon, here without one, and the
// concurrency that a daemon's socket makes hard to pin down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newMailbox } from '../src/core/model.js';
import { fromBase32 } from '../src/core/totp.js';
import { serviceRig, T0 } from './helpers/services.js';

const ALWAYS = { challenge: 'always' as const, provider: 'totp' as const };
/** Lockout and source limits that N concurrent failures stay under, so that each is counted as what it is. */
const ROOMY = { lockout: { threshold: 100, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 } };
const count = <T>(xs: readonly T[], pred: (x: T) => boolean) => xs.filter(pred).length;

test('verify: the fast path answers at once, without a promise, and changes nothing', async () => {
  const rig = serviceRig();
  await rig.seed({ ...newMailbox('fast@example.org', T0), settings: { challenge: 'new-ip' }, ips: [{ ip: '192.0.2.7', firstSeen: T0, lastSeen: T0 }] });
  const commits = rig.store.commits;
  const answer = rig.handlers.verify({ user: 'fast@example.org', ip: '192.0.2.7' }, { socket: 'hook', actor: 'hook' });
  assert.equal(answer instanceof Promise, false, 'answered synchronously');
  assert.deepEqual(answer, { result: 'allow', reason: 'known-ip', provider: 'totp', user: 'fast@example.org', ip: '192.0.2.7', country: 'DE' });
  assert.equal(rig.store.commits, commits, 'nothing written');
  assert.equal(rig.audit.at(-1)?.reason, 'known-ip');
});

test('verify: a TOTP code is accepted once; its step again is code-reused and counted', async () => {
  const rig = serviceRig();
  const key = await rig.enrolled('otp@example.org', { settings: ALWAYS });
  const code = rig.totp(key);
  assert.equal((await rig.call('verify', { user: 'otp@example.org', ip: '192.0.2.1' })).result, 'challenge');
  const ok = await rig.call('verify', { user: 'otp@example.org', ip: '192.0.2.1', code });
  assert.deepEqual([ok.result, ok.reason], ['allow', 'code-valid']);
  const rec = rig.mailbox('otp@example.org')!;
  assert.deepEqual(rec.ips.map((e) => e.ip), ['192.0.2.1'], 'the location is remembered');
  assert.deepEqual(rec.countries.map((c) => c.country), ['DE']);
  const again = await rig.call('verify', { user: 'otp@example.org', ip: '192.0.2.1', code });
  assert.deepEqual([again.result, again.reason], ['deny', 'code-reused']);
  assert.equal(rig.mailbox('otp@example.org')!.failures.known?.consecutive, 1, 'counted on the side of the remembered address');
});

test('verify: 50 concurrent logins with one TOTP code, exactly one allowed', async () => {
  const rig = serviceRig(ROOMY);
  const key = await rig.enrolled('race@example.org', { settings: ALWAYS });
  const code = rig.totp(key);
  const answers = await Promise.all(Array.from({ length: 50 }, () => rig.call('verify', { user: 'race@example.org', ip: '192.0.2.1', code })));
  assert.equal(count(answers, (a) => a.result === 'allow'), 1);
  assert.equal(count(answers, (a) => a.reason === 'code-reused'), 49);
  assert.equal(rig.mailbox('race@example.org')!.failures.elsewhere?.consecutive, 49, 'every replay counted');
});

test('lockout: N concurrent wrong codes count N; at the threshold the mailbox is locked until the clock passes its delay', async () => {
  const rig = serviceRig({ lockout: { threshold: 20, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 } });
  const key = await rig.enrolled('lock@example.org', { settings: ALWAYS });
  const wrong = rig.totp(key) === '000000' ? '111111' : '000000';
  const answers = await Promise.all(Array.from({ length: 12 }, () => rig.call('verify', { user: 'lock@example.org', ip: '198.51.100.1', code: wrong })));
  assert.equal(count(answers, (a) => a.reason === 'code-invalid'), 12);
  assert.equal(rig.mailbox('lock@example.org')!.failures.elsewhere?.consecutive, 12, 'counter + N');

  for (let i = 12; i < 20; i++) await rig.call('verify', { user: 'lock@example.org', ip: '198.51.100.1', code: wrong });
  const locked = await rig.call('verify', { user: 'lock@example.org', ip: '198.51.100.1', code: rig.totp(key) });
  assert.deepEqual([locked.result, locked.reason], ['deny', 'locked'], 'the right code is not even checked');
  assert.equal(locked.retryAfter, 60, 'lockout.baseDelaySeconds');
  assert.equal(rig.mailbox('lock@example.org')!.failures.elsewhere?.consecutive, 20, 'nothing counted while locked');

  rig.clock.now += 60_000;
  const ok = await rig.call('verify', { user: 'lock@example.org', ip: '198.51.100.1', code: rig.totp(key) });
  assert.deepEqual([ok.result, ok.reason], ['allow', 'code-valid'], 'the delay is over');
  assert.equal(rig.mailbox('lock@example.org')!.failures.elsewhere?.consecutive ?? 0, 0, 'a success resets the failures of its kind');
});

test('lockout: failures elsewhere do not lock the owner out at a remembered address', async () => {
  const rig = serviceRig({ lockout: { threshold: 3, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 } });
  const key = await rig.enrolled('owner@example.org', { settings: ALWAYS, ips: [{ ip: '192.0.2.9', firstSeen: T0, lastSeen: T0 }] });
  for (let i = 0; i < 3; i++) await rig.call('verify', { user: 'owner@example.org', ip: '198.51.100.2', code: '000001' });
  assert.equal((await rig.call('verify', { user: 'owner@example.org', ip: '198.51.100.2', code: rig.totp(key) })).reason, 'locked');
  const home = await rig.call('verify', { user: 'owner@example.org', ip: '192.0.2.9', code: rig.totp(key) });
  assert.deepEqual([home.result, home.reason], ['allow', 'code-valid']);
});

test('the per-source throttle: a source over its failures is refused before any mailbox is touched', async () => {
  const rig = serviceRig({ lockout: { ipMaxFailures: 3, ipDistinctMailboxes: 100, ipWindowSeconds: 60, ipBlockSeconds: 120 } });
  const keys = await Promise.all(['a', 'b', 'c', 'd'].map((m) => rig.enrolled(`${m}@example.org`, { settings: ALWAYS })));
  for (const m of ['a', 'b', 'c']) assert.equal((await rig.call('verify', { user: `${m}@example.org`, ip: '198.51.100.3', code: '000002' })).reason, 'code-invalid');
  const refused = await rig.call('verify', { user: 'd@example.org', ip: '198.51.100.3', code: rig.totp(keys[3]!) });
  assert.deepEqual([refused.result, refused.reason, refused.retryAfter], ['deny', 'locked', 120]);
  assert.deepEqual(rig.mailbox('d@example.org')!.failures, newMailbox('d@example.org', T0).failures, 'the mailbox was not touched');
  const blocks = await rig.call('ip-block.list', {}, { socket: 'admin', actor: 'admin' });
  assert.deepEqual(blocks.blocks.map((b) => b.source), ['198.51.100.3']);
  assert.equal((await rig.call('verify', { user: 'd@example.org', ip: '198.51.100.4', code: rig.totp(keys[3]!) })).reason, 'code-valid', 'another source');
  rig.clock.now += 120_000;
  assert.equal((await rig.call('verify', { user: 'a@example.org', ip: '198.51.100.3', code: rig.totp(keys[0]!) })).reason, 'code-valid', 'the block is over');
});

test('verify: a recovery code is spent once, also under concurrency', async () => {
  const rig = serviceRig(ROOMY);
  await rig.enrolled('rc@example.org', { settings: ALWAYS });
  const { codes } = await rig.call('recovery.generate', { address: 'rc@example.org' }, { socket: 'admin', actor: 'admin' });
  assert.equal(codes.length, 10);
  const answers = await Promise.all(Array.from({ length: 10 }, () => rig.call('verify', { user: 'rc@example.org', ip: '192.0.2.1', code: codes[0]! })));
  const used = answers.filter((a) => a.reason === 'recovery-code-used');
  assert.equal(used.length, 1);
  assert.equal(used[0]!.recoveryCodesLeft, 9);
  assert.equal(count(answers, (a) => a.reason === 'code-invalid'), 9);
  assert.equal(rig.mailbox('rc@example.org')!.recoveryCodeHashes.length, 9);
});

test('verify: a mailbox without a record stores nothing for failures, and is stored by the first right code of its offer', async () => {
  const rig = serviceRig({ ...ROOMY, defaults: { challenge: 'always' } });
  const offer = await rig.call('verify', { user: 'new@example.org', ip: '192.0.2.1' });
  assert.deepEqual([offer.result, offer.reason], ['enroll', 'enroll-required']);
  assert.equal(rig.mailbox('new@example.org'), undefined, 'an offer stores nothing');
  for (let i = 0; i < 3; i++) assert.equal((await rig.call('verify', { user: 'new@example.org', ip: '192.0.2.1', code: '000003' })).reason, 'code-invalid');
  assert.equal(rig.mailbox('new@example.org'), undefined, 'nor do failures');
  assert.equal((await rig.state.unstoredFailures('new@example.org', rig.clock.now, { threshold: 100, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 100 }))?.consecutive, 3);

  const key = fromBase32(new URL(offer.otpauthUri!).searchParams.get('secret')!);
  const answers = await Promise.all(Array.from({ length: 5 }, () => rig.call('verify', { user: 'new@example.org', ip: '192.0.2.1', code: rig.totp(key) })));
  assert.equal(count(answers, (a) => a.reason === 'enrolled'), 1, 'stored once');
  assert.equal(count(answers, (a) => a.reason === 'code-reused'), 4, 'the others checked against the stored secret');
  const rec = rig.mailbox('new@example.org')!;
  assert.notEqual(rec.totp, null);
  assert.deepEqual(rec.ips.map((e) => e.ip), ['192.0.2.1']);
  assert.equal(await rig.state.unstoredFailures('new@example.org', rig.clock.now, { threshold: 100, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 100 }), undefined, 'its unstored failures are forgotten');
});

test('verify: grace logins are counted up to their limit under concurrency', async () => {
  const rig = serviceRig();
  await rig.seed({ ...newMailbox('grace@example.org', T0), settings: { ...ALWAYS, enrolmentGrace: { logins: 3 } } });
  const answers = await Promise.all(Array.from({ length: 8 }, () => rig.call('verify', { user: 'grace@example.org', ip: '192.0.2.1' })));
  assert.equal(count(answers, (a) => a.reason === 'enrolment-grace'), 3);
  assert.equal(count(answers, (a) => a.reason === 'enroll-required'), 5);
  assert.deepEqual(answers.filter((a) => a.reason === 'enrolment-grace').map((a) => a.graceLoginsLeft).sort(), [0, 1, 2]);
  assert.equal(new Set(answers.map((a) => a.otpauthUri)).size, 1, 'one pending secret, the same QR code for every login');
  assert.equal(rig.mailbox('grace@example.org')!.enrolmentGraceLogins, 3);
});

test('verify --no-send changes nothing, counts nothing', async () => {
  const rig = serviceRig();
  await rig.seed({ ...newMailbox('quiet@example.org', T0), settings: { ...ALWAYS, enrolmentGrace: { logins: 3 } } });
  const commits = rig.store.commits;
  const a = await rig.call('verify', { user: 'quiet@example.org', ip: '192.0.2.1', send: false });
  assert.deepEqual([a.result, a.reason, a.graceLoginsLeft], ['allow', 'enrolment-grace', 2]);
  assert.equal(rig.store.commits, commits);
});

/**
 * The rig's loginViewNow answering as a read cache does (store/postgres/cached-reads.ts): the
 * mailbox's read-mostly part only, its failures, steps, codes and recovery codes left empty, the
 * view marked partial. Counts the whole reads verify then makes (loginView).
 */
function partialViews(rig: ReturnType<typeof serviceRig>): { whole: number } {
  const seen = { whole: 0 };
  // The whole view straight from the store (the file store's own loginView reads through loginViewNow).
  rig.state.loginView = (address) => {
    seen.whole++;
    return Promise.resolve({ mailbox: rig.store.getMailbox(address), domain: undefined, global: rig.store.getGlobal() });
  };
  rig.state.loginViewNow = (address, into) => {
    const rec = rig.store.getMailbox(address);
    into.global = rig.store.getGlobal();
    into.domain = undefined;
    into.mailbox =
      rec === undefined
        ? undefined
        : { ...newMailbox(address, rec.createdAt), settings: rec.settings, userSettings: rec.userSettings, phone: rec.phone, altEmail: rec.altEmail, ips: rec.ips, countries: rec.countries, totp: rec.totp === null ? null : { sealedSecret: '', activatedAt: 0, lastAcceptedStep: null } };
    into.partial = true;
    return into;
  };
  return seen;
}

test('verify: a partial view (a read cache) decides the fast path alone; a lock, a challenge, a code are read whole', async () => {
  const rig = serviceRig();
  const seen = partialViews(rig);
  const locked = { known: null, elsewhere: { consecutive: 99, lockedUntil: null, hardLocked: true, lastFailureAt: T0 } };
  await rig.seed({ ...newMailbox('known@example.org', T0), settings: { challenge: 'new-ip' }, ips: [{ ip: '192.0.2.7', firstSeen: T0, lastSeen: T0 }], failures: locked });
  const fast = rig.handlers.verify({ user: 'known@example.org', ip: '192.0.2.7' }, { socket: 'hook', actor: 'hook' });
  assert.equal(fast instanceof Promise, false, 'the fast path from the partial view, at once');
  assert.deepEqual([(fast as { result: string }).result, seen.whole], ['allow', 0], 'as on the whole view: a remembered address needs no factor');

  // A factor needed: the lock is not in the partial view, so the whole view is read, and it holds.
  const key = await rig.enrolled('held@example.org', { settings: ALWAYS, failures: locked });
  const challenged = await rig.call('verify', { user: 'held@example.org', ip: '192.0.2.1' });
  assert.deepEqual([challenged.result, challenged.reason, seen.whole], ['deny', 'locked', 1]);
  const coded = await rig.call('verify', { user: 'held@example.org', ip: '192.0.2.1', code: rig.totp(key) });
  assert.deepEqual([coded.result, coded.reason, seen.whole], ['deny', 'locked', 2]);

  // A code checked against the secret and the last step of the whole view (the partial has neither).
  const otp = await rig.enrolled('otp@example.org', { settings: ALWAYS });
  const code = rig.totp(otp);
  assert.deepEqual((await rig.call('verify', { user: 'otp@example.org', ip: '192.0.2.1', code })).reason, 'code-valid');
  assert.deepEqual((await rig.call('verify', { user: 'otp@example.org', ip: '192.0.2.1', code })).reason, 'code-reused', 'the step accepted is the whole view\'s');
  assert.equal(seen.whole, 4);
});
