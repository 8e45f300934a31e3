// What verify, explain, mailbox show and self show answer where a new administrator trips up
// (issue 13): a provider that cannot send, a repeated challenge while a code is open, the source
// of a fallback provider, forgotten locations. The real daemon, the real CLI, the log transport.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const GB2 = '81.2.69.160';

interface Answer {
  exit: number | null;
  stderr: string;
  result: string;
  reason?: string;
  provider?: string;
  destination?: string;
  expiresAt?: number;
  sent?: boolean;
  resent?: boolean;
  retryAfter?: number;
  error?: { code: string; message: string; hint?: string; retryAfter?: number; providers?: { provider: string; problem: string | null }[] };
}

interface Explained {
  decision: { result: string; reason: string; provider: string; error?: string };
  steps: string[];
  mailbox: { providerInUse?: { provider: string | null; role: string | null; source: string | null; outcome: string } };
}

async function verifyOn(d: TestDaemon, user: string, ip = GB, code?: string): Promise<Answer> {
  const r = await d.cli(['--json', 'verify', '--user', user, '--ip', ip, ...(code === undefined ? [] : ['--code-stdin'])], code === undefined ? {} : { stdin: code });
  return { ...(JSON.parse(r.stdout) as Omit<Answer, 'exit' | 'stderr'>), exit: r.code, stderr: r.stderr };
}

/** The codes the log transport wrote for `mailbox`, oldest first. */
async function codesSent(d: TestDaemon, mailbox: string): Promise<string[]> {
  let text = '';
  try {
    text = await readFile(path.join(d.dataDir, 'outbox.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { mailbox: string; code?: string })
    .filter((m) => m.mailbox === mailbox && m.code !== undefined)
    .map((m) => m.code!);
}

describe('answers of verify, explain and the views (issue 13)', () => {
  let d: TestDaemon;
  let clockFile: string;
  let offset = 0;
  /** Moves the daemon's clock forward (never back: send times and codes are kept in its time). */
  const advance = async (ms: number) => {
    offset += ms;
    await writeFile(clockFile, String(offset));
  };

  before(async () => {
    const dir = await makeTempDir();
    clockFile = path.join(dir, 'clock-offset');
    await writeFile(clockFile, '0');
    d = await startDaemon({
      dir,
      env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile },
      config: {
        providers: { sms: { enabled: true, transport: 'log' }, email: { enabled: true, transport: 'log' } },
        codes: { cooldownSeconds: 30, hourlyLimit: 3, ttlSeconds: 600 },
        locations: { maxAgeDays: 1 },
      },
    });
  });
  after(() => d.cleanup());
  const verify = (user: string, ip = GB, code?: string) => verifyOn(d, user, ip, code);

  it('a mailbox with provider email and no alternate address: PROVIDER_UNUSABLE, exit 78, and explain says so', async () => {
    await d.json(['domain', 'set', 'noalt.example', '--challenge', 'always', '--provider', 'email']);
    const r = await verify('ann@noalt.example');
    assert.equal(r.exit, 78, `exit ${r.exit}: ${JSON.stringify(r)}`);
    assert.deepEqual([r.result, r.reason, r.error?.code], ['error', 'provider-unusable', 'PROVIDER_UNUSABLE']);
    assert.match(r.error!.message, /email/);
    assert.match(r.error!.message, /alternate address/);
    assert.doesNotMatch(r.error!.message, /retry/i);
    assert.deepEqual(r.error!.providers?.map((p) => [p.provider, p.problem]), [['email', 'no-destination']]);
    assert.match(r.stderr, /hint: .*--alt-email/);
    assert.deepEqual(await codesSent(d, 'ann@noalt.example'), [], 'nothing was tried');

    const x = await d.json<Explained>(['explain', 'ann@noalt.example', '--ip', GB]);
    assert.deepEqual([x.decision.result, x.decision.reason, x.decision.error], ['error', 'provider-unusable', 'PROVIDER_UNUSABLE']);
    assert.ok(x.steps.some((s) => /email from domain has no alternate address/.test(s)), x.steps.join('\n'));
    assert.match(x.steps.at(-1)!, /verify would answer: error PROVIDER_UNUSABLE \(provider-unusable\), exit 78/);
    const human = await d.cli(['explain', 'ann@noalt.example', '--ip', GB]);
    assert.match(human.stdout, /decision: error \(provider-unusable\)/);
    assert.doesNotMatch(human.stdout, /decision: challenge/);

    const audit = await d.json<{ entries: { action: string; result: string; reason: string | null }[] }>(['audit', '--mailbox', 'ann@noalt.example', '--action', 'verify']);
    assert.ok(audit.entries.some((e) => e.result === 'error' && e.reason === 'provider-unusable'), JSON.stringify(audit.entries));
    assert.match(d.log(), /"event":"provider-unusable"[^\n]*"mailbox":"ann@noalt.example"/);
  });

  it('an unusable provider is skipped before any send: the fallback is used, and explain names it', async () => {
    await d.json(['mailbox', 'set', 'ann@noalt.example', '--fallback', 'sms', '--phone', '+12015550123']);
    const r = await verify('ann@noalt.example');
    assert.deepEqual([r.exit, r.result, r.reason, r.provider, r.destination], [2, 'challenge', 'always', 'sms', '+12******123']);
    assert.equal((await codesSent(d, 'ann@noalt.example')).length, 1);
    const x = await d.json<Explained>(['explain', 'ann@noalt.example', '--ip', GB]);
    assert.deepEqual([x.decision.result, x.decision.provider], ['challenge', 'sms']);
    assert.ok(x.steps.some((s) => s.includes('provider: sms (fallback, from mailbox; email from domain has no alternate address for this mailbox)')), x.steps.join('\n'));
  });

  it('totp disabled with a fallback that has no phone: PROVIDER_UNUSABLE; with no fallback at all: provider-disabled', async () => {
    await d.json(['mailbox', 'set', 'tom@totp.example', '--challenge', 'always', '--fallback', 'sms']);
    await d.json(['enroll', 'tom@totp.example', '--no-confirm']);
    await d.json(['mailbox', 'set', 'una@totp.example', '--challenge', 'always']);
    await d.json(['enroll', 'una@totp.example', '--no-confirm']);
    await d.json(['providers', 'disable', 'totp']);
    try {
      const r = await verify('tom@totp.example');
      assert.equal(r.exit, 78, JSON.stringify(r));
      assert.equal(r.error?.code, 'PROVIDER_UNUSABLE');
      assert.match(r.error!.message, /totp from default is disabled/);
      assert.match(r.error!.message, /sms from mailbox has no phone number/);
      // A TOTP code cannot slip through the disabled provider either.
      const withCode = await verify('tom@totp.example', GB, '123456');
      assert.equal(withCode.exit, 78, JSON.stringify(withCode));
      const x = await d.json<Explained>(['explain', 'tom@totp.example', '--ip', GB]);
      assert.deepEqual([x.decision.result, x.decision.reason], ['error', 'provider-unusable']);

      const una = await verify('una@totp.example');
      assert.deepEqual([una.exit, una.result, una.reason], [1, 'deny', 'provider-disabled']);
    } finally {
      await d.json(['providers', 'enable', 'totp']);
    }
  });

  it('a repeated challenge while a code is open answers challenge again, sending only when the limits allow', async () => {
    await d.json(['mailbox', 'set', 'cy@codes.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'cy@home.example']);
    const first = await verify('cy@codes.example');
    assert.deepEqual([first.exit, first.destination], [2, 'c***@home.example']);

    // Inside the cooldown: the same code, destination and expiry, nothing sent.
    const again = await verify('cy@codes.example');
    assert.equal(again.exit, 2, JSON.stringify(again));
    assert.deepEqual([first.sent, first.resent], [true, false]);
    assert.deepEqual([again.result, again.destination, again.expiresAt, again.sent, again.resent], ['challenge', first.destination, first.expiresAt, false, false]);
    assert.ok(again.retryAfter! > 0 && again.retryAfter! <= 30, `retryAfter ${again.retryAfter}`);
    assert.equal((await codesSent(d, 'cy@codes.example')).length, 1, 'not sent again inside the cooldown');
    const human = await d.cli(['verify', '--user', 'cy@codes.example', '--ip', GB]);
    assert.equal(human.code, 2);
    assert.match(human.stdout, /code sent before to c\*\*\*@home\.example, not sent again/);

    // Past the cooldown: the same code re-sent, twice, up to the hourly limit of 3.
    await advance(31_000);
    const resent = await verify('cy@codes.example');
    assert.deepEqual([resent.exit, resent.expiresAt, resent.sent, resent.resent], [2, first.expiresAt, true, true]);
    await advance(31_000);
    assert.equal((await verify('cy@codes.example')).sent, true);
    const codes = await codesSent(d, 'cy@codes.example');
    assert.equal(codes.length, 3);
    assert.equal(new Set(codes).size, 1, 'the same code each time');

    // The hourly limit is reached: the open code still answers challenge, without a send.
    await advance(31_000);
    const capped = await verify('cy@codes.example');
    assert.deepEqual([capped.exit, capped.expiresAt, capped.sent], [2, first.expiresAt, false]);
    assert.ok(capped.retryAfter! > 3000, `retryAfter ${capped.retryAfter}`);
    assert.equal((await codesSent(d, 'cy@codes.example')).length, 3);

    // Once the code is used, no code is open: the next challenge is refused, naming the hourly limit.
    assert.equal((await verify('cy@codes.example', GB, codes[0]!)).reason, 'code-valid');
    const refused = await verify('cy@codes.example');
    assert.equal(refused.exit, 75, JSON.stringify(refused));
    assert.equal(refused.error?.code, 'RATE_LIMITED');
    assert.match(refused.error!.message, /hourly limit of 3 codes/);
    assert.doesNotMatch(refused.error!.message, /too recently/);
    assert.ok(refused.error!.retryAfter! > 3000);
  });

  it('self send-code inside the cooldown answers the open code without sending it again', async () => {
    await d.json(['mailbox', 'set', 'sue@codes.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550199']);
    const first = await verify('sue@codes.example');
    assert.equal(first.exit, 2);
    const r = await d.json<{ destination: string; expiresAt: number; sent: boolean; resent: boolean }>(['self', '--user', 'sue@codes.example', 'send-code']);
    assert.deepEqual([r.destination, r.expiresAt, r.sent, r.resent], [first.destination, first.expiresAt, false, false]);
    assert.equal((await codesSent(d, 'sue@codes.example')).length, 1);
  });

  it('self show lists no choices when the user may not configure', async () => {
    await d.json(['domain', 'set', 'locked-down.example', '--users-may-configure', 'no', '--challenge', 'new-ip']);
    const v = await d.json<{ mayConfigure: boolean; allowedChallenges: string[]; allowedProviders: string[] }>(['self', '--user', 'val@locked-down.example', 'show']);
    assert.deepEqual([v.mayConfigure, v.allowedChallenges, v.allowedProviders], [false, [], []]);
    const human = await d.cli(['self', '--user', 'val@locked-down.example', 'show']);
    assert.equal(human.code, 0, human.stderr);
    assert.doesNotMatch(human.stdout, /may choose/);
    assert.match(human.stdout, /challenge\s+new-ip \(domain; the user may not change it\)/);
    assert.match(human.stdout, /provider\s+totp \(default; the user may not change it\)/);
  });

  // Last: it moves the clock past locations.maxAgeDays.
  it('mailbox show and self show drop locations past locations.maxAgeDays, as verify does', async () => {
    await d.json(['mailbox', 'set', 'eve@loc.example', '--challenge', 'new-ip', '--provider', 'email', '--alt-email', 'eve@home.example']);
    assert.equal((await verify('eve@loc.example', GB2)).exit, 2);
    const [code] = await codesSent(d, 'eve@loc.example');
    assert.equal((await verify('eve@loc.example', GB2, code)).reason, 'code-valid');
    const seen = await d.json<{ ips: { ip: string }[]; countries: { country: string }[] }>(['mailbox', 'show', 'eve@loc.example']);
    assert.deepEqual([seen.ips.map((i) => i.ip), seen.countries.map((c) => c.country)], [[GB2], ['GB']]);
    assert.equal((await verify('eve@loc.example', GB2)).reason, 'known-ip');

    await advance(2 * 86_400_000);
    assert.equal((await verify('eve@loc.example', GB2)).reason, 'new-ip', 'verify has forgotten the address');
    const shown = await d.json<{ ips: unknown[]; countries: unknown[] }>(['mailbox', 'show', 'eve@loc.example']);
    assert.deepEqual([shown.ips, shown.countries], [[], []]);
    const human = await d.cli(['mailbox', 'show', 'eve@loc.example']);
    assert.match(human.stdout, /remembered IPs\s+none/);
    assert.match(human.stdout, /remembered countries\s+none/);
    const self = await d.json<{ ips: unknown[]; countries: unknown[] }>(['self', '--user', 'eve@loc.example', 'show']);
    assert.deepEqual([self.ips, self.countries], [[], []]);
  });
});

describe('the provider actually used is named with its own source (issue 13)', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { sms: { enabled: true, transport: 'log' }, email: { enabled: true, transport: 'log' } } } });
  });
  after(() => d.cleanup());

  it('email from the domain disabled, sms the global fallback: explain and mailbox show say sms from global', async () => {
    await d.json(['global', 'set', '--fallback', 'sms']);
    await d.json(['domain', 'set', 'fb.example', '--challenge', 'always', '--provider', 'email']);
    await d.json(['mailbox', 'set', 'dee@fb.example', '--phone', '+12015550156', '--alt-email', 'dee@home.example']);
    await d.json(['providers', 'disable', 'email']);
    const x = await d.json<Explained>(['explain', 'dee@fb.example', '--ip', GB]);
    assert.deepEqual([x.decision.result, x.decision.provider], ['challenge', 'sms']);
    assert.ok(x.steps.some((s) => s.includes('provider: sms (fallback, from global; email from domain is disabled)')), x.steps.join('\n'));
    assert.ok(!x.steps.some((s) => s.includes('sms (from domain)')), x.steps.join('\n'));

    const shown = await d.json<{ effective: { provider: { value: string; source: string } }; providerInUse: { provider: string; role: string; source: string; outcome: string } }>(['mailbox', 'show', 'dee@fb.example']);
    assert.deepEqual(shown.effective.provider, { value: 'email', source: 'domain' }, 'the configured provider is still shown as configured');
    assert.deepEqual([shown.providerInUse.provider, shown.providerInUse.role, shown.providerInUse.source, shown.providerInUse.outcome], ['sms', 'fallback', 'global', 'usable']);
    const human = await d.cli(['mailbox', 'show', 'dee@fb.example']);
    assert.match(human.stdout, /provider in use\s+sms \(fallback, from global; email from domain is disabled\)/);

    const v = await verifyOn(d, 'dee@fb.example');
    assert.deepEqual([v.exit, v.provider], [2, 'sms']);
  });
});

describe('an enabled provider without a gateway (issue 13)', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { email: { enabled: true, transport: 'smtp' } }, smtp: null } });
  });
  after(() => d.cleanup());

  it('verify answers PROVIDER_UNUSABLE (exit 78), not a temporary failure; status and providers list warn', async () => {
    await d.json(['domain', 'set', 'gw.example', '--challenge', 'always', '--provider', 'email']);
    await d.json(['mailbox', 'set', 'bob@gw.example', '--alt-email', 'bob@home.example']);
    const r = await verifyOn(d, 'bob@gw.example');
    assert.equal(r.exit, 78, JSON.stringify(r));
    assert.deepEqual([r.reason, r.error?.code], ['provider-unusable', 'PROVIDER_UNUSABLE']);
    assert.match(r.error!.message, /email from domain has no gateway \(smtp is not configured\)/);
    assert.deepEqual(r.error!.providers?.map((p) => [p.provider, p.problem]), [['email', 'no-gateway']]);

    const status = await d.cli(['status']);
    assert.match(status.stdout, /provider email\s+enabled, transport smtp, gateway unconfigured \(enabled without a gateway/);
    const list = await d.cli(['providers', 'list']);
    assert.match(list.stdout, /email\s.*enabled without a gateway: verify answers provider-unusable/);
    assert.match(d.log(), /"event":"provider-without-gateway","provider":"email"/);
  });
});
