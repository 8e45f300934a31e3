// Builds the code senders the configuration asks for. Gateways are checked at start-up and the
// result logged; an unreachable gateway does not stop the daemon (TOTP logins must keep working).
import type { MemfaConfig } from '../config/types.js';
import { createLogSender } from '../delivery/log.js';
import { createSmppSender } from '../delivery/sms.js';
import { createSmtpSender } from '../delivery/smtp.js';
import { DEFAULT_SMS_TEMPLATE, DEFAULT_SMTP_TEMPLATES, type SmppDataCoding, type Sender } from '../delivery/types.js';
import { validateTemplate, TEMPLATE_PLACEHOLDERS } from '../delivery/template.js';
import { MemfaError } from '../protocol/errors.js';
import type { Logger } from './logger.js';

function checkTemplates(templates: [string, string | null][]): void {
  const errors: string[] = [];
  for (const [key, tpl] of templates) {
    if (tpl === null) continue;
    // The subject need not carry the code; every body must.
    for (const problem of validateTemplate(tpl, TEMPLATE_PLACEHOLDERS, key.endsWith('subject') ? [] : ['code'])) errors.push(`${key}: ${problem}`);
  }
  if (errors.length > 0) throw new MemfaError('CONFIG_INVALID', `invalid templates:\n  ${errors.join('\n  ')}`, { data: { errors } });
}

export function createSenders(config: MemfaConfig, log: Logger): Partial<Record<'sms' | 'email', Sender>> {
  const senders: Partial<Record<'sms' | 'email', Sender>> = {};
  const email = config.providers.email;
  if (email.transport === 'log') senders.email = createLogSender('email', config.logTransport);
  else if (config.smtp !== null) {
    const s = config.smtp;
    checkTemplates([['smtp.subject', s.subject], ['smtp.text', s.text], ['smtp.html', s.html]]);
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
    checkTemplates([['smpp.template', s.template]]);
    if (![0, 1, 3, 8].includes(s.dataCoding)) throw new MemfaError('CONFIG_INVALID', 'smpp.dataCoding: must be 0, 1, 3 or 8', { data: { key: 'smpp.dataCoding' } });
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
        dataCoding: s.dataCoding as SmppDataCoding,
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
export function checkSenders(senders: Partial<Record<'sms' | 'email', Sender>>, log: Logger): void {
  for (const [provider, sender] of Object.entries(senders)) {
    void sender.check().then((r) =>
      r.ok ? log.info('gateway-ok', { provider, transport: sender.transport }) : log.warn('gateway-unreachable', { provider, transport: sender.transport, error: r.error }),
    );
  }
}
