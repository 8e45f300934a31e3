// The client's connect: a refused connect (a full listen queue, a restarting daemon) is tried
// again briefly, and so is a request whose write failed with EPIPE; a missing socket (no daemon)
// fails at once, and a request that may have reached the daemon is never sent twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { call } from '../src/client/call.js';
import { MemfaError } from '../src/protocol/errors.js';
import { makeTempDir } from './helpers/daemon.js';

async function rejection(p: Promise<unknown>): Promise<MemfaError> {
  const err = await p.then(
    (v) => assert.fail(`expected a refusal, got ${JSON.stringify(v)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof MemfaError, String(err));
  return err;
}

/** Runs `fn` counting the connects the client makes; `onFirstError` runs when the first one fails. */
async function countingConnects(fn: () => Promise<void>, onFirstError?: (err: NodeJS.ErrnoException) => void): Promise<number> {
  const original = net.connect;
  let attempts = 0;
  (net as { connect: unknown }).connect = (...args: unknown[]) => {
    attempts++;
    const socket = (original as (...a: unknown[]) => net.Socket).apply(net, args);
    if (attempts === 1 && onFirstError) socket.once('error', onFirstError);
    return socket;
  };
  try {
    await fn();
  } finally {
    (net as { connect: unknown }).connect = original;
  }
  return attempts;
}

/** A socket file nobody listens on, as a killed daemon leaves it: connects get ECONNREFUSED. */
async function staleSocket(dir: string): Promise<string> {
  const file = path.join(dir, 'stale.sock');
  const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => console.log('up'))`, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  return file;
}

test('the client tries a refused connect (ECONNREFUSED) twice more, and a missing socket not at all', { skip: process.platform === 'win32' }, async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = await staleSocket(dir);

  // Refused every time: three connects, then DAEMON_UNAVAILABLE.
  const refusedAttempts = await countingConnects(async () => {
    const refused = await rejection(call(file, 'ping', {}));
    assert.equal(refused.code, 'DAEMON_UNAVAILABLE');
    assert.match(refused.message, /nothing is listening/);
  });
  assert.equal(refusedAttempts, 3);

  // A daemon that comes up while the client waits (here: right after the first refusal) is reached.
  let server: net.Server | undefined;
  t.after(() => server?.close());
  const attempts = await countingConnects(
    async () => assert.deepEqual(await call(file, 'ping', {}), { pong: true }),
    () => {
      unlinkSync(file);
      server = net.createServer((s) => s.end('{"jsonrpc":"2.0","id":1,"result":{"pong":true}}\n')).listen(file);
    },
  );
  assert.equal(attempts, 2);

  // No socket at all: no daemon, one connect, at once.
  const missingAttempts = await countingConnects(async () => {
    const missing = await rejection(call(path.join(dir, 'missing.sock'), 'ping', {}));
    assert.equal(missing.code, 'DAEMON_UNAVAILABLE');
    assert.match(missing.message, /no socket there/);
  });
  assert.equal(missingAttempts, 1);
});

/**
 * A server in a child process that closes each of its first `closeFirst` connections as soon as it
 * takes it, without reading, as the daemon does to an idle connection when it makes room at its
 * limit, and answers ping on the others. Prints "up" when it listens, "closed N" after each close.
 */
async function closingServer(file: string, closeFirst: number): Promise<{ child: ReturnType<typeof spawn>; closed: () => number }> {
  const source = `
    let n = 0;
    require('net').createServer((s) => {
      if (++n <= ${closeFirst}) { s.destroy(); console.log('closed ' + n); return; }
      s.on('data', () => s.end('{"jsonrpc":"2.0","id":1,"result":{"pong":true}}\\n'));
    }).listen(process.argv[1], () => console.log('up'));`;
  const child = spawn(process.execPath, ['-e', source, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  let closed = 0;
  let buffered = '';
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      closed = (buffered.match(/closed \d+/g) ?? []).length;
      if (buffered.includes('up')) resolve();
    }),
  );
  return { child, closed: () => closed };
}

/** Keeps this process's event loop from running for `ms`, as a busy machine may. */
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

test('a request whose one write fails with EPIPE (the daemon closed the connection first) is sent again', { skip: process.platform === 'win32' }, async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'closing.sock');
  const server = await closingServer(file, 1);
  t.after(() => server.child.kill('SIGKILL'));
  let firstError: string | undefined;
  const attempts = await countingConnects(
    async () => {
      const answer = call(file, 'ping', {});
      // The kernel completes the connect at once; the server takes and closes it while this
      // process is stalled, so the request's write comes after the close: EPIPE.
      stall(1500);
      assert.deepEqual(await answer, { pong: true });
    },
    (err) => (firstError = err.code),
  );
  assert.equal(firstError, 'EPIPE');
  assert.equal(attempts, 2, 'sent once more, on a new connection');
  assert.equal(server.closed(), 1);
});

test('a connection closed after the request may have reached the daemon is not tried again', { skip: process.platform === 'win32' }, async (t) => {
  // The server reads nothing and closes only after the request is written: the client cannot
  // know whether it was acted on, so it reports the failure rather than send a verify twice.
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'late.sock');
  const server = net.createServer((s) => setTimeout(() => s.destroy(), 200)).listen(file);
  t.after(() => server.close());
  await new Promise((r) => server.once('listening', r));
  const attempts = await countingConnects(async () => {
    const err = await rejection(call(file, 'ping', {}));
    assert.equal(err.code, 'DAEMON_UNAVAILABLE');
  });
  assert.equal(attempts, 1);
});
