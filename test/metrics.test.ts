// The metrics' parts without a daemon: the tallies and what prom-client renders of them, the
// gateway checks a scrape may start, the lock census and its bound, the listen address and its
// rules, and prom-client kept off the login path.
import { test } from 'node:test';
import { PerformanceObserver } from 'node:perf_hooks';
import assert from 'node:assert/strict';
import { validateConfig } from '../src/config/load.js';
import { isLoopback, parseListen } from '../src/config/listen.js';
import { DECISION_REASONS } from '../src/core/decide.js';
import { noFailures, type FailureState, type MailboxFailures } from '../src/core/model.js';
import type { CheckResult, OutgoingCode, Sender } from '../src/delivery/types.js';
import { GatewayWatch } from '../src/metrics/gateways.js';
import { createExposition } from '../src/metrics/registry.js';
import { DeliveryTally, KNOWN_LOGIN_CHECK_ANSWERS, KNOWN_VERIFY_ANSWERS, LoginCheckTally, VERIFY_LATENCY_BUCKETS, VerifyTally } from '../src/metrics/tally.js';
import { meteredLoginCheck, meteredVerify } from '../src/metrics/login-meter.js';
import { MemfaError } from '../src/protocol/errors.js';
import { SourceThrottle } from '../src/services/ip-throttle.js';
import { countLocks, LockCensus } from '../src/services/lock-census.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';
import { packagesReached } from './helpers/imports.js';
import { stubSources } from './helpers/metrics-sources.js';

/** One sample line of the text format: name, labels, value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function value(all: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return all.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length)?.value;
}

const failed = (over: Partial<FailureState>): FailureState => ({ consecutive: 5, lockedUntil: null, hardLocked: false, lastFailureAt: 0, ...over });

test('the known answers are reasons verify gives, and each exists from the start at 0', () => {
  const reasons = new Set<string>(DECISION_REASONS.map((r) => r.reason));
  for (const list of Object.values(KNOWN_VERIFY_ANSWERS)) for (const r of list) assert.ok(reasons.has(r), r);
  const counts = new VerifyTally().counts();
  for (const [result, list] of Object.entries(KNOWN_VERIFY_ANSWERS)) {
    for (const reason of list) assert.equal(counts.find((c) => c.result === result && c.reason === reason)?.count, 0, `${result} ${reason}`);
  }
});

test('VerifyTally counts answers by result and reason, and latency into cumulative buckets', () => {
  const t = new VerifyTally();
  t.answered('allow', 'known-ip', 0.0002);
  t.answered('allow', 'known-ip', 0.0004);
  t.answered('deny', 'code-invalid', 0.003);
  t.answered('error', 'store-failed', 20); // an answer not listed in advance, slower than every bucket
  const count = (result: string, reason: string) => t.counts().find((c) => c.result === result && c.reason === reason)?.count;
  assert.equal(count('allow', 'known-ip'), 2);
  assert.equal(count('deny', 'code-invalid'), 1);
  assert.equal(count('error', 'store-failed'), 1);
  assert.equal(count('allow', 'mode-never'), 0);
  const allow = t.latency().find((s) => s.result === 'allow')!;
  const at = (bound: number) => allow.cumulative[VERIFY_LATENCY_BUCKETS.indexOf(bound)];
  assert.deepEqual([at(0.0001), at(0.00025), at(0.0005), at(10)], [0, 1, 2, 2]);
  assert.equal(allow.count, 2);
  assert.ok(Math.abs(allow.sum - 0.0006) < 1e-12);
  const error = t.latency().find((s) => s.result === 'error')!;
  assert.deepEqual([error.cumulative.at(-1), error.count], [0, 1], 'above the last bound: only +Inf (the count) has it');
});

test('meteredVerify counts synchronous answers, promised ones and errors, each with its time', async () => {
  const t = new VerifyTally();
  let now = 0;
  const clock = () => now;
  const sync = meteredVerify((ms: number, _ctx: null) => ((now += ms), { result: 'allow' as const, reason: 'mode-never' }), t, clock);
  const later = meteredVerify(async (ms: number, _ctx: null) => ((now += ms), { result: 'challenge' as const, reason: 'always' }), t, clock);
  const throws = meteredVerify((ms: number, _ctx: null): { result: 'allow'; reason: string } => {
    now += ms;
    throw new MemfaError('INVALID_PARAMS', 'user: no');
  }, t, clock);
  const rejects = meteredVerify(async (ms: number, _ctx: null): Promise<{ result: 'allow'; reason: string }> => {
    now += ms;
    throw new MemfaError('DELIVERY_FAILED', 'gateway down');
  }, t, clock);
  assert.deepEqual(sync(0.3, null), { result: 'allow', reason: 'mode-never' }, 'the answer, not a promise');
  assert.equal((await later(3, null)).reason, 'always');
  assert.throws(() => throws(1, null), /user: no/);
  await assert.rejects(rejects(700, null) as Promise<unknown>, /gateway down/);
  const count = (result: string, reason: string) => t.counts().find((c) => c.result === result && c.reason === reason)?.count;
  assert.deepEqual([count('allow', 'mode-never'), count('challenge', 'always'), count('error', 'invalid-params'), count('error', 'delivery-failed')], [1, 1, 1, 1]);
  const sum = (result: string) => t.latency().find((s) => s.result === result)!.sum;
  assert.ok(Math.abs(sum('allow') - 0.0003) < 1e-9 && Math.abs(sum('challenge') - 0.003) < 1e-9 && Math.abs(sum('error') - 0.701) < 1e-9);
});

test('LoginCheckTally: answers by protocol, result and reason, every known one at 0 for every protocol; latency by result over all protocols', async () => {
  const t = new LoginCheckTally();
  for (const protocol of ['imap', 'pop3', 'smtp', 'sieve', 'dav']) {
    for (const [result, reasons] of Object.entries(KNOWN_LOGIN_CHECK_ANSWERS)) {
      for (const reason of reasons) assert.equal(t.counts().find((c) => c.protocol === protocol && c.result === result && c.reason === reason)?.count, 0, `${protocol} ${result} ${reason}`);
    }
  }
  assert.deepEqual(KNOWN_LOGIN_CHECK_ANSWERS.allow, ['app-password']);
  assert.ok(KNOWN_LOGIN_CHECK_ANSWERS.deny.includes('throttled') && KNOWN_LOGIN_CHECK_ANSWERS.continue.includes('known-location'));
  let now = 0;
  const clock = () => now;
  const check = meteredLoginCheck((p: { protocol: string; ms: number }, _ctx: null) => ((now += p.ms), { result: 'continue' as const, reason: 'mode-never' }), t, clock);
  const fails = meteredLoginCheck(async (p: { protocol: string; ms: number }, _ctx: null): Promise<{ result: 'deny'; reason: string }> => {
    now += p.ms;
    throw new MemfaError('STORE_FAILED', 'disk full');
  }, t, clock);
  assert.deepEqual(check({ protocol: 'imap', ms: 0.2 }, null), { result: 'continue', reason: 'mode-never' }, 'the answer, not a promise');
  check({ protocol: 'pop3', ms: 0.2 }, null);
  check({ protocol: 'imap', ms: 3 }, null);
  await assert.rejects(fails({ protocol: 'dav', ms: 1 }, null) as Promise<unknown>, /disk full/);
  const count = (protocol: string, result: string, reason: string) => t.counts().find((c) => c.protocol === protocol && c.result === result && c.reason === reason)?.count;
  assert.deepEqual([count('imap', 'continue', 'mode-never'), count('pop3', 'continue', 'mode-never'), count('dav', 'error', 'store-failed'), count('smtp', 'continue', 'mode-never')], [2, 1, 1, 0]);
  const cont = t.latency().find((s) => s.result === 'continue')!;
  const at = (bound: number) => cont.cumulative[VERIFY_LATENCY_BUCKETS.indexOf(bound)];
  assert.deepEqual([cont.count, at(0.00025), at(0.0025), at(0.005)], [3, 2, 2, 3], 'summed over imap and pop3');
  assert.ok(Math.abs(cont.sum - 0.0034) < 1e-9);
  assert.equal(t.latency().find((s) => s.result === 'error')!.count, 1);
  const text = (await createExposition(stubSources({ loginCheck: t })).render()).text;
  assert.equal(value(samples(text), 'memfa_login_check_answers_total', { protocol: 'imap', result: 'continue', reason: 'mode-never' }), 2);
  assert.equal(value(samples(text), 'memfa_login_check_duration_seconds_count', { result: 'continue' }), 3);
});

test('a metered answer allocates nothing but what its clock returns: no label object, string, promise or closure', async () => {
  // Counted in garbage collections, not time: 2,000,000 answers that each made one 16-byte
  // object would need a dozen or more scavenges; without any there are none or one.
  const answers = [{ result: 'allow' as const, reason: 'known-ip' }, { result: 'deny' as const, reason: 'code-invalid' }, { result: 'challenge' as const, reason: 'new-country' }];
  const loginAnswers = [{ result: 'continue' as const, reason: 'mode-never' }, { result: 'deny' as const, reason: 'throttled' }];
  let i = 0;
  const verify = meteredVerify((_p: null, _c: null) => answers[i++ % 3]!, new VerifyTally(), () => 0);
  const params = [{ protocol: 'imap' }, { protocol: 'smtp' }];
  const check = meteredLoginCheck((_p: { protocol: string }, _c: null) => loginAnswers[i++ % 2]!, new LoginCheckTally(), () => 0);
  const run = (n: number) => {
    for (let k = 0; k < n; k++) {
      verify(null, null);
      check(params[k & 1]!, null);
    }
  };
  run(100_000); // optimised before it is counted
  let collections = 0;
  const observer = new PerformanceObserver((list) => (collections += list.getEntries().length));
  observer.observe({ entryTypes: ['gc'] });
  await new Promise((r) => setTimeout(r, 20));
  collections = 0;
  run(1_000_000);
  await new Promise((r) => setTimeout(r, 50));
  observer.disconnect();
  assert.ok(collections <= 2, `${collections} garbage collections during 2,000,000 metered answers`);
});

test('the exposition renders every figure from its source, the histogram as the tally has it', async () => {
  const src = stubSources();
  src.verify.answered('allow', 'known-ip', 0.0003);
  src.verify.answered('allow', 'known-ip', 0.02);
  src.deliveries.delivered('sms', 'sent');
  src.deliveries.delivered('sms', 'failed');
  src.deliveries.delivered('sms', 'failed');
  const e = createExposition(src);
  const r = await e.render();
  assert.match(r.contentType, /^text\/plain; version=0\.0\.4/);
  const s = samples(r.text);
  assert.equal(value(s, 'memfa_build_info', { version: '9.9.9' }), 1);
  assert.equal(value(s, 'memfa_verify_answers_total', { result: 'allow', reason: 'known-ip' }), 2);
  assert.equal(value(s, 'memfa_verify_answers_total', { result: 'deny', reason: 'locked' }), 0);
  const h = 'memfa_verify_duration_seconds';
  assert.equal(value(s, `${h}_bucket`, { result: 'allow', le: '0.00025' }), 0);
  assert.equal(value(s, `${h}_bucket`, { result: 'allow', le: '0.0005' }), 1);
  assert.equal(value(s, `${h}_bucket`, { result: 'allow', le: '0.025' }), 2);
  assert.equal(value(s, `${h}_bucket`, { result: 'allow', le: '+Inf' }), 2);
  assert.equal(value(s, `${h}_count`, { result: 'allow' }), 2);
  assert.ok(Math.abs(value(s, `${h}_sum`, { result: 'allow' })! - 0.0203) < 1e-9);
  assert.equal(value(s, `${h}_count`, { result: 'deny' }), 0);
  assert.match(r.text, /# TYPE memfa_verify_duration_seconds histogram/);
  assert.equal(value(s, 'memfa_code_deliveries_total', { provider: 'sms', outcome: 'sent' }), 1);
  assert.equal(value(s, 'memfa_code_deliveries_total', { provider: 'sms', outcome: 'failed' }), 2);
  assert.equal(value(s, 'memfa_code_deliveries_total', { provider: 'email', outcome: 'sent' }), 0);
  assert.equal(value(s, 'memfa_locked_mailboxes', { reason: 'lockout' }), 3);
  assert.equal(value(s, 'memfa_locked_mailboxes', { reason: 'hard-lock' }), 1);
  assert.equal(value(s, 'memfa_blocked_sources'), 2);
  assert.deepEqual(['mailboxes', 'domains', 'snapshot_bytes', 'journal_bytes'].map((n) => value(s, `memfa_store_${n}`)), [7, 2, 1000, 200]);
  assert.equal(value(s, 'memfa_audit_failed_writes_total', { stream: 'security' }), 1);
  assert.equal(value(s, 'memfa_audit_lost_lines_total', { stream: 'security' }), 4);
  assert.equal(value(s, 'memfa_audit_gaps_total', { stream: 'logins' }), 2);
  assert.equal(value(s, 'memfa_connections', { socket: 'hook' }), 3);
  assert.equal(value(s, 'memfa_connections_waiting', { socket: 'hook' }), 1);
  assert.equal(value(s, 'memfa_connections_accepted_total', { socket: 'hook' }), 40);
  assert.deepEqual(['frame-timeout', 'evicted', 'turned-away'].map((reason) => value(s, 'memfa_connections_shed_total', { socket: 'hook', reason })), [1, 2, 5]);
  assert.ok(value(s, 'process_resident_memory_bytes')! > 0, 'process metrics');
  // Counters read their source again at each scrape, never adding to what was rendered before.
  src.verify.answered('allow', 'known-ip', 0.0003);
  const again = samples((await e.render()).text);
  assert.equal(value(again, 'memfa_verify_answers_total', { result: 'allow', reason: 'known-ip' }), 3);
  assert.equal(value(again, 'memfa_code_deliveries_total', { provider: 'sms', outcome: 'failed' }), 2);
  const families = e.families();
  assert.deepEqual(families.find((f) => f.name === 'memfa_verify_duration_seconds'), { name: 'memfa_verify_duration_seconds', type: 'histogram', labelNames: ['result'] });
  assert.deepEqual(families.find((f) => f.name === 'memfa_verify_answers_total'), { name: 'memfa_verify_answers_total', type: 'counter', labelNames: ['result', 'reason'] });
  assert.ok(families.some((f) => f.name === 'process_cpu_seconds_total'));
});

/** A sender whose checks are counted and answered as told. */
function fakeSender(provider: 'sms' | 'email', answer: () => CheckResult) {
  const sent: OutgoingCode[] = [];
  let checks = 0;
  let fail = false;
  const sender: Sender = {
    provider,
    transport: provider === 'sms' ? 'smpp' : 'smtp',
    async send(msg) {
      sent.push(msg);
      if (fail) throw new MemfaError('DELIVERY_FAILED', 'refused');
      return {};
    },
    async check() {
      checks++;
      return answer();
    },
    async close() {},
  };
  return { sender, sent, checks: () => checks, failSends: (f: boolean) => (fail = f) };
}

test('GatewayWatch: deliveries counted by outcome (codes only); a scrape re-checks a gateway at most once per interval', async () => {
  let now = 1_000_000;
  let up = true;
  const deliveries = new DeliveryTally(['sms', 'email']);
  const watch = new GatewayWatch(deliveries, () => now, 60_000);
  const fake = fakeSender('sms', () => (up ? { ok: true } : { ok: false, error: 'bind refused' }));
  const sms = watch.watch({ sms: fake.sender }).sms!;
  assert.equal(sms.transport, 'smpp');
  assert.deepEqual(watch.states(), [{ provider: 'sms', transport: 'smpp', up: null, checkedAt: null }], 'nothing known before a check');
  await new Promise((r) => setImmediate(r));
  assert.equal(fake.checks(), 1, 'a scrape that finds no check starts one');
  for (let i = 0; i < 50; i++) watch.states();
  assert.equal(fake.checks(), 1, 'scrapes within the interval reuse the last check');
  assert.deepEqual(watch.states()[0], { provider: 'sms', transport: 'smpp', up: true, checkedAt: 1_000_000 });
  up = false;
  now += 59_999;
  watch.states();
  assert.equal(fake.checks(), 1);
  now += 1;
  watch.states();
  watch.states();
  await new Promise((r) => setImmediate(r));
  assert.equal(fake.checks(), 2, 'one check when the last is a minute old, however many scrapes');
  assert.equal(watch.states()[0]!.up, false);
  // A check asked elsewhere (memfa status) is remembered too.
  up = true;
  assert.deepEqual(await sms.check(), { ok: true });
  assert.equal(watch.states()[0]!.up, true);

  await sms.send({ kind: 'code', to: '+447400123456', code: '123456', mailbox: 'a@example.org' });
  fake.failSends(true);
  await assert.rejects(sms.send({ kind: 'code', to: '+447400123456', code: '123456', mailbox: 'a@example.org' }), /refused/);
  await assert.rejects(sms.send({ kind: 'test', to: '+447400123456', mailbox: '' }), /refused/);
  fake.failSends(false);
  await sms.send({ kind: 'test', to: '+447400123456', mailbox: '' });
  assert.deepEqual(deliveries.all().filter((d) => d.provider === 'sms').map((d) => [d.outcome, d.count]), [['sent', 1], ['failed', 1]], 'test messages are not code deliveries');
  assert.equal(fake.sent.length, 4, 'every message went through');
});

test('countLocks: each locked mailbox once, a hard lock over a timed one, expired locks not at all', () => {
  const now = 1_000_000;
  const rec = (failures: MailboxFailures) => ({ failures });
  const records = [
    rec(noFailures()),
    rec({ known: failed({ lockedUntil: now + 1000 }), elsewhere: null }),
    rec({ known: failed({ lockedUntil: now + 1000 }), elsewhere: failed({ hardLocked: true }) }),
    rec({ known: null, elsewhere: failed({ lockedUntil: now }) }), // ends now: no longer locked
    rec({ known: null, elsewhere: failed({ lockedUntil: null, consecutive: 2 }) }),
  ];
  assert.deepEqual(countLocks(records, [failed({ lockedUntil: now + 5 }), failed({ lockedUntil: now - 5 })], now), { lockout: 2, hardLock: 1 });
});

test('LockCensus scans at most once per interval, however often it is asked', () => {
  let now = 5_000_000;
  let scans = 0;
  let locked = 1;
  const records = () => {
    scans++;
    return Array.from({ length: locked }, () => ({ failures: { known: failed({ lockedUntil: now + 3_600_000 }), elsewhere: null } }));
  };
  const config = validateConfig({}, '/x/memfa.json', {}, {});
  const state = new FileStatePorts(new MemoryStore());
  const census = new LockCensus(records, { states: () => state.unstoredFailureStates() }, new SourceThrottle(config, state), () => now, 30_000);
  assert.equal(census.counts().lockout, 1);
  locked = 4;
  for (let i = 0; i < 100; i++) census.counts();
  assert.equal(scans, 1);
  assert.equal(census.counts().lockout, 1, 'the count of the last scan');
  now += 30_000;
  assert.equal(census.counts().lockout, 4);
  assert.equal(scans, 2);
  assert.equal(census.counts().blockedSources, 0);
});

test('metrics.listen: loopback HOST:PORT or a socket path; anything else named, and the network only when meant', () => {
  assert.deepEqual(parseListen('127.0.0.1:9387'), { kind: 'tcp', host: '127.0.0.1', port: 9387 });
  assert.deepEqual(parseListen('[::1]:9387'), { kind: 'tcp', host: '::1', port: 9387 });
  assert.deepEqual(parseListen('/run/memfa/metrics.sock'), { kind: 'unix', path: '/run/memfa/metrics.sock' });
  assert.deepEqual(parseListen('./metrics.sock'), { kind: 'unix', path: './metrics.sock' });
  for (const bad of ['localhost:9387', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '::1:9387', '[127.0.0.1]:9387', '300.1.1.1:80', ':9387']) {
    assert.ok('problem' in parseListen(bad), bad);
  }
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.9.8.7') && isLoopback('::1'));
  assert.ok(!isLoopback('10.0.0.1') && !isLoopback('0.0.0.0') && !isLoopback('::') && !isLoopback('2001:db8::1'));

  const problems = (metrics: unknown) => {
    try {
      validateConfig({ runDir: '/run/memfa', metrics }, '/x/memfa.json', {}, {});
      return [];
    } catch (err) {
      return (err as MemfaError).data?.['errors'] as string[];
    }
  };
  assert.deepEqual(problems({ listen: '127.0.0.1:9387' }), []);
  assert.deepEqual(problems({ listen: null }), []);
  assert.deepEqual(problems({ listen: '0.0.0.0:9387' }), [
    'metrics.listen: 0.0.0.0 is not a loopback address (127.0.0.0/8, ::1), so the metrics would be open to the network; set metrics.allowNonLoopback to true if that is meant',
  ]);
  assert.deepEqual(problems({ listen: '0.0.0.0:9387', allowNonLoopback: true }), []);
  assert.match(problems({ listen: 'localhost:9387' })[0] ?? '', /^metrics\.listen: must be HOST:PORT/);
  assert.deepEqual(problems({ listen: '/run/memfa/hook.sock' }), ['metrics.listen: the same path as sockets.hook.path (/run/memfa/hook.sock); the metrics listener needs its own']);
  assert.deepEqual(problems({ listen: 42 }), ['metrics.listen: must be a string of 1 to 100 characters']);
  assert.deepEqual(problems({ allowNonLoopback: 'yes' }), ['metrics.allowNonLoopback: must be true or false']);
  const c = validateConfig({ runDir: '/run/memfa', metrics: { listen: './metrics.sock' } }, '/x/memfa.json', {}, {});
  assert.equal(c.metrics.listen, '/run/memfa/metrics.sock', 'a relative socket path is in the run directory');
});

test('prom-client is loaded by no login: not by memfa verify, not by the administrative commands; the daemon loads it', () => {
  assert.ok(!packagesReached('cli/verify.js', true).has('prom-client'), 'memfa verify, with everything it may import');
  assert.ok(!packagesReached('cli/program.js', false).has('prom-client'), 'memfa COMMAND, statically');
  assert.ok(packagesReached('daemon/main.js', false).has('prom-client'), 'the daemon at start');
});
