// Rights through the real daemon: what each socket serves, and who may change whose factor and
// settings (issue 12: self-service, domain administrators and the sockets).
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { MemfaError } from '../src/protocol/errors.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const PERIOD = 30_000;

/** The error a call ends with (the test fails if it succeeds). */
async function refusal(p: Promise<unknown>): Promise<MemfaError> {
  try {
    const r = await p;
    assert.fail(`expected a refusal, got ${JSON.stringify(r)}`);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_ASSERTION') throw err;
    return err as MemfaError;
  }
}

describe('sockets: the login hooks cannot change MFA, the webmail cannot answer logins', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { sockets: { self: { mode: '0640' } } } });
  });
  after(() => d.cleanup());

  it('the hook socket serves verify and ping, and no self.* method', async () => {
    assert.equal((await call(d.hookSocket, 'ping', {})).pong, true);
    const v = (await call(d.hookSocket, 'verify', { user: 'carl@sock.example', ip: GB })) as { result: string };
    assert.equal(v.result, 'allow');
    const attempts: [string, Record<string, unknown>][] = [
      ['self.show', { user: 'carl@sock.example' }],
      ['self.set', { user: 'carl@sock.example', challenge: 'always' }],
      ['self.enroll.start', { user: 'carl@sock.example', restart: true }],
      ['self.enroll.confirm', { user: 'carl@sock.example', code: '123456' }],
      ['self.forget-locations', { user: 'carl@sock.example' }],
    ];
    for (const [method, params] of attempts) {
      const e = await refusal(call(d.hookSocket, method as 'self.set', params as never));
      assert.equal(e.code, 'METHOD_NOT_ALLOWED', `${method} on the hook socket: ${e.message}`);
      assert.match(e.hint ?? '', /self socket/);
    }
    const shown = await d.json<{ stored: boolean; totp: string }>(['mailbox', 'show', 'carl@sock.example']);
    assert.deepEqual([shown.stored, shown.totp], [false, 'none'], 'nothing the hook socket was refused changed the mailbox');
  });

  it('the self socket serves self.* and ping, and neither verify nor administration', async () => {
    assert.equal((await call(d.selfSocket, 'ping', {})).pong, true);
    const shown = (await call(d.selfSocket, 'self.show', { user: 'carl@sock.example' })) as { address: string };
    assert.equal(shown.address, 'carl@sock.example');
    for (const [method, params] of [
      ['verify', { user: 'carl@sock.example', ip: GB }],
      ['mailbox.set', { address: 'carl@sock.example', settings: { challenge: 'never' } }],
      ['status', {}],
      ['recovery.generate', { address: 'carl@sock.example' }],
    ] as const) {
      const e = await refusal(call(d.selfSocket, method as 'status', params as never));
      assert.equal(e.code, 'METHOD_NOT_ALLOWED', `${method} on the self socket: ${e.message}`);
    }
    // A domain administrator's token opens nothing on the self socket either.
    const admin = await d.json<{ token: string }>(['admin', 'add', 'sock-admin', '--domain', 'sock.example']);
    const e = await refusal(call(d.selfSocket, 'mailbox.show', { address: 'carl@sock.example', auth: admin.token } as never));
    assert.equal(e.code, 'METHOD_NOT_ALLOWED');
  });

  it('memfa self uses the self socket; status lists it; its mode is its own', async () => {
    const r = await d.cli(['--json', 'self', '--user', 'carl@sock.example', 'set', '--challenge', 'always']);
    assert.equal(r.code, 0, r.stderr);
    const audit = await d.json<{ entries: { socket: string; actor: string; action: string }[] }>(['audit', '--mailbox', 'carl@sock.example', '--action', 'self.set']);
    assert.deepEqual(audit.entries.map((x) => `${x.action}:${x.socket}:${x.actor}`), ['self.set:self:self']);
    const verified = await d.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, `an audit line from the self socket keeps the chain valid: ${verified.stdout}`);
    const status = await d.json<{ sockets: Record<string, string> }>(['status']);
    assert.equal(status.sockets['self'], d.selfSocket);
    assert.equal((await stat(d.selfSocket)).mode & 0o777, 0o640, 'sockets.self.mode');
    assert.equal((await stat(d.hookSocket)).mode & 0o777, 0o660, 'the hook socket keeps its own mode');
  });
});

interface Shown {
  settings: Record<string, unknown>;
  userSettings: Record<string, unknown>;
  effective: { challenge: { value: string; source: string; minimum?: { value: string; source: string; raised: boolean } }; provider: { value: string; source: string } };
}

describe("settings: what an administrator set for a mailbox is a floor its user cannot undo", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { sms: { enabled: true, transport: 'log' } } } });
  });
  after(() => d.cleanup());
  const self = (user: string, args: string[]) => d.cli(['--json', 'self', '--user', user, ...args]);
  const verifyAnswer = async (user: string) => {
    const r = await d.cli(['--json', 'verify', '--user', user, '--ip', GB]);
    const body = JSON.parse(r.stdout) as { result: string; reason: string };
    return `${body.result}:${body.reason}`;
  };

  it("refuses a user's mode weaker than the administrator's mailbox setting, and verify keeps it", async () => {
    await d.json(['domain', 'set', 'third.org', '--challenge', 'never']);
    await d.json(['mailbox', 'set', 'dave@third.org', '--challenge', 'always']);
    const r = await self('dave@third.org', ['set', '--challenge', 'never']);
    assert.equal(r.code, 77, `FORBIDDEN: ${r.stdout} ${r.stderr}`);
    const e = JSON.parse(r.stdout) as { error: { code: string; right: string; minimum: string; source: string } };
    assert.deepEqual([e.error.code, e.error.right, e.error.minimum, e.error.source], ['FORBIDDEN', 'challenge', 'always', 'mailbox']);
    assert.match(r.stderr, /challenge mode never is weaker than always, which your administrator set for this mailbox/);
    assert.equal(await verifyAnswer('dave@third.org'), 'enroll:enroll-required', 'verify still asks for a factor');
    const shown = (JSON.parse((await self('dave@third.org', ['show'])).stdout) as { allowedChallenges: string[] }).allowedChallenges;
    assert.deepEqual(shown, ['always']);
  });

  it("keeps the user's and the administrator's choices apart: each 'inherit' removes only its own", async () => {
    await d.json(['domain', 'set', 'apart.org', '--challenge', 'never']);
    assert.equal((await self('erin@apart.org', ['set', '--challenge', 'always'])).code, 0);
    let m = await d.json<Shown>(['mailbox', 'show', 'erin@apart.org']);
    assert.deepEqual([m.settings, m.userSettings, m.effective.challenge.value, m.effective.challenge.source], [{}, { challenge: 'always' }, 'always', 'user']);
    // The administrator sets and then removes a mode of their own: the user's choice survives both.
    await d.json(['mailbox', 'set', 'erin@apart.org', '--challenge', 'new-ip']);
    m = await d.json<Shown>(['mailbox', 'show', 'erin@apart.org']);
    assert.deepEqual([m.settings, m.userSettings, m.effective.challenge.value, m.effective.challenge.source], [{ challenge: 'new-ip' }, { challenge: 'always' }, 'always', 'user']);
    await d.json(['mailbox', 'set', 'erin@apart.org', '--challenge', 'inherit']);
    m = await d.json<Shown>(['mailbox', 'show', 'erin@apart.org']);
    assert.deepEqual([m.settings, m.userSettings, m.effective.challenge.value], [{}, { challenge: 'always' }, 'always'], "the administrator's inherit left the user's choice");
    assert.equal(await verifyAnswer('erin@apart.org'), 'enroll:enroll-required');
    // The user's inherit removes only the user's choice, not an administrator's.
    await d.json(['mailbox', 'set', 'erin@apart.org', '--challenge', 'new-country']);
    assert.equal((await self('erin@apart.org', ['set', '--challenge', 'inherit'])).code, 0);
    m = await d.json<Shown>(['mailbox', 'show', 'erin@apart.org']);
    assert.deepEqual([m.settings, m.userSettings, m.effective.challenge.value, m.effective.challenge.source], [{ challenge: 'new-country' }, {}, 'new-country', 'mailbox']);
    const human = await d.cli(['mailbox', 'show', 'erin@apart.org']);
    assert.match(human.stdout, /user's own choices\s+none/);
  });

  it('refuses a provider choice where an administrator set the provider of the mailbox', async () => {
    await d.json(['mailbox', 'set', 'frank@apart.org', '--provider', 'totp']);
    const r = await self('frank@apart.org', ['set', '--provider', 'sms', '--phone', '+12015550123']);
    assert.equal(r.code, 77, r.stderr);
    const e = JSON.parse(r.stdout) as { error: { code: string; right: string } };
    assert.deepEqual([e.error.code, e.error.right], ['FORBIDDEN', 'provider']);
    assert.match(r.stderr, /an administrator set the provider of this mailbox \(totp\)/);
    const shown = JSON.parse((await self('frank@apart.org', ['show'])).stdout) as { allowedProviders: string[]; phone: string | null };
    assert.deepEqual([shown.allowedProviders, shown.phone], [[], null], 'nothing was changed, and nothing is offered');
    // Without the administrator's setting the user's choice applies (over the domain's).
    assert.equal((await self('gina@apart.org', ['set', '--provider', 'sms', '--phone', '+12015550124'])).code, 0);
    const g = await d.json<Shown>(['mailbox', 'show', 'gina@apart.org']);
    assert.deepEqual([g.effective.provider.value, g.effective.provider.source], ['sms', 'user']);
    // ... until an administrator sets one for the mailbox.
    await d.json(['mailbox', 'set', 'gina@apart.org', '--provider', 'totp']);
    const g2 = await d.json<Shown>(['mailbox', 'show', 'gina@apart.org']);
    assert.deepEqual([g2.effective.provider.value, g2.effective.provider.source, g2.userSettings], ['totp', 'mailbox', { provider: 'sms' }]);
  });
});

describe('domain administrators: they remove only what they may set, and cannot lower the platform minimum', () => {
  let d: TestDaemon;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    d = await startDaemon();
    const admin = await d.json<{ token: string }>(['admin', 'add', 'ann', '--domain', 'a.test']);
    env = { MEMFA_TOKEN: admin.token };
  });
  after(() => d.cleanup());
  const asDomainAdmin = (args: string[]) => d.cli(['--json', ...args], { env });

  it("domain remove by a domain administrator keeps the platform administrator's settings", async () => {
    await d.json(['domain', 'set', 'a.test', '--challenge', 'always', '--trusted-networks', '192.0.2.0/24', '--users-may-configure', 'no']);
    assert.equal((await asDomainAdmin(['domain', 'set', 'a.test', '--fallback', 'none'])).code, 0);
    const r = await asDomainAdmin(['domain', 'remove', 'a.test']);
    assert.equal(r.code, 0, r.stderr);
    const shown = await d.json<{ stored: boolean; settings: Record<string, unknown> }>(['domain', 'show', 'a.test']);
    assert.deepEqual([shown.stored, shown.settings], [true, { trustedNetworks: ['192.0.2.0/24'], usersMayConfigure: false }]);
    assert.deepEqual((JSON.parse(r.stdout) as { kept: string[] }).kept, ['trustedNetworks', 'usersMayConfigure']);
    const human = await d.cli(['domain', 'remove', 'a.test'], { env });
    assert.match(human.stdout, /kept the platform administrator's: trustedNetworks, usersMayConfigure/);
    // The platform administrator's remove takes everything.
    assert.equal((await d.cli(['domain', 'remove', 'a.test'])).code, 0);
    assert.equal((await d.json<{ stored: boolean }>(['domain', 'show', 'a.test'])).stored, false);
  });

  it('the minimum challenge mode: FORBIDDEN to domain administrators, a floor over every level below', async () => {
    await d.json(['domain', 'set', 'a.test', '--min-challenge', 'always']);
    for (const args of [
      ['domain', 'set', 'a.test', '--min-challenge', 'never'],
      ['domain', 'set', 'a.test', '--min-challenge', 'inherit'],
      ['domain', 'set', 'a.test', '--trusted-networks', '0.0.0.0/0', '--challenge', 'never'],
    ]) {
      const r = await asDomainAdmin(args);
      assert.equal(r.code, 77, `${args.join(' ')}: ${r.stderr}`);
      const e = JSON.parse(r.stdout) as { error: { code: string; right: string } };
      assert.equal(e.error.code, 'FORBIDDEN');
      assert.match(r.stderr, /set by the platform administrator only/);
      assert.equal(e.error.right, args[3] === '--min-challenge' ? 'minChallenge' : 'trustedNetworks', 'names the setting');
    }
    // What a domain administrator may set is set, and stays under the floor.
    assert.equal((await asDomainAdmin(['domain', 'set', 'a.test', '--challenge', 'never'])).code, 0);
    assert.equal((await asDomainAdmin(['mailbox', 'set', 'u@a.test', '--challenge', 'never'])).code, 0);
    const v = await d.cli(['--json', 'verify', '--user', 'u@a.test', '--ip', GB]);
    assert.equal((JSON.parse(v.stdout) as { reason: string }).reason, 'enroll-required', 'the floor, not mode-never');
    const m = await d.json<Shown>(['mailbox', 'show', 'u@a.test']);
    assert.deepEqual(m.effective.challenge, { value: 'always', source: 'domain', minimum: { value: 'always', source: 'domain', raised: true } });
    const x = await d.json<{ steps: string[] }>(['explain', 'u@a.test', '--ip', GB]);
    assert.ok(x.steps.some((s) => /challenge mode: always \(from the domain minimum/.test(s)), x.steps.join('\n'));
    assert.match((await d.cli(['mailbox', 'show', 'u@a.test'])).stdout, /challenge\s+always \(domain minimum\)/);
    // The domain administrator's remove leaves the floor.
    await asDomainAdmin(['domain', 'remove', 'a.test']);
    assert.deepEqual((await d.json<{ settings: Record<string, unknown> }>(['domain', 'show', 'a.test'])).settings, { minChallenge: 'always' });
  });

  it('a global minimum holds for every domain and for users, until the platform lifts it', async () => {
    await d.json(['global', 'set', '--min-challenge', 'new-ip']);
    await d.json(['domain', 'set', 'b.test', '--challenge', 'never', '--users-may-configure', 'yes']);
    const m = await d.json<Shown>(['mailbox', 'show', 'w@b.test']);
    assert.deepEqual([m.effective.challenge.value, m.effective.challenge.source, m.effective.challenge.minimum?.raised], ['new-ip', 'global', true]);
    const r = await d.cli(['--json', 'self', '--user', 'w@b.test', 'set', '--challenge', 'new-country']);
    assert.equal(r.code, 77, r.stderr);
    assert.match(r.stderr, /weaker than new-ip, which the platform's minimum/);
    assert.equal((await d.cli(['self', '--user', 'w@b.test', 'set', '--challenge', 'always'])).code, 0, 'stricter is allowed');
    await d.json(['global', 'set', '--min-challenge', 'inherit']);
    const after = await d.json<Shown>(['mailbox', 'show', 'w@b.test']);
    assert.deepEqual(after.effective.challenge, { value: 'always', source: 'user' });
  });
});

interface Enrolled {
  secret: string;
}

/** A code of `key` that is none of the codes valid around now. */
function wrongCode(key: Buffer): string {
  const now = Date.now();
  const valid = new Set([-2, -1, 0, 1, 2].map((k) => totpCode(key, now + k * PERIOD, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

describe('the current factor: self-service never replaces it without proof of it', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({
      config: {
        providers: { sms: { enabled: true, transport: 'log' }, email: { enabled: true, transport: 'log' } },
        codes: { cooldownSeconds: 0, hourlyLimit: 100 },
        lockout: { threshold: 3, ipMaxFailures: 1000, ipDistinctMailboxes: 1000 },
      },
    });
  });
  after(() => d.cleanup());

  // Any self.* method by name: the answer's type is the caller's to say.
  const selfCall = (method: string, params: Record<string, unknown>): Promise<unknown> => call(d.selfSocket, method as 'self.set', params as never);
  const enrolledKey = async (address: string): Promise<Buffer> => {
    await d.json(['mailbox', 'set', address, '--challenge', 'always']);
    return fromBase32((await d.json<Enrolled>(['enroll', address, '--no-confirm'])).secret);
  };
  const verifyReason = async (user: string, code: string) => ((await call(d.hookSocket, 'verify', { user, ip: GB, code })) as { reason: string }).reason;
  const failures = async (address: string) => (await d.json<{ lock: { failures: number; locked: boolean } }>(['mailbox', 'show', address])).lock;
  /** The code last sent to `to` through the log transport. */
  const sentCode = async (to: string): Promise<string> => {
    const lines = (await readFile(path.join(d.dataDir, 'outbox.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { to: string; code?: string });
    const last = lines.filter((l) => l.to === to).at(-1);
    assert.ok(last?.code, `a code was sent to ${to}`);
    return last.code;
  };

  it("refuses to replace bob's TOTP secret without his current code: the takeover of the hook-socket era", async () => {
    const key = await enrolledKey('bob@example.org');
    const before = await d.json<{ totpActivatedAt: number }>(['mailbox', 'show', 'bob@example.org']);
    for (const params of [{ user: 'bob@example.org', restart: true }, { user: 'bob@example.org' }]) {
      const e = await refusal(selfCall('self.enroll.start', params));
      assert.equal(e.code, 'FORBIDDEN', e.message);
      assert.equal(e.data?.['right'], 'currentCode');
      assert.match(e.message, /currentCode: this change replaces the second factor of bob@example\.org \(totp\)/);
    }
    // Nothing was revealed that could be confirmed, and bob's own secret is the active one.
    await assert.rejects(selfCall('self.enroll.confirm', { user: 'bob@example.org', code: '123456' }), (err: MemfaError) => err.code === 'CONFLICT' || err.code === 'FORBIDDEN');
    const after = await d.json<{ totpActivatedAt: number; totp: string }>(['mailbox', 'show', 'bob@example.org']);
    assert.equal(after.totpActivatedAt, before.totpActivatedAt);
    assert.equal(await verifyReason('bob@example.org', totpCode(key, Date.now(), TOTP)), 'code-valid');

    // A wrong code is refused and counts as a failure, like a wrong code at login.
    const wrong = await refusal(selfCall('self.enroll.start', { user: 'bob@example.org', restart: true, currentCode: wrongCode(key) }));
    assert.deepEqual([wrong.code, wrong.data?.['reason']], ['FORBIDDEN', 'code-invalid']);
    assert.equal((await failures('bob@example.org')).failures, 1);
    // A code already used (its step is at or before the last accepted one) is a replay.
    const replayed = await refusal(selfCall('self.enroll.start', { user: 'bob@example.org', currentCode: totpCode(key, Date.now() - PERIOD, TOTP) }));
    assert.deepEqual([replayed.code, replayed.data?.['reason']], ['FORBIDDEN', 'code-reused']);

    // With the current code from the next step on: the new secret, then activated by its own code.
    const proof = totpCode(key, Date.now() + PERIOD, TOTP);
    const started = (await selfCall('self.enroll.start', { user: 'bob@example.org', restart: true, currentCode: proof })) as Enrolled;
    const fresh = fromBase32(started.secret);
    assert.equal((await failures('bob@example.org')).failures, 0, 'a proof that passes resets the counter');
    const again = await refusal(selfCall('self.enroll.start', { user: 'bob@example.org', currentCode: proof }));
    assert.equal(again.data?.['reason'], 'code-reused', 'the proof moved the last accepted step');
    await selfCall('self.enroll.confirm', { user: 'bob@example.org', code: totpCode(fresh, Date.now(), TOTP) });
    assert.equal(await verifyReason('bob@example.org', totpCode(fresh, Date.now() + PERIOD, TOTP)), 'code-valid');
    assert.equal(await verifyReason('bob@example.org', totpCode(key, Date.now() + 2 * PERIOD, TOTP)), 'code-invalid', 'the old secret is gone');
  });

  it('a recovery code proves the factor and is spent; the lockout counts wrong proofs and holds', async () => {
    const key = await enrolledKey('rita@example.org');
    const codes = (await d.json<{ codes: string[] }>(['recovery-codes', 'rita@example.org'])).codes;
    const started = (await selfCall('self.enroll.start', { user: 'rita@example.org', currentCode: codes[0] })) as Enrolled;
    assert.equal(typeof started.secret, 'string');
    assert.equal((await d.json<{ recoveryCodesLeft: number }>(['mailbox', 'show', 'rita@example.org'])).recoveryCodesLeft, 9);
    assert.equal((await refusal(selfCall('self.enroll.start', { user: 'rita@example.org', currentCode: codes[0] }))).data?.['reason'], 'code-invalid', 'spent');
    // Three failures in all (threshold 3): locked. The right code is then refused too, as at login.
    await refusal(selfCall('self.set', { user: 'rita@example.org', provider: 'email', altEmail: 'rita@home.example', currentCode: wrongCode(key) }));
    const third = await refusal(selfCall('self.set', { user: 'rita@example.org', provider: 'email', altEmail: 'rita@home.example', currentCode: 'zzzzz-zzzzz' }));
    assert.equal(third.data?.['reason'], 'code-invalid');
    assert.equal((await failures('rita@example.org')).locked, true);
    const locked = await refusal(selfCall('self.enroll.start', { user: 'rita@example.org', currentCode: totpCode(key, Date.now(), TOTP) }));
    assert.deepEqual([locked.code, locked.data?.['reason']], ['RATE_LIMITED', 'locked']);
    assert.equal(await verifyReason('rita@example.org', totpCode(key, Date.now(), TOTP)), 'locked', 'one lockout for logins and proofs');
    const shown = (await selfCall('self.show', { user: 'rita@example.org' })) as { provider: string; altEmail: string | null };
    assert.deepEqual([shown.provider, shown.altEmail], ['totp', null], 'no refused change was applied');
  });

  it('an sms factor: a new phone, another provider or a TOTP secret need a code sent to the current phone', async () => {
    await d.json(['mailbox', 'set', 'carol@example.org', '--challenge', 'always']);
    // Her first factor is her own choice, and needs no proof: she had none.
    await selfCall('self.set', { user: 'carol@example.org', provider: 'sms', phone: '+12015550101' });
    const changes: Record<string, unknown>[] = [
      { phone: '+12015550166' },
      { altEmail: 'evil@attacker.example' },
      { provider: 'email', altEmail: 'evil@attacker.example' },
      { provider: 'totp' },
      { provider: 'inherit' },
    ];
    for (const change of changes) {
      const e = await refusal(selfCall('self.set', { user: 'carol@example.org', ...change }));
      assert.equal(e.code, 'FORBIDDEN', `${JSON.stringify(change)}: ${e.message}`);
      assert.equal(e.data?.['right'], 'currentCode');
      assert.match(e.message, /a code sent by self\.code\.send/);
    }
    assert.equal((await refusal(selfCall('self.enroll.start', { user: 'carol@example.org' }))).data?.['right'], 'currentCode', 'a TOTP secret would replace the sms factor');
    // Changes that replace no factor need no proof.
    await selfCall('self.set', { user: 'carol@example.org', challenge: 'always', phone: '+12015550101' });

    const sent = (await selfCall('self.code.send', { user: 'carol@example.org', ip: GB })) as { provider: string; destination: string };
    assert.equal(sent.provider, 'sms');
    assert.match(sent.destination, /^\+12\*+101$/);
    const code = await sentCode('+12015550101');
    const changed = (await selfCall('self.set', { user: 'carol@example.org', phone: '+12015550102', currentCode: code })) as { phone: string };
    assert.equal(changed.phone, '+12015550102');
    const spent = await refusal(selfCall('self.set', { user: 'carol@example.org', phone: '+12015550103', currentCode: code }));
    assert.equal(spent.data?.['reason'], 'no-open-code', 'the sent code was spent by the proof');
    // The CLI reads the proof from standard input, never from argv.
    assert.equal((await d.cli(['self', '--user', 'carol@example.org', 'send-code'])).code, 0);
    const viaCli = await d.cli(['--json', 'self', '--user', 'carol@example.org', 'set', '--phone', '+12015550104', '--current-code-stdin'], { stdin: (await sentCode('+12015550102')) + '\n' });
    assert.equal(viaCli.code, 0, viaCli.stderr);
    assert.equal((JSON.parse(viaCli.stdout) as { phone: string }).phone, '+12015550104');
    // A TOTP-only mailbox gets no code to send.
    await enrolledKey('tess@example.org');
    const none = await refusal(selfCall('self.code.send', { user: 'tess@example.org' }));
    assert.deepEqual([none.code, none.data?.['reason']], ['CONFLICT', 'no-code-to-send']);
  });

  it('a first enrolment needs no proof, and a pending secret started before a factor existed cannot replace it', async () => {
    const first = (await selfCall('self.enroll.start', { user: 'dan@example.org' })) as Enrolled;
    await selfCall('self.enroll.confirm', { user: 'dan@example.org', code: totpCode(fromBase32(first.secret), Date.now(), TOTP) });
    assert.equal((await d.json<{ totp: string }>(['mailbox', 'show', 'dan@example.org'])).totp, 'active');
    await selfCall('self.set', { user: 'dan@example.org', challenge: 'always' });

    // A secret started while the mailbox had no factor; then the user's phone becomes one.
    const early = (await selfCall('self.enroll.start', { user: 'erik@example.org' })) as Enrolled;
    await selfCall('self.set', { user: 'erik@example.org', provider: 'sms', phone: '+12015550110' });
    const e = await refusal(selfCall('self.enroll.confirm', { user: 'erik@example.org', code: totpCode(fromBase32(early.secret), Date.now(), TOTP) }));
    assert.deepEqual([e.code, e.data?.['right']], ['FORBIDDEN', 'currentCode']);
    assert.equal((await d.json<{ totp: string }>(['mailbox', 'show', 'erik@example.org'])).totp, 'pending', 'not activated');
  });

  it('the platform administrator (admin socket) is not asked for the factor', async () => {
    const key = await enrolledKey('lost@example.org');
    const e = (await call(d.adminSocket, 'self.enroll.start', { user: 'lost@example.org', restart: true })) as Enrolled;
    await call(d.adminSocket, 'self.enroll.confirm', { user: 'lost@example.org', code: totpCode(fromBase32(e.secret), Date.now(), TOTP) });
    assert.equal(await verifyReason('lost@example.org', totpCode(key, Date.now() + PERIOD, TOTP)), 'code-invalid', 'the lost secret was replaced');
    const shown = (await call(d.adminSocket, 'self.set', { user: 'lost@example.org', provider: 'sms', phone: '+12015550120' })) as { provider: string; phone: string };
    assert.deepEqual([shown.provider, shown.phone], ['sms', '+12015550120']);
  });
});
