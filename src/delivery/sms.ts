// SMS delivery over SMPP: turns a code into a submit_sm on the link's session. The link
// (smpp-link.ts) owns the connection, its keep-alive and reconnects; smpp-pdu.ts the encodings;
// smpp-submit.ts one submit_sm and its answer.

import { normaliseE164 } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError } from './common.js';
import { maskPhone } from '../core/mask.js';
import { SmppLink } from './smpp-link.js';
import { encodeSms, submitSmParams } from './smpp-pdu.js';
import { submitSm } from './smpp-submit.js';
import { renderTemplate, smsSegments, templateVars } from './template.js';
import type { CheckResult, DeliveryLogger, OutgoingCode, Sender, SendResult, SmppConfig } from './types.js';

export function createSmppSender(cfg: SmppConfig, logger: DeliveryLogger): Sender {
  return new SmppSender(cfg, logger);
}

/**
 * The destination in E.164, the form every stored number has. Its numbering plan was checked when
 * it was stored (core/phone.ts), so that a login that sends a code loads no phone metadata. The
 * number is masked in the error: it goes into logs, and the rule's own message quotes it.
 */
function destination(to: string): string {
  try {
    return normaliseE164(to, 'to');
  } catch {
    throw new MemfaError('INVALID_PARAMS', `to: not an E.164 phone number: ${maskPhone(to)}`, { data: { provider: 'sms', param: 'to' } });
  }
}

class SmppSender implements Sender {
  readonly provider = 'sms' as const;
  readonly transport = 'smpp' as const;
  private readonly link: SmppLink;

  constructor(
    private readonly cfg: SmppConfig,
    private readonly logger: DeliveryLogger,
  ) {
    this.link = new SmppLink(cfg, logger);
  }

  async send(msg: OutgoingCode): Promise<SendResult> {
    if (this.link.closed) throw deliveryFailed('sms', 'SMPP sender is closed', { transport: 'smpp' });
    const to = destination(msg.to);
    if (msg.kind === 'code' && (msg.code === undefined || msg.code === '')) {
      throw new MemfaError('INTERNAL', 'a code message without a code');
    }
    const text = renderTemplate(this.cfg.template, templateVars(msg));
    const encoded = encodeSms(text, this.cfg.dataCoding);
    const logFields = { provider: 'sms', transport: 'smpp', kind: msg.kind, to: maskPhone(to), mailbox: msg.mailbox };
    if (encoded.dataCoding !== this.cfg.dataCoding) {
      this.logger.info('smpp.data_coding_switched', { ...logFields, configured: this.cfg.dataCoding, used: encoded.dataCoding });
    }
    const started = Date.now();
    try {
      const session = await this.link.acquire();
      const params = submitSmParams(this.cfg, to, encoded);
      const messageId = await submitSm(session, params, this.cfg.submitTimeoutMs, (listener) => this.link.onLost(listener), [msg.code]);
      this.logger.info('delivery.sent', {
        ...logFields,
        messageId,
        dataCoding: encoded.dataCoding,
        segments: smsSegments(text).segments,
        ms: Date.now() - started,
      });
      return messageId === '' ? {} : { messageId };
    } catch (err) {
      const failure = err instanceof MemfaError ? err : deliveryFailed('sms', `SMPP submit failed: ${describeError(err, [msg.code])}`, { transport: 'smpp' }, err);
      this.logger.warn('delivery.failed', { ...logFields, error: failure.message, ms: Date.now() - started });
      throw failure;
    }
  }

  check(): Promise<CheckResult> {
    return this.link.check();
  }

  close(): Promise<void> {
    return this.link.close();
  }
}
