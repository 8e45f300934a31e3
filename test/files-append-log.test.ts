// Unit tests of the durable append log the store's journal and the audit streams share: group
// commit, the cut-back of a failed write, and reading lines back with a torn tail, on real files.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { AppendLog, openForAppend, readLinePieces, readLines, readTail, type Batch } from '../src/files/append-log.js';
import { makeTempDir } from './helpers/daemon.js';

async function tempFile(t: TestContext): Promise<string> {
  const dir = await makeTempDir('memfa-alog-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'log');
}

/** A handle whose writes, syncs and truncates fail on demand, or wait for a gate; counts what reaches the file. */
class FaultyHandle {
  writes = 0;
  failWrites = 0;
  /** Bytes of the next failing write that reach the file first (a short write). */
  partialBytes = 0;
  failSyncs = 0;
  failTruncates = 0;
  /** While set, datasync waits for it: a write in flight. */
  gate: Promise<void> | null = null;
  handle!: FileHandle;

  async open(file: string): Promise<FileHandle> {
    const real = await openForAppend(file);
    this.handle = real;
    const self = this;
    return new Proxy(real, {
      get(target, prop) {
        if (prop === 'write') {
          return async (data: Buffer, offset = 0, length = data.length - offset) => {
            if (self.failWrites > 0) {
              self.failWrites--;
              if (self.partialBytes > 0) await target.write(data, offset, self.partialBytes);
              throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
            }
            self.writes++;
            return target.write(data, offset, length);
          };
        }
        if (prop === 'datasync') {
          return async () => {
            if (self.gate !== null) await self.gate;
            if (self.failSyncs > 0) {
              self.failSyncs--;
              throw Object.assign(new Error('input/output error'), { code: 'EIO' });
            }
            return target.datasync();
          };
        }
        if (prop === 'truncate') {
          return async (length: number) => {
            if (self.failTruncates > 0) {
              self.failTruncates--;
              throw Object.assign(new Error('input/output error'), { code: 'EIO' });
            }
            return target.truncate(length);
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
}

/** A log of text lines whose batches are written whole; each caller gets its line's number in the file. */
function lineLog(handle: FileHandle, length = 0, batches: number[] = []): AppendLog<string, number> {
  let lines = 0;
  const log: AppendLog<string, number> = new AppendLog<string, number>(handle, length, {
    writeBatch: async (batch: Batch<string, number>) => {
      batches.push(batch.items.length);
      await log.write(Buffer.from(batch.items.map((l) => l + '\n').join('')));
      const first = lines;
      lines += batch.items.length;
      batch.done(batch.items.length, (_line, i) => first + i + 1);
    },
  });
  return log;
}

test('group commit: 100 appends at once are all durable, in issue order, in far fewer writes; each caller gets its own result', async (t) => {
  const file = await tempFile(t);
  const faulty = new FaultyHandle();
  const batches: number[] = [];
  const log = lineLog(await faulty.open(file), 0, batches);
  t.after(() => log.close());
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(`line ${i}`)));
  assert.deepEqual(results, Array.from({ length: 100 }, (_, i) => i + 1));
  assert.ok(faulty.writes < 10, `${faulty.writes} writes for 100 appends`);
  assert.equal(batches.reduce((a, b) => a + b, 0), 100);
  assert.deepEqual((await readFile(file, 'utf8')).split('\n').slice(0, -1), Array.from({ length: 100 }, (_, i) => `line ${i}`));
  assert.equal(log.length, (await stat(file)).size);
});

test('group commit: appends issued while a write is in flight go out together as the next batch', async (t) => {
  const file = await tempFile(t);
  const faulty = new FaultyHandle();
  const batches: number[] = [];
  const log = lineLog(await faulty.open(file), 0, batches);
  t.after(() => log.close());
  let release!: () => void;
  faulty.gate = new Promise((r) => (release = r));
  const first = log.append('first');
  await new Promise((r) => setImmediate(r)); // the first batch is now waiting in its fdatasync
  const more = Array.from({ length: 50 }, (_, i) => log.append(`queued ${i}`));
  log.record('recorded, nobody waits');
  assert.equal(log.queued.length, 51, 'queued behind the write in flight');
  faulty.gate = null;
  release();
  await Promise.all([first, ...more]);
  await log.idle();
  assert.deepEqual(batches, [1, 51]);
  assert.equal(faulty.writes, 2);
  assert.equal((await readFile(file, 'utf8')).split('\n').length - 1, 52);
});

test('a failed write rejects its callers and is cut back to the last good length; the next write lands on a line boundary', async (t) => {
  const file = await tempFile(t);
  const faulty = new FaultyHandle();
  const log = lineLog(await faulty.open(file));
  t.after(() => log.close());
  await log.append('good');
  const good = (await stat(file)).size;

  // Two appends queued behind a third in flight go out together, and that write fails.
  let release!: () => void;
  faulty.gate = new Promise((r) => (release = r));
  const inFlight = log.append('in flight');
  await new Promise((r) => setImmediate(r));
  const failed = Promise.allSettled([log.append('lost 1'), log.append('lost 2')]);
  faulty.failWrites = 1;
  faulty.partialBytes = 3; // a short write leaves part of a line in the file
  faulty.gate = null;
  release();
  assert.equal(await inFlight, 2);
  assert.deepEqual(
    (await failed).map((r) => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code),
    ['ENOSPC', 'ENOSPC'],
  );
  await log.idle();
  assert.equal((await stat(file)).size, good + 'in flight\n'.length, 'cut back at once');
  assert.equal(log.length, good + 'in flight\n'.length);
  assert.equal(log.suspect, false);

  // A write whose fdatasync fails, and whose cut-back fails too: cut back before the next write.
  faulty.failSyncs = 1;
  faulty.failTruncates = 1;
  await assert.rejects(log.append('synced badly'), (err: NodeJS.ErrnoException) => err.code === 'EIO');
  assert.equal(log.suspect, true, 'the failed bytes are still there');
  assert.ok((await stat(file)).size > log.length);
  assert.equal(await log.append('after'), 3);
  assert.equal(log.suspect, false);
  assert.equal(await readFile(file, 'utf8'), 'good\nin flight\nafter\n', 'nothing of the failed batches is left');

  // A cut-back that keeps failing fails the next write, which writes nothing.
  faulty.failWrites = 1;
  faulty.partialBytes = 2;
  faulty.failTruncates = 2;
  await assert.rejects(log.append('fails'), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  const writes = faulty.writes;
  await assert.rejects(log.append('cannot be cut back first'), (err: NodeJS.ErrnoException) => err.code === 'EIO');
  assert.equal(faulty.writes, writes, 'no bytes were appended after the torn ones');
  assert.equal(await log.append('recovered'), 4);
  assert.equal(await readFile(file, 'utf8'), 'good\nin flight\nafter\nrecovered\n');
});

test('a batch writer that throws fails every caller not told yet; one that forgets a caller does not leave it waiting', async (t) => {
  const file = await tempFile(t);
  const handle = await openForAppend(file);
  let forget = false;
  const log: AppendLog<string, string> = new AppendLog<string, string>(handle, 0, {
    writeBatch: async (batch) => {
      if (forget) return;
      // The first item of each batch is written and told; a batch of more then fails.
      await log.write(Buffer.from(batch.items[0]! + '\n'));
      batch.done(1, (item) => item);
      if (batch.items.length > 1) throw new Error('second half failed');
    },
  });
  t.after(() => log.close());
  // 'a' starts a batch of its own; 'b', 'c' and 'd' are queued behind it and go out together.
  const results = await Promise.allSettled(['a', 'b', 'c', 'd'].map((item) => log.append(item)));
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['a', 'b', 'second half failed', 'second half failed'],
  );
  forget = true;
  await assert.rejects(log.append('e'), /settled no outcome/);
});

test('failQueued rejects what waits behind the batch in flight and hands it back, oldest first', async (t) => {
  const file = await tempFile(t);
  const handle = await openForAppend(file);
  let failedBehind: string[] = [];
  const log: AppendLog<string> = new AppendLog<string>(handle, 0, {
    writeBatch: async (batch) => {
      await new Promise((r) => setImmediate(r)); // the others are queued meanwhile
      failedBehind = log.failQueued(new Error('given up'));
      throw new Error('batch failed');
    },
  });
  t.after(() => log.close());
  const first = log.append('first');
  const behind = ['x', 'y'].map((item) => log.append(item));
  await assert.rejects(first, /batch failed/);
  for (const p of behind) await assert.rejects(p, /given up/);
  assert.deepEqual(failedBehind, ['x', 'y']);
});

test('reading back: lines across piece edges with their offsets, a torn last line marked, the tail found from the end', async (t) => {
  const file = await tempFile(t);
  const written = ['', 'short', 'x'.repeat(300), 'é'.repeat(100), 'last'];
  const torn = '{"torn';
  await writeFile(file, written.join('\n') + '\n' + torn);
  const handle = await open(file, 'r');
  t.after(() => handle.close());
  const size = (await handle.stat()).size;
  const expectedStarts = written.map((_, i) => Buffer.byteLength(written.slice(0, i).map((l) => l + '\n').join('')));
  for (const pieceBytes of [7, 64, 1024 * 1024]) {
    const lines = [];
    for await (const line of readLines(handle, size, pieceBytes)) lines.push(line);
    assert.deepEqual(
      lines.map((l) => [l.bytes.toString('utf8'), l.start, l.terminated]),
      [...written.map((l, i) => [l, expectedStarts[i], true]), [torn, size - torn.length, false]],
      `pieces of ${pieceBytes} bytes`,
    );
    let pieces = 0;
    for await (const piece of readLinePieces(handle, size, pieceBytes)) pieces += piece.length > 0 ? 1 : 0;
    assert.ok(pieceBytes < size ? pieces > 1 : pieces <= 2, `${pieces} pieces of ${pieceBytes} bytes`);
  }
  assert.deepEqual(await readTail(handle, size, 16), { end: size - torn.length, lastLine: Buffer.from('last') });
  // A file that ends on a newline has no torn tail; one without any newline is all torn.
  assert.equal((await readTail(handle, size - torn.length)).end, size - torn.length);
  await writeFile(file + '.torn', torn);
  const tornOnly = await open(file + '.torn', 'r');
  t.after(() => tornOnly.close());
  assert.deepEqual(await readTail(tornOnly, torn.length), { end: 0, lastLine: null });
});
