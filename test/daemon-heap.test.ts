// The daemon's heap policy (src/daemon/heap.ts): the daemon applies it at start, V8 takes it into
// account when set at run time, and an operator's own value is left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { applyHeapPolicy, HEAP_GROWING_PERCENT } from '../src/daemon/heap.js';
import { createLogger } from '../src/daemon/logger.js';
import { startDaemon } from './helpers/daemon.js';
import { logEvents } from './helpers/protocol-tools.js';

function capture(): { log: ReturnType<typeof createLogger>; events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  return { log: createLogger('info', (line) => events.push(JSON.parse(line) as Record<string, unknown>)), events };
}

test('the policy sets --heap-growing-percent at run time and logs it', () => {
  const { log, events } = capture();
  const set: string[] = [];
  const value = applyHeapPolicy(log, { execArgv: ['--enable-source-maps'], setFlags: (f) => set.push(f) });
  assert.equal(value, String(HEAP_GROWING_PERCENT));
  assert.deepEqual(set, [`--heap-growing-percent=${HEAP_GROWING_PERCENT}`]);
  assert.equal(events.length, 1);
  assert.equal(events[0]!['event'], 'heap-policy');
  assert.equal(events[0]!['heapGrowingPercent'], String(HEAP_GROWING_PERCENT));
  assert.equal(events[0]!['setBy'], 'memfa');
});

test("an operator's own --heap-growing-percent is left alone", () => {
  for (const [execArgv, expected] of [
    [['--heap-growing-percent=80'], '80'],
    [['--heap_growing_percent=20', '--trace-warnings'], '20'],
    [['--heap-growing-percent', '30'], 'given'],
  ] as const) {
    const { log, events } = capture();
    const set: string[] = [];
    assert.equal(applyHeapPolicy(log, { execArgv, setFlags: (f) => set.push(f) }), expected);
    assert.deepEqual(set, [], `nothing set for ${execArgv.join(' ')}`);
    assert.equal(events[0]!['setBy'], 'node-option');
  }
});

test('set at run time, the flag changes the limit V8 computes after a full GC', () => {
  // --trace-gc-verbose prints, after each full GC, "[HeapController] Limit: old size: …, new limit:
  // … (factor)": the factor must be the policy's.
  const heapModule = new URL('../src/daemon/heap.js', import.meta.url).href;
  const script = `
    import v8 from 'node:v8';
    import { applyHeapPolicy } from ${JSON.stringify(heapModule)};
    applyHeapPolicy({ debug() {}, info() {}, warn() {}, error() {} });
    v8.setFlagsFromString('--trace-gc-verbose');
    const keep = [];
    for (let i = 0; i < 200000; i++) keep.push({ i });
    globalThis.gc();
    console.log('kept', keep.length);
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const limits = r.stdout.split('\n').filter((l) => /\[HeapController\] Limit:/.test(l));
  assert.ok(limits.length > 0, `V8 printed no limit line:\n${r.stdout.slice(0, 2000)}`);
  const factor = (1 + HEAP_GROWING_PERCENT / 100).toFixed(1);
  for (const l of limits) assert.ok(l.trimEnd().endsWith(`(${factor})`), `limit computed with factor ${factor}: ${l}`);
});

test('the daemon applies the policy at start', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const policy = logEvents(d.log()).filter((e) => e['event'] === 'heap-policy');
  assert.equal(policy.length, 1, d.log());
  assert.equal(policy[0]!['setBy'], 'memfa');
  assert.equal(policy[0]!['heapGrowingPercent'], String(HEAP_GROWING_PERCENT));
  // Before the store is opened: the store's load is the first large allocation.
  const events = logEvents(d.log()).map((e) => e['event']);
  assert.ok(events.indexOf('heap-policy') < events.indexOf('ready'));
});
