// The interactive half of TOTP enrolment and of proving a factor: showing the pending secret (as
// a QR code on a terminal) and reading codes from a prompt or standard input (never argv).
import type { ChalkInstance } from 'chalk';
import type { EnrolResult } from '../protocol/results.js';
import { formatEnrolment } from './format.js';
import { out, usage } from './io.js';

/** `pending`: false when the secret is activated at once, so it has no pending period to show. */
export async function showEnrolment(e: EnrolResult, c: ChalkInstance, pending = true): Promise<void> {
  if (process.stdout.isTTY) {
    const { printQr } = await import('./qr.js');
    await printQr(e.otpauthUri);
  }
  out(formatEnrolment(e, c, pending));
}

/** One line of standard input (at most 256 bytes are read), trimmed; USAGE when there is none. */
async function readLine(what: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    if (Buffer.concat(chunks).includes(0x0a) || Buffer.concat(chunks).length > 256) break;
  }
  const line = Buffer.concat(chunks).toString('utf8').split('\n')[0]?.trim() ?? '';
  if (line === '') throw usage(`${what}: no code given on standard input`);
  return line;
}

/** The code of a new TOTP secret, from a prompt on a terminal, else one line of standard input. */
export async function askCode(): Promise<string> {
  if (process.stdin.isTTY) {
    const { input } = await import('@inquirer/prompts');
    return input({ message: 'Code from the authenticator app:', validate: (v) => (/^\s*\d{6,8}\s*$/.test(v) ? true : 'enter the 6 to 8 digits the app shows') });
  }
  // Not a terminal: read one line, so that scripts can pipe the code in.
  return readLine('enroll (or use --no-confirm)');
}

/**
 * Proof of the current factor (a TOTP code, a code sent to the phone or alternate address, or a
 * recovery code): from a masked prompt on a terminal, else one line of standard input.
 */
export async function askCurrentCode(): Promise<string> {
  if (process.stdin.isTTY) {
    const { password } = await import('@inquirer/prompts');
    return password({ message: 'Current code (from the app, the code sent to you, or a recovery code):', mask: true });
  }
  return readLine('--current-code-stdin');
}
