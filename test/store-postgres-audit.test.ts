// The shared database's audit trail (src/store/postgres/audit.ts) where it differs from a file:
// several nodes appending at once make one chain per stream, the same lines verify in a file and
// in the database, rows changed or deleted in SQL are found, the database going away costs
// counted lines and bounded memory, and query runs on the indexes. On a throwaway PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '../src/audit/entry.js';
import { lineHash } from '../src/audit/entry.js';
import { AuditLog } from '../src/audit/log.js';
import type { AuditVerifyResult } from '../src/protocol/results.js';
import { PgAuditTrail, type PgAuditTrailOptions } from '../src/store/postgres/audit.js';
import { importAuditLines } from '../src/store/postgres/audit-import.js';
import { queryStatement } from '../src/store/postgres/audit-read.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const missing = postgresMissing();
const change = (mailbox: string | null, details?: Record<string, unknown>): AuditEvent => ({ actor: 'admin', socket: 'admin', mailbox, action: 'reset', result: 'ok', ...(details === undefined ? {} : { details }) });
const login = (mailbox: string, details?: Record<string, unknown>): AuditEvent => ({ actor: 'hook', socket: 'hook', mailbox, action: 'verify', result: 'deny', reason: 'code-invalid', ...(details === undefined ? {} : { details }) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`the audit trail on PostgreSQL${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  const dbs: Db[] = [];
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    await Promise.all(dbs.map((d) => d.close().catch(() => undefined)));
    await cluster?.stop();
  });
  /** `n` pools on one fresh, migrated database. */
  const database = async (n = 1, overrides = {}): Promise<Db[]> => {
    const name = await cluster.createDatabase();
    const made = Array.from({ length: n }, () => new Db(createPool(pgSettings(cluster, name, { poolMax: 4, ...overrides }))));
    dbs.push(...made);
    await migrate(made[0]!);
    return made;
  };
  const trail = (db: Db, node: string, options: Partial<PgAuditTrailOptions> = {}) => PgAuditTrail.open(db, { node, aggregateMs: 60_000, ...options });
  const rows = async (db: Db, stream: string) =>
    (await db.query<{ seq: number; node: string; line: string; at: number }>('SELECT seq, node, line, at FROM audit_lines WHERE stream = $1 ORDER BY seq', [stream])).rows;

  it('three nodes appending at once: one unbroken chain per stream, every line once, in batches', async () => {
    const nodeDbs = await database(3);
    const nodes = await Promise.all(nodeDbs.map((db, i) => trail(db, `node-${i + 1}`)));
    const PER_NODE = 300;
    const checker = await trail(nodeDbs[0]!, 'checker');
    // Checked while the nodes write (from halfway through the first's lines): up to the head as it was when the check began.
    let during: Promise<AuditVerifyResult> | null = null;
    const appended = await Promise.all(
      nodes.map(async (t, i) => {
        const node = `node-${i + 1}`;
        const awaited: Promise<unknown>[] = [];
        for (let n = 0; n < PER_NODE; n++) {
          // Changes awaited, logins recorded, interleaved: both streams busy from every node.
          awaited.push(t.append(change(`m${n % 7}@farm.test`, { node, n })));
          t.record(login(`m${n % 5}@farm.test`, { node, n }));
          if (i === 0 && n === PER_NODE / 2) during = checker.verify();
          if (n % 50 === 0) await sleep(1);
        }
        return Promise.all(awaited);
      }),
    );
    await Promise.all(nodes.map((t) => t.close()));
    const mid = await during!;
    assert.equal(mid.ok, true, JSON.stringify(mid));
    assert.ok(mid.ok && mid.lines > 0);
    assert.ok(appended.flat().every((e) => e !== null), 'every awaited line was committed');
    const seqs = appended.flat().map((e) => (e as { seq: number }).seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no two lines answered with the same seq');
    for (const stream of ['security', 'logins']) {
      const all = await rows(nodeDbs[0]!, stream);
      assert.equal(all.length, 3 * PER_NODE, `${stream}: every line once`);
      assert.deepEqual(all.map((r) => r.seq), Array.from({ length: 3 * PER_NODE }, (_, i) => i + 1));
      const seen = new Set<string>();
      let prev = '0'.repeat(64);
      let at = 0;
      for (const r of all) {
        const line = JSON.parse(r.line) as { prev: string; time: string; details: { node: string; n: number } };
        assert.equal(line.prev, prev, `${stream} seq ${r.seq} chains to the line before, whoever wrote it`);
        prev = lineHash(Buffer.from(r.line));
        assert.equal(line.details.node, r.node, 'the row names the node that wrote it');
        seen.add(`${line.details.node}/${line.details.n}`);
        assert.ok(r.at >= at, 'the database decides the order: its times rise along the chain');
        at = r.at;
        assert.equal(Date.parse(line.time), r.at);
      }
      assert.equal(seen.size, 3 * PER_NODE);
      // A statement per batch: lines of one batch share their time and a node. One per line would
      // make 900 runs of one.
      let runs = 0;
      for (let i = 0; i < all.length; i++) if (i === 0 || all[i]!.node !== all[i - 1]!.node || all[i]!.at !== all[i - 1]!.at) runs += 1;
      assert.ok(runs < all.length / 3, `${stream}: ${runs} batches for ${all.length} lines`);
    }
    const check = await checker.verify();
    assert.equal(check.ok, true, JSON.stringify(check));
    assert.equal(check.ok && check.lines, 6 * PER_NODE);
  });

  it("a batch of lines nobody waits for, with one that is waited for among them: that one's entry chains to the line before it", async () => {
    const [db] = await database(1);
    const t = await trail(db!, 'node-1');
    for (let n = 0; n < 40; n++) t.record(login(`r${n}@farm.test`, { n }));
    const waited = t.append(login('waited@farm.test'));
    for (let n = 40; n < 80; n++) t.record(login(`r${n}@farm.test`, { n }));
    const entry = await waited;
    await t.close();
    const all = await rows(db!, 'logins');
    assert.equal(all.length, 81);
    assert.ok(entry !== null);
    const i = all.findIndex((r) => r.seq === entry.seq);
    assert.equal(JSON.parse(all[i]!.line).mailbox, 'waited@farm.test');
    assert.equal(entry.prev, lineHash(Buffer.from(all[i - 1]!.line)));
    assert.equal(entry.prev, JSON.parse(all[i]!.line).prev);
  });

  it('the same lines verify in a file and in the database, both ways', async () => {
    const [db] = await database();
    const t = await trail(db!, 'node-1');
    for (let i = 0; i < 20; i++) await t.append(change(`u${i}@example.org`, { i, text: 'ünïcödé "quoted" \\ \u0001' }));
    await t.close();
    const dir = await mkdtemp(join(tmpdir(), 'memfa-pgaudit-'));
    try {
      // Database → file: the rows' lines, as a file trail's, verify there and its chain goes on.
      const file = join(dir, 'security.log');
      await writeFile(file, (await rows(db!, 'security')).map((r) => `${r.line}\n`).join(''), { mode: 0o600 });
      const log = await AuditLog.open(file);
      assert.equal((await log.append(change('next@example.org')))?.seq, 21);
      const fromDb = await log.verify();
      assert.deepEqual(fromDb, { ok: true, lines: 21, files: 1, lost: 0 });
      await log.close();
      // File → database: a file trail's lines from seq 5 on (older ones rotated out) into an empty database.
      const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '').slice(4);
      const [other] = await database();
      const head = await other!.tx((c) => importAuditLines(c, 'security', 'imported', lines));
      assert.deepEqual(head, { seq: 21, hash: lineHash(Buffer.from(lines.at(-1)!)), floor: 5 });
      const imported = await trail(other!, 'node-2');
      assert.equal((await imported.append(change('after@example.org')))?.seq, 22, 'the chain goes on after the imported head');
      const v = await imported.verify();
      assert.equal(v.ok, true, JSON.stringify(v));
      assert.equal(v.ok && v.lines, 18);
      await imported.close();
      await assert.rejects(
        other!.tx((c) => importAuditLines(c, 'security', 'imported', lines.slice(0, 1))),
        (err: Error) => /has seq 5 where the chain goes on at 23/.test(err.message),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe('rows changed or deleted in SQL are found by verify, across pages', () => {
    /** A fresh database with 30 security lines, verified in pages of 7 rows. */
    const chain = async () => {
      const [db] = await database();
      const t = await trail(db!, 'node-1', { verifyPageRows: 7 });
      for (let i = 1; i <= 30; i++) await t.append(change(`u${i}@example.org`));
      const ok = await t.verify();
      assert.equal(ok.ok && ok.lines, 30);
      return { db: db!, t };
    };
    const broken = async (t: PgAuditTrail) => {
      const v = await t.verify();
      await t.close();
      assert.equal(v.ok, false);
      return v.ok ? { line: -1, problem: '' } : { line: v.line, problem: v.problem, file: v.file };
    };

    it('a line changed', async () => {
      const { db, t } = await chain();
      await db.query(`UPDATE audit_lines SET line = replace(line, '"result":"ok"', '"result":"no"'), result = 'no' WHERE stream = 'security' AND seq = 14`);
      const v = await broken(t);
      assert.equal(v.line, 14);
      assert.match(v.problem, /does not match the hash recorded by the next line/);
      assert.match(v.file ?? '', /audit_lines, stream security/);
    });

    it('the last line changed', async () => {
      const { db, t } = await chain();
      await db.query(`UPDATE audit_lines SET line = replace(line, 'u30@', 'x30@'), mailbox = 'x30@example.org' WHERE stream = 'security' AND seq = 30`);
      assert.deepEqual(await broken(t).then((v) => [v.line, /not the head of the chain/.test(v.problem)]), [30, true]);
    });

    it('a column changed without its line', async () => {
      const { db, t } = await chain();
      await db.query(`UPDATE audit_lines SET mailbox = 'someone@else.test' WHERE stream = 'security' AND seq = 8`);
      const v = await broken(t);
      assert.equal(v.line, 8);
      assert.match(v.problem, /mailbox, action or result column is not what its line says/);
    });

    it('a row deleted in the middle, at the end, at the start', async () => {
      const middle = await chain();
      await middle.db.query(`DELETE FROM audit_lines WHERE stream = 'security' AND seq = 15`);
      const m = await broken(middle.t);
      assert.deepEqual([m.line, m.problem], [16, 'seq 16 follows 14: 1 line(s) missing before this one']);
      const end = await chain();
      await end.db.query(`DELETE FROM audit_lines WHERE stream = 'security' AND seq = 30`);
      const e = await broken(end.t);
      assert.equal(e.line, 29);
      assert.match(e.problem, /not the head of the chain \(seq 30\)/);
      const start = await chain();
      await start.db.query(`DELETE FROM audit_lines WHERE stream = 'security' AND seq <= 2`);
      const s = await broken(start.t);
      assert.deepEqual([s.line, s.problem], [3, 'lines 1-2 are missing: rows were deleted from the start of the chain']);
      const all = await chain();
      await all.db.query(`DELETE FROM audit_lines`);
      assert.match((await broken(all.t)).problem, /no lines but its head names line 30/);
    });
  });

  it('the database away during appends: lines wait, bounded, then are written or counted lost; the chain records the loss and goes on', async () => {
    const [db] = await database(1, { connectTimeoutMs: 1000 });
    const events: string[] = [];
    const MAX_BYTES = 16 * 1024;
    const t = await trail(db!, 'node-1', { maxQueuedBytes: MAX_BYTES, maxWaitMs: 1500, retryMs: 50, onEvent: (_level, event) => events.push(event) });
    assert.ok(await t.append(change('before@example.org')));
    await cluster.pause();
    try {
      const waiting = t.append(change('during@example.org'));
      let recorded = 0;
      let maxQueued = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 100; i++, recorded++) t.record(login(`r${recorded}@example.org`, { n: recorded }));
        maxQueued = Math.max(maxQueued, t.pending().logins.bytes);
        await sleep(20);
      }
      assert.ok(maxQueued <= MAX_BYTES, `the queue stays within its bound (${maxQueued} bytes)`);
      const status = t.status();
      assert.ok(status.droppedLines > 1000, `what did not fit was counted lost (${status.droppedLines})`);
      assert.equal(await waiting, null, 'an awaited line that waited longer than maxWaitMs is lost, and told so');
      assert.ok(events.includes('audit-write-failed'));
      await cluster.start();
      const after = await t.append(change('after@example.org'));
      assert.ok(after, 'written again once the database is back');
      await t.close();
      const lost = t.status();
      const logins = await rows(db!, 'logins');
      const written = logins.filter((r) => !r.line.includes('"audit-lost"')).length;
      assert.equal(written + lost.streams.find((s) => s.name === 'logins')!.droppedLines, recorded, 'every recorded line is written or counted lost');
      const records = [...(await rows(db!, 'logins')), ...(await rows(db!, 'security'))].filter((r) => r.line.includes('"action":"audit-lost"'));
      const recordedLoss = records.reduce((sum, r) => sum + (JSON.parse(r.line) as { details: { lines: number } }).details.lines, 0);
      assert.equal(recordedLoss, lost.droppedLines, 'the chain records every lost line');
      assert.ok(events.includes('audit-write-resumed'));
      const v = await (await trail(db!, 'checker')).verify();
      assert.equal(v.ok, true, JSON.stringify(v));
      assert.equal(v.ok && v.lost, lost.droppedLines);
    } finally {
      await cluster.start().catch(() => undefined);
    }
  });

  it('the database stopped and started in the middle of a stream of appends from two nodes: no line twice, none unaccounted for', async () => {
    const nodeDbs = await database(2, { connectTimeoutMs: 1000 });
    const nodes = await Promise.all(nodeDbs.map((db, i) => trail(db, `node-${i + 1}`, { maxWaitMs: 10_000, retryMs: 50 })));
    let stop = false;
    let sent = 0;
    let longest = 0;
    const answered: (number | null)[] = [];
    const writers = nodes.map(async (t, i) => {
      for (let n = 0; !stop; n++) {
        sent += 1;
        const started = performance.now();
        const e = await t.append(change(`w${i}@example.org`, { node: i, n }));
        longest = Math.max(longest, performance.now() - started);
        answered.push(e === null ? null : e.seq);
        t.record(login(`w${i}@example.org`, { node: i, n }));
        sent += 1;
        await sleep(2);
      }
    });
    try {
      await sleep(300);
      await cluster.pause();
      await sleep(500);
      await cluster.start();
      await sleep(1000);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    await Promise.all(nodes.map((t) => t.close()));
    const lost = nodes.reduce((sum, t) => sum + t.status().droppedLines, 0);
    const lines = [...(await rows(nodeDbs[0]!, 'security')), ...(await rows(nodeDbs[0]!, 'logins'))].filter((r) => !r.line.includes('"audit-lost"'));
    const ids = lines.map((r) => JSON.stringify([(JSON.parse(r.line) as { details: unknown }).details, r.line.includes('"verify"')]));
    assert.equal(new Set(ids).size, ids.length, 'no line is in the chain twice');
    // A batch whose answer was cut off by the stop is counted lost though it may have committed:
    // at worst a loss is counted too many, never a line missing uncounted.
    assert.ok(lines.length + lost >= sent, `${lines.length} written + ${lost} counted lost >= ${sent} sent`);
    assert.ok(lines.length <= sent);
    assert.ok(longest >= 300, `appends waited across the stop (the longest took ${Math.round(longest)} ms)`);
    const committed = answered.filter((s): s is number => s !== null);
    const security = new Set((await rows(nodeDbs[0]!, 'security')).map((r) => r.seq));
    assert.ok(committed.every((s) => security.has(s)), 'every acknowledged line is in the chain');
    const v = await (await trail(nodeDbs[1]!, 'checker')).verify();
    assert.equal(v.ok, true, JSON.stringify(v));
    assert.equal(v.ok && v.lost, lost, 'the chain records what was counted lost');
  });

  it('query runs on the indexes', async () => {
    const [db] = await database();
    await db!.query(`INSERT INTO audit_lines (stream, seq, at, node, mailbox, action, result, line)
      SELECT 'logins', g, 1700000000000 + g, 'n', 'u' || (g % 5000) || '@d' || (g % 1000) || '.test', 'verify', 'deny', '{}' FROM generate_series(1, 50000) g`);
    await db!.query('ANALYZE audit_lines');
    const plan = async (filter: Parameters<typeof queryStatement>[0]) => {
      const { text, values } = queryStatement(filter);
      return (await db!.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, values)).rows.map((r) => r['QUERY PLAN']).join('\n');
    };
    assert.match(await plan({ mailbox: 'u7@d7.test', limit: 100 }), /audit_lines_mailbox/);
    assert.match(await plan({ domains: ['d3.test'], limit: 100 }), /audit_lines_domain/);
    assert.match(await plan({ since: new Date(1700000049000), limit: 100 }), /audit_lines_at/);
    assert.match(await plan({ limit: 100 }), /audit_lines_at/, 'the most recent lines without a scan of them all');
  });

  it('a line of a stream that does not exist is refused by the table, which has no per-row key lookup', async () => {
    const [db] = await database();
    const insert = (stream: string) =>
      db!.query(`INSERT INTO audit_lines (stream, seq, at, node, mailbox, action, result, line) VALUES ($1, 1, 1700000000000, 'n', NULL, 'reset', 'ok', '{}')`, [stream]);
    await assert.rejects(insert('other'), (err: Error & { data?: Record<string, unknown> }) => err.data?.['sqlstate'] === '23514');
    await insert('security');
    // A foreign key would cost a lookup and lock of the head row per line (migration 010).
    const { rows } = await db!.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'audit_lines'::regclass AND contype = 'f'`);
    assert.equal(rows[0]!.n, 0);
  });

  it('refuses a database without the audit tables, and a bad node name', async () => {
    const name = await cluster.createDatabase();
    const bare = new Db(createPool(pgSettings(cluster, name)));
    dbs.push(bare);
    await assert.rejects(trail(bare, 'node-1'), (err: Error & { code?: string }) => err.code === 'STORE_CORRUPT' && /no audit tables/.test(err.message));
    const [db] = await database();
    for (const node of ['', ' lead', 'x'.repeat(256), 'tab\there', 'ünï']) {
      await assert.rejects(trail(db!, node), (err: Error & { code?: string }) => err.code === 'CONFIG_INVALID', JSON.stringify(node));
    }
  });
});
