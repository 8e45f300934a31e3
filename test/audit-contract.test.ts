// The audit trail contract (test/helpers/audit-contract.ts) against both trails: the file trail
// (src/audit/trail.ts) in a temporary directory, and the shared database's
// (src/store/postgres/audit.ts) on a throwaway PostgreSQL, a fresh database for each case.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditTrail } from '../src/audit/trail.js';
import { PgAuditTrail } from '../src/store/postgres/audit.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { runAuditContract } from './helpers/audit-contract.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const MINUTE = 60_000;

runAuditContract('files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-contract-'));
  const files = { security: join(dir, 'security.log'), logins: join(dir, 'audit.log') };
  const trail = await AuditTrail.open({
    streams: { security: { file: files.security, maxBytes: 1 << 20, keep: 2 }, logins: { file: files.logins, maxBytes: 1 << 20, keep: 2 } },
    aggregateMs: MINUTE,
  });
  return {
    trail,
    lines: async (stream) => (await readFile(files[stream], 'utf8')).split('\n').filter((l) => l !== ''),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});

const missing = postgresMissing();
if (missing !== null) {
  test(`audit trail contract: PostgreSQL (SKIPPED: ${missing})`, { skip: missing }, () => {});
} else {
  let cluster: Promise<PgCluster> | null = null;
  after(async () => {
    if (cluster !== null) await (await cluster).stop();
  });
  runAuditContract('PostgreSQL', async () => {
    cluster ??= startPostgres();
    const c = await cluster;
    const db = new Db(createPool(pgSettings(c, await c.createDatabase(), { poolMax: 4 })));
    await migrate(db);
    const trail = await PgAuditTrail.open(db, { node: 'node-1', aggregateMs: MINUTE });
    return {
      trail,
      lines: async (stream) => (await db.query<{ line: string }>('SELECT line FROM audit_lines WHERE stream = $1 ORDER BY seq', [stream])).rows.map((r) => r.line),
      dispose: () => db.close(),
    };
  });
}
