// The ~/.google_authenticator files of libpam-google-authenticator: where they are, whose they
// are, and what is in them. Line 1 is the base32 secret; lines starting with '" ' are options;
// the rest are 8-digit scratch codes, which memfa keeps as recovery codes.
//
// memfa is TOTP with one period, digit count and algorithm for everyone (totp.* in memfa.conf):
// a counter-based (HOTP) file cannot be imported, and a STEP_SIZE other than the configured period
// is passed on for the daemon to refuse (the user's app would show codes memfa does not accept).
// Options that only tune the old checks (window, rate limit, reuse) are left behind: memfa's own
// apply. No problem text ever contains the secret or a code.
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fromBase32 } from '../../core/totp.js';
import { asScratchCode } from '../../services/recovery.js';

export const GA_FILE_NAME = '.google_authenticator';
/** The PAM module refuses larger files too. */
export const MAX_GA_FILE_BYTES = 64 * 1024;

/** Options that tune the old module's checks; memfa's lockout, window and replay rule replace them. */
const LEFT_BEHIND = new Set(['WINDOW_SIZE', 'RATE_LIMIT', 'DISALLOW_REUSE', 'RESETTING_TIME_SKEW']);

export interface GaFile {
  secret: string;
  scratchCodes: string[];
  /** STEP_SIZE, or the module's default of 30 s. */
  period: number;
  notes: string[];
}

export interface LineProblem {
  /** 1-based; null for the file as a whole. */
  line: number | null;
  problem: string;
}

export function parseGoogleAuthenticatorFile(text: string): { file: GaFile | null; problems: LineProblem[] } {
  const problems: LineProblem[] = [];
  if (text.includes('\0')) return { file: null, problems: [{ line: null, problem: 'not a google-authenticator file (it holds NUL bytes)' }] };
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const secret = (lines[0] ?? '').trim();
  let secretOk = secret !== '' && /^[A-Za-z2-7]+=*$/.test(secret);
  if (secretOk) {
    try {
      fromBase32(secret);
    } catch {
      secretOk = false;
    }
  }
  if (!secretOk) problems.push({ line: 1, problem: 'the first line is not a base32 secret' });
  let totpLine: number | null = null;
  let hotpLine: number | null = null;
  let period = 30;
  const scratchCodes: string[] = [];
  const notes: string[] = [];
  for (const [i, line] of lines.entries()) {
    if (i === 0 || line.trim() === '') continue;
    const n = i + 1;
    if (line.startsWith('"')) {
      const m = /^" ([A-Z_]{1,64})(?:[ \t]+(.*))?$/.exec(line);
      if (m === null) {
        problems.push({ line: n, problem: 'an option line that is not "\\" NAME [VALUE]"' });
        continue;
      }
      const [, name, value = ''] = m as unknown as [string, string, string | undefined];
      if (name === 'TOTP_AUTH') totpLine = n;
      else if (name === 'HOTP_COUNTER') hotpLine = n;
      else if (name === 'STEP_SIZE') {
        const step = /^\d{1,2}$/.test(value.trim()) ? Number(value.trim()) : NaN;
        if (!(step >= 1 && step <= 60)) problems.push({ line: n, problem: 'STEP_SIZE: not a whole number of seconds from 1 to 60' });
        else period = step;
      } else if (name === 'TIME_SKEW') {
        const skew = Number(value.trim());
        if (Number.isInteger(skew) && skew !== 0) notes.push(`TIME_SKEW ${skew}: the phone's clock was ${Math.abs(skew)} steps off for the old system; memfa accepts only totp.window steps either side, so set the phone's clock if codes fail`);
      } else if (!LEFT_BEHIND.has(name)) problems.push({ line: n, problem: `unknown option ${name}; not imported, since it may change how codes are checked` });
      continue;
    }
    const code = asScratchCode(line);
    if (code === null) problems.push({ line: n, problem: 'neither an option nor an 8-digit scratch code' });
    else scratchCodes.push(code);
  }
  if (hotpLine !== null) problems.push({ line: hotpLine, problem: 'HOTP_COUNTER: a counter-based (HOTP) secret; memfa has TOTP only, so the user must enrol again (memfa enroll)' });
  else if (totpLine === null) problems.push({ line: null, problem: 'no TOTP_AUTH line: not a time-based secret' });
  if (problems.length > 0) return { file: null, problems };
  return { file: { secret, scratchCodes, period, notes }, problems };
}

/**
 * The mailbox a file belongs to: the name of the file, or of its directory when the file is
 * ~/.google_authenticator, taken as it is when it is an address (secret=/dir/${USER} with full
 * addresses as user names), else with @DOMAIN added. null when that cannot be told.
 */
export function mailboxOf(file: string, domain: string | undefined): string | null {
  const base = path.basename(file);
  const name = base === GA_FILE_NAME ? path.basename(path.dirname(path.resolve(file))) : base;
  if (name.includes('@')) return name;
  return domain === undefined || name === '' ? null : `${name}@${domain}`;
}

/**
 * The files named by `paths`: a file as it is; in a directory, its own .google_authenticator,
 * each subdirectory's (a directory of home directories, e.g. /home), and each regular file not
 * starting with a dot (the secret=/dir/${USER} layout). Symbolic links inside a directory are not
 * followed. Paths that cannot be read are reported.
 */
export async function findGoogleAuthenticatorFiles(paths: string[]): Promise<{ files: string[]; problems: { source: string; problem: string }[] }> {
  const files: string[] = [];
  const problems: { source: string; problem: string }[] = [];
  const isFile = async (p: string) => (await lstat(p).catch(() => null))?.isFile() === true;
  for (const given of paths) {
    const info = await stat(given).catch((err: NodeJS.ErrnoException) => err.code ?? 'EIO');
    if (typeof info === 'string') {
      problems.push({ source: given, problem: info === 'ENOENT' ? 'no such file or directory' : `cannot be read (${info})` });
      continue;
    }
    if (!info.isDirectory()) {
      files.push(given);
      continue;
    }
    const entries = await readdir(given, { withFileTypes: true }).catch((err: NodeJS.ErrnoException) => err.code ?? 'EIO');
    if (typeof entries === 'string') {
      problems.push({ source: given, problem: `cannot be listed (${entries})` });
      continue;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(given, e.name);
      if (e.isFile() && (e.name === GA_FILE_NAME || !e.name.startsWith('.'))) files.push(p);
      else if (e.isDirectory() && (await isFile(path.join(p, GA_FILE_NAME)))) files.push(path.join(p, GA_FILE_NAME));
    }
  }
  return { files, problems };
}
