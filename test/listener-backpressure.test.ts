// Peers that do not keep up, against the real daemon: a client that pipelines requests and never
// reads the answers must cost the daemon a bounded buffer (not its heap) while others are served,
// and a request dripped byte by byte must complete within limits.frameTimeoutMs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { rawExchange, rpcLine, startDaemon } from './helpers/daemon.js';
import { LineClient, assertStatusOk, waitFor } from './helpers/protocol-tools.js';

const LINUX = process.platform === 'linux';

function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.ok(kib !== undefined, 'VmRSS in /proc/PID/status');
  return Number(kib) / 1024;
}

/** A client that writes pipelined pings as fast as the socket takes them and never reads. */
function nonReader(socketPath: string) {
  const blob = Buffer.from(rpcLine('ping', {}, 1).repeat(1000));
  const socket = net.connect(socketPath);
  socket.pause(); // never read: answers pile up in the kernel, then in the daemon, unless it stops
  socket.on('error', () => undefined);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('connect', () => {
    const pump = () => {
      while (!socket.destroyed && socket.write(blob));
      if (!socket.destroyed) socket.once('drain', pump);
    };
    pump();
  });
  return {
    /** Bytes the daemon side has taken (what the kernel accepted; what waits in this process is not). */
    taken: () => socket.bytesWritten - socket.writableLength,
    closed: () => closed,
    destroy: () => socket.destroy(),
  };
}

test('clients that pipeline pings and never read: the daemon stops reading them, its memory stays bounded, others are served', { skip: !LINUX }, async (t) => {
  // Short idle time-out: a connection whose answers are not read makes no progress and must go.
  const d = await startDaemon({ config: { limits: { idleTimeoutMs: 3000 } } });
  t.after(() => d.cleanup());
  await assertStatusOk(d);
  const before = rssMiB(d.proc.pid!);
  const flooders = [nonReader(d.hookSocket), nonReader(d.adminSocket)];
  t.after(() => flooders.forEach((f) => f.destroy()));

  // While they flood, others are served: the real CLI's verify and a raw ping, several times.
  for (let round = 0; round < 4; round++) {
    await new Promise((r) => setTimeout(r, 500));
    const v = await d.cli(['verify', '--user', `alice${round}@example.org`, '--ip', '192.0.2.7']);
    assert.equal(v.code, 0, `verify during the flood: ${v.stderr}`);
    const ping = await rawExchange(d.hookSocket, [rpcLine('ping', {}, 'other')], { untilLines: 1, timeoutMs: 5000 });
    assert.equal(ping.lines[0]?.['id'], 'other', JSON.stringify(ping.lines));
  }
  const grown = rssMiB(d.proc.pid!) - before;
  const taken = flooders.map((f) => f.taken());
  t.diagnostic(`daemon RSS grew by ${grown.toFixed(1)} MiB; bytes taken from each flooder: ${taken.join(', ')}`);
  // What one stalled connection may hold: the kernel's socket buffers both ways, the daemon's
  // read and write buffers and the rest of one read. Unbounded, each took hundreds of MB here.
  for (const n of taken) assert.ok(n < 4 * 1024 * 1024, `the daemon stopped reading a client that does not read (${n} bytes taken)`);
  assert.ok(grown < 100, `daemon RSS grew by ${grown.toFixed(1)} MiB`);
  assert.equal(d.proc.exitCode, null, 'the daemon is still running');

  // Stalled, they make no progress: closed as idle (limits.idleTimeoutMs), not kept forever.
  await waitFor(() => flooders.every((f) => f.closed()), 15000, 'the daemon to close the stalled connections');
  await assertStatusOk(d);
});

test('a request must arrive whole within limits.frameTimeoutMs; bytes that complete none are not activity', async (t) => {
  // A long idle time-out, so that only the frame deadline can close the dripping connection.
  const d = await startDaemon({ config: { limits: { idleTimeoutMs: 600000, frameTimeoutMs: 1000 } } });
  t.after(() => d.cleanup());

  const drip = new LineClient(d.hookSocket);
  await drip.connected;
  await drip.write('{"jsonrpc":"2.0","id":"never","method":"ping","params":{"pad":"');
  // Then one byte every 50 ms, never a newline: bytes keep arriving, no request completes.
  const timer = setInterval(() => {
    if (!drip.closed) drip.socket.write('x');
  }, 50);
  t.after(() => clearInterval(timer));
  assert.equal(await drip.waitClosed(8000), true, 'the connection dripping one request is closed although bytes keep coming');
  assert.deepEqual(drip.lines, [], 'nothing was answered');

  // A request in pieces that completes in time is answered, on a connection that then carries on.
  const c = new LineClient(d.hookSocket);
  await c.connected;
  const line = rpcLine('ping', {}, 'pieces');
  for (const piece of [line.slice(0, 10), line.slice(10, 30), line.slice(30)]) {
    await c.write(piece);
    await new Promise((r) => setTimeout(r, 50));
  }
  const [answer] = await c.waitLines(1, 5000);
  assert.equal(answer?.['id'], 'pieces', JSON.stringify(answer));
  await c.write(rpcLine('ping', {}, 'next'));
  assert.equal((await c.waitLines(2, 5000))[1]?.['id'], 'next');
  c.destroy();
  await assertStatusOk(d);
});
