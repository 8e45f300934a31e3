// memfa import google-authenticator, memfa import csv: TOTP secrets from other MFA tools. The files
// are read and checked here, line by line; each mailbox then goes through the daemon
// (mailbox.import), as a dry run unless --apply is given.
import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { normaliseDomain } from '../../core/validate.js';
import { EXIT, MemfaError } from '../../protocol/errors.js';
import type { Cli } from '../context.js';
import { parseCsv } from '../import/csv.js';
import { findGoogleAuthenticatorFiles, GA_FILE_NAME, mailboxOf, MAX_GA_FILE_BYTES, parseGoogleAuthenticatorFile } from '../import/google-authenticator.js';
import { Progress } from '../import/progress.js';
import { formatProblems, formatSummary, runImport, shownAddress, type ImportEntry, type ImportProblem } from '../import/run.js';
import { out, printJson, usage } from '../io.js';

interface ApplyFlags {
  apply?: boolean;
  replace?: boolean;
}

const MAX_CSV_BYTES = 64 * 1024 * 1024;

/** Why a file could not be read: its errno, or what readBounded refused. */
function readProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code ?? (err as Error)?.message ?? 'EIO';
}

async function readBounded(file: string, max: number): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw new Error(`more than ${max} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  const info = await stat(file);
  if (!info.isFile()) throw new Error('not a regular file');
  if (info.size > max) throw new Error(`larger than ${max} bytes`);
  return readFile(file, 'utf8');
}

async function googleAuthenticatorEntries(paths: string[], f: { domain?: string; address?: string }): Promise<{ entries: ImportEntry[]; problems: ImportProblem[] }> {
  const domain = f.domain === undefined ? undefined : normaliseDomain(f.domain, 'domain');
  const { files, problems: found } = await findGoogleAuthenticatorFiles(paths);
  const problems: ImportProblem[] = found.map((p) => ({ ...p, address: null }));
  if (f.address !== undefined && (paths.length !== 1 || files.length > 1)) throw usage('--address names the mailbox of one file; give one file, or --domain for many');
  const entries: ImportEntry[] = [];
  for (const file of files) {
    const given = f.address ?? mailboxOf(file, domain);
    if (given === null) {
      const name = file.endsWith(GA_FILE_NAME) ? 'its directory' : 'the file';
      problems.push({ source: file, address: null, problem: `cannot tell the mailbox from the name of ${name}: give --domain DOMAIN (or --address for one file)` });
      continue;
    }
    const address = shownAddress(given);
    let text: string;
    try {
      text = await readBounded(file, MAX_GA_FILE_BYTES);
    } catch (err) {
      problems.push({ source: file, address, problem: `cannot be read (${readProblem(err)})` });
      continue;
    }
    const parsed = parseGoogleAuthenticatorFile(text);
    if (parsed.file === null) {
      for (const p of parsed.problems) problems.push({ source: p.line === null ? file : `${file}:${p.line}`, address, problem: p.problem });
      continue;
    }
    const g = parsed.file;
    entries.push({
      source: file,
      // libpam-google-authenticator's codes are always 6 digits of HMAC-SHA1.
      // Without scratch codes the mailbox's recovery codes are left as they are.
      params: { address: given, secret: g.secret, ...(g.scratchCodes.length > 0 ? { recoveryCodes: g.scratchCodes } : {}), period: g.period, digits: 6, algorithm: 'SHA1' },
      notes: g.notes,
    });
  }
  return { entries, problems };
}

async function csvEntries(file: string): Promise<{ entries: ImportEntry[]; problems: ImportProblem[] }> {
  const name = file === '-' ? '(stdin)' : file;
  let text: string;
  try {
    text = await readBounded(file, MAX_CSV_BYTES);
  } catch (err) {
    throw new MemfaError('USAGE', `import csv: ${name} cannot be read (${readProblem(err)})`, { hint: 'see memfa import csv --help' });
  }
  const { rows, problems: found } = parseCsv(text);
  const problems: ImportProblem[] = found.map((p) => ({ source: `${name}:${p.line}`, address: null, problem: p.problem }));
  const entries: ImportEntry[] = [];
  for (const row of rows) {
    const source = `${name}:${row.line}`;
    const v = row.values;
    if (v.address === undefined || v.secret === undefined) {
      problems.push({ source, address: shownAddress(v.address), problem: v.address === undefined ? 'the address is missing' : 'the secret is missing' });
      continue;
    }
    entries.push({
      source,
      params: { address: v.address, secret: v.secret, ...(v.phone !== undefined ? { phone: v.phone } : {}), ...(v.altEmail !== undefined ? { altEmail: v.altEmail } : {}) },
      notes: [],
    });
  }
  return { entries, problems };
}

async function run(cli: Cli, load: () => Promise<{ entries: ImportEntry[]; problems: ImportProblem[] }>, f: ApplyFlags): Promise<void> {
  const json = cli.opts().json === true;
  const { entries, problems } = await load();
  const progress = new Progress(entries.length, process.stderr, !json && process.stderr.isTTY === true);
  const { report, stopped } = await runImport((params) => cli.call('mailbox.import', params), entries, problems, { apply: f.apply === true, replace: f.replace === true }, progress);
  if (json) {
    // One document whatever happened, with what was done before a stop.
    printJson({ ...report, ...(stopped !== null ? { stopped: { code: stopped.code, message: stopped.message } } : {}) });
    process.exitCode = stopped !== null ? stopped.exitCode : report.refused > 0 ? EXIT.DATAERR : 0;
    return;
  }
  // Nothing done before the daemon failed: its error alone says it.
  if (stopped !== null && report.mailboxes.length === 0) throw stopped;
  for (const line of formatProblems(report)) process.stderr.write(`${line}\n`);
  out(formatSummary(report, cli.chalk()));
  if (stopped !== null) throw stopped;
  if (report.refused > 0) process.exitCode = EXIT.DATAERR;
}

const APPLY_HELP = `
Without --apply nothing is written: the daemon checks every mailbox as it would import it and
the report says what would happen. Refused lines are listed on standard error as
SOURCE: ADDRESS: PROBLEM, never with a secret or a code; the exit status is 65 if any was refused.`;

export function registerImport(program: Command, cli: Cli): void {
  const imp = program.command('import').description('bring TOTP secrets over from other MFA tools (a dry run unless --apply)');
  imp
    .command('google-authenticator')
    .argument('<paths...>', `${GA_FILE_NAME} files, or directories of them (e.g. /home)`)
    .description('import the ~/.google_authenticator files of libpam-google-authenticator (scratch codes become recovery codes)')
    .option('--domain <domain>', 'the domain of mailboxes named by a user name (alice -> alice@DOMAIN)')
    .option('--address <address>', 'the mailbox of the one file given')
    .option('--apply', 'write: import every mailbox that passes the checks')
    .option('--replace', 'overwrite an active TOTP secret (otherwise such a mailbox is refused)')
    .addHelpText(
      'after',
      `\nThe mailbox of DIR/NAME/${GA_FILE_NAME} is NAME, of any other file its name; NAME is taken as\nit is when it contains @, else NAME@DOMAIN. HOTP files, and files whose STEP_SIZE is not\ntotp.period, are refused.${APPLY_HELP}`,
    )
    .action((paths: string[], f: ApplyFlags & { domain?: string; address?: string }) => run(cli, () => googleAuthenticatorEntries(paths, f), f));
  imp
    .command('csv')
    .argument('<file>', 'the CSV file, or - for standard input')
    .description('import mailboxes from CSV: address, secret (base32)[, phone, alternate address]')
    .option('--apply', 'write: import every line that passes the checks')
    .option('--replace', 'overwrite an active TOTP secret (otherwise such a line is refused)')
    .addHelpText('after', `\nA first line naming the columns (address, secret, phone, altEmail) is a header and sets their\norder. Blank lines and lines starting with # are skipped.${APPLY_HELP}`)
    .action((file: string, f: ApplyFlags) => run(cli, () => csvEntries(file), f));
}
