// Builds the code senders the configuration asks for. Gateways are checked at start-up and the
// result logged; an unreachable gateway does not stop the daemon (TOTP logins must keep working).
import type { MemfaConfig } from '../config/types.js';
import { createLogSender } from '../delivery/log.js';
import { createSmppSender } from '../delivery/sms.js';
import { createSmtpSender } from '../delivery/smtp.js';
import { DEFAULT_SMS_TEMPLATE, DEFAULT_SMTP_TEMPLATES, type Sender } from '../delivery/types.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import type { Logger } from './logger.js';
import { assertTemplates } from './preflight.js';

export function createSenders(config: MemfaConfig, log: Logger): Partial<Record<CodeProvider, Sender>> {
  // Shared with `memfa config check` (preflight.ts); smpp.dataCoding is the validator's (spec.ts).
  assertTemplates(config);
  const senders: Partial<Record<CodeProvider, Sender>> = {};
  const email = config.providers.email;
  if (email.transport === 'log') senders.email = createLogSender('email', config.logTransport);
  else if (config.smtp !== null) {
    const s = config.smtp;
    senders.email = createSmtpSender(
      {
        host: s.host,
        port: s.port,
        secure: s.secure,
        rejectUnauthorized: s.rejectUnauthorized,
        ...(s.user !== null ? { auth: { user: s.user, ...(s.passwordFile !== null ? { passFile: s.passwordFile } : {}) } } : {}),
        from: s.from,
        pool: s.pool,
        maxConnections: s.maxConnections,
        timeoutMs: s.timeoutMs,
        subject: s.subject ?? DEFAULT_SMTP_TEMPLATES.subject,
        text: s.text ?? DEFAULT_SMTP_TEMPLATES.text,
        html: s.html ?? DEFAULT_SMTP_TEMPLATES.html,
      },
      log,
    );
  }
  const sms = config.providers.sms;
  if (sms.transport === 'log') senders.sms = createLogSender('sms', config.logTransport);
  else if (config.smpp !== null) {
    const s = config.smpp;
    senders.sms = createSmppSender(
      {
        host: s.host,
        port: s.port,
        tls: s.tls,
        rejectUnauthorized: s.rejectUnauthorized,
        systemId: s.systemId,
        ...(s.passwordFile !== null ? { passwordFile: s.passwordFile } : {}),
        systemType: s.systemType,
        bindMode: s.bindMode,
        sourceAddr: s.sourceAddr,
        sourceTon: s.sourceTon,
        sourceNpi: s.sourceNpi,
        destTon: s.destTon,
        destNpi: s.destNpi,
        dataCoding: s.dataCoding,
        enquireLinkMs: s.enquireLinkMs,
        connectTimeoutMs: s.connectTimeoutMs,
        submitTimeoutMs: s.submitTimeoutMs,
        reconnect: { initialMs: s.reconnectInitialMs, maxMs: s.reconnectMaxMs },
        template: s.template ?? DEFAULT_SMS_TEMPLATE,
      },
      log,
    );
  }
  for (const [provider, sender] of Object.entries(senders)) {
    if (sender.transport === 'log') log.warn('insecure-transport', { provider, file: config.logTransport.file, why: 'the log transport writes codes in plain text; for development only' });
  }
  return senders;
}

/** Start-up check of every gateway: logged, never fatal. */
export function checkSenders(senders: Partial<Record<CodeProvider, Sender>>, log: Logger): void {
  for (const [provider, sender] of Object.entries(senders)) {
    void sender.check().then((r) =>
      r.ok ? log.info('gateway-ok', { provider, transport: sender.transport }) : log.warn('gateway-unreachable', { provider, transport: sender.transport, error: r.error }),
    );
  }
}
