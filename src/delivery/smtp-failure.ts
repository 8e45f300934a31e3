// nodemailer's errors as DELIVERY_FAILED: what went wrong (the server's reply and code,
// nodemailer's code, the command), with no secret in it. A server's reply may quote what it was sent.

import type { NodemailerError } from 'nodemailer';
import { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError, redact } from './common.js';

export interface SmtpFailureContext {
  host: string;
  port: number;
  /** What an aborted operation (code EABORT) was, for its message: 'delivery' or 'check'. */
  operation: 'delivery' | 'check';
  /** The deadline that aborted it. */
  deadlineMs: number;
}

export function smtpFailure(err: unknown, ctx: SmtpFailureContext, secrets: ReadonlyArray<string | undefined>): MemfaError {
  if (err instanceof MemfaError) return err;
  const e = (err ?? {}) as NodemailerError;
  const data: Record<string, unknown> = { transport: 'smtp' };
  if (typeof e.code === 'string') data.smtpError = e.code;
  if (typeof e.responseCode === 'number') data.smtpResponseCode = e.responseCode;
  if (typeof e.command === 'string') data.smtpCommand = redact(e.command, secrets);
  if (typeof e.permanent === 'boolean') data.permanent = e.permanent;
  if (typeof e.originalCode === 'string') data.cause = e.originalCode;

  const what = `SMTP ${ctx.operation === 'check' ? 'check of' : 'delivery to'} ${ctx.host}:${ctx.port}`;
  let message: string;
  if (e.code === 'EABORT') {
    message = `${what} timed out after ${ctx.deadlineMs} ms`;
  } else if (typeof e.response === 'string' && typeof e.responseCode === 'number') {
    const reply = describeError(new Error(e.response), secrets);
    const step = typeof e.command === 'string' ? redact(e.command, secrets) : 'the message';
    message = `SMTP server refused ${step}: ${reply} (${e.code ?? 'SMTP'})`;
  } else {
    message = `${what} failed: ${e.code ?? 'error'} ${describeError(err, secrets)}`;
  }
  return deliveryFailed('email', message, data, err);
}
