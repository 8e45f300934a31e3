// Security and reliability through the real daemon: lockout, throttling, recovery codes, audit,
// key rotation, secrets at rest, full disk, kill -9.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, toBase32, totpCode } from '../src/core/totp.js';
import type { MemfaError } from '../src/protocol/errors.js';
import { Keyring } from '../src/security/keyring.js';
import { makeTempDir, startDaemon, waitExit, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

interface V {
  result: string;
  reason: string;
  retryAfter?: number;
  recoveryCodesLeft?: number;
}

const verifyRpc = (d: TestDaemon, user: string, ip: string, code?: string) =>
  call(d.hookSocket, 'verify', code === undefined ? { user, ip } : { user, ip, code }) as Promise<V>;

async function enrolled(d: TestDaemon, address: string, challenge = 'always'): Promise<Buffer> {
  await d.json(['mailbox', 'set', address, '--challenge', challenge, '--provider', 'totp']);
  const e = await d.json<{ secret: string }>(['enroll', address, '--no-confirm']);
  return fromBase32(e.secret);
}

function wrongCode(key: Buffer, now = Date.now()): string {
  // Different from the codes of the whole window.
  const valid = new Set([-1, 0, 1].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

async function withDaemon(config: Record<string, unknown>, fn: (d: TestDaemon, clockFile: string) => Promise<void>, env: NodeJS.ProcessEnv = {}) {
  const dir = await makeTempDir();
  const clockFile = path.join(dir, 'clock');
  await writeFile(clockFile, '0');
  const d = await startDaemon({ dir, config, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile, ...env } });
  try {
    await fn(d, clockFile);
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('security end to end', () => {
  it('50 concurrent verifications of one valid code: exactly one success', async () => {
    await withDaemon({}, async (d) => {
      const key = await enrolled(d, 'race@sec.example');
      const code = totpCode(key, Date.now(), TOTP);
      const results = await Promise.all(Array.from({ length: 50 }, () => verifyRpc(d, 'race@sec.example', GB, code)));
      assert.equal(results.filter((r) => r.result === 'allow').length, 1);
      assert.equal(results.filter((r) => r.result === 'deny').length, 49);
    });
  });

  it('N concurrent failing verifications raise the counter by exactly N', async () => {
    await withDaemon({ lockout: { threshold: 1000, hardLockAfter: 5000, ipMaxFailures: 1000, ipDistinctMailboxes: 100 } }, async (d) => {
      const key = await enrolled(d, 'count@sec.example');
      const bad = wrongCode(key);
      const results = await Promise.all(Array.from({ length: 40 }, () => verifyRpc(d, 'count@sec.example', GB, bad)));
      assert.ok(results.every((r) => r.reason === 'code-invalid'));
      const shown = await d.json<{ lock: { failures: number } }>(['mailbox', 'show', 'count@sec.example']);
      assert.equal(shown.lock.failures, 40);
    });
  });

  it('locks with a growing delay, answers a right code like a wrong one while locked, hard-locks until unlock', async () => {
    const config = { lockout: { threshold: 3, baseDelaySeconds: 60, maxDelaySeconds: 3600, hardLockAfter: 6, ipMaxFailures: 1000, ipDistinctMailboxes: 100 } };
    await withDaemon(config, async (d, clockFile) => {
      const key = await enrolled(d, 'lock@sec.example');
      let offset = 0;
      const shift = async (ms: number) => {
        offset += ms;
        await writeFile(clockFile, String(offset));
      };
      const now = () => Date.now() + offset;
      for (let i = 0; i < 2; i++) assert.equal((await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now()))).reason, 'code-invalid');
      const third = await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now()));
      assert.equal(third.reason, 'code-invalid');
      // Locked now for 60 s: a right code and a wrong code get the same answer.
      const right = await verifyRpc(d, 'lock@sec.example', GB, totpCode(key, now(), TOTP));
      const wrong = await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now()));
      assert.equal(right.reason, 'locked');
      assert.deepEqual(Object.keys(right).sort(), Object.keys(wrong).sort());
      assert.deepEqual({ ...right, retryAfter: 0 }, { ...wrong, retryAfter: 0 });
      assert.ok(right.retryAfter! > 50 && right.retryAfter! <= 60, String(right.retryAfter));
      const shown = await d.json<{ lock: { locked: boolean; until: number; reason: string } }>(['mailbox', 'show', 'lock@sec.example']);
      assert.equal(shown.lock.locked, true);
      // The right code while locked did not reset the counter.
      await shift(61_000);
      const fourth = await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now()));
      assert.equal(fourth.reason, 'code-invalid');
      const locked2 = await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now()));
      assert.equal(locked2.reason, 'locked');
      assert.ok(locked2.retryAfter! > 110 && locked2.retryAfter! <= 120, `doubled delay, got ${locked2.retryAfter}`);
      await shift(121_000);
      await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now())); // 5th
      await shift(241_000);
      await verifyRpc(d, 'lock@sec.example', GB, wrongCode(key, now())); // 6th: hard lock
      await shift(7_200_000);
      const hard = await verifyRpc(d, 'lock@sec.example', GB, totpCode(key, now(), TOTP));
      assert.equal(hard.reason, 'locked');
      assert.equal(hard.retryAfter, undefined, 'no retry time: an administrator must unlock');
      const human = await d.cli(['mailbox', 'show', 'lock@sec.example']);
      assert.match(human.stdout, /locked \(hard-lock\) until an administrator unlocks it/);
      const status = await d.cli(['status', 'lock@sec.example']);
      assert.match(status.stdout, /^lock@sec\.example: remembered IPs: not locked, 0 consecutive failures; other IPs: locked \(hard-lock\) until an administrator unlocks it, 6 consecutive failures$/m);
      const un = await d.cli(['unlock', 'lock@sec.example']);
      assert.equal(un.code, 0, un.stderr);
      const ok = await verifyRpc(d, 'lock@sec.example', GB, totpCode(key, now() + 30_000, TOTP));
      assert.equal(ok.reason, 'code-valid');
    });
  });

  it('wrong codes for a pending enrolment count as failures and lock the mailbox', async () => {
    await withDaemon({ lockout: { threshold: 3 } }, async (d) => {
      const started = await d.cli(['--json', 'self', '--user', 'pend@sec.example', 'enroll']);
      assert.equal(started.code, 0, started.stderr);
      const key = fromBase32((JSON.parse(started.stdout) as { secret: string }).secret);
      const bad = wrongCode(key);
      for (let i = 0; i < 3; i++) {
        const r = await d.cli(['self', '--user', 'pend@sec.example', 'confirm'], { stdin: bad + '\n' });
        assert.equal(r.code, 65, r.stderr);
      }
      const locked = await d.cli(['--json', 'self', '--user', 'pend@sec.example', 'confirm'], { stdin: totpCode(key, Date.now(), TOTP) + '\n' });
      assert.equal(locked.code, 75, 'locked: even the right code is refused');
      assert.match(locked.stderr, /locked after too many failures; retry in \d+ s/);
      const shown = await d.json<{ totp: string; lock: { failures: number; locked: boolean } }>(['mailbox', 'show', 'pend@sec.example']);
      assert.deepEqual([shown.totp, shown.lock.failures, shown.lock.locked], ['pending', 3, true]);
    });
  });

  it('audits error answers of verify too', async () => {
    await withDaemon({}, async (d) => {
      await enrolled(d, 'err@sec.example');
      const r = await d.cli(['verify', '--user', 'err@sec.example', '--ip', GB, '--code', 'not-a-code!']);
      assert.equal(r.code, 64);
      const q = await d.json<{ entries: { result: string; reason: string }[] }>(['audit', '--mailbox', 'err@sec.example', '--action', 'verify']);
      assert.deepEqual(q.entries.map((e) => `${e.result}:${e.reason}`), ['error:invalid-code']);
    });
  });

  it('throttles an address that fails across many mailboxes without locking those mailboxes', async () => {
    await withDaemon({ lockout: { threshold: 5, ipMaxFailures: 100, ipDistinctMailboxes: 3, ipBlockSeconds: 600 } }, async (d) => {
      const keys = [];
      for (const m of ['t1', 't2', 't3', 't4']) keys.push(await enrolled(d, `${m}@spray.example`));
      for (let i = 0; i < 3; i++) assert.equal((await verifyRpc(d, `t${i + 1}@spray.example`, '203.0.113.9', wrongCode(keys[i]!))).reason, 'code-invalid');
      const blocked = await verifyRpc(d, 't4@spray.example', '203.0.113.9', wrongCode(keys[3]!));
      assert.equal(blocked.reason, 'locked');
      assert.ok(blocked.retryAfter! > 500);
      const t4 = await d.json<{ lock: { failures: number; locked: boolean } }>(['mailbox', 'show', 't4@spray.example']);
      assert.deepEqual([t4.lock.failures, t4.lock.locked], [0, false], 'the attacker did not touch t4');
      // The owner on their own address is unaffected.
      assert.equal((await verifyRpc(d, 't4@spray.example', GB, totpCode(keys[3]!, Date.now(), TOTP))).reason, 'code-valid');
    });
  });

  it('recovery codes: ten, single use, for any provider; regenerating voids the old set', async () => {
    await withDaemon({}, async (d) => {
      await enrolled(d, 'rec@sec.example');
      const first = await d.json<{ codes: string[] }>(['recovery-codes', 'rec@sec.example']);
      assert.equal(first.codes.length, 10);
      assert.equal(new Set(first.codes).size, 10);
      const used = await verifyRpc(d, 'rec@sec.example', GB, first.codes[0]);
      assert.deepEqual([used.result, used.reason, used.recoveryCodesLeft], ['allow', 'recovery-code-used', 9]);
      const again = await verifyRpc(d, 'rec@sec.example', GB, first.codes[0]);
      assert.deepEqual([again.result, again.reason], ['deny', 'code-invalid']);
      // Case and dash do not matter, as on paper.
      const upper = await verifyRpc(d, 'rec@sec.example', GB, first.codes[1]!.toUpperCase().replace('-', ''));
      assert.equal(upper.reason, 'recovery-code-used');
      // A mailbox that never enrolled (provider email, no secret) can use one too.
      await d.json(['mailbox', 'set', 'mail@sec.example', '--challenge', 'always', '--provider', 'email', '--alt-email', 'm@home.example']);
      const mailCodes = await d.json<{ codes: string[] }>(['recovery-codes', 'mail@sec.example']);
      assert.equal((await verifyRpc(d, 'mail@sec.example', GB, mailCodes.codes[5])).reason, 'recovery-code-used');

      const second = await d.json<{ codes: string[] }>(['recovery-codes', 'rec@sec.example']);
      assert.equal((await verifyRpc(d, 'rec@sec.example', GB, first.codes[2])).reason, 'code-invalid');
      assert.equal((await verifyRpc(d, 'rec@sec.example', GB, second.codes[0])).reason, 'recovery-code-used');
      const store = await readFile(path.join(d.dataDir, 'memfa.json.journal'), 'utf8');
      for (const c of [...first.codes, ...second.codes]) assert.ok(!store.includes(c) && !store.includes(c.replace('-', '')), 'stored hashed only');
    });
  });

  it('audit log: every change and outcome, queryable, chained; tampering is found', async () => {
    await withDaemon({}, async (d) => {
      const key = await enrolled(d, 'aud@sec.example');
      await verifyRpc(d, 'aud@sec.example', GB, totpCode(key, Date.now(), TOTP));
      await verifyRpc(d, 'aud@sec.example', GB, wrongCode(key));
      const q = await d.json<{ entries: { action: string; result: string; reason: string | null; actor: string; ip: string | null; country: string | null }[] }>(['audit', '--mailbox', 'aud@sec.example']);
      const actions = q.entries.map((e) => `${e.action}:${e.result}`);
      assert.deepEqual(actions, ['mailbox.set:ok', 'enroll.start:pending', 'enroll.confirm:enrolled', 'verify:allow', 'verify:deny']);
      const denied = await d.json<{ entries: { reason: string; ip: string; country: string }[] }>(['audit', '--result', 'deny', '--since', '1h']);
      assert.deepEqual([denied.entries.at(-1)!.reason, denied.entries.at(-1)!.ip, denied.entries.at(-1)!.country], ['code-invalid', GB, 'GB']);
      // The fast path (no factor needed) is audited too.
      await verifyRpc(d, 'fast@sec.example', GB);
      await new Promise((r) => setTimeout(r, 100)); // its line is written without delaying the answer
      const fast = await d.json<{ entries: { result: string; reason: string }[] }>(['audit', '--mailbox', 'fast@sec.example']);
      assert.deepEqual(fast.entries.map((e) => `${e.result}:${e.reason}`), ['allow:mode-never']);
      const ok = await d.cli(['audit', 'verify']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /intact/);
      // Tamper: change a result in the middle of the file (changes and enrolments are kept in
      // the stream of security events, apart from the logins).
      const file = path.join(d.dataDir, 'audit-security.log');
      const text = await readFile(file, 'utf8');
      assert.ok(text.includes('"result":"enrolled"'));
      await writeFile(file, text.replace('"result":"enrolled"', '"result":"rejected"'));
      const bad = await d.cli(['--json', 'audit', 'verify']);
      assert.equal(bad.code, 65);
      const report = JSON.parse(bad.stdout) as { ok: boolean; line: number };
      assert.equal(report.ok, false);
      assert.ok(report.line > 0);
    });
  });

  it('key rotation re-encrypts every secret; verify still works; no secret in plain text on disk', async () => {
    await withDaemon({}, async (d) => {
      const keys = new Map<string, Buffer>();
      for (const m of ['k1', 'k2', 'k3']) keys.set(`${m}@sec.example`, await enrolled(d, `${m}@sec.example`));
      const before = JSON.parse(await readFile(path.join(d.dataDir, 'memfa.key'), 'utf8')) as { current: string };
      const r = await d.json<{ kid: string; resealed: number; retired: string[] }>(['key', 'rotate']);
      assert.notEqual(r.kid, before.current);
      assert.equal(r.resealed, 3);
      assert.deepEqual(r.retired, [before.current]);
      const after = JSON.parse(await readFile(path.join(d.dataDir, 'memfa.key'), 'utf8')) as { current: string; keys: Record<string, string> };
      assert.deepEqual(Object.keys(after.keys), [r.kid]);
      for (const [m, key] of keys) assert.equal((await verifyRpc(d, m, GB, totpCode(key, Date.now(), TOTP))).reason, 'code-valid');
      assert.equal(await d.stop(), 0);
      await d.restart();
      for (const [m, key] of keys) assert.equal((await verifyRpc(d, m, GB, totpCode(key, Date.now() + 30_000, TOTP))).reason, 'code-valid');
      // Neither the store nor the log holds a secret, in base32 or in hex.
      const disk = (await Promise.all((await readdir(d.dataDir)).filter((f) => f.startsWith('memfa.json') || f.startsWith('audit')).map((f) => readFile(path.join(d.dataDir, f), 'utf8')))).join('\n') + d.log();
      for (const key of keys.values()) {
        assert.ok(!disk.includes(key.toString('hex')));
        assert.ok(!disk.includes(toBase32(key)), 'base32 secret on disk or in the log');
        assert.ok(!disk.includes(key.toString('base64')));
      }
      for (const f of ['memfa.json', 'memfa.key', 'audit.log']) assert.equal((await stat(path.join(d.dataDir, f))).mode & 0o777, 0o600, f);
      assert.equal((await stat(d.dataDir)).mode & 0o777, 0o700);
    });
  });

  it('key add: the added key encrypts nothing until key rotate makes it current; a key file changed meanwhile is extended', async () => {
    await withDaemon({}, async (d) => {
      const keyFile = path.join(d.dataDir, 'memfa.key');
      const storeText = async () => (await Promise.all((await readdir(d.dataDir)).filter((f) => f.startsWith('memfa.json')).map((f) => readFile(path.join(d.dataDir, f), 'utf8')))).join('\n');
      const keys = new Map<string, Buffer>([['a1@sec.example', await enrolled(d, 'a1@sec.example')]]);
      const first = (JSON.parse(await readFile(keyFile, 'utf8')) as { current: string }).current;

      const added = await d.json<{ kid: string; current: string }>(['key', 'add']);
      assert.equal(added.current, first);
      assert.notEqual(added.kid, first);
      let file = JSON.parse(await readFile(keyFile, 'utf8')) as { current: string; keys: Record<string, string> };
      assert.equal(file.current, first);
      assert.deepEqual(Object.keys(file.keys), [first, added.kid]);
      // Secrets enrolled after the add are still encrypted with the current key.
      keys.set('a2@sec.example', await enrolled(d, 'a2@sec.example'));
      let store = await storeText();
      assert.ok(store.includes(`v1.${first}.`));
      assert.ok(!store.includes(`v1.${added.kid}.`), 'nothing is encrypted with the added key');
      const again = await d.cli(['key', 'add']);
      assert.equal(again.code, 65, again.stderr);
      assert.match(again.stderr, new RegExp(`key ${added.kid} was added and is not current yet`));

      const r = await d.json<{ kid: string; resealed: number; retired: string[] }>(['key', 'rotate']);
      assert.deepEqual(r, { kid: added.kid, resealed: 2, retired: [first] });
      store = await storeText();
      assert.ok(store.includes(`v1.${added.kid}.`));
      for (const [m, key] of keys) assert.equal((await verifyRpc(d, m, GB, totpCode(key, Date.now(), TOTP))).reason, 'code-valid');

      // The key file is rotated elsewhere (another host, or by hand) while the daemon runs: the
      // daemon's next change starts from that file instead of writing over it.
      const elsewhere = await Keyring.load(keyFile, { create: false });
      const third = await elsewhere.rotate();
      const next = await d.json<{ kid: string; current: string }>(['key', 'add']);
      assert.equal(next.current, third);
      file = JSON.parse(await readFile(keyFile, 'utf8')) as { current: string; keys: Record<string, string> };
      assert.equal(file.current, third);
      assert.deepEqual(Object.keys(file.keys), [added.kid, third, next.kid]);
      assert.match(d.log(), new RegExp(`"event":"key-file-reread".*"why":"before-write".*"current":"${third}"`));
      for (const [m, key] of keys) assert.equal((await verifyRpc(d, m, GB, totpCode(key, Date.now() + 30_000, TOTP))).reason, 'code-valid');
      const audit = await d.json<{ entries: { action: string; details?: { kid?: string } }[] }>(['audit', '--action', 'key.add']);
      assert.deepEqual(audit.entries.map((e) => e.details?.kid), [added.kid, next.kid]);
    });
  });

  it('refuses to start with a missing or foreign key file, or a store readable by others', async () => {
    await withDaemon({}, async (d) => {
      await enrolled(d, 'kf@sec.example');
      assert.equal(await d.stop(), 0);
      const keyFile = path.join(d.dataDir, 'memfa.key');
      const original = await readFile(keyFile);
      await rm(keyFile);
      let r = await d.cli(['daemon']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /memfa\.key/);
      // A key file from another installation cannot open these secrets.
      const other = await startDaemon();
      await other.stop();
      await writeFile(keyFile, await readFile(path.join(other.dataDir, 'memfa.key')), { mode: 0o600 });
      await other.cleanup();
      r = await d.cli(['daemon']);
      assert.equal(r.code, 78, r.stderr);
      assert.match(r.stderr, /cannot open the secrets/);
      await writeFile(keyFile, original, { mode: 0o600 });
      await chmod(path.join(d.dataDir, 'memfa.json'), 0o644);
      r = await d.cli(['daemon']);
      assert.equal(r.code, 78);
      assert.match(r.stderr, /memfa\.json is accessible by group or others/);
      await chmod(path.join(d.dataDir, 'memfa.json'), 0o600);
      await d.restart();
      assert.equal((await d.cli(['status'])).code, 0);
    });
  });

  it('full disk: writes answer exit 75 and change nothing, reads keep working, and writing resumes', async (t) => {
    const mnt = await makeTempDir('memfa-full-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { stdio: 'ignore' });
    } catch {
      await rm(mnt, { recursive: true, force: true });
      t.skip('mounting a small tmpfs needs root; full-disk behaviour is not exercised here');
      return;
    }
    try {
      const dir = path.join(mnt, 'm');
      await mkdir(dir);
      const d = await startDaemon({ dir, config: { audit: { maxBytes: 4096, keep: 1 } } });
      try {
        await d.json(['mailbox', 'set', 'full@sec.example', '--challenge', 'always']);
        // Fill the disk.
        const filler = path.join(mnt, 'filler');
        try {
          await writeFile(filler, Buffer.alloc(2 * 1024 * 1024));
        } catch {
          /* ENOSPC: the disk is full now */
        }
        // A write that still fits in the file's last page succeeds; keep writing until one needs space.
        let failed: string | null = null;
        for (let i = 0; i < 200 && failed === null; i++) {
          const w = await d.cli(['mailbox', 'set', `full${i}@sec.example`, '--challenge', 'never']);
          if (w.code === 75) {
            failed = `full${i}@sec.example`;
            assert.match(w.stderr, /could not be written|ENOSPC/);
          } else assert.equal(w.code, 0, w.stderr);
        }
        assert.ok(failed !== null, 'no write failed on a full disk');
        const notStored = await d.json<{ stored: boolean }>(['mailbox', 'show', failed]);
        assert.equal(notStored.stored, false, 'the failed write changed nothing');
        const shown = await d.json<{ effective: { challenge: { value: string } } }>(['mailbox', 'show', 'full@sec.example']);
        assert.equal(shown.effective.challenge.value, 'always', 'reads keep working');
        assert.equal((await d.cli(['verify', '--user', 'other@sec.example', '--ip', GB])).code, 0, 'the fast path keeps working');
        // Audit lines that cannot be written are counted, not dropped silently.
        type AuditCounts = { audit: { droppedLines: number } };
        let dropped = 0;
        for (let i = 0; i < 50 && dropped === 0; i++) {
          await Promise.all(Array.from({ length: 20 }, (_, j) => verifyRpc(d, 'other@sec.example', `198.51.100.${(i * 20 + j) % 250}`)));
          dropped = (await d.json<AuditCounts>(['status'])).audit.droppedLines;
        }
        assert.ok(dropped > 0, 'no audit line was lost on a full disk');
        assert.ok(d.log().includes('"event":"audit-write-failed"'));
        await rm(filler);
        const again = await d.cli(['mailbox', 'set', 'full@sec.example', '--challenge', 'never']);
        assert.equal(again.code, 0, again.stderr);
        // Once lines can be written again, the loss is on record in the chain.
        await new Promise((r) => setTimeout(r, 1100)); // a broken log retries at most once a second
        for (let i = 0; i < 3; i++) await verifyRpc(d, 'other@sec.example', `203.0.113.${i}`);
        // An answer whose line is awaited (enrol first): the lines before it are written too.
        await d.json(['mailbox', 'set', 'barrier@sec.example', '--challenge', 'always']);
        assert.equal((await verifyRpc(d, 'barrier@sec.example', GB)).result, 'enroll');
        const lost = await d.json<{ entries: { details?: { lines?: number } }[] }>(['audit', '--action', 'audit-lost']);
        assert.ok(lost.entries.length >= 1 && (lost.entries[0]!.details?.lines ?? 0) > 0, JSON.stringify(lost));
        await d.stop();
        await d.restart();
        const kept = await d.json<{ effective: { challenge: { value: string } } }>(['mailbox', 'show', 'full@sec.example']);
        assert.equal(kept.effective.challenge.value, 'never');
      } finally {
        await d.cleanup();
      }
    } finally {
      execFileSync('umount', [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it('kill -9 at any moment: every acknowledged write survives', async () => {
    const dir = await makeTempDir();
    const d = await startDaemon({ dir });
    try {
      const acknowledged: string[] = [];
      for (let round = 0; round < 4; round++) {
        let stop = false;
        const writers = Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; !stop; i++) {
            const address = `r${round}w${w}n${i}@crash.example`;
            try {
              await call(d.adminSocket, 'mailbox.set', { address, settings: { challenge: 'always' } }, { timeoutMs: 2000 });
              acknowledged.push(address);
            } catch (err) {
              if ((err as MemfaError).code !== 'DAEMON_UNAVAILABLE' && (err as MemfaError).code !== 'TIMEOUT') throw err;
              return;
            }
          }
        });
        await new Promise((r) => setTimeout(r, 150 + round * 70));
        d.proc.kill('SIGKILL');
        stop = true;
        await Promise.all(writers);
        await waitExit(d.proc);
        await d.restart();
        const listed = await call(d.adminSocket, 'mailbox.list', { domain: 'crash.example' }) as { total: number; mailboxes: { address: string }[] };
        const present = new Set((await call(d.adminSocket, 'mailbox.list', { domain: 'crash.example', limit: 100000 }) as { mailboxes: { address: string }[] }).mailboxes.map((m) => m.address));
        for (const a of acknowledged) assert.ok(present.has(a), `acknowledged write ${a} lost after kill -9 (round ${round})`);
        assert.ok(listed.total >= acknowledged.length);
      }
      assert.ok(acknowledged.length > 20, `only ${acknowledged.length} writes in the test`);
    } finally {
      await d.cleanup();
    }
  });
});
