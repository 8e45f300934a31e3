// Who may configure what: platform policy, domain administrators, end users, country rules.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { startDaemon, type CliResult, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const US = '8.8.8.8';
const NL = '193.0.6.139';
const DE = '5.9.0.1';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

describe('roles, provider policy and country rules', () => {
  let d: TestDaemon;
  let tokenFile: string;
  let token: string;

  before(async () => {
    d = await startDaemon({
      config: {
        providers: { sms: { enabled: true, transport: 'log', domainAdmins: false }, email: { enabled: true, transport: 'log', endUsers: false } },
      },
    });
    const r = await d.json<{ token: string }>(['admin', 'add', 'acme-admin', '--domain', 'acme.example', '--domain', 'acme2.example']);
    token = r.token;
    assert.match(token, /^memfa_[a-f0-9]{16}_/);
    tokenFile = path.join(d.dir, 'token');
    await writeFile(tokenFile, token + '\n', { mode: 0o600 });
  });
  after(() => d.cleanup());

  const asAdmin = (args: string[]) => d.cli(['--token-file', tokenFile, ...args]);
  const asSelf = (user: string, args: string[], stdin?: string) => d.cli(['self', '--user', user, ...args], stdin === undefined ? {} : { stdin });
  const expectDenied = (r: CliResult, code: number, message: RegExp, what: string) => {
    assert.equal(r.code, code, `${what}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, message, what);
  };

  it('the token is shown once and stored only hashed', async () => {
    const list = await d.json<{ admins: { name: string; domains: string[] }[] }>(['admin', 'list']);
    assert.deepEqual(list.admins.map((a) => [a.name, a.domains]), [['acme-admin', ['acme.example', 'acme2.example']]]);
    const { readFile } = await import('node:fs/promises');
    const disk = (await readFile(path.join(d.dataDir, 'memfa.json.journal'), 'utf8').catch(() => '')) + (await readFile(path.join(d.dataDir, 'memfa.json'), 'utf8'));
    // The secret is everything after the id; it may itself contain '_' (base64url).
    const secret = token.slice('memfa_'.length + 16 + 1);
    assert.equal(secret.length, 43);
    assert.ok(!disk.includes(secret), 'token secret not on disk');
    assert.ok(!d.log().includes(secret), 'token secret not in the log');
  });

  it('a domain administrator manages their own domains over the hook socket, and nothing else', async () => {
    const matrix: [string, string[], number, RegExp | null][] = [
      ['set own mailbox', ['mailbox', 'set', 'u1@acme.example', '--challenge', 'always', '--provider', 'totp'], 0, null],
      ['show own mailbox', ['mailbox', 'show', 'u1@acme.example'], 0, null],
      ['list own domain', ['mailbox', 'list', '--domain', 'acme.example'], 0, null],
      ['set own domain', ['domain', 'set', 'acme2.example', '--challenge', 'new-ip'], 0, null],
      ['enroll own mailbox', ['enroll', 'u1@acme.example', '--no-confirm'], 0, null],
      ['explain own mailbox', ['explain', 'u1@acme.example', '--ip', GB], 0, null],
      ['reset own mailbox', ['reset', 'u1@acme.example', '--locations'], 0, null],
      ["another domain's mailbox", ['mailbox', 'set', 'x@other.example', '--challenge', 'never'], 77, /no right to domain other\.example/],
      ["another domain's mailbox (show)", ['mailbox', 'show', 'x@other.example'], 77, /no right to domain other\.example/],
      ['another domain', ['domain', 'set', 'other.example', '--challenge', 'never'], 77, /no right to domain other\.example/],
      ["reset in another domain", ['reset', 'x@other.example', '--all'], 77, /no right/],
      ['global settings', ['global', 'set', '--challenge', 'never'], 77, /may not call "global.set"/],
      ['provider policy', ['providers', 'enable', 'sms'], 77, /may not call "providers.set"/],
      ['issuing tokens', ['admin', 'add', 'evil', '--domain', 'acme.example'], 77, /may not call "admin.add"/],
      ['trusted networks', ['domain', 'set', 'acme.example', '--trusted-networks', '0.0.0.0/0'], 77, /platform administrator/],
      ['a provider the policy forbids them', ['mailbox', 'set', 'u2@acme.example', '--provider', 'sms', '--phone', '+12015550130'], 77, /domain administrators may not assign provider sms/],
    ];
    for (const [what, args, code, message] of matrix) {
      const r = await asAdmin(args);
      if (message === null) assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      else expectDenied(r, code, message, what);
    }
    // The audit trail names the administrator.
    const audit = await d.json<{ entries: { actor: string; socket: string }[] }>(['audit', '--mailbox', 'u1@acme.example', '--action', 'mailbox.set']);
    assert.deepEqual([audit.entries[0]!.actor, audit.entries[0]!.socket], ['domain-admin:acme-admin', 'hook']);
    // Without a token the hook socket refuses administration.
    const bare = await d.cli(['--socket', d.hookSocket, 'mailbox', 'show', 'u1@acme.example']);
    expectDenied(bare, 77, /not available on the hook socket/, 'no token');
  });

  it('a revoked or forged token is refused', async () => {
    const second = await d.json<{ token: string }>(['admin', 'add', 'temp', '--domain', 'acme.example']);
    const f = path.join(d.dir, 'token2');
    await writeFile(f, second.token);
    assert.equal((await d.cli(['--token-file', f, 'mailbox', 'show', 'u1@acme.example'])).code, 0);
    await d.json(['admin', 'remove', 'temp']);
    expectDenied(await d.cli(['--token-file', f, 'mailbox', 'show', 'u1@acme.example']), 77, /unknown or was revoked/, 'revoked');
    const forged = token.slice(0, -4) + 'AAAA';
    expectDenied(await d.cli(['mailbox', 'show', 'u1@acme.example'], { env: { MEMFA_TOKEN: forged } }), 77, /unknown or was revoked/, 'forged');
  });

  it('end users change their own settings within the policy', async () => {
    await d.json(['domain', 'set', 'users.example', '--challenge', 'new-country', '--users-may-configure', 'yes']);
    const shown = await asSelf('eve@users.example', ['--json', 'show']).then((r) => JSON.parse(r.stdout) as { allowedChallenges: string[]; allowedProviders: string[] });
    assert.deepEqual(shown.allowedChallenges, ['new-country', 'new-ip', 'always']);
    assert.deepEqual(shown.allowedProviders, ['totp', 'sms']);
    assert.equal((await asSelf('eve@users.example', ['set', '--challenge', 'always', '--phone', '+12015550100', '--provider', 'sms'])).code, 0);
    expectDenied(await asSelf('eve@users.example', ['set', '--challenge', 'never']), 77, /weaker than new-country/, 'weaker mode');
    expectDenied(await asSelf('eve@users.example', ['set', '--provider', 'email', '--alt-email', 'eve@home.example']), 77, /end users may not choose provider email/, 'forbidden provider');
    // Own TOTP enrolment. Eve's sms factor is active now, so a new factor needs a code sent to it.
    assert.equal((await asSelf('eve@users.example', ['enroll'])).code, 77, 'not without proof of the sms factor');
    assert.equal((await asSelf('eve@users.example', ['send-code'])).code, 0);
    const { readFile } = await import('node:fs/promises');
    const sent = (await readFile(path.join(d.dataDir, 'outbox.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { to: string; code?: string });
    const smsCode = sent.filter((m) => m.to === '+12015550100').at(-1)?.code;
    assert.ok(smsCode, 'a code went to her phone');
    const started = await asSelf('eve@users.example', ['--json', 'enroll', '--current-code-stdin'], smsCode + '\n');
    assert.equal(started.code, 0, started.stderr);
    const secret = fromBase32((JSON.parse(started.stdout) as { secret: string }).secret);
    const confirmed = await asSelf('eve@users.example', ['confirm'], totpCode(secret, Date.now(), TOTP) + '\n');
    assert.equal(confirmed.code, 0, confirmed.stderr);
    const after = await d.json<{ totp: string; effective: { challenge: { value: string } } }>(['mailbox', 'show', 'eve@users.example']);
    assert.deepEqual([after.totp, after.effective.challenge.value], ['active', 'always']);
    assert.equal((await asSelf('eve@users.example', ['forget-locations'])).code, 0);

    // The domain switch: users of this domain may not configure.
    await d.json(['domain', 'set', 'locked.example', '--users-may-configure', 'no']);
    expectDenied(await asSelf('fred@locked.example', ['set', '--challenge', 'always']), 77, /may not change their MFA settings/, 'switch off');
    assert.equal((await asSelf('fred@locked.example', ['show'])).code, 0, 'reading is always allowed');
  });

  it('disabling a provider in use says what happens, and verify never passes silently', async () => {
    await d.json(['mailbox', 'set', 'sam@sms.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550139']);
    await d.json(['mailbox', 'set', 'sue@sms.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+12015550140', '--fallback', 'totp']);
    const e = await d.json<{ secret: string }>(['enroll', 'sue@sms.example', '--no-confirm']);
    const off = await d.cli(['providers', 'disable', 'sms']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /\d+ mailboxes use sms: verify now tries their fallback/);
    const listed = await d.json<{ providers: { name: string; enabled: boolean; mailboxes: number }[] }>(['providers', 'list']);
    const sms = listed.providers.find((p) => p.name === 'sms')!;
    assert.equal(sms.enabled, false);
    assert.ok(sms.mailboxes >= 2);

    const sam = await d.cli(['--json', 'verify', '--user', 'sam@sms.example', '--ip', GB]);
    assert.equal(sam.code, 1);
    assert.equal((JSON.parse(sam.stdout) as { reason: string }).reason, 'provider-disabled');
    const x = await d.json<{ decision: { reason: string } }>(['explain', 'sam@sms.example', '--ip', GB]);
    assert.equal(x.decision.reason, 'provider-disabled');
    const codes = await d.json<{ codes: string[] }>(['recovery-codes', 'sam@sms.example']);
    const rescued = await d.cli(['--json', 'verify', '--user', 'sam@sms.example', '--ip', GB, '--code-stdin'], { stdin: codes.codes[0] });
    assert.equal(rescued.code, 0, rescued.stdout);

    // Sue has an enabled fallback: TOTP.
    const sue = await d.cli(['--json', 'verify', '--user', 'sue@sms.example', '--ip', GB]);
    assert.equal(sue.code, 2);
    assert.equal((JSON.parse(sue.stdout) as { provider: string }).provider, 'totp');
    const ok = await d.cli(['--json', 'verify', '--user', 'sue@sms.example', '--ip', GB, '--code-stdin'], { stdin: totpCode(fromBase32(e.secret), Date.now(), TOTP) });
    assert.equal(ok.code, 0, ok.stdout);
    await d.json(['providers', 'enable', 'sms']);
    await d.json(['providers', 'set', 'sms', '--domain-admins', 'yes']);
    assert.equal((await asAdmin(['mailbox', 'set', 'u3@acme.example', '--provider', 'sms', '--phone', '+12015550141'])).code, 0, 'allowed after the policy changed');
  });

  it('country rules at every level and trusted networks, in order: block, trusted, mode', async () => {
    const v = async (user: string, ip: string) => {
      const r = await d.cli(['--json', 'verify', '--user', user, '--ip', ip]);
      const body = JSON.parse(r.stdout) as { result: string; reason: string };
      return `${r.code}:${body.result}:${body.reason}`;
    };
    await d.json(['global', 'set', '--country-block', 'US']);
    await d.json(['domain', 'set', 'geo.example', '--country-allow', 'GB,NL,DE', '--challenge', 'always', '--trusted-networks', '81.2.69.0/24']);
    await d.json(['mailbox', 'set', 'gil@geo.example', '--country-block', 'DE']);
    assert.equal(await v('gil@geo.example', US), '1:deny:country-blocked', 'global block');
    assert.equal(await v('gil@geo.example', DE), '1:deny:country-blocked', 'mailbox block');
    assert.equal(await v('gil@geo.example', '10.1.2.3'), '1:deny:country-blocked', 'allow-only refuses an unknown country');
    assert.equal(await v('gil@geo.example', '195.154.0.1'), '1:deny:country-blocked', 'FR is not in the allow list');
    assert.equal(await v('gil@geo.example', GB), '0:allow:trusted-network', 'trusted network wins over the challenge');
    assert.equal(await v('gil@geo.example', NL), '3:enroll:enroll-required', 'otherwise mode always');
    assert.equal(await v('other@geo.example', DE), '3:enroll:enroll-required', 'the mailbox rule is only for gil');
    // A trusted network does not win over a country block.
    await d.json(['domain', 'set', 'geo.example', '--trusted-networks', '8.8.8.0/24']);
    assert.equal(await v('gil@geo.example', US), '1:deny:country-blocked');
    const x = await d.json<{ decision: { reason: string; rule: string; matched: string } }>(['explain', 'gil@geo.example', '--ip', US]);
    assert.deepEqual([x.decision.reason, x.decision.rule, x.decision.matched], ['country-blocked', 'global block US', 'US']);
    await d.json(['global', 'set', '--country-rule', 'inherit']);
    assert.equal(await v('gil@geo.example', US), '1:deny:country-blocked', 'the domain allow-only still refuses US');
    await d.json(['domain', 'set', 'geo.example', '--country-rule', 'inherit']);
    assert.equal(await v('gil@geo.example', US), '0:allow:trusted-network');
  });
});
