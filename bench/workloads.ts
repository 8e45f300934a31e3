// What the load client sends: the login fast path, TOTP code checks, and logins that record a new
// remembered address (durable writes).
import { hotpCode, type TotpOptions } from '../src/core/totp.js';
import type { BenchRequest, Workload } from './load.js';
import { ipFromCounter, NEW_IP_BASE, type GenMailbox } from './store-gen.js';

const TOTP: TotpOptions = { algorithm: 'SHA1', digits: 6, period: 30, window: 1 };
const PERIOD_MS = TOTP.period * 1000;

function verifyLine(params: Record<string, string>): string {
  return JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'verify', params });
}

function isAllow(result: unknown, reason?: string): string | null {
  const r = result as { result?: string; reason?: string } | null;
  if (r?.result === 'allow' && (reason === undefined || r.reason === reason)) return null;
  return `unexpected answer ${r?.result}/${r?.reason}`;
}

/**
 * The fast path: a known mailbox logging in from one of its remembered addresses (mode new-ip,
 * reason known-ip). Mailboxes are taken in a fixed pseudo-random order so that the whole store is
 * touched, not a hot few. `expect` null accepts any non-error answer (the echo baseline).
 */
export function allowWorkload(mailboxes: GenMailbox[], expect: 'known-ip' | null): Workload {
  const lines = mailboxes.map((m, i) => verifyLine({ user: m.address, ip: m.ips[i % m.ips.length]! }));
  const check = expect === null ? (r: unknown) => (r === null || r === undefined ? 'empty answer' : null) : (r: unknown) => isAllow(r, expect);
  let i = 0;
  const stride = 7919; // a prime: visits every index when lines.length is not a multiple of it
  const n = lines.length;
  const step = n % stride === 0 ? 1 : stride;
  return {
    next(): BenchRequest {
      i = (i + step) % n;
      return { line: lines[i]!, check };
    },
  };
}

/**
 * Every mailbox of `mailboxes` once, from a remembered address (answer allow/known-ip), then no
 * more: the first pass of a fast path, which fills a daemon's read cache (bench/pg-phase.ts warm).
 */
export function oncePass(mailboxes: GenMailbox[]): Workload {
  let i = 0;
  return {
    next(): BenchRequest | null {
      if (i >= mailboxes.length) return null;
      const m = mailboxes[i]!;
      const ip = m.ips[i % m.ips.length]!;
      i++;
      return { line: verifyLine({ user: m.address, ip }), check: (r) => isAllow(r, 'known-ip') };
    },
  };
}

export interface TotpWorkloadStats {
  /** Requests issued. */
  issued: number;
  /** Steps skipped because their code was the one last sent to the mailbox (see totpWorkload). */
  collisions: number;
}

/**
 * Verifies with a valid TOTP code. Each mailbox accepts a code only for a time step later than the
 * last one it accepted (replay protection), so the workload walks a pool of mailboxes and gives
 * each one the earliest step still acceptable: the previous step (only in the first 25 s of the
 * current one, far from the edge of the ±1 window), the current step, then the next. A mailbox is
 * never in flight twice. `newIp`: log in from an address never seen before, so that the daemon
 * records a new remembered address; otherwise from a known one (mode always).
 *
 * A 6-digit code of one step equals that of another step about once in a million. The daemon then
 * accepts the latest matching step of its window (so that the code cannot be replayed against the
 * later one), and sending that later step's code (the same digits) would be refused as reused.
 * So a step whose code is the one last sent for the mailbox, within the two steps after it that
 * the daemon's window may have reached, is skipped. Without this, a full run (~300,000 codes) met
 * a collision every other run. It costs no HMAC beyond the codes sent: the load client shares the
 * machine with the daemon. `clock` is for tests.
 */
export function totpWorkload(pool: GenMailbox[], newIp: boolean, ipOffset = 0, clock: () => number = Date.now): Workload & { stats: TotpWorkloadStats } {
  const n = pool.length;
  const nextStep = new Float64Array(n);
  const busy = new Uint8Array(n);
  const lastCode: string[] = new Array<string>(n).fill('');
  const lastStep = new Float64Array(n).fill(-Infinity);
  const codeOf = (i: number, step: number) => hotpCode(pool[i]!.key, step, TOTP.digits, TOTP.algorithm);
  let cursor = 0;
  let ipCounter = ipOffset;
  const stats = { issued: 0, collisions: 0 };
  return {
    stats,
    next(): BenchRequest | null {
      const now = clock();
      const current = Math.floor(now / PERIOD_MS);
      const lowest = now % PERIOD_MS <= 25_000 ? current - 1 : current;
      for (let tries = 0; tries < n; tries++) {
        const i = cursor;
        cursor = (cursor + 1) % n;
        if (busy[i] === 1) continue;
        let step = Math.max(nextStep[i]!, lowest);
        if (step > current + 1) continue;
        let code = codeOf(i, step);
        // The daemon answered the last code within a few seconds, so its window reached at most
        // two steps past the step that code was for.
        while (code === lastCode[i] && step - lastStep[i]! <= 2) {
          stats.collisions++;
          step++;
          if (step > current + 1) break;
          code = codeOf(i, step);
        }
        if (step > current + 1) {
          nextStep[i] = step;
          continue;
        }
        busy[i] = 1;
        nextStep[i] = step + 1;
        lastCode[i] = code;
        lastStep[i] = step;
        const m = pool[i]!;
        const ip = newIp ? ipFromCounter(NEW_IP_BASE, ipCounter++) : m.ips[0]!;
        stats.issued++;
        return {
          line: verifyLine({ user: m.address, ip, code }),
          check: (r) => isAllow(r, 'code-valid'),
          done: () => {
            busy[i] = 0;
          },
        };
      }
      return null;
    },
  };
}
