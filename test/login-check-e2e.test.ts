// login.check through the real daemon: the primary password per primaryPassword setting, the
// known locations a webmail second factor leaves, the throttle of wrong app passwords (apart from
// the second-factor lockout), and that a mail-protocol login never sends a code (issue 14).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { AppPasswordAdded, LoginCheckResult, MailboxView, VerifyResult } from '../src/protocol/results.js';
import type { AppProtocol } from '../src/protocol/vocabulary.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 10 };
const PERIOD = 30_000;
const HOME = '192.0.2.10';
const CAFE = '198.51.100.20';

describe('login.check: primary passwords, locations, throttling, no codes sent', () => {
  let d: TestDaemon;
  /** The next unused TOTP step of each mailbox (the daemon refuses a step it accepted). */
  const steps = new Map<string, number>();
  const keys = new Map<string, Buffer>();
  const check = (user: string, password: string, ip: string, protocol: AppProtocol = 'imap') => call(d.hookSocket, 'login.check', { user, ip, protocol, password }) as Promise<LoginCheckResult>;
  const verify = (user: string, ip: string, code?: string) => call(d.hookSocket, 'verify', { user, ip, ...(code === undefined ? {} : { code }) }) as Promise<VerifyResult>;
  const nextCode = (user: string) => {
    const k = steps.get(user) ?? 0;
    steps.set(user, k + 1);
    return totpCode(keys.get(user)!, Date.now() + k * PERIOD, TOTP);
  };
  const enrolled = async (user: string) => {
    const e = await d.json<{ secret: string }>(['enroll', user, '--no-confirm']);
    keys.set(user, fromBase32(e.secret));
  };
  const outbox = () => readFile(path.join(d.dataDir, 'outbox.log'), 'utf8').catch(() => '');

  before(async () => {
    d = await startDaemon({
      config: {
        totp: { window: 10 },
        lockout: { ipMaxFailures: 4, ipDistinctMailboxes: 50 },
        appPasswords: { mailboxMaxFailures: 6 },
        providers: { email: { enabled: true, transport: 'log' } },
      },
    });
    await d.json(['domain', 'set', 'lc.example', '--challenge', 'new-ip']);
  });
  after(() => d.cleanup());

  it('primaryPassword password | known-location | app-password, at each level', async () => {
    await enrolled('pat@lc.example');
    await d.json(['global', 'set', '--primary-password', 'password']);
    const p = await check('pat@lc.example', 'primary secret', CAFE);
    assert.deepEqual([p.result, p.reason, p.message], ['continue', 'primary-password', undefined]);
    await d.json(['domain', 'set', 'lc.example', '--primary-password', 'known-location']);
    const unknown = await check('pat@lc.example', 'primary secret', HOME, 'pop3');
    assert.deepEqual([unknown.result, unknown.reason], ['deny', 'unknown-location']);
    assert.match(unknown.message!, /log in to webmail from this network first, or use an app password for POP3/);
    // A second factor passed in webmail from HOME makes it a known location.
    assert.equal((await verify('pat@lc.example', HOME, nextCode('pat@lc.example'))).reason, 'code-valid');
    assert.deepEqual(
      [(await check('pat@lc.example', 'primary secret', HOME, 'pop3')).reason, (await check('pat@lc.example', 'primary secret', CAFE)).reason],
      ['known-location', 'unknown-location'],
    );
    const x = await d.json<{ decision: { result: string; reason: string; matched?: string } }>(['explain', 'pat@lc.example', '--ip', HOME, '--protocol', 'pop3']);
    assert.deepEqual(x.decision, { result: 'continue', reason: 'known-location', matched: HOME });
    await d.json(['mailbox', 'set', 'pat@lc.example', '--primary-password', 'app-password']);
    const refused = await check('pat@lc.example', 'primary secret', HOME, 'smtp');
    assert.deepEqual([refused.result, refused.reason], ['deny', 'app-password-required']);
    const shown = await d.json<MailboxView>(['mailbox', 'show', 'pat@lc.example']);
    assert.deepEqual(shown.effective.primaryPassword, { value: 'app-password', source: 'mailbox' });
    // Without any of these settings the default applies: app passwords only.
    await d.json(['mailbox', 'set', 'pat@lc.example', '--primary-password', 'inherit']);
    await d.json(['domain', 'set', 'lc.example', '--primary-password', 'inherit']);
    await d.json(['global', 'set', '--primary-password', 'inherit']);
    const dflt = await d.json<MailboxView>(['mailbox', 'show', 'pat@lc.example']);
    assert.deepEqual(dflt.effective.primaryPassword, { value: 'app-password', source: 'default' });
    assert.equal((await check('pat@lc.example', 'primary secret', HOME)).reason, 'app-password-required');
    // Mode never and trusted networks leave the primary password to the mail server.
    await d.json(['mailbox', 'set', 'pat@lc.example', '--challenge', 'never']);
    assert.equal((await check('pat@lc.example', 'primary secret', CAFE)).reason, 'mode-never');
    await d.json(['mailbox', 'set', 'pat@lc.example', '--challenge', 'inherit']);
    await d.json(['global', 'set', '--trusted-networks', '198.51.100.0/24']);
    assert.equal((await check('pat@lc.example', 'primary secret', CAFE)).reason, 'trusted-network');
    await d.json(['global', 'set', '--trusted-networks', 'inherit']);
  });

  it('a protocol login never sends a code, nor creates an enrolment, however often it comes', async () => {
    await d.json(['mailbox', 'set', 'eve@lc.example', '--provider', 'email', '--alt-email', 'eve@private.example', '--primary-password', 'password']);
    await d.json(['mailbox', 'set', 'ned@lc.example', '--primary-password', 'password']);
    for (let i = 0; i < 12; i++) {
      assert.equal((await check('eve@lc.example', 'primary secret', CAFE)).result, 'continue');
      assert.equal((await check('ned@lc.example', 'primary secret', CAFE)).result, 'continue');
    }
    assert.equal(await outbox(), '', 'nothing sent');
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'ned@lc.example'])).totp, 'none', 'no pending enrolment');
    // verify, which can answer a challenge, does send: the transport works.
    assert.equal((await verify('eve@lc.example', CAFE)).result, 'challenge');
    assert.match(await outbox(), /eve@private\.example/);
  });

  it('wrong app passwords are throttled per source and per mailbox, never at a remembered address, never in the lockout', async () => {
    await enrolled('tom@lc.example');
    const ap = await d.json<AppPasswordAdded>(['app-password', 'add', 'tom@lc.example', '--name', 'phone']);
    assert.equal((await verify('tom@lc.example', HOME, nextCode('tom@lc.example'))).reason, 'code-valid', 'HOME is remembered');
    const wrong = 'abcd-efgh-jkmn-pqrs-tuvw-xyza';
    // Per source: the fifth try from one address is refused, even with the right password.
    for (let i = 0; i < 4; i++) assert.equal((await check('tom@lc.example', wrong, '203.0.113.1')).reason, 'app-password-required');
    const blocked = await check('tom@lc.example', ap.password, '203.0.113.1');
    assert.deepEqual([blocked.result, blocked.reason], ['deny', 'throttled']);
    assert.ok(blocked.retryAfter! > 0 && blocked.retryAfter! <= 900, `retryAfter ${blocked.retryAfter}`);
    assert.equal((await check('tom@lc.example', ap.password, '203.0.113.2')).result, 'allow', 'another source is not blocked');
    // Per mailbox: failures from many sources add up (6), then only remembered addresses get through.
    for (let i = 0; i < 2; i++) await check('tom@lc.example', wrong, `203.0.113.${10 + i}`);
    const mailboxBlocked = await check('tom@lc.example', ap.password, '203.0.113.50');
    assert.deepEqual([mailboxBlocked.result, mailboxBlocked.reason], ['deny', 'throttled']);
    assert.equal((await check('tom@lc.example', ap.password, HOME)).result, 'allow', 'the owner at a remembered address');
    assert.equal((await check('tom@lc.example', wrong, '203.0.113.1', 'pop3')).reason, 'throttled', 'the blocked source stays blocked');
    // The second factor is untouched: no failures counted, webmail logins work.
    const shown = await d.json<MailboxView>(['mailbox', 'show', 'tom@lc.example']);
    assert.deepEqual([shown.lock.known.failures, shown.lock.elsewhere.failures, shown.lock.locked], [0, 0, false]);
    assert.equal((await verify('tom@lc.example', '203.0.113.1', nextCode('tom@lc.example'))).reason, 'code-valid', 'webmail from the throttled source');
    const audit = await d.json<{ entries: { reason: string }[] }>(['audit', '--mailbox', 'tom@lc.example', '--action', 'login.check', '--result', 'deny']);
    assert.ok(audit.entries.some((e) => e.reason === 'throttled'));
  });

  it('a password of any other shape is counted only where app passwords alone are accepted', async () => {
    await d.json(['mailbox', 'set', 'una@lc.example', '--primary-password', 'password']);
    // Many primary-password logins (right or wrong, memfa cannot tell) from one source: never throttled.
    for (let i = 0; i < 8; i++) assert.equal((await check('una@lc.example', `guess ${i}`, '203.0.113.77')).reason, 'primary-password');
    // Where only app passwords count, every other password is a wrong one.
    for (let i = 0; i < 4; i++) assert.equal((await check('vic@lc.example', `guess ${i}`, '203.0.113.78')).reason, 'app-password-required');
    assert.equal((await check('vic@lc.example', 'guess', '203.0.113.78')).reason, 'throttled');
  });
});
