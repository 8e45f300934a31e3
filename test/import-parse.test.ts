// The readers of memfa import: google-authenticator files (their format as the PAM module reads
// it), where such files are and whose they are, the CSV dialect, and the progress bar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCsv, splitCsvLine } from '../src/cli/import/csv.js';
import { findGoogleAuthenticatorFiles, mailboxOf, parseGoogleAuthenticatorFile } from '../src/cli/import/google-authenticator.js';
import { Progress } from '../src/cli/import/progress.js';
import { makeTempDir } from './helpers/daemon.js';

const SECRET = 'QCSFONY3ZZX5SNONZIAEDPDFKM';

test('google-authenticator file: secret, options, scratch codes', () => {
  const { file, problems } = parseGoogleAuthenticatorFile(`${SECRET}\n" RATE_LIMIT 3 30 1700000000\n" WINDOW_SIZE 17\n" DISALLOW_REUSE 56666666\n" TOTP_AUTH\n54760256\n18328308\n`);
  assert.deepEqual(problems, []);
  assert.deepEqual(file, { secret: SECRET, scratchCodes: ['54760256', '18328308'], period: 30, notes: [] });
  const step = parseGoogleAuthenticatorFile(`${SECRET}\r\n" STEP_SIZE 60\r\n" TOTP_AUTH\r\n" TIME_SKEW -3\r\n`);
  assert.equal(step.file?.period, 60, 'CRLF line ends too');
  assert.match(step.file!.notes[0]!, /^TIME_SKEW -3: the phone's clock was 3 steps off/);
});

test('google-authenticator file: what cannot be imported is refused by line, without its content', () => {
  const problems = (text: string) => parseGoogleAuthenticatorFile(text).problems;
  assert.deepEqual(problems(`${SECRET}\n" RATE_LIMIT 3 30\n" HOTP_COUNTER 1\n90698302\n`), [
    { line: 3, problem: 'HOTP_COUNTER: a counter-based (HOTP) secret; memfa has TOTP only, so the user must enrol again (memfa enroll)' },
  ]);
  assert.deepEqual(problems(`${SECRET}\n90698302\n`), [{ line: null, problem: 'no TOTP_AUTH line: not a time-based secret' }]);
  assert.deepEqual(problems(`${SECRET}\n" TOTP_AUTH\n" FUTURE_THING on\n`), [{ line: 3, problem: 'unknown option FUTURE_THING; not imported, since it may change how codes are checked' }]);
  assert.deepEqual(problems(`${SECRET}\n" TOTP_AUTH\n" STEP_SIZE 90\n`), [{ line: 3, problem: 'STEP_SIZE: not a whole number of seconds from 1 to 60' }]);
  assert.deepEqual(problems(`${SECRET}\n" TOTP_AUTH\n1234567\n0123456789\nhello\n`), [
    { line: 3, problem: 'neither an option nor an 8-digit scratch code' },
    { line: 4, problem: 'neither an option nor an 8-digit scratch code' },
    { line: 5, problem: 'neither an option nor an 8-digit scratch code' },
  ]);
  assert.deepEqual(problems('not base32!\n" TOTP_AUTH\n'), [{ line: 1, problem: 'the first line is not a base32 secret' }]);
  assert.deepEqual(problems(`${SECRET}\0\n`), [{ line: null, problem: 'not a google-authenticator file (it holds NUL bytes)' }]);
  assert.deepEqual(problems(''), [
    { line: 1, problem: 'the first line is not a base32 secret' },
    { line: null, problem: 'no TOTP_AUTH line: not a time-based secret' },
  ]);
  for (const p of problems(`${SECRET}x\n" TOTP_AUTH\n12345\n`)) assert.ok(!p.problem.includes(SECRET) && !p.problem.includes('12345'));
});

test('the mailbox of a file: its name, or its directory\'s for ~/.google_authenticator', () => {
  assert.equal(mailboxOf('/home/alice/.google_authenticator', 'example.org'), 'alice@example.org');
  assert.equal(mailboxOf('/home/alice/.google_authenticator', undefined), null);
  assert.equal(mailboxOf('/var/lib/ga/bob@example.net', 'example.org'), 'bob@example.net');
  assert.equal(mailboxOf('/var/lib/ga/carol', 'example.org'), 'carol@example.org');
});

test('finding the files: home directories, secret=/dir/${USER} files, no symbolic links followed', async (t) => {
  const dir = await makeTempDir();
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'home', 'alice'), { recursive: true });
  await mkdir(path.join(dir, 'home', 'nobody'), { recursive: true });
  await writeFile(path.join(dir, 'home', 'alice', '.google_authenticator'), 'x');
  await mkdir(path.join(dir, 'elsewhere', 'eve'), { recursive: true });
  await writeFile(path.join(dir, 'elsewhere', 'eve', '.google_authenticator'), 'x');
  await symlink(path.join(dir, 'elsewhere', 'eve'), path.join(dir, 'home', 'eve'));
  await mkdir(path.join(dir, 'ga'));
  await writeFile(path.join(dir, 'ga', 'bob@example.net'), 'x');
  await writeFile(path.join(dir, 'ga', '.hidden'), 'x');
  const { files, problems } = await findGoogleAuthenticatorFiles([path.join(dir, 'home'), path.join(dir, 'ga'), path.join(dir, 'missing')]);
  assert.deepEqual(files, [path.join(dir, 'home', 'alice', '.google_authenticator'), path.join(dir, 'ga', 'bob@example.net')]);
  assert.deepEqual(problems, [{ source: path.join(dir, 'missing'), problem: 'no such file or directory' }]);
});

test('CSV: header in any order, quotes, comments; each bad line reported by number', () => {
  assert.deepEqual(splitCsvLine('a,"b,c","d ""q"" e", f '), ['a', 'b,c', 'd "q" e', 'f']);
  assert.equal(splitCsvLine('a,"b'), null);
  assert.equal(splitCsvLine('a,"b"c'), null);
  const { rows, problems } = parseCsv('\uFEFF# comment\nSecret,Address,alt-email\nS1,a@x.org,alt@y.org\n\nS2,b@x.org,,extra\n"S3,c@x.org\n');
  assert.deepEqual(rows, [{ line: 3, values: { secret: 'S1', address: 'a@x.org', altEmail: 'alt@y.org' } }]);
  assert.deepEqual(problems, [
    { line: 5, problem: '4 fields; at most 3 (secret, address, altEmail)' },
    { line: 6, problem: 'a quote is not closed, or is followed by more than a comma' },
  ]);
  const plain = parseCsv('a@x.org,S1,+441234567890\r\nb@x.org,S2\r\n');
  assert.deepEqual(plain.rows.map((r) => r.values), [{ address: 'a@x.org', secret: 'S1', phone: '+441234567890' }, { address: 'b@x.org', secret: 'S2' }]);
  const bad = parseCsv('address,secret,pin\nS1,a@x.org,1\n');
  assert.deepEqual(bad, { rows: [], problems: [{ line: 1, problem: 'header: column 3 has an unknown name (columns: address, secret, phone, altEmail)' }] });
  assert.deepEqual(parseCsv('address,phone\n').problems, [{ line: 1, problem: 'header: no secret column (columns: address, secret, phone, altEmail)' }]);
  assert.equal(parseCsv(`a@x.org,${'S'.repeat(5000)}\n`).problems[0]?.problem, 'longer than 4096 characters');
});

test('progress: drawn on a terminal at most ten times a second and wiped; nothing otherwise', () => {
  const written: string[] = [];
  const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  let now = 1000;
  const p = new Progress(4, stream, true, () => now);
  p.update(0);
  p.update(1); // within 100 ms of the last drawing: skipped
  now += 150;
  p.update(2);
  p.update(4); // the end is always drawn
  p.clear();
  assert.deepEqual(written, [`\r[${'.'.repeat(30)}] 0/4`, `\r[${'#'.repeat(15)}${'.'.repeat(15)}] 2/4`, `\r[${'#'.repeat(30)}] 4/4`, '\r\x1b[2K']);
  const silent: string[] = [];
  const q = new Progress(4, { write: (s: string) => silent.push(s) } as unknown as NodeJS.WriteStream, false);
  q.update(4);
  q.clear();
  assert.deepEqual(silent, []);
});
