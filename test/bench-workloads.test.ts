// The benchmark's TOTP workload must only send codes the daemon accepts: every unexpected answer
// fails a benchmark run. The daemon's rule is core/totp's checkTotp, so the workload is checked
// against it here, including on a real 6-digit collision between two adjacent steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { checkTotp, hotpCode, type TotpOptions } from '../src/core/totp.js';
import { totpWorkload } from '../bench/workloads.js';
import type { GenMailbox } from '../bench/store-gen.js';
import type { BenchRequest } from '../bench/load.js';

const TOTP: TotpOptions = { algorithm: 'SHA1', digits: 6, period: 30, window: 1 };
const RFC_KEY = Buffer.from('12345678901234567890', 'ascii');
// Found by search: with the RFC 4226 key, steps 59061240 and 59061241 (2026-02-24) share a code.
const COLLIDING_STEP = 59061240;

function mailbox(key: Buffer, n: number): GenMailbox {
  return { address: `u${n}@example.test`, key, ips: ['81.0.0.1'] };
}

function codeOf(req: BenchRequest): { user: string; code: string } {
  const msg = JSON.parse(req.line) as { params: { user: string; code: string } };
  return msg.params;
}

/** Stands in for the daemon: checkTotp with each mailbox's last accepted step. */
function daemon(pool: GenMailbox[]) {
  const keys = new Map(pool.map((m) => [m.address, m.key]));
  const lastAccepted = new Map<string, number | null>();
  return (req: BenchRequest, nowMs: number): string | null => {
    const { user, code } = codeOf(req);
    const r = checkTotp(keys.get(user)!, code, nowMs, TOTP, lastAccepted.get(user) ?? null);
    const answer = r.ok ? { result: 'allow', reason: 'code-valid' } : { result: 'deny', reason: r.reason };
    if (r.ok) lastAccepted.set(user, r.step);
    return req.check(answer);
  };
}

test('the fixture is a real collision', () => {
  assert.equal(hotpCode(RFC_KEY, COLLIDING_STEP, 6, 'SHA1'), hotpCode(RFC_KEY, COLLIDING_STEP + 1, 6, 'SHA1'));
  assert.notEqual(hotpCode(RFC_KEY, COLLIDING_STEP - 1, 6, 'SHA1'), hotpCode(RFC_KEY, COLLIDING_STEP, 6, 'SHA1'));
});

test('a code that also matches the next step moves the mailbox past it', () => {
  const pool = [mailbox(RFC_KEY, 0)];
  const now = COLLIDING_STEP * 30_000 + 1_000;
  const workload = totpWorkload(pool, true, 0, () => now);
  const check = daemon(pool);
  const sent: string[] = [];
  for (let req = workload.next(0); req !== null; req = workload.next(0)) {
    sent.push(codeOf(req).code);
    assert.equal(check(req, now), null, `request ${sent.length} was accepted`);
    req.done?.();
  }
  // The previous step, then the colliding one; the step it shares a code with is used up with it.
  assert.deepEqual(sent, [hotpCode(RFC_KEY, COLLIDING_STEP - 1, 6, 'SHA1'), hotpCode(RFC_KEY, COLLIDING_STEP, 6, 'SHA1')]);
  assert.equal(workload.stats.collisions, 1);
});

test('over many mailboxes and a moving clock, the daemon accepts every code the workload sends', () => {
  const pool = Array.from({ length: 300 }, (_, n) => mailbox(randomBytes(20), n));
  let now = COLLIDING_STEP * 30_000 - 45_000;
  const workload = totpWorkload(pool, false, 0, () => now);
  const check = daemon(pool);
  let sent = 0;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const end = now + 10 * 30_000;
  while (now < end) {
    const req = workload.next(0);
    if (req !== null) {
      sent++;
      // The daemon answers within a few seconds, possibly in the next step.
      assert.equal(check(req, now + Math.floor(random() * 4_000)), null, `request ${sent} was accepted`);
      req.done?.();
    }
    now += Math.floor(random() * 400);
  }
  assert.ok(sent > 1_000, `the workload sent codes (${sent})`);
});
