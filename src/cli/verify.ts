// `memfa verify`: the login hook's command. It runs on every login, so it is parsed with
// node:util instead of commander and touches no colour, prompt or QR module unless a terminal
// needs one.
import { parseArgs } from 'node:util';
import { call } from '../client/call.js';
import { count } from '../core/wording.js';
import { EXIT } from '../protocol/errors.js';
import type { VerifyResult } from '../protocol/results.js';
import { out, printJson, reportError, socketFor, usage, type GlobalOptions } from './io.js';

export const VERIFY_HELP = `Usage: memfa verify --user ADDRESS --ip IP
                   [--code CODE | --code-stdin | --no-send] [--json]

Asks the daemon whether a login needs a second factor, or checks the factor.

Options:
  --user ADDRESS     the mailbox logging in
  --ip IP            the client address of the login (IPv4-mapped IPv6 is read
                     as IPv4)
  --code CODE        a one-time code the user typed (visible in the process
                     list: prefer --code-stdin)
  --code-stdin       read the code from standard input (a trailing newline or
                     NUL is ignored)
  --no-send          decide only: never send a code, create a pending
                     enrolment or count anything (for hooks that cannot
                     answer a challenge; a challenge or enroll is a refusal)
  --json             print one JSON object: result, reason, provider, user, ip,
                     country, and where relevant otpauthUri, destination,
                     expiresAt, sent, resent, retryAfter, recoveryCodesLeft,
                     graceLoginsLeft, graceUntil
  --socket PATH      the hook socket (default: from the configuration)
  --config FILE      configuration file (default: $MEMFA_CONFIG,
                     /etc/memfa/memfa.json, shipped default)
  --run-dir DIR      the daemon's socket directory (default: from the
                     configuration)
  --data-dir DIR     accepted like the other commands' global option; verify
                     does not use it
  --token-file FILE  accepted like the other commands' global option; verify
                     needs no token and does not read it
  --no-color         no colour (also NO_COLOR, and whenever stdout is not a
                     terminal)
  -V, --version      print the version
  -h, --help         print this help

These options may come before or after the word verify.

Exit status: 0 allow, 1 deny, 2 challenge, 3 enroll, 64 usage, 69 daemon
unavailable, 75 temporary failure (e.g. delivery-failed), 78 no provider can
give the mailbox its factor (provider-unusable: a configuration error, do not
retry). See man memfa for every reason.
`;

const EXIT_FOR: Record<VerifyResult['result'], number> = { allow: EXIT.ALLOW, deny: EXIT.DENY, challenge: EXIT.CHALLENGE, enroll: EXIT.ENROLL };
const MAX_STDIN = 1024;

async function readCodeFromStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN) throw usage('--code-stdin: more than 1024 bytes on standard input');
    chunks.push(chunk);
  }
  // pam_exec with expose_authtok sends the token followed by a NUL; echo adds a newline.
  return Buffer.concat(chunks).toString('utf8').replace(/[\r\n\0]+$/, '');
}

export async function runVerify(argv: string[]): Promise<number> {
  let values: {
    user?: string;
    ip?: string;
    code?: string;
    'code-stdin'?: boolean;
    'no-send'?: boolean;
    json?: boolean;
    socket?: string;
    config?: string;
    'data-dir'?: string;
    'run-dir'?: string;
    'token-file'?: string;
    'no-color'?: boolean;
    version?: boolean;
    help?: boolean;
  };
  try {
    values = parseArgs({
      args: argv,
      options: {
        user: { type: 'string' },
        ip: { type: 'string' },
        code: { type: 'string' },
        'code-stdin': { type: 'boolean' },
        'no-send': { type: 'boolean' },
        json: { type: 'boolean' },
        socket: { type: 'string' },
        config: { type: 'string' },
        'data-dir': { type: 'string' },
        'run-dir': { type: 'string' },
        // Every global option of memfa(1) is accepted, before or after the word verify (main.ts
        // moves those before it here); test/docs.test.ts holds the two lists together.
        'token-file': { type: 'string' },
        'no-color': { type: 'boolean' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    return reportError(usage(`verify: ${(err as Error).message}`), { json: argv.includes('--json') });
  }
  const opts: GlobalOptions = { json: values.json, socket: values.socket, config: values.config, dataDir: values['data-dir'], runDir: values['run-dir'], color: values['no-color'] ? false : undefined };
  if (values.help) {
    out(VERIFY_HELP);
    return 0;
  }
  if (values.version) {
    const { VERSION } = await import('../version.js');
    out(VERSION);
    return 0;
  }
  try {
    if (!values.user) throw usage('verify: --user ADDRESS is required');
    if (!values.ip) throw usage('verify: --ip IP is required');
    if (values.code !== undefined && values['code-stdin']) throw usage('verify: give --code or --code-stdin, not both');
    if (values['no-send'] && (values.code !== undefined || values['code-stdin'])) throw usage('verify: --no-send decides without a code; give no --code or --code-stdin with it');
    const code = values['code-stdin'] ? await readCodeFromStdin() : values.code;
    const params = code === undefined ? { user: values.user, ip: values.ip, ...(values['no-send'] ? { send: false } : {}) } : { user: values.user, ip: values.ip, code };
    const result = await call(socketFor(opts, 'hook'), 'verify', params);
    if (opts.json) printJson(result);
    else await printHuman(result);
    return EXIT_FOR[result.result];
  } catch (err) {
    return reportError(err, opts);
  }
}

async function printHuman(r: VerifyResult): Promise<void> {
  const parts = [`${r.result} (${r.reason})`, `provider ${r.provider}`];
  const held = r.result === 'challenge' && r.sent === false;
  if (r.destination) parts.push(held ? `code sent before to ${r.destination}, not sent again` : `code ${r.resent ? 'sent again' : 'sent'} to ${r.destination}`);
  if (r.expiresAt) parts.push(`expires ${new Date(r.expiresAt).toISOString()}`);
  if (r.retryAfter) parts.push(held ? `another send allowed in ${r.retryAfter} s` : `retry in ${r.retryAfter} s`);
  if (r.recoveryCodesLeft !== undefined) parts.push(`${count(r.recoveryCodesLeft, 'recovery code', 'recovery codes')} left`);
  if (r.graceLoginsLeft !== undefined) parts.push(`${count(r.graceLoginsLeft, 'grace login', 'grace logins')} left`);
  if (r.graceUntil !== undefined) parts.push(`grace until ${new Date(r.graceUntil).toISOString()}`);
  out(parts.join('; '));
  // An enrolment grace lets the login in and offers the enrolment all the same.
  if (r.otpauthUri) {
    if (process.stdout.isTTY) {
      const { printQr } = await import('./qr.js');
      await printQr(r.otpauthUri);
    }
    out(r.otpauthUri);
  }
}
