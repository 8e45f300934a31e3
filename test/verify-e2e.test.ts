// Mailbox policy, enrolment and `memfa verify` end to end: the real daemon, the real CLI.
import assert from 'node:assert/strict';
import { describe, it, before, after } from 'node:test';
import { fromBase32, totpCode, timeStep } from '../src/core/totp.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const GB2 = '81.2.69.160';
const US = '8.8.8.8';
const NL = '193.0.6.139';
const DE = '5.9.0.1';
const PRIVATE = '10.1.2.3';

interface Verify {
  result: string;
  reason: string;
  provider: string;
  otpauthUri?: string;
  country: string | null;
  ip: string;
}

function secretOf(uri: string): Buffer {
  const secret = new URL(uri).searchParams.get('secret');
  assert.ok(secret, `no secret in ${uri}`);
  return fromBase32(secret);
}

const opts = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

/** A valid code for `key` at a step not used yet (codes of one step cannot be used twice). */
function codeAt(key: Buffer, stepOffset = 0): string {
  return totpCode(key, Date.now() + stepOffset * 30_000, opts);
}

describe('memfa verify end to end', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  const verify = async (user: string, ip: string, code?: string, expectCode?: number) => {
    const args = ['verify', '--user', user, '--ip', ip];
    if (code !== undefined) args.push('--code-stdin');
    const r = await d.cli(['--json', ...args], code === undefined ? {} : { stdin: code + '\n' });
    const body = JSON.parse(r.stdout) as Verify;
    if (expectCode !== undefined) assert.equal(r.code, expectCode, `exit code for ${JSON.stringify(body)} ${r.stderr}`);
    return { ...body, exit: r.code };
  };

  it('allows with mode never (the default) and inherits settings global → domain → mailbox', async () => {
    const v = await verify('anna@inherit.example', GB, undefined, 0);
    assert.equal(v.result, 'allow');
    assert.equal(v.reason, 'mode-never');
    assert.equal(v.country, 'GB');

    await d.json(['global', 'set', '--challenge', 'new-ip']);
    await d.json(['domain', 'set', 'inherit.example', '--challenge', 'always']);
    let shown = await d.json<{ effective: { challenge: { value: string; source: string } }; stored: boolean }>(['mailbox', 'show', 'anna@inherit.example']);
    assert.deepEqual(shown.effective.challenge, { value: 'always', source: 'domain' });
    assert.equal(shown.stored, false);

    await d.json(['mailbox', 'set', 'anna@inherit.example', '--challenge', 'never']);
    shown = await d.json(['mailbox', 'show', 'anna@inherit.example']);
    assert.deepEqual(shown.effective.challenge, { value: 'never', source: 'mailbox' });

    await d.json(['mailbox', 'set', 'anna@inherit.example', '--challenge', 'inherit']);
    shown = await d.json(['mailbox', 'show', 'anna@inherit.example']);
    assert.deepEqual(shown.effective.challenge, { value: 'always', source: 'domain' });

    await d.json(['domain', 'set', 'inherit.example', '--challenge', 'inherit']);
    shown = await d.json(['mailbox', 'show', 'anna@inherit.example']);
    assert.deepEqual(shown.effective.challenge, { value: 'new-ip', source: 'global' });
    await d.json(['global', 'set', '--challenge', 'inherit']);
    shown = await d.json(['mailbox', 'show', 'anna@inherit.example']);
    assert.deepEqual(shown.effective.challenge, { value: 'never', source: 'default' });
  });

  it('rolls MFA out to a whole domain: an unknown mailbox must enrol, then passes with a code; replay is refused', async () => {
    await d.json(['domain', 'set', 'rollout.example', '--challenge', 'always', '--provider', 'totp']);
    const first = await verify('bob@rollout.example', GB, undefined, 3);
    assert.equal(first.result, 'enroll');
    assert.equal(first.reason, 'enroll-required');
    assert.match(first.otpauthUri!, /^otpauth:\/\/totp\/memfa:bob%40rollout\.example\?secret=[A-Z2-7]+&issuer=memfa/);
    // The same pending secret is offered again until it expires.
    const again = await verify('bob@rollout.example', GB, undefined, 3);
    assert.equal(again.otpauthUri, first.otpauthUri);

    const key = secretOf(first.otpauthUri!);
    const wrong = (Number(codeAt(key)) + 1) % 1_000_000;
    const denied = await verify('bob@rollout.example', GB, String(wrong).padStart(6, '0'), 1);
    assert.equal(denied.reason, 'code-invalid');

    const code = codeAt(key);
    const enrolled = await verify('bob@rollout.example', GB, code, 0);
    assert.equal(enrolled.result, 'allow');
    assert.equal(enrolled.reason, 'enrolled');

    // Mode always: challenged by TOTP from now on; the code used for enrolment cannot be replayed.
    const challenged = await verify('bob@rollout.example', GB, undefined, 2);
    assert.equal(challenged.result, 'challenge');
    assert.equal(challenged.provider, 'totp');
    const replay = await verify('bob@rollout.example', GB, code, 1);
    assert.equal(replay.reason, 'code-reused');

    const next = codeAt(key, 1);
    const ok = await verify('bob@rollout.example', GB, next, 0);
    assert.equal(ok.reason, 'code-valid');
    const replay2 = await verify('bob@rollout.example', GB, next, 1);
    assert.equal(replay2.reason, 'code-reused');
  });

  it('enrols with --no-confirm, verifies, and after reset --secret asks to enrol again', async () => {
    await d.json(['mailbox', 'set', 'carol@corp.example', '--challenge', 'always', '--provider', 'totp']);
    const e = await d.json<{ secret: string; otpauthUri: string; activated: boolean }>(['enroll', 'carol@corp.example', '--no-confirm']);
    assert.equal(e.activated, true);
    const key = fromBase32(e.secret);
    assert.ok(key.length >= 20, 'at least 20 random bytes');
    assert.equal((await verify('carol@corp.example', US, undefined, 2)).result, 'challenge');
    assert.equal((await verify('carol@corp.example', US, codeAt(key), 0)).reason, 'code-valid');

    const reset = await d.cli(['reset', 'carol@corp.example', '--secret']);
    assert.equal(reset.code, 0, reset.stderr);
    const v = await verify('carol@corp.example', US, undefined, 3);
    assert.equal(v.result, 'enroll');
    assert.notEqual(secretOf(v.otpauthUri!).toString('hex'), key.toString('hex'), 'a new secret');
  });

  it('enroll asks for a code on standard input and activates only a valid one', async () => {
    const bad = await d.cli(['enroll', 'dave@corp.example'], { stdin: '000000\n' });
    // The pending secret is random: 000000 is wrong except with probability 3 in a million.
    assert.equal(bad.code, 65, bad.stderr);
    assert.match(bad.stderr, /does not match/);
    const uri = /otpauth:\/\/\S+/.exec(bad.stdout)?.[0];
    assert.ok(uri, bad.stdout);
    const ok = await d.cli(['enroll', 'dave@corp.example'], { stdin: codeAt(secretOf(uri)) + '\n' });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /activated/);
    const shown = await d.json<{ totp: string }>(['mailbox', 'show', 'dave@corp.example']);
    assert.equal(shown.totp, 'active');
  });

  it('enroll --json prints a pending secret that the first login with a code activates', async () => {
    await d.json(['mailbox', 'set', 'kim@corp.example', '--challenge', 'always']);
    const e = await d.json<{ secret: string; otpauthUri: string; activated: boolean; secretGrouped: string }>(['enroll', 'kim@corp.example']);
    assert.equal(e.activated, false);
    assert.equal(e.secretGrouped.replaceAll(' ', ''), e.secret);
    assert.equal((await d.json<{ totp: string }>(['mailbox', 'show', 'kim@corp.example'])).totp, 'pending');
    const v = await verify('kim@corp.example', GB, undefined, 3);
    assert.equal(v.otpauthUri, e.otpauthUri, 'the login offers the same pending secret');
    assert.equal((await verify('kim@corp.example', GB, codeAt(fromBase32(e.secret)), 0)).reason, 'enrolled');
  });

  it('new-ip: known IP allowed, new IP challenged; reset --locations forgets them', async () => {
    await d.json(['mailbox', 'set', 'erin@corp.example', '--challenge', 'new-ip', '--provider', 'totp']);
    const e = await d.json<{ secret: string }>(['enroll', 'erin@corp.example', '--no-confirm']);
    const key = fromBase32(e.secret);
    assert.equal((await verify('erin@corp.example', GB, undefined, 2)).reason, 'new-ip');
    assert.equal((await verify('erin@corp.example', GB, codeAt(key), 0)).reason, 'code-valid');
    assert.equal((await verify('erin@corp.example', GB, undefined, 0)).reason, 'known-ip');
    assert.equal((await verify('erin@corp.example', GB2, undefined, 2)).reason, 'new-ip');
    // IPv4-mapped IPv6 is the same address.
    assert.equal((await verify('erin@corp.example', `::ffff:${GB}`, undefined, 0)).reason, 'known-ip');
    await d.json(['reset', 'erin@corp.example', '--locations']);
    assert.equal((await verify('erin@corp.example', GB, undefined, 2)).reason, 'new-ip');
  });

  it('new-country: a known country is allowed from a new IP; another country and unplaceable addresses are challenged', async () => {
    await d.json(['mailbox', 'set', 'finn@corp.example', '--challenge', 'new-country', '--provider', 'totp']);
    const e = await d.json<{ secret: string }>(['enroll', 'finn@corp.example', '--no-confirm']);
    const key = fromBase32(e.secret);
    assert.equal((await verify('finn@corp.example', NL, undefined, 2)).reason, 'new-country');
    assert.equal((await verify('finn@corp.example', NL, codeAt(key), 0)).reason, 'code-valid');
    const known = await verify('finn@corp.example', '193.0.6.140', undefined, 0);
    assert.equal(known.reason, 'known-country');
    assert.equal((await verify('finn@corp.example', DE, undefined, 2)).reason, 'new-country');
    const unknown = await verify('finn@corp.example', PRIVATE, undefined, 2);
    assert.equal(unknown.reason, 'country-unknown');
    assert.equal(unknown.country, null);
  });

  it('explain shows the decision and changes nothing', async () => {
    await d.json(['mailbox', 'set', 'gina@corp.example', '--challenge', 'always']);
    const before = await d.json<Record<string, unknown>>(['mailbox', 'show', 'gina@corp.example']);
    const x = await d.json<{ decision: { result: string; reason: string }; country: string; steps: string[] }>(['explain', 'gina@corp.example', '--ip', US]);
    assert.equal(x.country, 'US');
    assert.deepEqual([x.decision.result, x.decision.reason], ['enroll', 'enroll-required']);
    assert.ok(x.steps.some((s) => s.includes('challenge mode: always')));
    const after = await d.json<Record<string, unknown>>(['mailbox', 'show', 'gina@corp.example']);
    assert.deepEqual(after, before, 'explain created no pending secret');
    const human = await d.cli(['explain', 'gina@corp.example', '--ip', US]);
    assert.match(human.stdout, /decision: enroll \(enroll-required\)/);
  });

  it('two concurrent verifications of one code yield exactly one success', async () => {
    await d.json(['mailbox', 'set', 'hugo@corp.example', '--challenge', 'always']);
    const e = await d.json<{ secret: string }>(['enroll', 'hugo@corp.example', '--no-confirm']);
    const code = codeAt(fromBase32(e.secret));
    const results = await Promise.all(Array.from({ length: 8 }, () => verify('hugo@corp.example', GB, code)));
    assert.equal(results.filter((r) => r.result === 'allow').length, 1, JSON.stringify(results));
    // Replays are failures: past the lockout threshold (5) they are answered 'locked'.
    const denied = results.filter((r) => r.result === 'deny');
    assert.equal(denied.length, 7);
    assert.ok(denied.every((r) => r.reason === 'code-reused' || r.reason === 'locked'), JSON.stringify(denied));
    assert.ok(denied.filter((r) => r.reason === 'code-reused').length >= 4);
  });

  it('validates settings and inputs with clear errors and exit 64', async () => {
    const cases: [string[], RegExp][] = [
      [['verify', '--user', 'not-an-address', '--ip', GB], /user/],
      [['verify', '--user', 'a@b.example', '--ip', '999.1.1.1'], /ip/],
      [['verify', '--user', 'a@b.example'], /--ip/],
      [['mailbox', 'set', 'a@b.example', '--phone', '12345'], /phone/],
      [['mailbox', 'set', 'a@b.example', '--alt-email', 'A@B.example'], /alt|differ|same/i],
      [['mailbox', 'set', 'a@b.example', '--provider', 'sms'], /phone/],
      [['mailbox', 'set', 'a@b.example', '--challenge', 'sometimes'], /challenge/],
      [['domain', 'set', 'not_a_domain', '--challenge', 'always'], /domain/],
      [['explain', 'a@b.example', '--ip', 'nope'], /ip/],
    ];
    for (const [args, message] of cases) {
      const r = await d.cli(args);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const phone = await d.json<{ phone: string; altEmail: string }>(['mailbox', 'set', 'ivy@corp.example', '--phone', '+1 (201) 555-0189', '--alt-email', 'ivy@elsewhere.example', '--provider', 'sms']);
    assert.equal(phone.phone, '+12015550189');
    assert.equal(phone.altEmail, 'ivy@elsewhere.example');
  });

  it('lists and removes mailboxes', async () => {
    await d.json(['mailbox', 'set', 'list1@listing.example', '--challenge', 'always']);
    await d.json(['mailbox', 'set', 'list2@listing.example', '--challenge', 'never']);
    const list = await d.json<{ total: number; mailboxes: { address: string; challenge: string }[] }>(['mailbox', 'list', '--domain', 'listing.example']);
    assert.equal(list.total, 2);
    assert.deepEqual(list.mailboxes.map((m) => [m.address, m.challenge]), [['list1@listing.example', 'always'], ['list2@listing.example', 'never']]);
    await d.json(['mailbox', 'remove', 'list1@listing.example']);
    const r = await d.cli(['mailbox', 'remove', 'list1@listing.example']);
    assert.equal(r.code, 67);
    assert.equal((await d.json<{ total: number }>(['mailbox', 'list', '--domain', 'listing.example'])).total, 1);
  });

  it('keeps every setting across a restart', async () => {
    await d.json(['mailbox', 'set', 'jack@persist.example', '--challenge', 'new-country', '--phone', '+12015550167']);
    const e = await d.json<{ secret: string }>(['enroll', 'jack@persist.example', '--no-confirm']);
    assert.equal(await d.stop(), 0);
    await d.restart();
    const shown = await d.json<{ phone: string; totp: string; effective: { challenge: { value: string } } }>(['mailbox', 'show', 'jack@persist.example']);
    assert.equal(shown.phone, '+12015550167');
    assert.equal(shown.totp, 'active');
    assert.equal(shown.effective.challenge.value, 'new-country');
    // The secret still opens after the restart: a code computed from it is accepted.
    const step = timeStep(Date.now(), 30);
    assert.ok(step > 0);
    assert.equal((await verify('jack@persist.example', GB, codeAt(fromBase32(e.secret)), 0)).reason, 'code-valid');
  });
});
