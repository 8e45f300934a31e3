// Rights through the real daemon: what each socket serves, and who may change whose factor and
// settings (issue 12: self-service, domain administrators and the sockets).
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import type { MemfaError } from '../src/protocol/errors.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';

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
    assert.deepEqual(await call(d.hookSocket, 'ping', {}), { pong: true });
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
    assert.deepEqual(await call(d.selfSocket, 'ping', {}), { pong: true });
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
    const audit = await d.json<{ entries: { socket: string; actor: string; action: string }[] }>(['audit', '--mailbox', 'carl@sock.example', '--action', 'mailbox.set']);
    assert.deepEqual(audit.entries.map((x) => `${x.socket}:${x.actor}`), ['self:self']);
    const verified = await d.cli(['audit', 'verify']);
    assert.equal(verified.code, 0, `an audit line from the self socket keeps the chain valid: ${verified.stdout}`);
    const status = await d.json<{ sockets: Record<string, string> }>(['status']);
    assert.equal(status.sockets['self'], d.selfSocket);
    assert.equal((await stat(d.selfSocket)).mode & 0o777, 0o640, 'sockets.self.mode');
    assert.equal((await stat(d.hookSocket)).mode & 0o777, 0o660, 'the hook socket keeps its own mode');
  });
});
