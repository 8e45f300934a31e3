// What the memfa command prints for people: counts that agree with their nouns (in the CLI's own
// text and in messages the daemon composes), and enrolment output that says what will happen.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';

describe('human output', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { email: { enabled: true, transport: 'log' } } } });
  });
  after(() => d.cleanup());

  const ok = async (args: string[]) => {
    const r = await d.cli(args);
    assert.equal(r.code, 0, `memfa ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  it('enroll --no-confirm shows no pending period for a secret it activates at once', async () => {
    const out = await ok(['enroll', 'one@single.example', '--no-confirm']);
    assert.match(out, /activated one@single\.example without confirmation/);
    assert.doesNotMatch(out, /pending until/);
    assert.doesNotMatch(out, /note:/, 'the provider is totp: nothing to note');
    // Without --no-confirm the secret is pending until confirmed, and the output says until when.
    const pending = await d.cli(['enroll', 'two@pending.example'], { stdin: '\n' });
    assert.match(pending.stdout, /pending until\s+\d{4}-/);
  });

  it('enrolling TOTP for a mailbox whose provider is not totp says the secret will not be asked for', async () => {
    await ok(['domain', 'set', 'mail.example', '--provider', 'email']);
    const out = await ok(['enroll', 'eve@mail.example', '--no-confirm']);
    assert.match(out, /note: the provider of eve@mail\.example is email \(from domain\): its logins are asked for email codes, not for this TOTP secret/);
    // The pending variant says it before asking for the code.
    const pending = await d.cli(['enroll', 'fay@mail.example'], { stdin: '\n' });
    assert.equal(pending.code, 64, 'no code given');
    assert.match(pending.stdout, /note: the provider of fay@mail\.example is email/);
  });

  it('counts agree with their nouns: domain show and list, lock, unlock, key rotate, audit verify', async () => {
    assert.match(await ok(['domain', 'show', 'single.example']), /single\.example \(1 stored mailbox\)/);
    await ok(['domain', 'set', 'single.example', '--challenge', 'always']);
    assert.match(await ok(['domain', 'list']), /^single\.example\t1 mailbox\t/m);
    assert.match(await ok(['domain', 'list']), /^mail\.example\t2 mailboxes\t/m);

    const wrong = await d.cli(['verify', '--user', 'one@single.example', '--ip', GB, '--code', '000000']);
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(await ok(['status', 'one@single.example']), /not locked, 1 consecutive failure$/m);
    assert.match(await ok(['unlock', 'one@single.example']), /\(1 failure cleared\)/);
    assert.match(await ok(['unlock', 'one@single.example']), /\(0 failures cleared\)/);

    // one@ and eve@ have active secrets; two@ and fay@ pending ones.
    assert.match(await ok(['key', 'rotate']), /; 4 mailboxes re-encrypted;/);
    assert.match(await ok(['audit', 'verify']), /audit log intact: \d+ lines in 2 files \(security \d+ lines in 1 file, logins 1 line in 1 file\)$/m);
  });

  it("the daemon's provider effect agrees with its count", async () => {
    // eve@ and fay@ use email; nobody uses sms.
    const r = await d.json<{ effect: string }>(['providers', 'disable', 'email']);
    assert.match(r.effect, /^2 mailboxes use email: verify now tries their fallback provider/);
    await ok(['mailbox', 'remove', 'fay@mail.example']);
    const one = await d.json<{ effect: string }>(['providers', 'enable', 'email']);
    assert.equal(one.effect, '1 mailbox uses email');
    const off = await d.json<{ effect: string }>(['providers', 'disable', 'email']);
    assert.match(off.effect, /^1 mailbox uses email: verify now tries its fallback provider if one is enabled, and otherwise denies its logins/);
    // sms is disabled (the default): nobody uses it, which the plural form says.
    assert.match((await d.json<{ effect: string }>(['providers', 'set', 'sms', '--end-users', 'no'])).effect, /^0 mailboxes use sms: verify now tries their fallback/);
  });
});
