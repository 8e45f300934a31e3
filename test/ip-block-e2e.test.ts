// memfa ip-block list | clear through the real daemon: a source blocked after wrong codes is
// listed, cleared by its address or by any address of its IPv6 network, and every clear audited.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { AuditQueryResult, IpBlockClearResult, IpBlockListResult, VerifyResult } from '../src/protocol/results.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const V4 = '81.2.69.142';
const V6 = '2001:db8:1:2::5';
const V6_OTHER_HOST = '2001:db8:1:2:ffff::99';
const V6_SOURCE = '2001:db8:1:2::/64';

function wrongCode(key: Buffer, now = Date.now()): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

describe('ip-block list and clear', () => {
  let d: TestDaemon;
  const keys = new Map<string, Buffer>();
  const verify = (user: string, ip: string, code: string) => call(d.hookSocket, 'verify', { user, ip, code }) as Promise<VerifyResult>;
  const blocks = () => d.json<IpBlockListResult>(['ip-block', 'list']);
  const failFrom = async (user: string, ip: string, n: number) => {
    for (let i = 0; i < n; i++) assert.equal((await verify(user, ip, wrongCode(keys.get(user)!))).reason, 'code-invalid');
  };

  before(async () => {
    // Three failures block a source; the mailboxes themselves lock much later.
    d = await startDaemon({ config: { lockout: { ipMaxFailures: 3, ipDistinctMailboxes: 50, threshold: 50, hardLockAfter: 100 } } });
    await d.json(['domain', 'set', 'ip.example', '--challenge', 'always', '--provider', 'totp']);
    for (const user of ['v4@ip.example', 'v6@ip.example', 'w@ip.example']) {
      keys.set(user, fromBase32((await d.json<{ secret: string }>(['enroll', user, '--no-confirm'])).secret));
    }
  });
  after(() => d.cleanup());

  it('lists nothing while no source is blocked', async () => {
    const r = await blocks();
    assert.deepEqual([r.total, r.blocks], [0, []]);
    assert.equal((await d.cli(['ip-block', 'list'])).stdout.trim(), 'no blocked sources');
  });

  it('lists a blocked IPv4 source with reason, until and failures; clearing it lets a right code in again', async () => {
    await failFrom('v4@ip.example', V4, 3);
    const right = () => totpCode(keys.get('v4@ip.example')!, Date.now(), TOTP);
    assert.equal((await verify('v4@ip.example', V4, right())).reason, 'locked', 'the source is blocked');
    const r = await blocks();
    assert.equal(r.total, 1);
    const b = r.blocks[0]!;
    assert.deepEqual([b.source, b.reason, b.failures], [V4, 'ip-failures', 3]);
    assert.ok(b.until > Date.now() && b.until <= Date.now() + 15 * 60_000 + 60_000, `until ${b.until} is within the block time`);
    const human = await d.cli(['ip-block', 'list']);
    assert.match(human.stdout, new RegExp(`^${V4.replaceAll('.', '\\.')}\\tip-failures\\tuntil \\d{4}-\\d\\d-\\d\\dT\\S+Z\\t3 failures$`, 'm'));

    const cleared = await d.json<IpBlockClearResult>(['ip-block', 'clear', V4]);
    assert.deepEqual(cleared, { source: V4, blocked: true, reason: 'ip-failures', until: b.until, failures: 3, cleared: 1 });
    assert.equal((await blocks()).total, 0);
    assert.equal((await verify('v4@ip.example', V4, right())).reason, 'code-valid', 'codes from the source are checked again');
    // Nothing is left to clear now.
    const again = await d.cli(['ip-block', 'clear', V4]);
    assert.equal(again.code, 67, again.stderr);
    assert.match(again.stderr, /no block or failures kept for source 81\.2\.69\.142/);
  });

  it('an IPv6 source is its /64: listed as the network, cleared by any address in it', async () => {
    await failFrom('v6@ip.example', V6, 3);
    const r = await blocks();
    assert.deepEqual(r.blocks.map((b) => [b.source, b.reason]), [[V6_SOURCE, 'ip-failures']]);
    // Another host of the same /64 is refused too: it is the same source.
    assert.equal((await verify('v6@ip.example', V6_OTHER_HOST, totpCode(keys.get('v6@ip.example')!, Date.now(), TOTP))).reason, 'locked');
    // A network of another prefix length is not a source of this grouping.
    const wrongPrefix = await d.cli(['ip-block', 'clear', '2001:db8:1::/48']);
    assert.equal(wrongPrefix.code, 64, wrongPrefix.stderr);
    assert.match(wrongPrefix.stderr, /\/64/);
    const byHost = await d.json<IpBlockClearResult>(['ip-block', 'clear', V6_OTHER_HOST]);
    assert.ok(!('all' in byHost));
    assert.deepEqual([byHost.source, byHost.blocked], [V6_SOURCE, true]);
    assert.equal((await blocks()).total, 0);
    // As listed, the network clears too (failures again first).
    await failFrom('v6@ip.example', V6, 2);
    const byNetwork = await d.json<IpBlockClearResult>(['ip-block', 'clear', V6_SOURCE]);
    assert.ok(!('all' in byNetwork));
    assert.deepEqual([byNetwork.source, byNetwork.blocked, byNetwork.failures], [V6_SOURCE, false, 2], 'failures without a block are cleared too');
  });

  it('--all clears every source; each clear is in the audit log', async () => {
    await failFrom('w@ip.example', '192.0.2.10', 3);
    await failFrom('w@ip.example', '192.0.2.11', 3);
    await failFrom('w@ip.example', '2001:db8:9::1', 1);
    assert.equal((await blocks()).total, 2);
    const all = await d.json<IpBlockClearResult>(['ip-block', 'clear', '--all']);
    assert.deepEqual(all, { all: true, cleared: 3 });
    assert.equal((await blocks()).total, 0);
    assert.equal((await d.cli(['ip-block', 'clear', '--all'])).stdout.trim(), 'cleared 0 sources with a block or failures');

    const audit = await d.json<AuditQueryResult>(['audit', '--action', 'ip-block.clear']);
    const details = audit.entries.map((e) => [e.actor, e.result, (e as { details?: Record<string, unknown> }).details]);
    assert.deepEqual(details.map(([actor, result]) => [actor, result]), Array(5).fill(['admin', 'ok']));
    assert.deepEqual(
      details.map(([, , x]) => (x as Record<string, unknown>)['source'] ?? `all:${String((x as Record<string, unknown>)['cleared'])}`),
      [V4, V6_SOURCE, V6_SOURCE, 'all:3', 'all:0'],
    );
    assert.deepEqual((details[0]![2] as Record<string, unknown>)['reason'], 'ip-failures');
  });

  it('refuses a command line without a source or with both', async () => {
    for (const args of [['ip-block', 'clear'], ['ip-block', 'clear', V4, '--all']]) {
      const r = await d.cli(args);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /give a SOURCE or --all/);
    }
    await assert.rejects(call(d.adminSocket, 'ip-block.clear', {}), (e: Error & { code?: string }) => e.code === 'INVALID_PARAMS');
    await assert.rejects(call(d.adminSocket, 'ip-block.clear', { source: 'not-an-address' }), (e: Error & { code?: string }) => e.code === 'INVALID_PARAMS' && /source/.test(e.message));
    // Administration of the throttle is the platform administrator's: not on the hook socket.
    await assert.rejects(call(d.hookSocket, 'ip-block.list', {}), (e: Error & { code?: string }) => e.code === 'METHOD_NOT_ALLOWED');
  });
});
