// A file store moved onto PostgreSQL for a farm (issue 16), end to end: exported from a stopped
// daemon's file store, imported into a fresh database, served by three daemons with the source's
// key file. The sealed secrets still open on every node, what was used at the source stays used
// (its last TOTP step, its recovery codes) and what is used on one node is used on all, the
// settings carry over, and the audit chain carried into the database still verifies.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { RecoveryCodesResult } from '../src/protocol/results.js';
import { PgAuditTrail } from '../src/store/postgres/audit.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { runCli, startDaemon, type TestDaemon } from './helpers/daemon.js';
import { startFarm, type Farm } from './helpers/farm.js';
import { pgSettings, postgresMissing } from './helpers/postgres.js';

const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };
const IP = '81.2.69.142';
const USER = 'bob@moved.example';
const missing = postgresMissing();

describe(`a file store moved to PostgreSQL, served by three daemons${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let source: TestDaemon;
  let farm: Farm;
  let key: Buffer;
  let usedCode: string;
  /** When the source accepted usedCode; the nodes' clock is set back to it (below). */
  let usedAt: number;
  let clockFile: string;
  let recovery: string[];
  let auditLines = 0;

  before(async () => {
    source = await startDaemon();
    clockFile = path.join(source.dir, 'clock-offset');
    await writeFile(clockFile, '0');
    await source.json(['domain', 'set', 'moved.example', '--challenge', 'always', '--provider', 'totp']);
    key = fromBase32((await source.json<{ secret: string }>(['enroll', USER, '--no-confirm'])).secret);
    recovery = (await source.json<RecoveryCodesResult>(['recovery-codes', USER])).codes;
    usedAt = Date.now();
    usedCode = totpCode(key, usedAt, TOTP);
    const login = await source.cli(['verify', '--user', USER, '--ip', IP, '--code-stdin'], { stdin: usedCode + '\n' });
    assert.equal(login.code, 0, `a login at the source: ${login.stdout}${login.stderr}`);
    const usedRecovery = await source.cli(['verify', '--user', USER, '--ip', IP, '--code-stdin'], { stdin: recovery[0]! + '\n' });
    assert.equal(usedRecovery.code, 0, `a recovery code used at the source: ${usedRecovery.stdout}${usedRecovery.stderr}`);
    await source.stop();
    const exported = path.join(source.dir, 'moved.jsonl');
    const out = await source.cli(['store', 'export', '--output', exported]);
    assert.equal(out.code, 0, out.stderr);
    auditLines = (await readFile(exported, 'utf8')).split('\n').filter((l) => l.includes('"kind":"audit"')).length;
    assert.ok(auditLines > 0, 'the source has audit lines to carry');
    farm = await startFarm({
      // The refusals below count as failures at a remembered address: not enough to lock here.
      config: { lockout: { threshold: 50 } },
      env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile },
      keyFile: path.join(source.dataDir, 'memfa.key'),
      async prepare({ store, dir }) {
        const config = path.join(dir, 'import.json');
        await mkdir(path.join(dir, 'import'), { recursive: true });
        await writeFile(config, JSON.stringify({ dataDir: 'import', runDir: 'import', store }));
        const r = await runCli(['--config', config, 'store', 'import', '--input', exported]);
        assert.equal(r.code, 0, `import: ${r.stdout}${r.stderr}`);
      },
    });
  });
  after(async () => {
    await farm?.stop();
    await source?.cleanup();
  });

  const verify = (i: number, code: string) => farm.call(i, 'hook', 'verify', { user: USER, ip: IP, code });

  it('verify still works on every node: the sealed secret opens, the used step and recovery code stay used, a new use holds everywhere', async () => {
    // The move took longer than a TOTP step may last: the nodes' time goes on from the source's
    // last login, so that its step is still one the window accepts.
    await writeFile(clockFile, String(usedAt - Date.now()));
    for (let i = 0; i < 3; i++) assert.equal((await verify(i, usedCode)).reason, 'code-reused', `node ${i}: the step used at the source`);
    const fresh = totpCode(key, usedAt + 30_000, TOTP);
    assert.deepEqual(await verify(0, fresh).then((a) => [a.result, a.reason]), ['allow', 'code-valid']);
    for (const i of [1, 2]) assert.equal((await verify(i, fresh)).reason, 'code-reused', `node ${i}`);

    for (let i = 0; i < 3; i++) assert.equal((await verify(i, recovery[0]!)).reason, 'code-invalid', `node ${i}: the recovery code used at the source`);
    const rc = await verify(1, recovery[1]!);
    assert.deepEqual([rc.result, rc.reason, rc.recoveryCodesLeft], ['allow', 'recovery-code-used', recovery.length - 2]);
    for (const i of [0, 2]) assert.equal((await verify(i, recovery[1]!)).reason, 'code-invalid', `node ${i}: used on node 1`);

    // The domain's setting came with the store: every node challenges.
    for (let i = 0; i < 3; i++) assert.equal((await farm.call(i, 'hook', 'verify', { user: USER, ip: IP })).result, 'challenge', `node ${i}`);
  });

  it('the audit chain verifies: on every node, and the chain carried into the database after the nodes ran', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await farm.node(i).json<{ ok: boolean }>(['audit', 'verify']);
      assert.equal(r.ok, true, `node ${i}: ${JSON.stringify(r)}`);
    }
    // Any node lists the lines carried from the source and those every node wrote since.
    const listed = await farm.node(2).json<{ entries: { action: string; reason: string | null }[] }>(['audit', '--mailbox', USER]);
    assert.ok(listed.entries.filter((e) => e.action === 'verify' && e.reason === 'recovery-code-used').length >= 2, 'the source\'s and node 1\'s recovery logins');
    assert.ok(listed.entries.some((e) => e.action.startsWith('enroll.')), 'the enrolment made at the source');
    const db = new Db(createPool(pgSettings(farm.cluster, farm.database)));
    try {
      const trail = await PgAuditTrail.open(db, { node: 'checker', aggregateMs: 0 });
      try {
        const checked = await trail.verify();
        assert.equal(checked.ok, true, JSON.stringify(checked));
        const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_lines');
        assert.ok(rows[0]!.n >= auditLines, `${rows[0]!.n} lines in the database, ${auditLines} carried`);
      } finally {
        await trail.close();
      }
    } finally {
      await db.close();
    }
  });
});
