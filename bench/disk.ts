// Baseline for durable writes: how long one small append + fdatasync takes on the file system the
// daemon's data directory lives on, measured in the same run.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { quantile, Samples } from './stats.js';

export async function fsyncLatency(dir: string, durationMs: number): Promise<{ p50Ms: number; p99Ms: number; count: number }> {
  const file = path.join(dir, 'fsync-probe.bin');
  const handle = await open(file, 'a', 0o600);
  const line = Buffer.from('x'.repeat(600) + '\n');
  const samples = new Samples();
  try {
    const end = performance.now() + durationMs;
    while (performance.now() < end) {
      const t0 = performance.now();
      await handle.write(line);
      await handle.datasync();
      samples.push(performance.now() - t0);
    }
  } finally {
    await handle.close();
  }
  const v = samples.view();
  return { p50Ms: quantile(v, 0.5), p99Ms: quantile(v, 0.99), count: samples.length };
}
