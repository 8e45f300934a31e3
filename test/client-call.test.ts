// The client's connect: a refused connect (a full listen queue, a restarting daemon) is tried
// again briefly; a missing socket (no daemon) fails at once.
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
