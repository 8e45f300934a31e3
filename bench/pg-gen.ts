// Generates a memfa store in the benchmark's PostgreSQL, before the daemons start: the same
// mailboxes as store-gen.ts writes for the file store (an active TOTP secret sealed with memfa's
// own keyring module under a key file made by it, two remembered addresses, one country), as the
// rows src/store/postgres/rows.ts reads, loaded with COPY through psql: one pg_dump-style script on
// psql's standard input, so no COPY client library is needed. A million mailboxes (four million
// rows) load in well under a minute.
//
// The TOTP keys are derived from a random seed and the mailbox's number (pg-gen-rows.ts), so that
// the load client computes the key of any mailbox it picks, without holding a million of them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Keyring } from '../src/security/keyring.js';
import { track } from './cleanup.js';
import type { BenchPg } from './pg.js';
import type { ChunkRequest } from './pg-gen-worker.js';
import { addressOf, totpKey } from './pg-gen-rows.js';
import { ipFromCounter, KNOWN_IP_BASE, type GenMailbox, type MailboxGroup } from './store-gen.js';

export interface PgGroup {
  count: number;
  /** The i-th mailbox of the group (0 <= i < count), its key computed on the spot. */
  at(i: number): GenMailbox;
}

export interface PgStore {
  /** The key file every daemon is given (it never enters the database). */
  keyFile: string;
  mailboxes: number;
  groups: Record<string, PgGroup>;
  /** Seconds: generating and loading the rows; then ANALYZE and a CHECKPOINT. */
  loadS: number;
  analyzeS: number;
  dbMb: number;
}

/** Rows built per write to psql's input. */
const CHUNK = 5000;

async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', resolve));
}

function chunks(count: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < count; i += CHUNK) out.push([i, Math.min(count, i + CHUNK)]);
  return out;
}

const WORKER = fileURLToPath(new URL('./pg-gen-worker.js', import.meta.url));

/**
 * The mailboxes' COPY lines of `requests`, built by worker threads (one per core, a few chunks
 * ahead each), handed to `sink` in order.
 */
async function sealedRows(keyFile: string, seed: Buffer, requests: Omit<ChunkRequest, 'id'>[], sink: (text: string) => Promise<void>): Promise<void> {
  const workers = Array.from({ length: Math.max(1, os.cpus().length) }, () => new Worker(WORKER, { workerData: { keyFile, seed: new Uint8Array(seed) } }));
  try {
    const done = new Map<number, string>();
    let wake: (() => void) | null = null;
    let failure: Error | null = null;
    for (const w of workers) {
      w.on('message', (m: { id: number; text: string }) => {
        done.set(m.id, m.text);
        wake?.();
      });
      w.on('error', (err) => {
        failure = err;
        wake?.();
      });
    }
    const ahead = workers.length * 3;
    let sent = 0;
    let written = 0;
    const send = () => {
      while (sent < requests.length && sent < written + ahead) {
        workers[sent % workers.length]!.postMessage({ ...requests[sent]!, id: sent });
        sent++;
      }
    };
    send();
    while (written < requests.length) {
      while (!done.has(written)) {
        if (failure !== null) throw failure;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const text = done.get(written)!;
      done.delete(written);
      written++;
      send();
      await sink(text);
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Runs a psql script fed by `feed` on its standard input; rejects with psql's message on failure. */
function psqlScript(pg: BenchPg, feed: (stdin: Writable) => Promise<void>): Promise<void> {
  const { cluster, database } = pg;
  const child = track(spawn(pg.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'memfa', '-d', database, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] }));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${stderr.slice(0, 2000)}`))));
  });
  // A failed psql closes its input: the feed's error is psql's, reported by `exited`.
  child.stdin!.on('error', () => undefined);
  const fed = feed(child.stdin!).then(() => child.stdin!.end());
  return Promise.all([fed, exited]).then(() => undefined);
}

export async function generatePgStore(pg: BenchPg, keyDir: string, groups: MailboxGroup[]): Promise<PgStore> {
  const t0 = Date.now();
  await mkdir(keyDir, { recursive: true, mode: 0o700 });
  await chmod(keyDir, 0o700);
  const keyFile = path.join(keyDir, 'memfa.key');
  const keyring = await Keyring.load(keyFile, { create: true });
  const seed = randomBytes(20);
  const now = Date.now();
  const day = now - 86_400_000;
  const hour = now - 3_600_000;
  const starts: number[] = [];
  let total = 0;
  for (const g of groups) {
    starts.push(total);
    total += g.count;
  }
  // Every table with a row per mailbox, truncated in the transaction that loads it: COPY FREEZE
  // then writes the rows as already visible to all, so that the first reads of the benchmark do
  // not set hint bits on a million rows (and write them out again). The foreign keys' triggers are
  // off for the load (replica role): the rows are consistent by construction.
  await psqlScript(pg, async (stdin) => {
    await write(stdin, 'BEGIN;\nTRUNCATE mailboxes, remembered_ips, remembered_countries, recovery_codes, app_passwords;\nSET LOCAL session_replication_role = replica;\n');
    await write(stdin, 'COPY mailboxes (address, settings, user_settings, totp_sealed, totp_activated_at, created_at, updated_at) FROM stdin WITH (FREEZE);\n');
    await sealedRows(keyFile, seed, groups.flatMap((g, k) => chunks(g.count).map(([from, to]) => ({ prefix: g.prefix, from, to, start: starts[k]!, settings: JSON.stringify(g.settings), day, hour }))), (text) => write(stdin, text));
    await write(stdin, '\\.\nCOPY remembered_ips (address, ord, ip, first_seen, last_seen) FROM stdin WITH (FREEZE);\n');
    for (const [k, g] of groups.entries()) {
      for (let i = 0; i < g.count; i += CHUNK) {
        const lines: string[] = [];
        for (let j = i; j < Math.min(g.count, i + CHUNK); j++) {
          const address = addressOf(g.prefix, j);
          const n = starts[k]! + j;
          lines.push(`${address}\t1\t${ipFromCounter(KNOWN_IP_BASE, 2 * n)}\t${day}\t${hour}\n${address}\t2\t${ipFromCounter(KNOWN_IP_BASE, 2 * n + 1)}\t${day}\t${hour}\n`);
        }
        await write(stdin, lines.join(''));
      }
    }
    await write(stdin, '\\.\nCOPY remembered_countries (address, ord, country, first_seen, last_seen) FROM stdin WITH (FREEZE);\n');
    for (const g of groups) {
      for (let i = 0; i < g.count; i += CHUNK) {
        const lines: string[] = [];
        for (let j = i; j < Math.min(g.count, i + CHUNK); j++) lines.push(`${addressOf(g.prefix, j)}\t1\tDE\t${day}\t${hour}\n`);
        await write(stdin, lines.join(''));
      }
    }
    await write(stdin, '\\.\nCOMMIT;\n');
  });
  const t1 = Date.now();
  await psqlScript(pg, (stdin) => write(stdin, 'ANALYZE;\nCHECKPOINT;\n'));
  const t2 = Date.now();
  const out: Record<string, PgGroup> = {};
  for (const [k, g] of groups.entries()) {
    const start = starts[k]!;
    out[g.prefix] = {
      count: g.count,
      at(i: number): GenMailbox {
        return { address: addressOf(g.prefix, i), key: totpKey(seed, start + i), ips: [ipFromCounter(KNOWN_IP_BASE, 2 * (start + i)), ipFromCounter(KNOWN_IP_BASE, 2 * (start + i) + 1)] };
      },
    };
  }
  return { keyFile, mailboxes: total, groups: out, loadS: (t1 - t0) / 1000, analyzeS: (t2 - t1) / 1000, dbMb: await pg.sizeMb() };
}

/** `count` mailboxes of `group` spread evenly over it (every count/size-th), as the load client's list. */
export function spread(group: PgGroup, count: number): GenMailbox[] {
  const n = Math.min(count, group.count);
  const stride = group.count / n;
  return Array.from({ length: n }, (_, i) => group.at(Math.floor(i * stride)));
}
