// Three daemons on one PostgreSQL acting as one (issue 16), end to end: the real daemons and
// bin/memfa, requests spread across the nodes. A TOTP code is accepted once across the farm,
// wrong codes anywhere add up to one lock seen everywhere, one SMS code and one cooldown hold
// across the nodes, a setting changed on one node is applied by the others within a second, and
// when the database restarts under a stream of writes nothing acknowledged is lost: verify fails
// closed meanwhile, and the nodes recover by themselves.
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { VerifyResult } from '../src/protocol/results.js';
import { startFarm, timesToApply, type Farm } from './helpers/farm.js';
import { postgresMissing } from './helpers/postgres.js';
import { waitFor } from './helpers/protocol-tools.js';
import { startSmppSink, type SmppSink } from './helpers/smpp-sink.js';
import { waitUntil } from './helpers/smtp-sink.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const THRESHOLD = 20;
const COOLDOWN_SECONDS = 30;
const PHONE = '+12015550189';
const missing = postgresMissing();

type Phase = 'before' | 'down' | 'after';
interface Write {
  address: string;
  node: number;
  via: 'cli' | 'socket';
  /** Whether the database was up, down or back when the write was started. */
  phase: Phase;
  acked: boolean;
  /** memfa's exit code (cli). */
  exit: number | null;
  /** The error's stable code, when refused. */
  error: string | null;
  output: string;
}

/** A distinct documentation address for request i: each is its own source for the per-IP throttle. */
const ipOf = (i: number) => `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const IP = ipOf(1500);

interface LockPart {
  locked: boolean;
  reason: string | null;
  failures: number;
}
type Shown = { stored: boolean; lock: LockPart & { known: LockPart; elsewhere: LockPart } };

function wrongCode(key: Buffer, now: number): string {
  const valid = new Set([-1, 0, 1].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

/** How many answers of each result/reason, and of each error code (error/CODE) for calls that failed. */
const tally = (answers: PromiseSettledResult<{ result: string; reason: string }>[]) => {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const k = a.status === 'fulfilled' ? `${a.value.result}/${a.value.reason}` : `error/${(a.reason as { code?: string }).code ?? String(a.reason)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

describe(`three daemons on one database, end to end${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let farm: Farm;
  let smpp: SmppSink;

  before(async () => {
    smpp = await startSmppSink();
    farm = await startFarm({
      config: {
        lockout: { threshold: THRESHOLD, baseDelaySeconds: 60 },
        providers: { sms: { enabled: true, transport: 'smpp' } },
        smpp: { host: '127.0.0.1', port: smpp.port, systemId: 'memfa', connectTimeoutMs: 2000, submitTimeoutMs: 2000, reconnectInitialMs: 50, reconnectMaxMs: 200 },
        codes: { cooldownSeconds: COOLDOWN_SECONDS, hourlyLimit: 5, ttlSeconds: 300 },
      },
    });
  });
  after(async () => {
    await farm?.stop();
    await smpp?.stop();
  });

  const verify = (i: number, user: string, ip: string, code?: string) => farm.call(i, 'hook', 'verify', code === undefined ? { user, ip } : { user, ip, code });
  /** `memfa mailbox show` on node i, through the CLI. */
  const show = (i: number, address: string) => farm.node(i).json<Shown>(['mailbox', 'show', address]);

  /** A mailbox with challenge always and an active TOTP secret, set on one node and enrolled on another. */
  async function enrolled(address: string): Promise<Buffer> {
    await farm.call(0, 'admin', 'mailbox.set', { address, settings: { challenge: 'always', provider: 'totp' } });
    const started = await farm.call(1, 'admin', 'enroll.start', { address });
    await farm.call(2, 'admin', 'enroll.confirm', { address, force: true });
    return fromBase32(started.secret);
  }

  it('200 concurrent verifications of one valid code spread over the three nodes: exactly one allowed', async () => {
    const user = 'one@farm.test';
    const key = await enrolled(user);
    const code = totpCode(key, Date.now(), TOTP);
    const answers = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => verify(i, user, ipOf(i), code)));
    const seen = tally(answers);
    // One success; the reuses are counted as failures until the lock, and refused as locked after.
    const want = { 'allow/code-valid': 1, 'deny/code-reused': THRESHOLD, 'deny/locked': 200 - 1 - THRESHOLD };
    if (!isDeepStrictEqual(seen, want)) assert.fail(`${JSON.stringify(seen)}, wanted ${JSON.stringify(want)}\n${await farm.logs()}`);
    for (let i = 0; i < 3; i++) {
      const shown = await show(i, user);
      if (shown.lock.elsewhere.failures !== THRESHOLD || !shown.lock.elsewhere.locked) assert.fail(`node ${i}: ${JSON.stringify(shown.lock)}\n${await farm.logs()}`);
    }
  });

  it('concurrent wrong codes across the nodes: the counter grows by exactly N, and past the limit every node refuses', async () => {
    const user = 'guess@farm.test';
    const key = await enrolled(user);
    assert.equal((await verify(0, user, ipOf(1000), wrongCode(key, Date.now()))).reason, 'code-invalid');
    const before = (await show(1, user)).lock.elsewhere.failures;
    assert.equal(before, 1);

    const n = THRESHOLD - 2;
    const wrong = await Promise.allSettled(Array.from({ length: n }, (_, i) => verify(i, user, ipOf(1010 + i), wrongCode(key, Date.now()))));
    assert.deepEqual(tally(wrong), { 'deny/code-invalid': n });
    for (let i = 0; i < 3; i++) {
      const shown = await show(i, user);
      assert.deepEqual([shown.lock.elsewhere.failures, shown.lock.locked], [before + n, false], `node ${i}: counter + ${n}, not locked yet: ${JSON.stringify(shown.lock)}`);
    }

    // One failure short of the limit: of 9 more at once, one is counted and locks, the others find it locked.
    const past = await Promise.allSettled(Array.from({ length: 9 }, (_, i) => verify(i, user, ipOf(1100 + i), wrongCode(key, Date.now()))));
    const seen = tally(past);
    if (!isDeepStrictEqual(seen, { 'deny/code-invalid': 1, 'deny/locked': 8 })) assert.fail(`${JSON.stringify(seen)}\n${await farm.logs()}`);
    for (let i = 0; i < 3; i++) {
      const shown = await show(i, user);
      assert.deepEqual([shown.lock.elsewhere.failures, shown.lock.elsewhere.locked, shown.lock.elsewhere.reason], [THRESHOLD, true, 'lockout'], `node ${i}: ${JSON.stringify(shown.lock)}`);
      // Even the right code is refused on every node, with the lock's remaining time.
      const right = await verify(i, user, ipOf(1200 + i), totpCode(key, Date.now(), TOTP));
      assert.equal(right.reason, 'locked', `node ${i}`);
      assert.ok(right.retryAfter !== undefined && right.retryAfter > 0 && right.retryAfter <= 60, `node ${i}: retryAfter ${right.retryAfter}`);
    }
  });

  it('one SMS code and one cooldown across the nodes', async (t) => {
    const user = 'sms@farm.test';
    const set = await farm.cli(['mailbox', 'set', user, '--challenge', 'always', '--provider', 'sms', '--phone', PHONE]);
    assert.equal(set.code, 0, `node ${set.node}: ${set.stderr}`);
    const sent = smpp.submitted.length;
    // Six challenges at once, two on each node: one claims the send slot and sends; each other one
    // answers with the code that one stored (not sent again), or, if it looked before that code
    // was stored, is refused by the cooldown. Never a second code.
    const settled = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => verify(i, user, ipOf(1300 + i))));
    const challenges = settled.filter((s): s is PromiseFulfilledResult<VerifyResult> => s.status === 'fulfilled').map((s) => s.value);
    const refusals = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as { code?: string; message: string });
    for (const r of refusals) assert.equal(r.code, 'RATE_LIMITED', r.message);
    for (const c of challenges) assert.deepEqual([c.result, c.provider, c.destination], ['challenge', 'sms', '+12******189']);
    t.diagnostic(`six challenges at once: ${challenges.length} answered with the code, ${refusals.length} refused by the cooldown`);
    const senders = challenges.filter((c) => c.sent === true);
    assert.equal(senders.length, 1, JSON.stringify(settled));
    const expiresAt = senders[0]!.expiresAt;
    for (const c of challenges) {
      assert.equal(c.expiresAt, expiresAt, 'the one open code');
      // Each wait is counted from the time its own challenge read, which may be a few ms before
      // the sender's claim: rounded up, one second more than the cooldown at most.
      if (c.sent !== true) assert.ok(c.retryAfter! > 0 && c.retryAfter! <= COOLDOWN_SECONDS + 1, `retryAfter ${c.retryAfter}`);
    }
    await waitUntil(() => smpp.submitted.length >= sent + 1, 3000, 'the SMS');
    const sms = smpp.submitted[sent]!;
    assert.equal(sms.destinationAddr, PHONE.slice(1));
    const code = /\b(\d{6})\b/.exec(sms.text)?.[1];
    assert.ok(code !== undefined, sms.text);

    // Later, on each node in turn, within the cooldown: the same code stands, nothing is sent.
    for (let i = 0; i < 3; i++) {
      const again = await verify(i, user, ipOf(1310 + i));
      assert.deepEqual([again.result, again.sent, again.expiresAt], ['challenge', false, expiresAt], `node ${i}`);
      assert.ok(again.retryAfter! > 0 && again.retryAfter! <= COOLDOWN_SECONDS, `node ${i}: retryAfter ${again.retryAfter}`);
    }
    // The code is accepted on a node that did not send it, once.
    const sender = settled.findIndex((s) => s.status === 'fulfilled' && s.value.sent === true);
    assert.deepEqual(await verify(sender + 1, user, ipOf(1320), code).then((a) => [a.result, a.reason]), ['allow', 'code-valid']);
    assert.equal((await verify(sender + 2, user, ipOf(1321), code)).reason, 'no-open-code');
    // No code open now, and the cooldown still runs: another node refuses to send, through the CLI.
    const r = await farm.node(sender + 2).cli(['--json', 'verify', '--user', user, '--ip', ipOf(1322)]);
    const refused = JSON.parse(r.stdout) as { error?: { code: string; message: string; retryAfter?: number } };
    assert.equal(r.code, 75, r.stdout + r.stderr);
    assert.equal(refused.error?.code, 'RATE_LIMITED');
    assert.match(refused.error!.message, /codes\.cooldownSeconds/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(smpp.submitted.length, sent + 1, 'exactly one SMS reached the gateway');
  });

  it('a setting changed on one node is applied by the others within one second: domain, global, provider policy', async (t) => {
    const user = 'prop@prop.test';
    // The mailbox inherits its challenge from the domain.
    const started = await farm.call(0, 'admin', 'enroll.start', { address: user });
    assert.ok(started.secret);
    await farm.call(0, 'admin', 'enroll.confirm', { address: user, force: true });
    // Each node has answered for the mailbox before: whatever it keeps, it keeps the old setting.
    for (let round = 0; round < 2; round++) for (let i = 0; i < 3; i++) assert.equal((await verify(i, user, ipOf(1400))).reason, 'mode-never');

    const set = await farm.node(0).cli(['domain', 'set', 'prop.test', '--challenge', 'always']);
    assert.equal(set.code, 0, set.stderr);
    const on = await timesToApply(farm, [1, 2], user, ipOf(1400), 'challenge');
    const reset = await farm.node(1).cli(['domain', 'set', 'prop.test', '--challenge', 'inherit']);
    assert.equal(reset.code, 0, reset.stderr);
    const off = await timesToApply(farm, [2, 0], user, ipOf(1400), 'allow');
    // The global settings, under the domain's: changed on node 2, applied by nodes 0 and 1.
    const global = await farm.node(2).cli(['global', 'set', '--challenge', 'always']);
    assert.equal(global.code, 0, global.stderr);
    const globalOn = await timesToApply(farm, [0, 1], user, ipOf(1400), 'challenge');
    const globalOff = await farm.node(2).cli(['global', 'set', '--challenge', 'inherit']);
    assert.equal(globalOff.code, 0, globalOff.stderr);
    const globalBack = await timesToApply(farm, [0, 1], user, ipOf(1400), 'allow');
    // The platform's provider policy: TOTP disabled on node 0, applied by nodes 1 and 2.
    await farm.call(1, 'admin', 'mailbox.set', { address: 'policy@prop.test', settings: { challenge: 'always', provider: 'totp' } });
    await farm.call(1, 'admin', 'enroll.start', { address: 'policy@prop.test' });
    await farm.call(1, 'admin', 'enroll.confirm', { address: 'policy@prop.test', force: true });
    for (let i = 0; i < 3; i++) assert.equal((await verify(i, 'policy@prop.test', ipOf(1400))).result, 'challenge');
    const disable = await farm.node(0).cli(['providers', 'disable', 'totp']);
    assert.equal(disable.code, 0, disable.stderr);
    const disabled = await timesToApply(farm, [1, 2], 'policy@prop.test', ipOf(1400), 'deny');
    assert.equal((await verify(1, 'policy@prop.test', ipOf(1400))).reason, 'provider-disabled');
    const enable = await farm.node(0).cli(['providers', 'enable', 'totp']);
    assert.equal(enable.code, 0, enable.stderr);
    const enabled = await timesToApply(farm, [1, 2], 'policy@prop.test', ipOf(1400), 'challenge');

    const figures = { domain: [...on, ...off], global: [...globalOn, ...globalBack], policy: [...disabled, ...enabled] };
    t.diagnostic(`applied after (ms): ${Object.entries(figures).map(([k, v]) => `${k} ${v.map(Math.round).join(', ')}`).join('; ')}`);
    for (const [what, times] of Object.entries(figures)) for (const ms of times) assert.ok(ms <= 1000, `${what}: applied ${Math.round(ms)} ms after the change`);
    // And each stays applied (no node goes back to what it had).
    for (let i = 0; i < 3; i++) assert.equal((await verify(i, user, ipOf(1400))).reason, 'mode-never', `node ${i}`);
    for (let i = 0; i < 3; i++) assert.equal((await verify(i, 'policy@prop.test', ipOf(1400))).result, 'challenge', `node ${i}`);
  });

  // Last: it stops the database under the others' feet.
  it('the database restarted during a stream of writes across the nodes: every acknowledged write is present, and the nodes recover by themselves', async (t) => {
    await farm.call(0, 'admin', 'mailbox.set', { address: 'totp@restart.test', settings: { challenge: 'always', provider: 'totp' } });
    const key = fromBase32((await farm.call(1, 'admin', 'enroll.start', { address: 'totp@restart.test' })).secret);
    await farm.call(2, 'admin', 'enroll.confirm', { address: 'totp@restart.test', force: true });
    const pids = farm.nodes.map((n) => n.proc.pid);

    let phase: Phase = 'before';
    let stopped = false;
    let seq = 0;
    const writes: Write[] = [];
    // On each node two writers: `memfa` run once per write, as an administrator's script would
    // run it (acknowledged: exit 0), and one straight to the admin socket, many more writes a
    // second (acknowledged: an answer that is not an error), so that some are in flight when the
    // server stops.
    const cliWriter = async (node: number) => {
      while (!stopped) {
        const address = `c${seq++}@restart.test`;
        const started = phase;
        const r = await farm.node(node).cli(['--json', 'mailbox', 'set', address, '--challenge', 'always']);
        const error = /"code":\s*"([A-Z_]+)"/.exec(r.stdout + r.stderr)?.[1] ?? null;
        writes.push({ address, node, via: 'cli', phase: started, acked: r.code === 0, exit: r.code, error, output: r.stdout + r.stderr });
      }
    };
    const socketWriter = async (node: number) => {
      while (!stopped) {
        const address = `s${seq++}@restart.test`;
        const started = phase;
        const w = await farm.call(node, 'admin', 'mailbox.set', { address, settings: { challenge: 'always' } }).then(
          () => ({ acked: true, error: null, output: '' }),
          (err: { code?: string; message?: string }) => ({ acked: false, error: err.code ?? null, output: String(err.message) }),
        );
        writes.push({ address, node, via: 'socket', phase: started, exit: null, ...w });
        // Not a busy loop while the database is down.
        if (!w.acked) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const writers = [0, 1, 2].flatMap((i) => [cliWriter(i), socketWriter(i)]);
    try {
      await waitFor(() => writes.filter((w) => w.acked && w.via === 'cli').length >= 3, 20_000, 'writes before the restart');
      await farm.cluster.pause();
      phase = 'down';
      // Down: a code cannot be checked, so verify fails closed on every node.
      for (let i = 0; i < 3; i++) {
        const r = await farm.node(i).cli(['--json', 'verify', '--user', 'totp@restart.test', '--ip', IP, '--code-stdin'], { stdin: totpCode(key, Date.now(), TOTP) });
        assert.equal(r.code, 75, `node ${i}, database down: verify exit ${r.code}\n${r.stdout}${r.stderr}\n${await farm.logs()}`);
      }
      await waitFor(() => writes.some((w) => w.phase === 'down' && w.via === 'cli' && !w.acked), 20_000, 'a write refused while the database is down');
      await farm.cluster.start();
      phase = 'after';
      const writing = (i: number, via: Write['via']) => writes.some((w) => w.phase === 'after' && w.node === i && w.via === via && w.acked);
      await waitFor(() => [0, 1, 2].every((i) => writing(i, 'cli') && writing(i, 'socket')), 20_000, 'every node writing again');
    } finally {
      stopped = true;
      await Promise.all(writers);
    }

    const failed = writes.filter((w) => !w.acked);
    const count = (f: (w: Write) => boolean) => writes.filter(f).length;
    t.diagnostic(
      `writes: ${writes.length} (${count((w) => w.via === 'cli')} through memfa), acknowledged ${writes.length - failed.length}, refused ${failed.length}; started while down: ${count((w) => w.phase === 'down')}`,
    );
    for (const w of failed) {
      assert.equal(w.error, 'STORE_FAILED', `a refused write says the store failed: ${w.address} on node ${w.node}: ${w.output}`);
      if (w.via === 'cli') assert.equal(w.exit, 75, `a refused write exits 75 (try again later): ${w.address} on node ${w.node}: ${w.output}`);
    }
    // Written before the database stopped, written after it came back: all of it on every node.
    const want = writes.filter((w) => w.acked).map((w) => w.address).sort();
    for (let i = 0; i < 3; i++) {
      const listed = await farm.call(i, 'admin', 'mailbox.list', { domain: 'restart.test' });
      assert.equal(listed.mailboxes.length, listed.total, 'the whole list');
      const found = new Map(listed.mailboxes.map((m) => [m.address, m.challenge]));
      const lost = want.filter((a) => found.get(a) !== 'always');
      assert.deepEqual(lost, [], `node ${i}: acknowledged writes missing after the restart (${listed.total} listed)`);
    }

    // The same processes, serving again: a code is accepted on each node (a later step each time),
    assert.deepEqual(farm.nodes.map((n) => [n.proc.pid, n.proc.exitCode]), pids.map((p) => [p, null]), 'no node restarted');
    for (let i = 0; i < 3; i++) {
      const a = await farm.call(i, 'hook', 'verify', { user: 'totp@restart.test', ip: IP, code: totpCode(key, Date.now() + (i - 1) * 30_000, TOTP) });
      assert.equal(a.reason, 'code-valid', `node ${i} after the restart: ${JSON.stringify(a)}`);
    }
    // and a setting changed on one node is applied by the others within a second, as before.
    await farm.call(0, 'admin', 'mailbox.set', { address: 'inherit@restart.test', settings: { provider: 'totp' } });
    await farm.call(0, 'admin', 'enroll.start', { address: 'inherit@restart.test' });
    await farm.call(0, 'admin', 'enroll.confirm', { address: 'inherit@restart.test', force: true });
    for (let i = 0; i < 3; i++) assert.equal((await farm.call(i, 'hook', 'verify', { user: 'inherit@restart.test', ip: IP })).reason, 'mode-never');
    const set = await farm.node(0).cli(['domain', 'set', 'restart.test', '--challenge', 'always']);
    assert.equal(set.code, 0, set.stderr);
    const ms = await timesToApply(farm, [1, 2], 'inherit@restart.test', IP, 'challenge');
    t.diagnostic(`a setting applied after the restart in (ms): ${ms.map(Math.round).join(', ')}`);
    for (const m of ms) assert.ok(m <= 1000, `applied ${Math.round(m)} ms after the change`);
  });
});
