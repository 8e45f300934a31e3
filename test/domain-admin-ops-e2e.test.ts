// Domain administrators' support operations through the real daemon: unlock, recovery codes and
// the audit trail, each limited to the mailboxes of the token's domains.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { AuditQueryResult, MailboxView, VerifyResult } from '../src/protocol/results.js';
import { startDaemon, type CliResult, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

function wrongCode(key: Buffer, now = Date.now()): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

describe('domain administrators: unlock, recovery codes, audit of their domains', () => {
  let d: TestDaemon;
  let tokenFile: string;
  const asAdmin = (args: string[]) => d.cli(['--token-file', tokenFile, ...args]);
  const asAdminJson = async <T>(args: string[]): Promise<T> => {
    const r = await asAdmin(['--json', ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const forbidden = (r: CliResult, what: string) => {
    assert.equal(r.code, 77, `${what}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /no right to domain other\.example/, what);
  };
  const verify = (user: string, code?: string) => call(d.hookSocket, 'verify', code === undefined ? { user, ip: GB } : { user, ip: GB, code }) as Promise<VerifyResult>;
  const lockOut = async (user: string, key: Buffer) => {
    for (let i = 0; i < 2; i++) assert.equal((await verify(user, wrongCode(key))).reason, 'code-invalid');
    assert.equal((await verify(user, totpCode(key, Date.now(), TOTP))).reason, 'locked');
  };
  const keys = new Map<string, Buffer>();

  before(async () => {
    d = await startDaemon({ config: { lockout: { threshold: 2 } } });
    for (const domain of ['mine.example', 'other.example']) await d.json(['domain', 'set', domain, '--challenge', 'always', '--provider', 'totp']);
    for (const user of ['ann@mine.example', 'bob@mine.example', 'oz@other.example']) {
      keys.set(user, fromBase32((await d.json<{ secret: string }>(['enroll', user, '--no-confirm'])).secret));
    }
    const token = (await d.json<{ token: string }>(['admin', 'add', 'mine-admin', '--domain', 'mine.example'])).token;
    tokenFile = path.join(d.dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
  });
  after(() => d.cleanup());

  it('unlocks a mailbox of their domain, and no other', async () => {
    await lockOut('ann@mine.example', keys.get('ann@mine.example')!);
    await lockOut('oz@other.example', keys.get('oz@other.example')!);
    const r = await asAdmin(['unlock', 'ann@mine.example']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /unlocked ann@mine\.example \(2 failures cleared\)/);
    assert.equal((await verify('ann@mine.example', totpCode(keys.get('ann@mine.example')!, Date.now(), TOTP))).reason, 'code-valid');
    forbidden(await asAdmin(['unlock', 'oz@other.example']), 'unlock in another domain');
    const oz = await d.json<MailboxView>(['mailbox', 'show', 'oz@other.example']);
    assert.ok(oz.lock.locked, 'the other domain\'s mailbox is still locked');
  });

  it('generates recovery codes for a mailbox of their domain, and no other', async () => {
    const r = await asAdminJson<{ address: string; codes: string[] }>(['recovery-codes', 'bob@mine.example']);
    assert.equal(r.codes.length, 10);
    const used = await verify('bob@mine.example', r.codes[0]);
    assert.deepEqual([used.result, used.reason, used.recoveryCodesLeft], ['allow', 'recovery-code-used', 9]);
    forbidden(await asAdmin(['recovery-codes', 'oz@other.example']), 'recovery codes in another domain');
    const oz = await d.json<MailboxView>(['mailbox', 'show', 'oz@other.example']);
    assert.equal(oz.recoveryCodesLeft, 0, 'nothing was generated for the other domain');
  });

  it('reads the audit entries of their domains\' mailboxes only, filtered before the limit', async () => {
    // The most recent entries are of the other domain and of no mailbox.
    await verify('oz@other.example');
    await d.json(['global', 'set', '--challenge', 'always']);
    const mine = await asAdminJson<AuditQueryResult>(['audit']);
    assert.ok(mine.entries.length > 5, `entries: ${mine.entries.length}`);
    for (const e of mine.entries) assert.ok(e.mailbox !== null && e.mailbox.endsWith('@mine.example'), `only their domain: ${JSON.stringify(e)}`);
    for (const action of ['enroll.start', 'unlock', 'recovery-codes.generate', 'verify']) {
      assert.ok(mine.entries.some((e) => e.action === action), `their ${action} entries are there`);
    }
    // The platform administrator's view has the rest.
    const all = await d.json<AuditQueryResult>(['audit']);
    assert.ok(all.entries.some((e) => e.mailbox === null && e.action === 'admin.add'));
    assert.ok(all.entries.some((e) => e.mailbox === 'oz@other.example'));
    // --limit counts their entries only: the newest of them, not an empty page.
    const last = await asAdminJson<AuditQueryResult>(['audit', '--limit', '1']);
    assert.deepEqual(last.entries, [mine.entries.at(-1)]);
    // Filters apply within their domains.
    const unlocks = await asAdminJson<AuditQueryResult>(['audit', '--action', 'unlock']);
    assert.deepEqual(unlocks.entries.map((e) => [e.mailbox, e.actor]), [['ann@mine.example', 'domain-admin:mine-admin']]);
    const bob = await asAdminJson<AuditQueryResult>(['audit', '--mailbox', 'bob@mine.example']);
    assert.ok(bob.entries.length > 0 && bob.entries.every((e) => e.mailbox === 'bob@mine.example'));
    forbidden(await asAdmin(['audit', '--mailbox', 'oz@other.example']), 'audit of another domain\'s mailbox');
  });

  it('the daemon enforces the scope over the protocol too; audit verify stays the platform\'s', async () => {
    const auth = await readFile(tokenFile, 'utf8');
    const entries = ((await call(d.hookSocket, 'audit.query', { auth, action: 'global.set' } as never)) as AuditQueryResult).entries;
    assert.deepEqual(entries, [], 'no entry of no mailbox, whatever the filter');
    await assert.rejects(call(d.hookSocket, 'audit.verify', { auth } as never), (e: Error & { code?: string }) => e.code === 'FORBIDDEN');
    await assert.rejects(call(d.hookSocket, 'unlock', { auth, address: 'oz@other.example' } as never), (e: Error & { code?: string }) => e.code === 'FORBIDDEN');
    // Without a token the hook socket offers none of them.
    await assert.rejects(call(d.hookSocket, 'audit.query', {}), (e: Error & { code?: string }) => e.code === 'METHOD_NOT_ALLOWED');
  });
});
