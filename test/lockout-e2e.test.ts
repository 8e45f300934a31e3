// Lockout and throttling through the real daemon (issue 12, items 6, 7 and 9): failures at the
// mailbox's remembered addresses are counted apart from failures elsewhere; the per-address
// throttle reserves each attempt before it is checked and groups IPv6 by prefix; verify stores
// nothing for mailboxes nobody configured.
import assert from 'node:assert/strict';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { makeTempDir, rawExchange, rpcLine, startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

interface V {
  result: string;
  reason: string;
  retryAfter?: number;
  otpauthUri?: string;
  expiresAt?: number;
}

interface LockPart {
  locked: boolean;
  until: number | null;
  reason: string | null;
  failures: number;
}

type Shown = { stored: boolean; totp: string; lock: LockPart & { known: LockPart; elsewhere: LockPart } };

const verifyRpc = (d: TestDaemon, user: string, ip: string, code?: string) => call(d.hookSocket, 'verify', code === undefined ? { user, ip } : { user, ip, code }) as Promise<V>;
const admin = (d: TestDaemon, method: Parameters<typeof call>[1], params: unknown) => call(d.adminSocket, method, params as never);

function wrongCode(key: Buffer, now: number): string {
  const valid = new Set([-1, 0, 1].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

function secretOf(uri: string): Buffer {
  return fromBase32(new URL(uri).searchParams.get('secret')!);
}

/** A mailbox with challenge always and an active TOTP secret, made over the admin socket. */
async function enrolled(d: TestDaemon, address: string): Promise<Buffer> {
  await admin(d, 'mailbox.set', { address, settings: { challenge: 'always', provider: 'totp' } });
  const started = (await admin(d, 'enroll.start', { address })) as { secret: string };
  await admin(d, 'enroll.confirm', { address, force: true });
  return fromBase32(started.secret);
}

/** Runs fn over 0..n-1 with at most `width` at once. */
async function pool<T>(n: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function withDaemon(config: Record<string, unknown>, fn: (d: TestDaemon, clock: { shift(ms: number): Promise<void>; now(): number }) => Promise<void>) {
  const dir = await makeTempDir();
  const clockFile = path.join(dir, 'clock');
  await writeFile(clockFile, '0');
  const d = await startDaemon({ dir, config, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
  let offset = 0;
  const clock = {
    async shift(ms: number) {
      offset += ms;
      await writeFile(clockFile, String(offset));
    },
    now: () => Date.now() + offset,
  };
  try {
    await fn(d, clock);
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Bytes of the store on disk: the snapshot and both journals. */
async function storeBytes(d: TestDaemon): Promise<number> {
  let total = 0;
  for (const f of await readdir(d.dataDir)) if (f.startsWith('memfa.json')) total += (await stat(path.join(d.dataDir, f))).size;
  return total;
}

const checked = (answers: V[]) => answers.filter((a) => a.reason !== 'locked').length;

describe('lockout and throttling end to end', () => {
  it('an attacker at unknown addresses locks the unknown-location counter; the owner at a remembered address still gets in', async () => {
    const config = { lockout: { threshold: 5, baseDelaySeconds: 60, maxDelaySeconds: 3600, hardLockAfter: 8, ipMaxFailures: 1000, ipDistinctMailboxes: 100 } };
    await withDaemon(config, async (d, clock) => {
      const bob = 'bob@lock.example';
      const key = await enrolled(d, bob);
      // Bob passes his second factor from his usual address: it is remembered.
      assert.equal((await verifyRpc(d, bob, GB, totpCode(key, clock.now(), TOTP))).reason, 'code-valid');

      for (let i = 0; i < 5; i++) assert.equal((await verifyRpc(d, bob, '198.51.100.7', wrongCode(key, clock.now()))).reason, 'code-invalid');
      assert.equal((await verifyRpc(d, bob, '198.51.100.7', wrongCode(key, clock.now()))).reason, 'locked');

      await clock.shift(30_000);
      assert.equal((await verifyRpc(d, bob, GB, totpCode(key, clock.now(), TOTP))).reason, 'code-valid', 'the owner at his remembered address is not locked out');
      // From an address he never passed a factor from, he is subject to the attacker's lock.
      const away = await verifyRpc(d, bob, '81.2.69.160', totpCode(key, clock.now() + 30_000, TOTP));
      assert.equal(away.reason, 'locked');
      assert.ok(away.retryAfter! > 0 && away.retryAfter! <= 60, String(away.retryAfter));

      let shown = await d.json<Shown>(['mailbox', 'show', bob]);
      assert.deepEqual([shown.lock.known.locked, shown.lock.known.failures], [false, 0]);
      assert.deepEqual([shown.lock.elsewhere.locked, shown.lock.elsewhere.reason, shown.lock.elsewhere.failures], [true, 'lockout', 5], 'a success at a remembered address does not reset the other counter');
      assert.equal(shown.lock.locked, true);

      // The attacker goes on from other unknown addresses, waiting out each delay, to the hard lock.
      for (const ip of ['198.51.100.8', '198.51.100.9', '198.51.100.10']) {
        await clock.shift(3_601_000);
        assert.equal((await verifyRpc(d, bob, ip, wrongCode(key, clock.now()))).reason, 'code-invalid');
      }
      await clock.shift(7_200_000);
      const hard = await verifyRpc(d, bob, '198.51.100.11', totpCode(key, clock.now(), TOTP));
      assert.deepEqual([hard.reason, hard.retryAfter], ['locked', undefined]);
      assert.equal((await verifyRpc(d, bob, GB, totpCode(key, clock.now(), TOTP))).reason, 'code-valid', 'still in at the remembered address');

      // Failures at the remembered address count on their own counter.
      await clock.shift(30_000);
      assert.equal((await verifyRpc(d, bob, GB, wrongCode(key, clock.now()))).reason, 'code-invalid');
      shown = await d.json<Shown>(['mailbox', 'show', bob]);
      assert.deepEqual([shown.lock.known.locked, shown.lock.known.failures], [false, 1]);
      assert.deepEqual([shown.lock.elsewhere.locked, shown.lock.elsewhere.reason, shown.lock.elsewhere.failures], [true, 'hard-lock', 8]);
      const human = await d.cli(['mailbox', 'show', bob]);
      assert.match(human.stdout, /^lock, remembered IPs +not locked, 1 consecutive failure$/m);
      assert.match(human.stdout, /^lock, other IPs +locked \(hard-lock\) until an administrator unlocks it, 8 consecutive failures$/m);
      const status = await d.cli(['status', bob]);
      assert.match(status.stdout, /^bob@lock\.example: remembered IPs: not locked, 1 consecutive failure; other IPs: locked \(hard-lock\) until an administrator unlocks it, 8 consecutive failures$/m);
      const list = await d.cli(['mailbox', 'list']);
      assert.match(list.stdout, /^bob@lock\.example\t.*\tlocked$/m);

      const un = await d.json<{ failuresCleared: number }>(['unlock', bob]);
      assert.equal(un.failuresCleared, 9);
      shown = await d.json<Shown>(['mailbox', 'show', bob]);
      assert.deepEqual([shown.lock.locked, shown.lock.known.failures, shown.lock.elsewhere.failures], [false, 0, 0]);
      assert.equal((await verifyRpc(d, bob, '81.2.69.160', totpCode(key, clock.now() + 30_000, TOTP))).reason, 'code-valid');
    });
  });

  it('concurrent and pipelined wrong codes from one address: at most the throttle limit are checked', async () => {
    await withDaemon({ lockout: { threshold: 1000, hardLockAfter: 5000, ipMaxFailures: 20, ipDistinctMailboxes: 10 } }, async (d, clock) => {
      const keys = await pool(200, 16, (i) => enrolled(d, `m${i}@spray.example`));
      const sprayed = await Promise.all(keys.map((key, i) => verifyRpc(d, `m${i}@spray.example`, '203.0.113.50', wrongCode(key, clock.now()))));
      assert.ok(sprayed.every((a) => a.reason === 'locked' || a.reason === 'code-invalid'));

      // 100 requests in one write on one connection.
      const lines = keys.slice(100).map((key, i) => rpcLine('verify', { user: `m${100 + i}@spray.example`, ip: '203.0.113.51', code: wrongCode(key, clock.now()) }, i));
      const piped = await rawExchange(d.hookSocket, [lines.join('')], { untilLines: 100, timeoutMs: 20_000 });
      assert.equal(piped.lines.length, 100);
      const answers = piped.lines.map((l) => l['result'] as V);

      // The failure limit holds on one mailbox too (its own lockout is set too high to interfere).
      const same = keys[0]!;
      const burst = Array.from({ length: 60 }, (_, i) => rpcLine('verify', { user: 'm0@spray.example', ip: '203.0.113.52', code: wrongCode(same, clock.now()) }, i));
      const one = (await rawExchange(d.hookSocket, [burst.join('')], { untilLines: 60, timeoutMs: 20_000 })).lines.map((l) => l['result'] as V);
      assert.equal(one.length, 60);

      // Checked: answered with the outcome of the code rather than refused before the check.
      const seen = { concurrent: checked(sprayed), pipelined: checked(answers), oneMailbox: checked(one) };
      assert.ok(seen.concurrent >= 1 && seen.concurrent <= 10, `200 concurrent over 200 mailboxes, limit 10: ${JSON.stringify(seen)}`);
      assert.ok(seen.pipelined >= 1 && seen.pipelined <= 10, `100 pipelined over 100 mailboxes, limit 10: ${JSON.stringify(seen)}`);
      assert.ok(seen.oneMailbox >= 1 && seen.oneMailbox <= 20, `60 pipelined on one mailbox, limit 20: ${JSON.stringify(seen)}`);
    });
  });

  it('an IPv6 /64 is throttled as one source; another /64 is not', async () => {
    await withDaemon({ lockout: { ipMaxFailures: 20, ipDistinctMailboxes: 10 } }, async (d) => {
      const answers: V[] = [];
      // Mailboxes nobody configured, under challenge always: each code given is checked (and wrong).
      await admin(d, 'domain.set', { domain: 'v6.example', settings: { challenge: 'always', provider: 'totp' } });
      for (let i = 1; i <= 200; i++) answers.push(await verifyRpc(d, `u${i}@v6.example`, `2001:db8:1:2::${i.toString(16)}`, 'abcde-fghjk'));
      const n = checked(answers);
      assert.ok(n >= 1 && n <= 10, `200 addresses of one /64: ${n} checked, limit 10`);
      assert.equal((await verifyRpc(d, 'other@v6.example', '2001:db8:1:3::1', 'abcde-fghjk')).reason, 'code-invalid', 'the next /64 is another source');
    });
  });

  it('a configured IPv6 prefix of 128 tracks each address apart', async () => {
    await withDaemon({ lockout: { ipMaxFailures: 20, ipDistinctMailboxes: 2, ipv6Prefix: 128 } }, async (d) => {
      await admin(d, 'domain.set', { domain: 'v6.example', settings: { challenge: 'always', provider: 'totp' } });
      const answers: V[] = [];
      for (let i = 1; i <= 5; i++) answers.push(await verifyRpc(d, `u${i}@v6.example`, `2001:db8:1:2::${i}`, 'abcde-fghjk'));
      assert.equal(checked(answers), 5);
    });
  });

  it('verify for random addresses leaves the store as it was, and forgets their failures after the lockout window', async () => {
    const N = Number(process.env['MEMFA_TEST_GROWTH_N'] ?? 4000);
    const config = { defaults: { challenge: 'always' }, totp: { enrolmentTtlSeconds: 600 }, lockout: { maxDelaySeconds: 3600 } };
    await withDaemon(config, async (d, clock) => {
      await enrolled(d, 'owner@growth.example');
      const countOf = async () => (await d.json<{ mailboxes: number }>(['status'])).mailboxes;
      const mailboxesBefore = await countOf();
      const bytesBefore = await storeBytes(d);
      const address = (i: number) => `r${i}-${Math.random().toString(36).slice(2, 10)}@growth${i % 7}.example`;
      // Half only ask (a pending enrolment each), half also give a wrong code from an address of their own.
      const failed: string[] = [];
      await pool(N, 32, async (i) => {
        const user = address(i);
        const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
        const asked = await verifyRpc(d, user, ip);
        assert.equal(asked.result, 'enroll');
        if (i % 2 === 1) {
          const r = await verifyRpc(d, user, ip, wrongCode(secretOf(asked.otpauthUri!), clock.now()));
          assert.equal(r.reason, 'code-invalid');
          if (failed.length < 3) failed.push(user);
        }
      });
      assert.equal(await countOf(), mailboxesBefore, 'no mailbox was stored');
      const grown = (await storeBytes(d)) - bytesBefore;
      assert.ok(grown < 64 * 1024, `the store grew by ${grown} bytes for ${N} addresses`);

      // The same QR code for a mailbox while its enrolment is open; its code enrols it, which stores it.
      const user = failed[0]!;
      const first = await verifyRpc(d, user, GB);
      const again = await verifyRpc(d, user, GB);
      assert.equal(again.otpauthUri, first.otpauthUri);
      assert.ok(first.expiresAt! - clock.now() >= 600_000 - 5_000, 'a code shown is accepted for at least the enrolment TTL');
      let shown = await d.json<Shown>(['mailbox', 'show', failed[1]!]);
      assert.deepEqual([shown.stored, shown.lock.elsewhere.failures], [false, 1], 'a failure of a mailbox nobody configured is counted, in memory');
      const enrolledNow = await verifyRpc(d, user, GB, totpCode(secretOf(first.otpauthUri!), clock.now(), TOTP));
      assert.equal(enrolledNow.reason, 'enrolled');
      assert.equal(await countOf(), mailboxesBefore + 1);
      shown = await d.json<Shown>(['mailbox', 'show', user]);
      assert.deepEqual([shown.stored, shown.totp, shown.lock.elsewhere.failures], [true, 'active', 0]);

      // Past the enrolment TTL and the lockout window nothing of the others is left.
      await clock.shift(3_700_000);
      shown = await d.json<Shown>(['mailbox', 'show', failed[1]!]);
      assert.deepEqual([shown.stored, shown.lock.elsewhere.failures], [false, 0]);
      assert.notEqual((await verifyRpc(d, failed[2]!, GB)).otpauthUri, undefined);
      assert.equal(await countOf(), mailboxesBefore + 1);
    });
  });

  it('mailbox records created by enrolment from one address count against its throttle', async () => {
    await withDaemon({ defaults: { challenge: 'always' }, lockout: { ipMaxFailures: 3, ipDistinctMailboxes: 10 } }, async (d, clock) => {
      const ownerKey = await enrolled(d, 'owner@new.example');
      const results: string[] = [];
      for (let i = 0; i < 5; i++) {
        const user = `n${i}@new.example`;
        const asked = await verifyRpc(d, user, '203.0.113.70');
        results.push((await verifyRpc(d, user, '203.0.113.70', totpCode(secretOf(asked.otpauthUri!), clock.now(), TOTP))).reason);
      }
      assert.deepEqual(results, ['enrolled', 'enrolled', 'enrolled', 'locked', 'locked']);
      const status = await d.json<{ mailboxes: number }>(['status']);
      assert.equal(status.mailboxes, 4, 'the owner and three new mailboxes');
      // The address is not blocked for logins of mailboxes that exist.
      assert.equal((await verifyRpc(d, 'owner@new.example', '203.0.113.70', totpCode(ownerKey, clock.now(), TOTP))).reason, 'code-valid');
    });
  });
});
