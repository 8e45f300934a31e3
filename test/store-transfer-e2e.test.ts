// memfa store export / memfa store import end to end: the real bin/memfa, real daemons, a real
// throwaway PostgreSQL. A file store with every kind of state goes to PostgreSQL and back, comes
// out the same, and a daemon on the store it ends in verifies a TOTP code and its audit chain;
// streams cut short, changed, of a newer version, and targets that hold state are refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totpCode } from '../src/core/totp.js';
import { PgAuditTrail } from '../src/store/postgres/audit.js';
import { createPool, Db } from '../src/store/postgres/pool.js';
import { BIN, makeTempDir, runCli, startDaemon, type CliResult, type TestDaemon } from './helpers/daemon.js';
import { pgSettings, postgresMissing, sql, startPostgres, type PgCluster } from './helpers/postgres.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

/** A configuration file in `dir` (data and sockets under it); `store`: the store section. */
async function configIn(dir: string, store?: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, 'memfa.json');
  await mkdir(dir, { recursive: true });
  await writeFile(file, JSON.stringify({ dataDir: 'data', runDir: 'run', ...(store === undefined ? {} : { store }) }, null, 2));
  return file;
}

const memfa = (config: string, args: string[], stdin?: string): Promise<CliResult> => runCli(['--config', config, ...args], stdin === undefined ? {} : { stdin });

/** The body of a stream: every line but the header and the trailer (which name the source and the time). */
function body(stream: string): string[] {
  const lines = stream.split('\n').filter((l) => l !== '');
  return lines.slice(1, -1);
}

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

describe('memfa store export and import', { skip: postgresMissing() ?? false }, () => {
  let pg: PgCluster;
  let work: string;
  let source: TestDaemon;
  let secret: Buffer;
  let exported: string;
  let pgConfig: string;
  let database: string;

  const pgStore = (name: string) => ({ backend: 'postgres', postgres: { host: pg.socketDir, port: pg.port, database: name, user: 'memfa' } });

  before(async () => {
    pg = await startPostgres();
    work = await makeTempDir('mfst-');
    // The source: a file store with every kind of state and audit lines in both streams.
    source = await startDaemon({ config: { providers: { email: { enabled: true, transport: 'log' } } } });
    const e = await source.json<{ secret: string }>(['enroll', 'bob@corp.example', '--no-confirm']);
    secret = fromBase32(e.secret);
    await source.json(['enroll', 'amy@corp.example', '--no-confirm']);
    await source.json(['global', 'set', '--challenge', 'new-ip']);
    await source.json(['domain', 'set', 'corp.example', '--challenge', 'always']);
    await source.json(['domain', 'set', 'other.example', '--challenge', 'never']);
    await source.json(['providers', 'set', 'sms', '--end-users', 'no']);
    await source.json(['admin', 'add', 'carol', '--domain', 'corp.example']);
    await source.json(['recovery-codes', 'bob@corp.example']);
    await source.json(['app-password', 'add', 'bob@corp.example', '--name', 'phone', '--protocols', 'imap,smtp']);
    // A login with a code: a remembered address, an accepted step, a line in the logins stream.
    const v = await source.cli(['verify', '--user', 'amy@corp.example', '--ip', GB]);
    assert.equal(v.code, 2, `a challenge for amy: ${v.stdout}${v.stderr}`);
    const login = await source.cli(['verify', '--user', 'bob@corp.example', '--ip', GB, '--code-stdin'], { stdin: totpCode(secret, Date.now(), TOTP) + '\n' });
    assert.equal(login.code, 0, `bob's code: ${login.stdout}${login.stderr}`);
    // The rest of a record's parts: a failure, a pending enrolment, an open (sealed) email code.
    const wrong = await source.cli(['verify', '--user', 'amy@corp.example', '--ip', GB, '--code-stdin'], { stdin: '000000\n' });
    assert.equal(wrong.code, 1, `a wrong code for amy: ${wrong.stdout}${wrong.stderr}`);
    await source.json(['enroll', 'dan@corp.example']);
    await source.json(['mailbox', 'set', 'eve@corp.example', '--provider', 'email', '--alt-email', 'eve@home.example']);
    assert.equal((await source.cli(['verify', '--user', 'eve@corp.example', '--ip', GB])).code, 2, 'a code sent to eve');
    assert.equal((await source.cli(['audit', 'verify'])).code, 0);
  });

  after(async () => {
    await source?.cleanup();
    await pg?.stop();
  });

  it('refuses to export a file store while its daemon runs', async () => {
    const r = await source.cli(['store', 'export']);
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /another memfa daemon \(pid \d+\) is using the data directory .*: memfa store export works on a file store only while no daemon has it open/);
    assert.equal(r.stdout, '', 'nothing of the stream');
  });

  it('exports the file store once its daemon is stopped', async () => {
    await source.stop();
    const out = path.join(work, 'from-file.jsonl');
    const r = ok(await source.cli(['store', 'export', '--output', out]), 'export');
    assert.match(r.stdout, /^exported 4 mailboxes, 2 domains, 3 documents, \d+ \+ \d+ audit lines/);
    exported = await readFile(out, 'utf8');
    const lines = exported.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      { kind: lines[0]!['kind'], format: lines[0]!['format'], version: lines[0]!['version'], source: lines[0]!['source'] },
      { kind: 'header', format: 'memfa-state', version: 1, source: 'file' },
    );
    assert.deepEqual(lines.map((l) => l['kind']).filter((k, i, all) => all[i - 1] !== k), ['header', 'global', 'domain', 'meta', 'mailbox', 'audit', 'end']);
    assert.deepEqual(lines.filter((l) => l['kind'] === 'meta').map((l) => l['key']), ['domainAdmins', 'keyringCreated', 'providerPolicy'], 'the audit anchors are not carried');
    const record = (address: string) => lines.find((l) => l['kind'] === 'mailbox' && (l['record'] as { address: string }).address === address)!['record'] as Record<string, unknown>;
    const bob = record('bob@corp.example');
    assert.match((bob['totp'] as { sealedSecret: string }).sealedSecret, /^v1\./, 'the secret stays sealed');
    assert.ok(!exported.includes(secret.toString('hex')) && !exported.includes(Buffer.from(secret).toString('base64')));
    assert.equal((bob['recoveryCodeHashes'] as string[]).length, 10);
    assert.equal((bob['appPasswords'] as unknown[]).length, 1);
    const failures = record('amy@corp.example')['failures'] as { known: unknown; elsewhere: unknown };
    assert.ok(failures.known !== null || failures.elsewhere !== null, 'a failure counted');
    assert.match((record('dan@corp.example')['pendingTotp'] as { sealedSecret: string }).sealedSecret, /^v1\./);
    const open = record('eve@corp.example')['openCode'] as { hash: string; sealedCode?: string; provider: string };
    assert.equal(open.provider, 'email');
    assert.match(open.sealedCode ?? '', /^v1\./, 'the open code stays sealed');
    const streams = new Set(lines.filter((l) => l['kind'] === 'audit').map((l) => l['stream']));
    assert.deepEqual([...streams], ['security', 'logins']);
    // The same stream on standard output.
    const again = ok(await source.cli(['store', 'export']), 'export to stdout');
    assert.deepEqual(body(again.stdout), body(exported));
    assert.match(again.stderr, /^memfa: exported 4 mailboxes/);
  });

  it('draws a progress bar on standard error only when it is a terminal', { skip: existsSync('/usr/bin/script') ? false : 'no script(1) to give it a terminal' }, async () => {
    const out = path.join(work, 'progress.jsonl');
    // script(1) runs the command on a pseudo-terminal and copies what it draws.
    const shell = `${process.execPath} ${BIN} --config ${source.configFile} store export --output ${out}`;
    const tty = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', shell, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' } }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    assert.match(tty, /\r\[#+\] \d+\/\d+/, 'a bar on the terminal');
    assert.match(tty, /\r\x1b\[2K/, 'wiped before the summary');
    const piped = ok(await source.cli(['store', 'export', '--output', out]), 'export');
    assert.doesNotMatch(piped.stderr + piped.stdout, /\[#/, 'no bar into a pipe');
  });

  it('imports into PostgreSQL, and exports from it the same content', async () => {
    database = await pg.createDatabase();
    pgConfig = await configIn(path.join(work, 'pg'), pgStore(database));
    const r = ok(await memfa(pgConfig, ['--json', 'store', 'import', '--input', path.join(work, 'from-file.jsonl')]), 'import to PostgreSQL');
    const report = JSON.parse(r.stdout) as { target: string; source: string; counts: { mailboxes: number } };
    assert.deepEqual([report.target, report.source, report.counts.mailboxes], ['postgres', 'file', 4]);
    const rows = await sql(pg.clientConfig(database), 'SELECT count(*)::int AS n FROM recovery_codes');
    assert.equal(rows.rows[0].n, 10);
    const back = ok(await memfa(pgConfig, ['store', 'export']), 'export from PostgreSQL');
    assert.equal(JSON.parse(back.stdout.split('\n')[0]!).source, 'postgres');
    assert.deepEqual(body(back.stdout), body(exported));
    await writeFile(path.join(work, 'from-pg.jsonl'), back.stdout);
  });

  it('a daemon on the imported database verifies a TOTP code, and the database exports while it runs', async () => {
    const dir = path.join(work, 'pg-daemon');
    await mkdir(path.join(dir, 'data'), { recursive: true, mode: 0o700 });
    // The key file is not in the stream: every daemon of the database needs the source's.
    await copyFile(path.join(source.dataDir, 'memfa.key'), path.join(dir, 'data', 'memfa.key'));
    const d = await startDaemon({ dir, config: { store: pgStore(database) } });
    try {
      // One snapshot while the daemon serves: what it wrote at its start (its anchors, the record
      // of its key ring) is not state the stream carries.
      const during = ok(await d.cli(['store', 'export']), 'export while a daemon runs');
      assert.deepEqual(body(during.stdout), body(exported));
      const code = totpCode(secret, Date.now() + 30_000, TOTP);
      const v = await d.cli(['--json', 'verify', '--user', 'bob@corp.example', '--ip', GB, '--code-stdin'], { stdin: code + '\n' });
      assert.equal(v.code, 0, `${v.stdout}${v.stderr}`);
      assert.equal((JSON.parse(v.stdout) as { reason: string }).reason, 'code-valid');
      const again = await d.cli(['verify', '--user', 'bob@corp.example', '--ip', GB, '--code-stdin'], { stdin: code + '\n' });
      assert.equal(again.code, 1, 'the same code twice is refused: the imported last step holds');
      assert.equal((await d.json<{ ok: boolean }>(['audit', 'verify'])).ok, true);
    } finally {
      await d.cleanup();
    }
  });

  it('carries the audit chains into PostgreSQL, where the farm trail verifies them and goes on from them', async () => {
    const db = new Db(createPool(pgSettings(pg, database)));
    try {
      const trail = await PgAuditTrail.open(db, { node: 'test-node', aggregateMs: 0 });
      try {
        const checked = await trail.verify();
        assert.equal(checked.ok, true, JSON.stringify(checked));
        const carried = await sql(pg.clientConfig(database), "SELECT stream, count(*)::int AS n, min(seq)::int AS first, max(seq)::int AS last FROM audit_lines GROUP BY stream ORDER BY stream");
        const expected = exported.split('\n').filter((l) => l.includes('"kind":"audit"')).length;
        assert.equal(carried.rows.reduce((n, r) => n + (r.n as number), 0), expected);
        // A daemon's next line chains after the last one carried.
        await trail.append({ actor: 'admin', socket: 'admin', mailbox: 'bob@corp.example', action: 'mailbox.set', result: 'ok' });
        assert.equal((await trail.verify()).ok, true);
      } finally {
        await trail.close();
      }
    } finally {
      await db.close();
    }
  });

  it('refuses to import into a database that holds state, and replaces it with --replace', async () => {
    const input = path.join(work, 'from-file.jsonl');
    const r = await memfa(pgConfig, ['store', 'import', '--input', input]);
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /already hold state \(4 mailboxes, 2 domains, global settings, 2 documents .*audit lines\): an import never merges into it/);
    assert.match(r.stderr, /--replace/);
    ok(await memfa(pgConfig, ['store', 'import', '--replace', '--input', input]), 'import --replace');
    const { rows } = await sql(pg.clientConfig(database), 'SELECT count(*)::int AS n FROM mailboxes');
    assert.equal(rows[0].n, 4, 'replaced, not merged');
  });

  it('imports back into a fresh file store whose daemon verifies a TOTP code and the audit chain', async () => {
    const dir = path.join(work, 'back');
    const config = await configIn(dir);
    ok(await memfa(config, ['store', 'import'], await readFile(path.join(work, 'from-pg.jsonl'), 'utf8')), 'import from standard input');
    assert.deepEqual((await readdir(path.join(dir, 'data'))).sort(), ['audit-security.log', 'audit.log', 'memfa.json', 'memfa.json.journal']);
    // The key file is not in the stream: the target needs the source's.
    await copyFile(path.join(source.dataDir, 'memfa.key'), path.join(dir, 'data', 'memfa.key'));
    const d = await startDaemon({ dir });
    try {
      const code = totpCode(secret, Date.now() + 30_000, TOTP);
      const v = await d.cli(['--json', 'verify', '--user', 'bob@corp.example', '--ip', GB, '--code-stdin'], { stdin: code + '\n' });
      assert.equal(v.code, 0, `${v.stdout}${v.stderr}`);
      assert.equal((JSON.parse(v.stdout) as { reason: string }).reason, 'code-valid');
      const audit = await d.json<{ ok: boolean; streams: { stream: string; lines: number }[] }>(['audit', 'verify']);
      assert.equal(audit.ok, true, JSON.stringify(audit));
      const admins = await d.json<{ name: string }[] | { admins: { name: string }[] }>(['admin', 'list']);
      assert.match(JSON.stringify(admins), /"carol"/);
      const apps = await d.cli(['app-password', 'list', 'bob@corp.example']);
      assert.match(apps.stdout, /phone/);
    } finally {
      await d.cleanup();
    }
  });

  describe('refuses a stream that is not whole', () => {
    const tryImport = async (text: string) => {
      const name = await pg.createDatabase();
      const config = await configIn(path.join(work, `bad-${name}`), pgStore(name));
      const r = await memfa(config, ['store', 'import'], text);
      const left = await sql(pg.clientConfig(name), 'SELECT (SELECT count(*) FROM mailboxes)::int AS m, (SELECT count(*) FROM audit_lines)::int AS a');
      assert.deepEqual(left.rows[0], { m: 0, a: 0 }, 'nothing was kept');
      return r;
    };
    const lines = () => exported.trimEnd().split('\n');

    it('cut short: without its trailer, or in the middle of a line', async () => {
      const cut = lines().slice(0, -1).join('\n') + '\n';
      let r = await tryImport(cut);
      assert.equal(r.code, 65, r.stderr);
      assert.match(r.stderr, /the stream ends without its trailer \(cut short\)/);
      r = await tryImport(exported.slice(0, Math.floor(exported.length / 2)));
      assert.equal(r.code, 65);
      assert.match(r.stderr, /line \d+: .*(cut short|not valid JSON)/);
    });

    it('cut short into a file store: nothing is left behind, not even a temporary file', async () => {
      const dir = await makeTempDir('mfcut-');
      const config = await configIn(dir);
      const r = await memfa(config, ['store', 'import'], lines().slice(0, -1).join('\n') + '\n');
      assert.equal(r.code, 65, r.stderr);
      assert.deepEqual(await readdir(path.join(dir, 'data')), [], 'no store, no audit file, no lock');
    });

    it('of a newer format version', async () => {
      const l = lines();
      const h = JSON.parse(l[0]!) as Record<string, unknown>;
      l[0] = JSON.stringify({ ...h, version: 2, memfa: '9.0.0' });
      const r = await tryImport(l.join('\n') + '\n');
      assert.equal(r.code, 65);
      assert.match(r.stderr, /line 1: version: the stream is of format version 2, written by memfa 9\.0\.0; this memfa reads versions up to 1: upgrade memfa first/);
    });

    it('with a corrupt line, naming its number and field', async () => {
      const l = lines();
      const at = l.findIndex((x) => x.includes('"kind":"mailbox"'));
      const broken = [...l];
      broken[at] = broken[at]!.slice(0, 40);
      let r = await tryImport(broken.join('\n') + '\n');
      assert.match(r.stderr, new RegExp(`line ${at + 1}: not valid JSON`));
      const wrong = [...l];
      wrong[at] = wrong[at]!.replace(/"createdAt":\d+/, '"createdAt":"yesterday"');
      r = await tryImport(wrong.join('\n') + '\n');
      assert.equal(r.code, 65);
      assert.match(r.stderr, new RegExp(`line ${at + 1}: record\\.createdAt: not a non-negative integer`));
    });

    it('changed but well formed: the checksum', async () => {
      const l = lines();
      const at = l.findIndex((x) => x.includes('"kind":"domain"'));
      l[at] = l[at]!.replace('"challenge":"always"', '"challenge":"never"');
      const r = await tryImport(l.join('\n') + '\n');
      assert.equal(r.code, 65);
      assert.match(r.stderr, /line \d+: sha256: the checksum does not match the lines before it/);
    });

    it('with a line longer than the bound', async () => {
      const l = lines();
      l.splice(1, 0, `{"kind":"global","settings":{"x":"${'a'.repeat(1024 * 1024 + 10)}"}}`);
      const r = await tryImport(l.join('\n') + '\n');
      assert.equal(r.code, 65);
      assert.match(r.stderr, /line 2: longer than 1048576 bytes/);
    });
  });

  it('a file store target refuses an import while a daemon has it, and one that holds state', async () => {
    const d = await startDaemon();
    try {
      const input = path.join(work, 'from-file.jsonl');
      let r = await d.cli(['store', 'import', '--input', input]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /memfa store import works on a file store only while no daemon has it open/);
      await d.json(['domain', 'set', 'x.example', '--challenge', 'always']);
      await d.stop();
      r = await d.cli(['store', 'import', '--input', input]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /already hold state \(1 domains, \d+ audit lines\)/);
      ok(await d.cli(['store', 'import', '--replace', '--input', input]), 'import --replace');
      const aside = (await readdir(d.dataDir)).filter((f) => f.includes('.before-import-'));
      assert.equal(aside.length, 1, `the replaced audit file is set aside: ${aside.join(', ')}`);
      // This daemon's own key file cannot open the imported secrets, and its start says so.
      await copyFile(path.join(source.dataDir, 'memfa.key'), path.join(d.dataDir, 'memfa.key'));
      await d.restart();
      assert.equal((await d.cli(['audit', 'verify'])).code, 0);
      const shown = await d.json<{ total?: number }>(['mailbox', 'list']);
      assert.match(JSON.stringify(shown), /bob@corp\.example/);
    } finally {
      await d.cleanup();
    }
  });
});
