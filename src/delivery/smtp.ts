// E-mail delivery over SMTP through nodemailer. The transporter is built on first use so that a
// password file is read when it is needed and a missing one surfaces as a failed send or check,
// not as a daemon that will not start. A check (`status`, `provider test`) asks the server now
// (nodemailer's verify: connect, greeting, TLS, AUTH), bounded by timeoutMs; concurrent checks
// share the one in flight.

import nodemailer from 'nodemailer';
import type { Mail, SMTPSentMessageInfo, SMTPTransportOptions, SendMailOptions } from 'nodemailer';
import { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError, readSecretFile, sharedInFlight } from './common.js';
import { maskEmail } from '../core/mask.js';
import { smtpFailure } from './smtp-failure.js';
import { renderTemplate, templateVars } from './template.js';
import type { CheckResult, DeliveryLogger, NoticeSender, OutgoingCode, OutgoingNotice, Sender, SendResult, SmtpConfig } from './types.js';

type SmtpTransporter = Mail<SMTPSentMessageInfo, SMTPTransportOptions>;

/** A whole send (connect, greeting, AUTH, envelope, data) may take this many timeouts. */
const SEND_DEADLINE_FACTOR = 2;

export function createSmtpSender(cfg: SmtpConfig, logger: DeliveryLogger): Sender & NoticeSender {
  return new SmtpSender(cfg, logger);
}

class SmtpSender implements Sender, NoticeSender {
  readonly provider = 'email' as const;
  readonly transport = 'smtp' as const;
  private transporter: Promise<SmtpTransporter> | null = null;
  private password: string | undefined;
  private closed = false;

  constructor(
    private readonly cfg: SmtpConfig,
    private readonly logger: DeliveryLogger,
  ) {}

  async send(msg: OutgoingCode): Promise<SendResult> {
    if (this.closed) throw deliveryFailed('email', 'SMTP sender is closed', { transport: 'smtp' });
    if (msg.kind === 'code' && (msg.code === undefined || msg.code === '')) {
      throw new MemfaError('INTERNAL', 'a code message without a code');
    }
    const transporter = await this.getTransporter();
    const vars = templateVars(msg);
    const subject = renderTemplate(this.cfg.subject, vars).replace(/\s+/g, ' ');
    const mail: SendMailOptions = {
      from: this.cfg.from,
      to: msg.to,
      subject: msg.kind === 'test' ? `[test] ${subject}` : subject,
      text: renderTemplate(this.cfg.text, vars),
      html: renderTemplate(this.cfg.html, vars, 'html'),
      // RFC 3834: keeps vacation responders and list software from answering a code mail.
      headers: { 'Auto-Submitted': 'auto-generated' },
      signal: AbortSignal.timeout(this.cfg.timeoutMs * SEND_DEADLINE_FACTOR),
    };
    if (this.cfg.otpOrigin !== undefined && msg.kind === 'code' && msg.code !== undefined) {
      mail.otp = { code: msg.code, origin: this.cfg.otpOrigin };
    }
    const info = await this.deliver(transporter, mail, { kind: msg.kind, to: maskEmail(msg.to), mailbox: msg.mailbox }, [msg.code]);
    return { messageId: info.messageId };
  }

  /**
   * A security notice: plain text, one message to every recipient. It goes through the same
   * transporter (and pool) as the codes.
   */
  async sendNotice(msg: OutgoingNotice): Promise<SendResult> {
    if (this.closed) throw deliveryFailed('email', 'SMTP sender is closed', { transport: 'smtp' });
    const transporter = await this.getTransporter();
    const mail: SendMailOptions = {
      from: this.cfg.from,
      to: msg.to,
      subject: msg.subject,
      text: msg.text,
      headers: { 'Auto-Submitted': 'auto-generated', 'X-Memfa-Notice': msg.kind },
      signal: AbortSignal.timeout(this.cfg.timeoutMs * SEND_DEADLINE_FACTOR),
    };
    const info = await this.deliver(transporter, mail, { kind: `notice:${msg.kind}`, to: msg.to.map(maskEmail).join(','), mailbox: msg.mailbox }, []);
    // Some recipients refused, the others not: sent (a retry would repeat it to those who have it).
    return info.rejected.length > 0 ? { messageId: info.messageId, refused: info.rejected.length } : { messageId: info.messageId };
  }

  /** Sends `mail`, logging the outcome with `fields`; a failure is thrown as DELIVERY_FAILED without `secrets`. */
  private async deliver(transporter: SmtpTransporter, mail: SendMailOptions, fields: { kind: string; to: string; mailbox: string }, secrets: (string | undefined)[]): Promise<SMTPSentMessageInfo> {
    const started = Date.now();
    try {
      const info = await transporter.sendMail(mail);
      this.logger.info('delivery.sent', { provider: 'email', transport: 'smtp', ...fields, messageId: info.messageId, ...(info.rejected.length > 0 ? { refused: info.rejected.length } : {}), ms: Date.now() - started });
      return info;
    } catch (err) {
      const failure = smtpFailure(err, this.failureContext('delivery'), [...secrets, this.password]);
      this.logger.warn('delivery.failed', { provider: 'email', transport: 'smtp', ...fields, error: failure.message, ms: Date.now() - started });
      throw failure;
    }
  }

  async check(): Promise<CheckResult> {
    if (this.closed) return { ok: false, error: 'SMTP sender is closed' };
    try {
      // Each caller waits at most timeoutMs; a verify that hangs past that is still shared (and
      // ended by nodemailer's own socket timeouts), so a storm does not open a connection each.
      await withDeadline(this.sharedVerify(), this.cfg.timeoutMs);
      return { ok: true };
    } catch (err) {
      return { ok: false, error: smtpFailure(err, this.failureContext('check'), [this.password]).message };
    }
  }

  private readonly sharedVerify = sharedInFlight(async () => {
    const transporter = await this.getTransporter();
    await transporter.verify();
  });

  async close(): Promise<void> {
    this.closed = true;
    const pending = this.transporter;
    this.transporter = null;
    if (pending === null) return;
    try {
      // force: a pooled connection stuck in a delivery would otherwise keep the process alive.
      (await pending).close({ force: true });
    } catch {
      // The transporter was never built (unreadable password file): nothing to release.
    }
  }

  private failureContext(operation: 'delivery' | 'check') {
    const deadlineMs = operation === 'check' ? this.cfg.timeoutMs : this.cfg.timeoutMs * SEND_DEADLINE_FACTOR;
    return { host: this.cfg.host, port: this.cfg.port, operation, deadlineMs };
  }

  private getTransporter(): Promise<SmtpTransporter> {
    if (this.transporter === null) {
      const building = this.build();
      this.transporter = building;
      // A failed build (password file missing) is retried by the next send, not remembered.
      building.catch(() => {
        if (this.transporter === building) this.transporter = null;
      });
    }
    return this.transporter;
  }

  private async build(): Promise<SmtpTransporter> {
    const { cfg } = this;
    let auth: SMTPTransportOptions['auth'];
    if (cfg.auth !== undefined) {
      let pass = cfg.auth.pass;
      if (cfg.auth.passFile !== undefined) {
        try {
          pass = await readSecretFile(cfg.auth.passFile, 'smtp.auth.passFile', this.logger);
        } catch (err) {
          throw deliveryFailed('email', describeError(err), { transport: 'smtp', key: 'smtp.auth.passFile' }, err);
        }
      }
      this.password = pass;
      auth = pass === undefined ? { user: cfg.auth.user } : { user: cfg.auth.user, pass };
    }
    const options: SMTPTransportOptions = {
      host: cfg.host,
      port: cfg.port,
      secure: cfg.secure === 'tls',
      requireTLS: cfg.secure === 'starttls',
      ignoreTLS: cfg.secure === 'none',
      tls: { rejectUnauthorized: cfg.rejectUnauthorized },
      connectionTimeout: cfg.timeoutMs,
      greetingTimeout: cfg.timeoutMs,
      socketTimeout: cfg.timeoutMs,
      dnsTimeout: cfg.timeoutMs,
      // nodemailer's logger would write the message, code included, when debugging is on.
      logger: false,
      debug: false,
      ...(auth === undefined ? {} : { auth }),
    };
    if (cfg.pool) {
      return nodemailer.createTransport({ ...options, pool: true, maxConnections: cfg.maxConnections });
    }
    return nodemailer.createTransport(options);
  }
}

/** Rejects with nodemailer's EABORT when `promise` takes longer than `ms`; the promise runs on. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'EABORT' })), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
