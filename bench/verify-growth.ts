// What `verify` for made-up addresses costs the store and the daemon's memory (issue 12, item 9).
//
//   npm run build && node dist/bench/verify-growth.js [N [mixed|ask|fail]]   (default 100000 mixed)
//
// Starts a daemon on a temporary directory (challenge always everywhere, enrolment TTL 600 s, the
// test clock), sends N verify calls for random addresses, each from an address of its own: a third
// only ask (an enrolment offer), a third give a wrong 6-digit code, a third a wrong recovery code.
// Prints the store on disk (snapshot and journals), the mailbox count of `status` and the daemon's
// RSS before, after, and after the clock is moved past the TTL and the lockout window. Not part of
// `npm run bench` or the test suite: it takes about a minute and a half on two cores.
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { call } from '../src/client/call.js';
import { makeTempDir, startDaemon, type TestDaemon } from '../test/helpers/daemon.js';

const N = Number(process.argv[2] ?? 100_000);
/** mixed (the default), ask (no code), fail (a wrong recovery code each). */
const MODE = process.argv[3] ?? 'mixed';
const WIDTH = 64;

async function storeBytes(d: TestDaemon): Promise<number> {
  let total = 0;
  for (const f of await readdir(d.dataDir)) if (f.startsWith('memfa.json')) total += (await stat(path.join(d.dataDir, f))).size;
  return total;
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
}

async function measure(d: TestDaemon, label: string): Promise<void> {
  // With NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 the daemon writes a heap snapshot (after a full
  // GC) into the working directory: what is live, where RSS also counts garbage not yet collected.
  if (process.env['MEMFA_GROWTH_HEAP_SNAPSHOTS'] === '1') {
    process.kill(d.proc.pid!, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 5000));
  }
  const status = (await call(d.adminSocket, 'status', {})) as { mailboxes: number };
  console.log(`${label.padEnd(28)} store ${await storeBytes(d)} bytes, ${status.mailboxes} mailboxes, RSS ${(await rssMb(d.proc.pid!)).toFixed(1)} MB`);
}

async function main(): Promise<void> {
  const dir = await makeTempDir('memfa-growth-');
  const clockFile = path.join(dir, 'clock');
  await writeFile(clockFile, '0');
  const d = await startDaemon({ dir, config: { defaults: { challenge: 'always' }, totp: { enrolmentTtlSeconds: 600 } }, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
  try {
    await measure(d, 'start');
    const answers = new Map<string, number>();
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WIDTH }, async () => {
        while (next < N) {
          const i = next++;
          const user = `r${i}-${Math.random().toString(36).slice(2, 10)}@growth${i % 97}.example`;
          const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
          const kind = MODE === 'ask' ? 0 : MODE === 'fail' ? 2 : i % 3;
          const code = kind === 0 ? undefined : kind === 1 ? '000000' : 'abcde-fghjk';
          const r = (await call(d.hookSocket, 'verify', code === undefined ? { user, ip } : { user, ip, code })) as { reason: string };
          answers.set(r.reason, (answers.get(r.reason) ?? 0) + 1);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    console.log(`${N} verify calls in ${seconds.toFixed(1)} s: ${JSON.stringify(Object.fromEntries(answers))}`);
    await measure(d, `after ${N} addresses`);
    await writeFile(clockFile, String(2 * 3600 * 1000));
    // One more failure sweeps the failures kept in memory that are past the lockout window.
    await call(d.hookSocket, 'verify', { user: 'sweep@growth.example', ip: '192.0.2.1', code: 'abcde-fghjk' });
    await measure(d, 'after the TTL and window');
  } finally {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
