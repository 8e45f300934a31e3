// End users' own app passwords and recovery codes through the self socket (issue 14): made only
// with proof of the current second factor, allowed or not by the platform's policy, never on the
// hook socket; the proof's failures count in the mailbox's lockout like any other.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { MemfaError } from '../src/protocol/errors.js';
import type { AppPasswordAdded, AppPasswordList, LoginCheckResult, MailboxView, SelfView, VerifyResult } from '../src/protocol/results.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 10 };
const PERIOD = 30_000;
const IP = '198.51.100.30';

async function refusal(p: Promise<unknown>): Promise<MemfaError> {
  try {
    const r = await p;
    assert.fail(`expected a refusal, got ${JSON.stringify(r)}`);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_ASSERTION') throw err;
    return err as MemfaError;
  }
}

describe('self-service app passwords and recovery codes', () => {
  let d: TestDaemon;
  let key: Buffer;
  let step = 0;
  const code = () => totpCode(key, Date.now() + step++ * PERIOD, TOTP);
  const self = <T>(method: string, params: Record<string, unknown>) => call(d.selfSocket, method as 'self.show', params as never) as Promise<T>;

  before(async () => {
    d = await startDaemon({ config: { totp: { window: 10 } } });
    await d.json(['domain', 'set', 'me.example', '--challenge', 'always']);
    key = fromBase32((await d.json<{ secret: string }>(['enroll', 'amy@me.example', '--no-confirm'])).secret);
  });
  after(() => d.cleanup());

  it('adding one needs the current factor; a wrong code is refused and counted', async () => {
    const missing = await refusal(self('self.app-password.add', { user: 'amy@me.example', name: 'phone' }));
    assert.deepEqual([missing.code, missing.data?.['param']], ['FORBIDDEN', 'currentCode']);
    const wrong = await refusal(self('self.app-password.add', { user: 'amy@me.example', name: 'phone', currentCode: '000000' }));
    assert.equal(wrong.code, 'FORBIDDEN');
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'amy@me.example'])).lock.elsewhere.failures, 1, 'a wrong proof counts');
    const made = await self<AppPasswordAdded>('self.app-password.add', { user: 'amy@me.example', name: 'phone', protocols: ['imap', 'smtp'], expires: '30d', currentCode: code() });
    assert.match(made.password, /^[a-hj-km-np-z]{4}(-[a-hj-km-np-z]{4}){5}$/);
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'amy@me.example'])).lock.elsewhere.failures, 0, 'the right proof resets them');
    const ok = (await call(d.hookSocket, 'login.check', { user: 'amy@me.example', ip: IP, protocol: 'smtp', password: made.password })) as LoginCheckResult;
    assert.equal(ok.result, 'allow');
    const list = await self<AppPasswordList>('self.app-password.list', { user: 'amy@me.example' });
    assert.deepEqual(list.appPasswords.map((a) => [a.name, a.protocols.join(','), a.uses]), [['phone', 'imap,smtp', 1]]);
    const taken = await refusal(self('self.app-password.add', { user: 'amy@me.example', name: 'Phone', currentCode: code() }));
    assert.equal(taken.code, 'CONFLICT', 'a taken name, before the proof is spent');
    const audit = await d.json<{ entries: { action: string; result: string; actor: string }[] }>(['audit', '--mailbox', 'amy@me.example', '--action', 'app-password.add']);
    assert.deepEqual(audit.entries.map((e) => `${e.actor}:${e.result}`), ['self:rejected', 'self:ok']);
  });

  it('the CLI reads the proof from standard input; revoke needs none', async () => {
    const r = await d.cli(['--json', 'self', '--user', 'amy@me.example', 'app-password', 'add', '--name', 'laptop', '--protocols', 'all', '--current-code-stdin'], { stdin: `${code()}\n` });
    assert.equal(r.code, 0, r.stderr);
    const made = JSON.parse(r.stdout) as AppPasswordAdded;
    assert.equal(made.protocols.length, 5);
    const revoked = await d.json<{ revoked: { name: string }[] }>(['self', '--user', 'amy@me.example', 'app-password', 'revoke', 'laptop']);
    assert.deepEqual(revoked.revoked.map((x) => x.name), ['laptop']);
    const shown = await self<SelfView>('self.show', { user: 'amy@me.example' });
    assert.deepEqual(shown.appPasswords, { mayCreate: true, count: 1 });
  });

  it('recovery codes through self-service, with the current factor (a recovery code proves it too)', async () => {
    const refused = await refusal(self('self.recovery.generate', { user: 'amy@me.example' }));
    assert.equal(refused.code, 'FORBIDDEN');
    const first = await self<{ codes: string[] }>('self.recovery.generate', { user: 'amy@me.example', currentCode: code() });
    assert.equal(first.codes.length, 10);
    const second = await self<{ codes: string[] }>('self.recovery.generate', { user: 'amy@me.example', currentCode: first.codes[0] });
    assert.equal(second.codes.length, 10);
    const old = (await call(d.hookSocket, 'verify', { user: 'amy@me.example', ip: IP, code: first.codes[1]! })) as VerifyResult;
    assert.equal(old.reason, 'code-invalid', 'the previous set stopped working');
    const cli = await d.cli(['self', '--user', 'amy@me.example', 'recovery-codes', '--current-code-stdin'], { stdin: second.codes[0]! });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /recovery codes for amy@me\.example/);
  });

  it('a mailbox without a second factor gets neither; nothing is stored for it', async () => {
    for (const [method, params] of [
      ['self.app-password.add', { user: 'new@me.example', name: 'phone', currentCode: '123456' }],
      ['self.recovery.generate', { user: 'new@me.example', currentCode: '123456' }],
    ] as const) {
      const e = await refusal(self(method, params));
      assert.deepEqual([e.code, e.data?.['reason']], ['CONFLICT', 'no-factor'], method);
    }
    assert.equal((await d.json<MailboxView>(['mailbox', 'show', 'new@me.example'])).stored, false);
  });

  it('the policy decides whether end users may make app passwords; the hook socket has none of these methods', async () => {
    await d.json(['providers', 'set', 'app-password', '--end-users', 'no']);
    const e = await refusal(self('self.app-password.add', { user: 'amy@me.example', name: 'tablet', currentCode: code() }));
    assert.deepEqual([e.code, e.data?.['right']], ['FORBIDDEN', 'endUsers']);
    assert.equal((await self<SelfView>('self.show', { user: 'amy@me.example' })).appPasswords.mayCreate, false);
    assert.equal((await self<AppPasswordList>('self.app-password.list', { user: 'amy@me.example' })).appPasswords.length, 1, 'listing still works');
    await d.json(['providers', 'set', 'app-password', '--end-users', 'yes']);
    for (const method of ['self.app-password.add', 'self.app-password.list', 'self.app-password.revoke', 'self.recovery.generate']) {
      const r = await refusal(call(d.hookSocket, method as 'self.show', { user: 'amy@me.example' } as never));
      assert.equal(r.code, 'METHOD_NOT_ALLOWED', method);
    }
    const onSelf = await refusal(call(d.selfSocket, 'login.check', { user: 'amy@me.example', ip: IP, protocol: 'imap', password: 'x' }));
    assert.equal(onSelf.code, 'METHOD_NOT_ALLOWED', 'login.check is not on the self socket');
  });
});
