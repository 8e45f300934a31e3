// memfa's Dovecot integration, shipped in examples/dovecot/, against a real Dovecot (Debian's 2.3)
// started on loopback ports in a temporary directory, in front of a passwd-file passdb holding the
// primary passwords: IMAP, POP3, ManageSieve and submission logins, and SMTP AUTH as Postfix asks
// it through Dovecot SASL (doveadm auth test -x service=smtp). Dovecot's auth cache is on, as on
// many sites: the shipped passdb must not be answered from it (issue 14).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { AppPasswordAdded, VerifyResult } from '../src/protocol/results.js';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { dovecotMissing, startDovecot, type TestDovecot } from './helpers/dovecot.js';
import { imapLogin, pop3Login, sieveLogin, submissionLogin } from './helpers/mail-clients.js';

const missing = dovecotMissing();
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 10 };
const PERIOD = 30_000;
const USERS = {
  'ann@dc.example': 'ann-primary',
  'ben@dc.example': 'ben-primary',
  'cat@dc.example': 'cat-primary',
  'dan@dc.example': 'dan-primary',
  'eve@dc.example': 'eve-primary',
  'fay@dc.example': 'fay-primary',
};

describe('Dovecot with memfa\'s shipped passdb', { skip: missing ?? false }, () => {
  let d: TestDaemon;
  let dc: TestDovecot;
  let clockFile: string;
  let offset = 0;
  const shift = async (ms: number) => {
    offset += ms;
    await writeFile(clockFile, String(offset));
  };
  const add = (address: string, ...flags: string[]) => d.json<AppPasswordAdded>(['app-password', 'add', address, '--name', `ap-${Math.random().toString(36).slice(2, 8)}`, ...flags]);
  const smtpAuth = (user: string, password: string, ip = '127.0.0.1') => dc.authTest(user, password, { service: 'smtp', ip });
  const outbox = () => readFile(path.join(d.dataDir, 'outbox.log'), 'utf8').catch(() => '');

  before(async () => {
    const dir = await makeTempDir('mfdc-');
    clockFile = path.join(dir, 'clock');
    await writeFile(clockFile, '0');
    d = await startDaemon({ dir, config: { totp: { window: 10 }, providers: { email: { enabled: true, transport: 'log' } } }, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
    await d.json(['domain', 'set', 'dc.example', '--challenge', 'new-ip']);
    dc = await startDovecot({ dir, hookSocket: d.hookSocket, users: USERS, authCache: true });
  });
  after(async () => {
    await dc?.stop();
    await d?.cleanup();
  });

  it('an app password logs in over the protocols it is for, and is refused over the others with a text', async () => {
    const ap = await add('ann@dc.example', '--protocols', 'imap,pop3');
    assert.equal((await imapLogin(dc.ports.imap, 'ann@dc.example', ap.password)).ok, true);
    assert.equal((await pop3Login(dc.ports.pop3, 'ann@dc.example', ap.password)).ok, true);
    const sieve = await sieveLogin(dc.ports.sieve, 'ann@dc.example', ap.password);
    assert.equal(sieve.ok, false);
    assert.match(sieve.reply, /not valid for ManageSieve/);
    const sub = await submissionLogin(dc.ports.submission, 'ann@dc.example', ap.password);
    assert.equal(sub.ok, false);
    assert.match(sub.reply, /not valid for SMTP/);
    const smtp = await smtpAuth('ann@dc.example', ap.password);
    assert.equal(smtp.ok, false, smtp.output);
    assert.doesNotMatch(smtp.output, /auth succeeded/, 'Postfix would take a nologin success for a pass: a plain failure');
    // The primary password is refused everywhere (default primaryPassword app-password), with the text.
    const primary = await imapLogin(dc.ports.imap, 'ann@dc.example', USERS['ann@dc.example']);
    assert.equal(primary.ok, false);
    assert.match(primary.reply, /^a1 NO \[CONTACTADMIN\] use an app password for IMAP/);
    const all = await add('ann@dc.example');
    for (const login of [imapLogin, pop3Login, sieveLogin, submissionLogin]) {
      const port = { [imapLogin.name]: dc.ports.imap, [pop3Login.name]: dc.ports.pop3, [sieveLogin.name]: dc.ports.sieve, [submissionLogin.name]: dc.ports.submission }[login.name]!;
      assert.equal((await login(port, 'ann@dc.example', all.password)).ok, true, login.name);
    }
    assert.equal((await smtpAuth('ann@dc.example', all.password)).ok, true, 'SMTP AUTH through Dovecot SASL');
  });

  it('outside its networks, after its expiry and once revoked (the auth cache notwithstanding) it is refused', async () => {
    const net = await add('ben@dc.example', '--networks', '127.0.0.2/32');
    assert.equal((await imapLogin(dc.ports.imap, 'ben@dc.example', net.password, { from: '127.0.0.2' })).ok, true, 'from inside, as Dovecot reports the client address');
    const outside = await imapLogin(dc.ports.imap, 'ben@dc.example', net.password);
    assert.equal(outside.ok, false);
    assert.match(outside.reply, /not valid from this network/);
    assert.equal((await smtpAuth('ben@dc.example', net.password, '127.0.0.2')).ok, true);
    assert.equal((await smtpAuth('ben@dc.example', net.password, '127.0.0.9')).ok, false);

    const revoked = await add('ben@dc.example');
    assert.equal((await imapLogin(dc.ports.imap, 'ben@dc.example', revoked.password)).ok, true, 'in the auth cache now, if it were cached');
    await d.json(['app-password', 'revoke', 'ben@dc.example', revoked.id]);
    assert.equal((await imapLogin(dc.ports.imap, 'ben@dc.example', revoked.password)).ok, false, 'revoked: refused at once');
    assert.equal((await pop3Login(dc.ports.pop3, 'ben@dc.example', revoked.password)).ok, false);

    const brief = await add('ben@dc.example', '--expires', '1h');
    assert.equal((await imapLogin(dc.ports.imap, 'ben@dc.example', brief.password)).ok, true);
    await shift(2 * 3_600_000);
    const expired = await imapLogin(dc.ports.imap, 'ben@dc.example', brief.password);
    assert.equal(expired.ok, false);
    assert.match(expired.reply, /has expired/);
  });

  it('the primary password: accepted, refused, or accepted only where a second factor was passed', async () => {
    const primary = USERS['cat@dc.example'];
    await d.json(['mailbox', 'set', 'cat@dc.example', '--primary-password', 'password']);
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', primary)).ok, true, 'password: the site passdb checks it');
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', 'wrong password')).ok, false, 'and refuses a wrong one');
    assert.equal((await smtpAuth('cat@dc.example', primary)).ok, true);
    await d.json(['mailbox', 'set', 'cat@dc.example', '--primary-password', 'app-password']);
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', primary)).ok, false);
    assert.equal((await smtpAuth('cat@dc.example', primary)).ok, false);

    await d.json(['mailbox', 'set', 'cat@dc.example', '--primary-password', 'known-location']);
    const key = fromBase32((await d.json<{ secret: string }>(['enroll', 'cat@dc.example', '--no-confirm'])).secret);
    const away = await imapLogin(dc.ports.imap, 'cat@dc.example', primary, { from: '127.0.0.3' });
    assert.equal(away.ok, false);
    assert.match(away.reply, /log in to webmail from this network first/);
    // A webmail login from 127.0.0.3 passes the second factor there.
    const webmail = (await call(d.hookSocket, 'verify', { user: 'cat@dc.example', ip: '127.0.0.3', code: totpCode(key, Date.now() + offset, TOTP) })) as VerifyResult;
    assert.equal(webmail.reason, 'code-valid');
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', primary, { from: '127.0.0.3' })).ok, true, 'known location');
    assert.equal((await pop3Login(dc.ports.pop3, 'cat@dc.example', primary, { from: '127.0.0.3' })).ok, true);
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', 'wrong password', { from: '127.0.0.3' })).ok, false, 'still the right password only');
    assert.equal((await imapLogin(dc.ports.imap, 'cat@dc.example', primary, { from: '127.0.0.4' })).ok, false, 'another address');
    // Mode never: memfa leaves every login to the site's passdb.
    assert.equal((await imapLogin(dc.ports.imap, 'dan@dc.example', USERS['dan@dc.example'])).ok, false, 'dan has MFA (domain new-ip)');
    await d.json(['mailbox', 'set', 'dan@dc.example', '--challenge', 'never']);
    assert.equal((await imapLogin(dc.ports.imap, 'dan@dc.example', USERS['dan@dc.example'])).ok, true);
  });

  it('no protocol login ever sends a code', async () => {
    await d.json(['mailbox', 'set', 'eve@dc.example', '--provider', 'email', '--alt-email', 'eve@private.example']);
    for (const mode of ['app-password', 'known-location', 'password']) {
      await d.json(['mailbox', 'set', 'eve@dc.example', '--primary-password', mode]);
      await imapLogin(dc.ports.imap, 'eve@dc.example', USERS['eve@dc.example']);
      await pop3Login(dc.ports.pop3, 'eve@dc.example', 'wrong');
      await smtpAuth('eve@dc.example', USERS['eve@dc.example']);
    }
    assert.equal(await outbox(), '', 'nothing sent');
    const audit = await d.json<{ entries: { action: string }[] }>(['audit', '--mailbox', 'eve@dc.example']);
    assert.ok(audit.entries.some((e) => e.action === 'login.check'), 'the logins were asked about');
    assert.ok(!audit.entries.some((e) => e.action === 'verify'), 'no verify, so no challenge');
  });

  it('memfa down: every login fails with a temporary failure, never a pass; back up, logins work again', async () => {
    const ap = await add('fay@dc.example');
    await d.json(['mailbox', 'set', 'fay@dc.example', '--primary-password', 'password']);
    assert.equal((await imapLogin(dc.ports.imap, 'fay@dc.example', ap.password)).ok, true);
    await d.stop();
    for (const password of [ap.password, USERS['fay@dc.example']]) {
      const imap = await imapLogin(dc.ports.imap, 'fay@dc.example', password);
      assert.equal(imap.ok, false);
      assert.match(imap.reply, /UNAVAILABLE|[Tt]emporary/, imap.reply);
      assert.equal((await pop3Login(dc.ports.pop3, 'fay@dc.example', password)).ok, false);
      assert.equal((await smtpAuth('fay@dc.example', password)).ok, false);
    }
    assert.match(await dc.log(), /memfa: cannot reach/);
    await d.restart();
    assert.equal((await imapLogin(dc.ports.imap, 'fay@dc.example', ap.password)).ok, true);
  });
});
