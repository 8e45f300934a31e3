// The interactive half of TOTP enrolment: showing the pending secret (as a QR code on a terminal)
// and reading the first code from the app.
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

export async function askCode(): Promise<string> {
  if (process.stdin.isTTY) {
    const { input } = await import('@inquirer/prompts');
    return input({ message: 'Code from the authenticator app:', validate: (v) => (/^\s*\d{6,8}\s*$/.test(v) ? true : 'enter the 6 to 8 digits the app shows') });
  }
  // Not a terminal: read one line, so that scripts can pipe the code in.
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    if (Buffer.concat(chunks).includes(0x0a) || Buffer.concat(chunks).length > 256) break;
  }
  const line = Buffer.concat(chunks).toString('utf8').split('\n')[0]?.trim() ?? '';
  if (line === '') throw usage('enroll: no code given on standard input (or use --no-confirm)');
  return line;
}
