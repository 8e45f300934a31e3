// memfa import: files written by Debian's google-authenticator command (libpam-google-authenticator)
// and CSV files, through the real daemon; codes computed by oathtool must then verify, scratch codes
// work once as recovery codes, a dry run changes nothing, and no output ever holds a secret.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toBase32 } from '../src/core/totp.js';
import { BIN, startDaemon, type CliResult, type TestDaemon } from './helpers/daemon.js';
import { rpc } from './helpers/protocol-tools.js';

const GB = '81.2.69.142';
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tools = have('google-authenticator') && have('oathtool');
const skip = tools ? false : 'google-authenticator (libpam-google-authenticator) and oathtool are not installed (.ci/run installs them)';

/** Writes FILE with Debian's google-authenticator, never interactively. */
function googleAuthenticator(file: string, args: string[]): void {
  const r = spawnSync('google-authenticator', [...args, '--force', '--quiet', '--qr-mode=NONE', `--secret=${file}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, `google-authenticator ${args.join(' ')}: ${r.stderr}`);
}

function oathtool(secret: string): string {
  const r = spawnSync('oathtool', ['--totp', '-b', secret], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

/** The secret and the scratch codes of a google-authenticator file. */
function contents(file: string): { secret: string; scratch: string[] } {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return { secret: lines[0]!, scratch: lines.filter((l) => /^\d{8}$/.test(l)) };
}

interface Report {
  dryRun: boolean;
  accepted: number;
  refused: number;
  mailboxes: { source: string; address: string; created: boolean; replaced: boolean; recoveryCodes: number | null; notes: string[] }[];
  problems: { source: string; address: string | null; problem: string }[];
}

describe('memfa import google-authenticator', { skip }, () => {
  let d: TestDaemon;
  let home: string;
  const outputs: CliResult[] = [];
  const cli = async (args: string[], stdin?: string) => {
    const r = await d.cli(args, stdin === undefined ? {} : { stdin });
    outputs.push(r);
    return r;
  };
  const verify = async (user: string, code: string) => JSON.parse((await cli(['--json', 'verify', '--user', user, '--ip', GB, '--code-stdin'], `${code}\n`)).stdout) as { result: string; reason: string; recoveryCodesLeft?: number };

  before(async () => {
    d = await startDaemon({ config: { defaults: { challenge: 'always' } } });
    home = path.join(d.dir, 'home');
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin']) await mkdir(path.join(home, u), { recursive: true });
    const file = (u: string) => path.join(home, u, '.google_authenticator');
    // As the Debian package's README suggests, and variations the module supports.
    googleAuthenticator(file('alice'), ['-t', '-d', '-r', '3', '-R', '30', '-w', '3', '-e', '5']);
    googleAuthenticator(file('bob'), ['-c', '-r', '3', '-R', '30', '-w', '3']);
    googleAuthenticator(file('carol'), ['-t', '-d', '-u', '-w', '3', '-S', '60']);
    googleAuthenticator(file('dave'), ['-t', '-D', '-u', '-W', '-e', '0']);
    googleAuthenticator(file('erin'), ['-t', '-d', '-r', '3', '-R', '30', '-w', '17', '-e', '10']);
  });
  after(() => d.cleanup());

  it('a dry run reports every file and changes nothing', async () => {
    const r = await cli(['--json', 'import', 'google-authenticator', '--domain', 'example.org', home]);
    assert.equal(r.code, 65, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.mailboxes.map((m) => m.address), ['alice@example.org', 'dave@example.org', 'erin@example.org']);
    assert.deepEqual(report.mailboxes.map((m) => m.recoveryCodes), [5, null, 10], 'a file without scratch codes leaves the set alone');
    assert.deepEqual(
      report.problems.map((p) => [path.relative(home, p.source), p.address]),
      [
        ['bob/.google_authenticator:4', 'bob@example.org'],
        ['carol/.google_authenticator', 'carol@example.org'],
      ],
    );
    assert.match(report.problems[0]!.problem, /HOTP_COUNTER: a counter-based \(HOTP\) secret; memfa has TOTP only/);
    assert.match(report.problems[1]!.problem, /^period: the secret's codes change every 60 s, memfa's every 30 s \(totp\.period\)/);
    for (const u of ['alice', 'dave']) {
      const m = JSON.parse((await cli(['--json', 'mailbox', 'show', `${u}@example.org`])).stdout) as { stored: boolean; totp: string };
      assert.deepEqual([m.stored, m.totp], [false, 'none'], `${u} is untouched`);
    }
    const audit = JSON.parse((await cli(['--json', 'audit', '--action', 'mailbox.import'])).stdout) as { entries: unknown[] };
    assert.equal(audit.entries.length, 0, 'a dry run writes no audit line');
    // Human output: one line per refusal on stderr, the summary on stdout, nothing else on a pipe.
    const h = await cli(['import', 'google-authenticator', '--domain', 'example.org', home]);
    assert.equal(h.code, 65);
    assert.match(h.stdout, /^dry run: 3 mailboxes would be imported, 2 refused; nothing was written \(add --apply to import\)\n$/);
    assert.deepEqual(h.stderr.split('\n').filter(Boolean).map((l) => l.slice(home.length + 1).split(': ').slice(0, 2)), [
      ['bob/.google_authenticator:4', 'bob@example.org'],
      ['carol/.google_authenticator', 'carol@example.org'],
    ]);
    assert.doesNotMatch(h.stderr, /\r|\[#/, 'no progress bar into a pipe');
  });

  it('--apply imports them; oathtool codes verify; a scratch code is a recovery code, once', async () => {
    const r = await cli(['--json', 'import', 'google-authenticator', '--domain', 'example.org', '--apply', home]);
    assert.equal(r.code, 65, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.dryRun, false);
    assert.equal(report.accepted, 3);
    for (const u of ['alice', 'dave', 'erin']) {
      const { secret } = contents(path.join(home, u, '.google_authenticator'));
      const v = await verify(`${u}@example.org`, oathtool(secret));
      assert.deepEqual([v.result, v.reason], ['allow', 'code-valid'], `${u}: the code oathtool computes from the imported secret`);
    }
    const { scratch } = contents(path.join(home, 'alice', '.google_authenticator'));
    assert.equal(scratch.length, 5);
    const used = await verify('alice@example.org', scratch[2]!);
    assert.deepEqual([used.result, used.reason, used.recoveryCodesLeft], ['allow', 'recovery-code-used', 4]);
    const again = await verify('alice@example.org', scratch[2]!);
    assert.deepEqual([again.result, again.reason], ['deny', 'code-invalid'], 'a scratch code works once');
    for (const u of ['bob', 'carol']) {
      const m = JSON.parse((await cli(['--json', 'mailbox', 'show', `${u}@example.org`])).stdout) as { stored: boolean };
      assert.equal(m.stored, false, `the refused ${u} was not imported`);
    }
    const audit = JSON.parse((await cli(['--json', 'audit', '--action', 'mailbox.import'])).stdout) as { entries: { mailbox: string; details: Record<string, unknown> }[] };
    assert.deepEqual(audit.entries.map((e) => e.mailbox).sort(), ['alice@example.org', 'dave@example.org', 'erin@example.org']);
    assert.deepEqual(audit.entries.find((e) => e.mailbox === 'alice@example.org')?.details, { replaced: false, created: true, recoveryCount: 5, phone: false, altEmail: false });
  });

  it('an active secret is not overwritten unless --replace', async () => {
    const file = path.join(home, 'alice', '.google_authenticator');
    const r = await cli(['import', 'google-authenticator', '--address', 'alice@example.org', '--apply', file]);
    assert.equal(r.code, 65);
    assert.match(r.stderr, /alice@example\.org: already has an active TOTP secret; nothing was imported/);
    googleAuthenticator(file, ['-t', '-d', '-r', '3', '-R', '30', '-w', '3', '-e', '3']);
    const rep = JSON.parse((await cli(['--json', 'import', 'google-authenticator', '--address', 'alice@example.org', '--apply', '--replace', file])).stdout) as Report;
    assert.deepEqual([rep.accepted, rep.mailboxes[0]?.replaced, rep.mailboxes[0]?.recoveryCodes], [1, true, 3]);
    const v = await verify('alice@example.org', oathtool(contents(file).secret));
    assert.deepEqual([v.result, v.reason], ['allow', 'code-valid'], 'the new secret is in use');
  });

  it('no output, log or audit line holds a secret or a scratch code', () => {
    const secrets = ['alice', 'bob', 'carol', 'dave', 'erin'].flatMap((u) => {
      const c = contents(path.join(home, u, '.google_authenticator'));
      return [c.secret, ...c.scratch];
    });
    const logs = readdirSync(d.dataDir)
      .filter((f) => f.startsWith('audit'))
      .map((f) => readFileSync(path.join(d.dataDir, f), 'utf8'));
    const store = readFileSync(path.join(d.dataDir, 'memfa.json'), 'utf8') + readFileSync(path.join(d.dataDir, 'memfa.json.journal'), 'utf8');
    for (const text of [...outputs.flatMap((o) => [o.stdout, o.stderr]), d.log(), ...logs, store]) {
      for (const s of secrets) assert.ok(!text.includes(s), 'a secret or scratch code was printed or stored in plain text');
    }
    assert.ok(outputs.length > 5 && secrets.length > 20);
  });
});

describe('memfa import csv', { skip }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { defaults: { challenge: 'always' } } });
  });
  after(() => d.cleanup());

  it('reports each bad line, imports the good ones with --apply; the dry run changes nothing', async () => {
    const s = () => toBase32(randomBytes(20));
    const good = { ann: s(), ben: s(), cat: s() };
    const swapped = s();
    const csv = [
      '# exported from the old MFA server',
      'address,secret,phone,altEmail',
      `ann@example.org,${good.ann},+1 201 555 0123,ann.private@example.net`,
      `Ben@Example.org,"${good.ben.toLowerCase()}",,`,
      `not-an-address,${s()}`,
      `${swapped},dan@example.org`,
      `eve@example.org,${s()},${s()}`,
      `fay@example.org,${good.ann.slice(0, 10)}`,
      `gus@example.org,"unterminated`,
      `ann@example.org,${s()}`,
      `hal@example.org`,
      '',
      `cat@example.org,${good.cat}`,
    ].join('\n');
    await writeFile(path.join(d.dir, 'in.csv'), csv);
    const file = path.join(d.dir, 'in.csv');
    const dry = await d.cli(['import', 'csv', file]);
    assert.equal(dry.code, 65, dry.stderr);
    assert.match(dry.stdout, /^dry run: 3 mailboxes would be imported, 7 refused/);
    const show = async (a: string) => JSON.parse((await d.cli(['--json', 'mailbox', 'show', a])).stdout) as { stored: boolean; totp: string; phone: string | null; altEmail: string | null };
    assert.equal((await show('ann@example.org')).stored, false, 'the dry run stored nothing');

    const r = await d.cli(['import', 'csv', '--apply', file]);
    assert.equal(r.code, 65);
    assert.match(r.stdout, /^imported 3 mailboxes, 7 refused\n$/);
    const lines = r.stderr.split('\n').filter(Boolean);
    const at = (n: number) => lines.find((l) => l.startsWith(`${file}:${n}: `));
    assert.equal(lines.length, 7, r.stderr);
    assert.equal(at(5), `${file}:5: address: not a valid mailbox address (local@domain)`);
    assert.equal(at(6), `${file}:6: address: not a valid mailbox address (local@domain)`, 'swapped columns: the secret is not echoed');
    assert.equal(at(7), `${file}:7: eve@example.org: phone: not an E.164 number that can receive SMS ('+', the country code, the number)`);
    assert.equal(at(8), `${file}:8: fay@example.org: secret: must be 80 to 1024 bits (it has 48)`);
    assert.equal(at(9), `${file}:9: a quote is not closed, or is followed by more than a comma`);
    assert.equal(at(10), `${file}:10: ann@example.org: already in this import (${file}:3); not imported twice`);
    assert.equal(at(11), `${file}:11: hal@example.org: the secret is missing`);
    assert.ok(!r.stderr.includes(swapped) && !dry.stderr.includes(swapped));

    const ann = await show('ann@example.org');
    assert.deepEqual([ann.totp, ann.phone, ann.altEmail], ['active', '+12015550123', 'ann.private@example.net']);
    for (const [user, secret] of [['ann@example.org', good.ann], ['ben@example.org', good.ben], ['cat@example.org', good.cat]] as const) {
      const v = await d.cli(['--json', 'verify', '--user', user, '--ip', GB, '--code-stdin'], { stdin: oathtool(secret) });
      assert.equal(v.code, 0, `${user}: ${v.stdout}`);
    }
  });

  it('a progress bar on a terminal, on standard error; none with --json', { skip: have('script') ? false : 'script(1) is not installed' }, async () => {
    const file = path.join(d.dir, 'progress.csv');
    await writeFile(file, Array.from({ length: 5 }, (_, i) => `p${i}@example.org,${toBase32(randomBytes(20))}`).join('\n'));
    const run = (args: string) =>
      spawnSync('script', ['-q', '-e', '-c', `"${process.execPath}" "${BIN}" ${args} 2>&1 >/dev/null`, '/dev/null'], {
        encoding: 'utf8',
        env: { ...process.env, MEMFA_CONFIG: d.configFile, NO_COLOR: '1' },
      });
    const tty = run(`import csv "${file}"`);
    assert.equal(tty.status, 0, tty.stdout);
    assert.match(tty.stdout, /\r\[#{30}\] 5\/5/, 'the bar reaches 5/5');
    assert.match(tty.stdout, /\r\x1b\[2K/, 'and is wiped');
    const json = run(`--json import csv "${file}"`);
    assert.doesNotMatch(json.stdout, /\[#/);
  });
});

describe('mailbox.import over the protocol', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());
  const secret = toBase32(randomBytes(20));
  const error = async (params: Record<string, unknown>, socket = d.adminSocket) => {
    const r = await rpc(socket, 'mailbox.import', { address: 'p@example.org', secret, ...params });
    assert.ok(r['error'], JSON.stringify(r));
    return r['error'].data as { code: string; param?: string } & Record<string, unknown>;
  };

  it('is on the admin socket only, not delegable', async () => {
    assert.equal((await error({}, d.hookSocket)).code, 'METHOD_NOT_ALLOWED');
    assert.equal((await error({}, d.selfSocket)).code, 'METHOD_NOT_ALLOWED');
  });

  it('refuses what the configured TOTP cannot honour, and bad values, naming the parameter and never the value', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ period: 60 }, 'period', /^period: the secret's codes change every 60 s, memfa's every 30 s/],
      [{ digits: 8 }, 'digits', /^digits: the secret's codes have 8 digits, memfa's 6/],
      [{ algorithm: 'SHA256' }, 'algorithm', /^algorithm: the secret's codes use SHA256, memfa's SHA1/],
      [{ recoveryCodes: ['12345678', 'not-a-code'] }, 'recoveryCodes[1]', /^recoveryCodes\[1\]: neither a memfa recovery code nor an 8-digit scratch code$/],
      [{ secret: `${secret}!` }, 'secret', /^secret: not a valid base32 string$/],
      [{ phone: secret }, 'phone', /^phone: not an E\.164 number/],
      [{ altEmail: 'p@example.org' }, 'altEmail', /^altEmail: not a valid address, or the mailbox itself$/],
      [{ address: secret }, 'address', /^address: not a valid mailbox address/],
    ];
    for (const [params, param, message] of cases) {
      const r = await rpc(d.adminSocket, 'mailbox.import', { address: 'p@example.org', secret, ...params });
      const e = r['error'] as { message: string; data: { code: string; param: string } };
      assert.equal(e.data.code, 'INVALID_PARAMS', JSON.stringify(params));
      assert.equal(e.data.param, param);
      assert.match(e.message, message);
      assert.ok(!e.message.includes(secret) && !e.message.includes('not-a-code'), `no value in: ${e.message}`);
    }
    const m = JSON.parse((await d.cli(['--json', 'mailbox', 'show', 'p@example.org'])).stdout) as { stored: boolean };
    assert.equal(m.stored, false, 'nothing was stored by the refusals');
  });

  it('keeps the recovery codes and settings it is not given, and clears a pending enrolment', async () => {
    assert.equal((await d.cli(['mailbox', 'set', 'q@example.org', '--phone', '+12015550156'])).code, 0);
    const codes = JSON.parse((await d.cli(['--json', 'recovery-codes', 'q@example.org'])).stdout) as { codes: string[] };
    assert.equal((await d.cli(['--json', 'enroll', 'q@example.org'])).code, 0, 'a pending enrolment');
    const r = await rpc(d.adminSocket, 'mailbox.import', { address: 'Q@example.org', secret });
    assert.deepEqual(r['result'], { address: 'q@example.org', dryRun: false, created: false, replaced: false, recoveryCodes: null });
    const q = JSON.parse((await d.cli(['--json', 'mailbox', 'show', 'q@example.org'])).stdout) as { totp: string; phone: string; recoveryCodesLeft: number };
    assert.deepEqual([q.totp, q.phone, q.recoveryCodesLeft], ['active', '+12015550156', codes.codes.length]);
  });
});
