// The enrolment grace through the real daemon: logins let in without a second factor until a
// date or for a number of logins, the enrolment offered meanwhile, counted atomically for stored
// mailboxes, and nothing stored for mailboxes nobody configured.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { ExplainResult, MailboxView, StatusResult, VerifyResult } from '../src/protocol/results.js';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const HOUR = 3_600_000;

describe('enrolment grace', () => {
  let d: TestDaemon;
  let dir: string;
  let clockFile: string;
  const verify = (user: string, code?: string) => call(d.hookSocket, 'verify', code === undefined ? { user, ip: GB } : { user, ip: GB, code }) as Promise<VerifyResult>;
  const show = (address: string) => d.json<MailboxView>(['mailbox', 'show', address]);
  const stored = async () => (await d.json<StatusResult>(['status'])).mailboxes;
  const setClock = (offsetMs: number) => writeFile(clockFile, String(offsetMs));

  before(async () => {
    dir = await makeTempDir();
    clockFile = path.join(dir, 'clock');
    await writeFile(clockFile, '0');
    d = await startDaemon({ dir, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
    for (const domain of ['none.example', 'count.example', 'date.example', 'both.example']) await d.json(['domain', 'set', domain, '--challenge', 'always', '--provider', 'totp']);
  });
  after(async () => {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('by default a mailbox without a secret must enrol at once, as before', async () => {
    await d.json(['mailbox', 'set', 'a@none.example', '--challenge', 'always']);
    const r = await verify('a@none.example');
    assert.deepEqual([r.result, r.reason], ['enroll', 'enroll-required']);
    assert.equal(r.graceLoginsLeft, undefined);
    const shown = await show('a@none.example');
    assert.deepEqual(shown.effective.enrolmentGrace, { value: 'none', source: 'default' });
  });

  it('a grace of n logins lets a stored mailbox in n times, offering the enrolment, then asks it to enrol', async () => {
    await d.json(['domain', 'set', 'count.example', '--enrolment-grace', 'logins=2']);
    await d.json(['mailbox', 'set', 'c@count.example', '--challenge', 'always']);
    const first = await d.cli(['verify', '--json', '--user', 'c@count.example', '--ip', GB]);
    assert.equal(first.code, 0, `exit 0 (allow): ${first.stdout} ${first.stderr}`);
    const one = JSON.parse(first.stdout) as VerifyResult;
    assert.deepEqual([one.result, one.reason, one.provider, one.graceLoginsLeft, one.graceUntil], ['allow', 'enrolment-grace', 'totp', 1, undefined]);
    assert.match(one.otpauthUri ?? '', /^otpauth:\/\/totp\//, 'the enrolment is offered');
    assert.ok(typeof one.expiresAt === 'number');
    const human = await d.cli(['verify', '--user', 'c@count.example', '--ip', GB]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^allow \(enrolment-grace\); provider totp; expires \S+; 0 grace logins left$/m);
    assert.match(human.stdout, /^otpauth:\/\/totp\//m, 'the URI is printed for the QR code');
    const third = await verify('c@count.example');
    assert.deepEqual([third.result, third.reason], ['enroll', 'enroll-required'], 'the grace is used');
    assert.equal(third.otpauthUri, one.otpauthUri, 'the same pending secret all along');
    assert.equal((await show('c@count.example')).enrolmentGraceLogins, 2, 'a refused login counts nothing');
    const x = await d.json<ExplainResult>(['explain', 'c@count.example', '--ip', GB]);
    assert.deepEqual([x.decision.result, x.decision.reason], ['enroll', 'enroll-required']);
    assert.ok(x.steps.some((s) => /^enrolment grace: 2 logins \(from domain\): its logins are used \(2\)/.test(s)), x.steps.join('\n'));
  });

  it('concurrent logins never get more than the grace: exactly n are let in', async () => {
    await d.json(['mailbox', 'set', 'race@count.example', '--enrolment-grace', 'logins=5']);
    const answers = await Promise.all(Array.from({ length: 30 }, () => verify('race@count.example')));
    assert.equal(answers.filter((a) => a.reason === 'enrolment-grace').length, 5);
    assert.equal(answers.filter((a) => a.reason === 'enroll-required').length, 25);
    assert.deepEqual(answers.filter((a) => a.reason === 'enrolment-grace').map((a) => a.graceLoginsLeft).sort(), [0, 1, 2, 3, 4]);
    assert.equal((await show('race@count.example')).enrolmentGraceLogins, 5);
    // The count is stored: a restart does not give the grace again.
    await d.stop();
    await d.restart();
    assert.equal((await show('race@count.example')).enrolmentGraceLogins, 5);
    assert.equal((await verify('race@count.example')).reason, 'enroll-required');
  });

  it('a code given during the grace enrols the mailbox; then it is challenged', async () => {
    await d.json(['mailbox', 'set', 'e@count.example', '--challenge', 'always']);
    const offered = await verify('e@count.example');
    assert.equal(offered.reason, 'enrolment-grace');
    const secret = fromBase32(new URL(offered.otpauthUri!).searchParams.get('secret')!);
    const enrolled = await verify('e@count.example', totpCode(secret, Date.now(), TOTP));
    assert.deepEqual([enrolled.result, enrolled.reason], ['allow', 'enrolled']);
    const next = await verify('e@count.example');
    assert.deepEqual([next.result, next.reason], ['challenge', 'always'], 'an enrolled mailbox has no grace');
  });

  it('a mailbox\'s own none ends its domain\'s grace for it; inherit restores it', async () => {
    await d.json(['mailbox', 'set', 'n@count.example', '--enrolment-grace', 'none']);
    assert.equal((await verify('n@count.example')).reason, 'enroll-required');
    await d.json(['mailbox', 'set', 'n@count.example', '--enrolment-grace', 'inherit']);
    const r = await verify('n@count.example');
    assert.deepEqual([r.reason, r.graceLoginsLeft], ['enrolment-grace', 1]);
    assert.deepEqual((await show('n@count.example')).effective.enrolmentGrace, { value: { logins: 2 }, source: 'domain' });
  });

  it('a grace until a date ends at that date; a mailbox nobody configured gets it without being stored', async () => {
    const until = new Date(Date.now() + 2 * HOUR).toISOString();
    await d.json(['domain', 'set', 'date.example', '--enrolment-grace', `until=${until}`]);
    const before = await stored();
    const r = await verify('nobody@date.example');
    assert.deepEqual([r.result, r.reason, r.graceUntil, r.graceLoginsLeft], ['allow', 'enrolment-grace', Date.parse(until), undefined]);
    assert.match(r.otpauthUri ?? '', /^otpauth:/);
    for (let i = 0; i < 5; i++) assert.equal((await verify('nobody@date.example')).reason, 'enrolment-grace', 'not counted: the date bounds it');
    assert.equal(await stored(), before, 'nothing was stored for it');
    assert.equal((await show('nobody@date.example')).stored, false);
    const x = await d.json<ExplainResult>(['explain', 'nobody@date.example', '--ip', GB]);
    assert.deepEqual([x.decision.result, x.decision.reason], ['allow', 'enrolment-grace']);
    await setClock(3 * HOUR);
    try {
      const late = await verify('nobody@date.example');
      assert.deepEqual([late.result, late.reason], ['enroll', 'enroll-required'], 'past the date');
      const xl = await d.json<ExplainResult>(['explain', 'nobody@date.example', '--ip', GB]);
      assert.ok(xl.steps.some((s) => /its date is past/.test(s)), xl.steps.join('\n'));
    } finally {
      await setClock(0);
    }
  });

  it('a mailbox nobody configured gets no grace of logins alone (nothing counts them), and the date bounds a grace of both', async () => {
    const before = await stored();
    const r = await verify('nobody@count.example');
    assert.deepEqual([r.result, r.reason], ['enroll', 'enroll-required']);
    const x = await d.json<ExplainResult>(['explain', 'nobody@count.example', '--ip', GB]);
    assert.ok(x.steps.some((s) => /logins are not counted for a mailbox without a stored record/.test(s)), x.steps.join('\n'));
    const until = new Date(Date.now() + HOUR).toISOString();
    await d.json(['domain', 'set', 'both.example', '--enrolment-grace', `until=${until},logins=1`]);
    for (let i = 0; i < 3; i++) {
      const a = await verify('nobody@both.example');
      assert.deepEqual([a.reason, a.graceUntil, a.graceLoginsLeft], ['enrolment-grace', Date.parse(until), undefined]);
    }
    assert.equal(await stored(), before, 'nothing was stored');
    // Once stored, its logins count.
    await d.json(['mailbox', 'set', 'some@both.example', '--challenge', 'always']);
    assert.deepEqual([(await verify('some@both.example')).graceLoginsLeft, (await verify('some@both.example')).reason], [0, 'enroll-required']);
  });

  it('the platform administrator\'s only; bad values are refused, naming the part', async () => {
    const token = (await d.json<{ token: string }>(['admin', 'add', 'da', '--domain', 'count.example'])).token;
    const tokenFile = path.join(dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    for (const args of [['domain', 'set', 'count.example'], ['mailbox', 'set', 'c@count.example']]) {
      const r = await d.cli(['--token-file', tokenFile, ...args, '--enrolment-grace', 'logins=100']);
      assert.equal(r.code, 77, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /enrolmentGrace: set by the platform administrator only/);
    }
    const bad: [string, RegExp][] = [
      ['logins=0', /enrolmentGrace\.logins: expected a whole number from 1 to 10000/],
      ['logins=10001', /enrolmentGrace\.logins/],
      ['until=2030-02-30', /enrolmentGrace\.until: expected an ISO 8601 date/],
      ['until=2030-07-01T08:00', /enrolmentGrace\.until/],
      ['forever', /enrolmentGrace: expected 'none', or until/],
      ['days=3', /enrolmentGrace\.days: unknown key/],
    ];
    for (const [value, message] of bad) {
      const r = await d.cli(['global', 'set', '--enrolment-grace', value]);
      assert.equal(r.code, 64, `${value}: ${r.stderr}`);
      assert.match(r.stderr, message, value);
    }
    const set = await d.json<{ settings: Record<string, unknown> }>(['global', 'set', '--enrolment-grace', 'until=2030-07-01,logins=3']);
    assert.deepEqual(set.settings['enrolmentGrace'], { until: '2030-07-01T00:00:00.000Z', logins: 3 });
    await d.json(['global', 'set', '--enrolment-grace', 'inherit']);
  });
});
