import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemfaError } from '../src/protocol/errors.js';
import { createLogSender, type LoggedMessage } from '../src/delivery/log.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function lines(file: string): Promise<LoggedMessage[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LoggedMessage);
}

test('appends one JSON line per message, code included, to a 0600 file', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'codes.jsonl');
  const sender = createLogSender('sms', { file });
  t.after(() => sender.close());
  assert.equal(sender.transport, 'log');
  assert.deepEqual(await sender.check(), { ok: true });

  const first = await sender.send({ kind: 'code', to: '+447700900789', code: '123456', mailbox: 'john@example.org', expiresAt: Date.UTC(2030, 0, 1, 9, 0) });
  await sender.send({ kind: 'test', to: '+447700900789', mailbox: 'john@example.org' });
  const logged = await lines(file);
  assert.equal(logged.length, 2);
  assert.equal(logged[0]?.messageId, first.messageId);
  assert.equal(logged[0]?.to, '+447700900789');
  assert.equal(logged[0]?.code, '123456');
  assert.equal(logged[0]?.text, 'memfa code 123456 for john@example.org. Valid until 09:00 UTC. Never share it.');
  assert.equal(logged[1]?.kind, 'test');
  assert.equal(logged[1]?.code, undefined);
  if (process.platform !== 'win32') assert.equal((await stat(file)).mode & 0o777, 0o600);
});

test('an existing file with a loose mode is tightened to 0600', { skip: process.platform === 'win32' }, async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'codes.jsonl');
  await writeFile(file, '', { mode: 0o644 });
  await chmod(file, 0o644);
  const sender = createLogSender('email', { file });
  t.after(() => sender.close());
  await sender.send({ kind: 'code', to: 'a@example.org', code: '42', mailbox: 'a@example.org' });
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.match((await lines(file))[0]?.text ?? '', /is: 42/);
});

test('an unwritable location fails the check and the send with DELIVERY_FAILED', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'missing-dir', 'codes.jsonl');
  const sender = createLogSender('sms', { file });
  t.after(() => sender.close());
  const check = await sender.check();
  assert.equal(check.ok, false);
  assert.match(check.ok ? '' : check.error, /not writable: ENOENT/);
  await assert.rejects(
    sender.send({ kind: 'code', to: '+447700900789', code: '987654', mailbox: 'x@example.org' }),
    (err: unknown) => err instanceof MemfaError && err.code === 'DELIVERY_FAILED' && !err.message.includes('987654'),
  );
});
