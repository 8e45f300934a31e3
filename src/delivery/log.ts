// INSECURE development transport: instead of sending, appends each message, code included, as
// one JSON line to a file. For trying memfa out and for tests; anyone who can read the file can
// log in as anyone. The file is created mode 0600 so that at least other users cannot.

import { constants } from 'node:fs';
import { access, appendFile, chmod, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { deliveryFailed, describeError } from './common.js';
import { renderTemplate, templateVars } from './template.js';
import { DEFAULT_SMS_TEMPLATE, DEFAULT_SMTP_TEMPLATES } from './types.js';
import type { CheckResult, LogTransportConfig, OutgoingCode, Provider, Sender, SendResult } from './types.js';

/** One line of the log transport's file. */
export interface LoggedMessage {
  time: string;
  messageId: string;
  provider: Provider;
  kind: OutgoingCode['kind'];
  to: string;
  mailbox: string;
  text: string;
  code?: string;
}

export interface LogSenderTemplates {
  /** Defaults to DEFAULT_SMS_TEMPLATE for sms and DEFAULT_SMTP_TEMPLATES.text for email. */
  text?: string;
}

export function createLogSender(provider: Provider, cfg: LogTransportConfig, templates: LogSenderTemplates = {}): Sender {
  const template = templates.text ?? (provider === 'sms' ? DEFAULT_SMS_TEMPLATE : DEFAULT_SMTP_TEMPLATES.text);
  let closed = false;
  let fileReady: Promise<void> | null = null;

  // appendFile's mode applies only when it creates the file; an existing file keeps its mode,
  // so it is created (or tightened) once, explicitly.
  const ensureFile = async (): Promise<void> => {
    const handle = await open(cfg.file, 'a', 0o600);
    await handle.close();
    if (process.platform !== 'win32') await chmod(cfg.file, 0o600);
  };

  return {
    provider,
    transport: 'log',

    async send(msg: OutgoingCode): Promise<SendResult> {
      if (closed) throw deliveryFailed(provider, 'log sender is closed', { transport: 'log' });
      const line: LoggedMessage = {
        time: new Date().toISOString(),
        messageId: randomUUID(),
        provider,
        kind: msg.kind,
        to: msg.to,
        mailbox: msg.mailbox,
        text: renderTemplate(template, templateVars(msg)),
        ...(msg.code === undefined ? {} : { code: msg.code }),
      };
      try {
        if (fileReady === null) {
          fileReady = ensureFile();
          fileReady.catch(() => {
            fileReady = null;
          });
        }
        await fileReady;
        await appendFile(cfg.file, `${JSON.stringify(line)}\n`, { mode: 0o600 });
      } catch (err) {
        throw deliveryFailed(provider, `cannot append to ${cfg.file}: ${describeError(err, [msg.code])}`, {
          transport: 'log',
          file: cfg.file,
        }, err);
      }
      return { messageId: line.messageId };
    },

    async check(): Promise<CheckResult> {
      if (closed) return { ok: false, error: 'log sender is closed' };
      const denied = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? describeError(err);
      try {
        await access(dirname(cfg.file), constants.W_OK | constants.X_OK);
      } catch (err) {
        return { ok: false, error: `directory of ${cfg.file} is not writable: ${denied(err)}` };
      }
      try {
        await access(cfg.file, constants.W_OK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, error: `${cfg.file} is not writable: ${denied(err)}` };
      }
      return { ok: true };
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
