// Hostile input against the real daemon and the real CLI: random bytes, huge strings, control
// characters, NUL, invalid UTF-8, prototype-pollution keys, deep nesting. Every answer must be a
// clear error, the daemon must stay up, and the store must not change.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { METHODS } from '../src/protocol/methods.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env['MEMFA_FUZZ_SEED'] ?? 20261129);

function hostileValue(rand: () => number, depth = 0): unknown {
  const pick = Math.floor(rand() * 12);
  switch (pick) {
    case 0:
      return 'x'.repeat(Math.floor(rand() * 70000));
    case 1:
      return 'a\u0000b@example.org';
    case 2:
      return '\u001b[31mred\u0007@evil.example';
    case 3:
      return '\ud800\udfff\ud800'; // lone surrogates
    case 4:
      return { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } };
    case 5:
      return JSON.parse('{"__proto__": {"polluted": 1}}');
    case 6:
      return Math.floor(rand() * 2 ** 60) * (rand() < 0.5 ? -1 : 1);
    case 7:
      return depth < 3 ? [hostileValue(rand, depth + 1), hostileValue(rand, depth + 1)] : null;
    case 8:
      return '../../etc/passwd';
    case 9:
      return rand() < 0.5 ? true : 1e308;
    case 10:
      return 'alice@example.org\r\nX-Injected: yes';
    default:
      return depth < 3 ? { user: hostileValue(rand, depth + 1), ip: hostileValue(rand, depth + 1), code: hostileValue(rand, depth + 1) } : '';
  }
}

function hostileFrame(rand: () => number): Buffer {
  const methods = Object.keys(METHODS);
  const kind = Math.floor(rand() * 8);
  switch (kind) {
    case 0: {
      const bytes = Buffer.alloc(1 + Math.floor(rand() * 512));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
      return Buffer.concat([bytes.filter((b) => b !== 0x0a), Buffer.from('\n')]);
    }
    case 1:
      return Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x7b, 0x0a]); // invalid UTF-8
    case 2:
      return Buffer.from('['.repeat(20000) + ']'.repeat(20000) + '\n');
    case 3: {
      // Nested deeper than the daemon accepts (32 levels).
      let deep: unknown = 1;
      for (let i = 0; i < 40; i++) deep = { k: deep };
      return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: methods[Math.floor(rand() * methods.length)], params: { settings: deep } }) + '\n');
    }
    case 4:
      return Buffer.from('{"jsonrpc":"2.0","id":1,"method":"verify","params":{"__proto__":{"polluted":true},"user":"a@b.example","ip":"1.2.3.4"}}\n');
    default: {
      const method = rand() < 0.9 ? methods[Math.floor(rand() * methods.length)] : 'x'.repeat(Math.floor(rand() * 3000));
      const params: Record<string, unknown> = {};
      const keys = ['user', 'ip', 'code', 'address', 'domain', 'settings', 'phone', 'altEmail', 'name', 'domains', 'provider', 'to', 'auth', '__proto__', 'constructor'];
      for (let i = 0; i < 1 + Math.floor(rand() * 4); i++) params[keys[Math.floor(rand() * keys.length)]!] = hostileValue(rand);
      return Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: Math.floor(rand() * 1000), method, params }) + '\n');
    }
  }
}

function exchange(socketPath: string, frames: Buffer[]): Promise<{ answers: Record<string, unknown>[]; bytes: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => s.destroy(), 5000);
    s.on('data', (d: Buffer) => (buf += d.toString()));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
    s.on('close', () => {
      clearTimeout(timer);
      const answers = buf
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ answers, bytes: buf.length });
    });
    s.on('connect', () => {
      for (const f of frames) s.write(f);
      setTimeout(() => s.end(), 300);
    });
  });
}

/** A journal line that only moves the audit log's anchors (store meta auditAnchor.*). */
function anchorOnly(line: string): boolean {
  const ops = (JSON.parse(line) as { o: [string, string, unknown][] }).o;
  return ops.every(([collection, key]) => collection === 'x' && key.startsWith('auditAnchor.'));
}

/**
 * The store's files, byte for byte, except the journal lines that move the audit log's anchors:
 * hostile requests are audited, so the audit head they move is anchored in the store; nothing
 * else may change.
 */
async function storeDigest(d: TestDaemon): Promise<string> {
  const h = createHash('sha256');
  h.update(await readFile(path.join(d.dataDir, 'memfa.json')).catch(() => Buffer.alloc(0)));
  const journal = await readFile(path.join(d.dataDir, 'memfa.json.journal'), 'utf8').catch(() => '');
  for (const line of journal.split('\n')) if (line !== '' && !anchorOnly(line)) h.update(line + '\n');
  return h.digest('hex');
}

describe('fuzzing the protocol and the CLI', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { limits: { idleTimeoutMs: 2000 } } });
    await d.json(['mailbox', 'set', 'keep@fuzz.example', '--challenge', 'always']);
  });
  after(() => d.cleanup());

  it(`answers hostile frames with JSON-RPC errors and changes nothing (seed ${SEED})`, async () => {
    const before = await storeDigest(d);
    const rand = prng(SEED);
    let answered = 0;
    for (let round = 0; round < 10; round++) {
      const frames = Array.from({ length: 40 }, () => hostileFrame(rand));
      for (const socket of [d.adminSocket, d.hookSocket, d.selfSocket]) {
        const { answers } = await exchange(socket, frames);
        for (const a of answers) {
          answered++;
          assert.equal(a['jsonrpc'], '2.0');
          const error = a['error'] as { code: number; message: string; data?: { code: string } } | undefined;
          // Nothing hostile may succeed in changing state; a harmless read (ping) may answer.
          if (error === undefined) continue;
          assert.ok(Number.isInteger(error.code) && error.code < 0, JSON.stringify(a));
          assert.equal(typeof error.message, 'string');
          assert.notEqual(error.data?.code, 'INTERNAL', `internal error for a hostile frame: ${JSON.stringify(a).slice(0, 300)}`);
          assert.ok(!/at .*\.js:\d+/.test(error.message), 'no stack trace in an answer');
        }
      }
    }
    assert.ok(answered > 300, `only ${answered} answers`);
    const status = await d.cli(['status']);
    assert.equal(status.code, 0, 'the daemon is still up');
    assert.equal(await storeDigest(d), before, 'the store did not change');
    const shown = await d.json<Record<string, unknown>>(['mailbox', 'show', 'keep@fuzz.example']);
    assert.ok(!('polluted' in shown) && !('polluted' in Object.prototype));
    assert.doesNotMatch(d.log(), /handler-crashed/);
  });

  it('answers hostile command lines with usage errors, never a crash', async () => {
    const before = await storeDigest(d);
    const rand = prng(SEED + 1);
    const hostile = () => {
      const v = hostileValue(rand);
      return typeof v === 'string' ? v.replace(/\u0000/g, '\\0').slice(0, 100000) : JSON.stringify(v) ?? 'null';
    };
    const templates: ((h: string) => string[])[] = [
      (h) => ['verify', '--user', h, '--ip', '1.2.3.4'],
      (h) => ['verify', '--user', 'a@b.example', '--ip', h],
      (h) => ['verify', '--user', 'a@b.example', '--ip', '1.2.3.4', '--code', h],
      (h) => ['mailbox', 'set', h, '--challenge', 'always'],
      (h) => ['mailbox', 'set', 'a@b.example', '--phone', h],
      (h) => ['mailbox', 'set', 'a@b.example', '--alt-email', h],
      (h) => ['domain', 'set', h, '--country-block', h],
      (h) => ['explain', 'a@b.example', '--ip', h],
      (h) => ['audit', '--since', h],
      (h) => ['admin', 'add', h, '--domain', h],
      (h) => [h],
      (h) => ['mailbox', h],
    ];
    for (let i = 0; i < 24; i++) {
      const args = templates[i % templates.length]!(hostile());
      const r = await d.cli(args);
      assert.ok([64, 65, 67, 77].includes(r.code ?? -1), `memfa ${args.map((a) => a.slice(0, 40)).join(' ')} exited ${r.code}: ${r.stderr.slice(0, 300)}`);
      assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/, 'no crash or stack trace');
    }
    const stdin = await d.cli(['verify', '--user', 'a@b.example', '--ip', '1.2.3.4', '--code-stdin'], { stdin: Buffer.alloc(5000, 0x41) });
    assert.equal(stdin.code, 64);
    assert.equal(await storeDigest(d), before, 'the store did not change');
  });
});
