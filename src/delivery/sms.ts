// SMS delivery over one long-lived SMPP session. A login should not pay for a TCP connect and a
// bind, so the session is opened when the sender is created and kept bound: kept alive with
// enquire_link, re-bound with exponential backoff when it drops. A send while unbound waits for
// the bind a little (connectTimeoutMs), then fails rather than queueing codes that would arrive late.

import smpp from 'smpp';
import { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError, readSecretFile } from './common.js';
import { maskPhone } from './mask.js';
import { isGsm7, renderTemplate, smsSegments, templateVars } from './template.js';
import type { CheckResult, DeliveryLogger, OutgoingCode, Sender, SendResult, SmppConfig, SmppDataCoding } from './types.js';

/** SMPP 3.4: the library says 5.0 (0x50) by default, which some 3.4 gateways refuse to bind. */
const INTERFACE_VERSION = 0x34;
/** short_message holds at most 254 octets; a longer text goes in the message_payload TLV. */
const SHORT_MESSAGE_MAX = 254;
/** How long close() waits for unbind_resp and for the socket to end before destroying it. */
const CLOSE_GRACE_MS = 1000;

const E164 = /^\+[1-9][0-9]{6,14}$/;

const STATUS_NAMES = new Map<number, string>(Object.entries(smpp.errors).map(([name, value]) => [value, name]));

/** `ESME_RTHROTTLED`, or `ESME_0x0000042A` for a vendor-specific status. */
export function smppStatusName(status: number): string {
  return STATUS_NAMES.get(status) ?? `ESME_0x${status.toString(16).toUpperCase().padStart(8, '0')}`;
}

function hex(status: number): string {
  return `0x${status.toString(16).toUpperCase().padStart(2, '0')}`;
}

export interface EncodedSms {
  dataCoding: SmppDataCoding;
  bytes: Buffer;
}

/**
 * Encodes a text for the configured data_coding, switching to UCS-2 when that alphabet cannot
 * carry it: a mailbox with a character outside GSM 03.38 would otherwise arrive with a space in
 * place of it. Encoding is done here, not by the library, because smpp@0.5.1 sends data_coding 1
 * (IA5/ASCII) in the GSM alphabet, which turns the '@' of every mailbox into a NUL.
 */
export function encodeSms(text: string, dataCoding: SmppDataCoding): EncodedSms {
  if (dataCoding === 0 && isGsm7(text)) return { dataCoding: 0, bytes: smpp.encodings.ASCII.encode(text) };
  if (dataCoding === 1 && /^[\x20-\x7e\r\n]*$/.test(text)) return { dataCoding: 1, bytes: Buffer.from(text, 'ascii') };
  if (dataCoding === 3 && /^[\u0000-\u00ff]*$/.test(text)) return { dataCoding: 3, bytes: Buffer.from(text, 'latin1') };
  return { dataCoding: 8, bytes: Buffer.from(text, 'utf16le').swap16() };
}

export function createSmppSender(cfg: SmppConfig, logger: DeliveryLogger): Sender {
  return new SmppSender(cfg, logger);
}

type State = 'connecting' | 'bound' | 'waiting' | 'closed';

interface BindWaiter {
  resolve(session: smpp.Session): void;
  reject(err: MemfaError): void;
}

class SmppSender implements Sender {
  readonly provider = 'sms' as const;
  readonly transport = 'smpp' as const;

  private state: State = 'waiting';
  private session: smpp.Session | null = null;
  /** Why the sender is not bound (empty while bound); reported by check() and failed sends. */
  private lastError = 'not connected yet';
  /** The failure seen during the current connection, if any, to explain its 'close'. */
  private attemptError: string | null = null;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private attemptTimer: NodeJS.Timeout | null = null;
  private enquireTimer: NodeJS.Timeout | null = null;
  private enquireUnanswered = false;
  private readonly waiters = new Set<BindWaiter>();
  /** Told when the current connect attempt ends, bound or not (check() waits for that). */
  private readonly attemptListeners = new Set<() => void>();
  /** Fails the submits still waiting for a submit_sm_resp when the connection drops. */
  private readonly inflight = new Set<(err: MemfaError) => void>();
  private closing: Promise<void> | null = null;
  private password: string | undefined;

  constructor(
    private readonly cfg: SmppConfig,
    private readonly logger: DeliveryLogger,
  ) {
    this.backoffMs = cfg.reconnect.initialMs;
    this.connect();
  }

  async send(msg: OutgoingCode): Promise<SendResult> {
    if (this.closing !== null) throw deliveryFailed('sms', 'SMPP sender is closed', { transport: 'smpp' });
    if (!E164.test(msg.to)) {
      throw new MemfaError('INVALID_PARAMS', `not an E.164 phone number: ${maskPhone(msg.to)}`, { data: { provider: 'sms' } });
    }
    if (msg.kind === 'code' && (msg.code === undefined || msg.code === '')) {
      throw new MemfaError('INTERNAL', 'a code message without a code');
    }
    const text = renderTemplate(this.cfg.template, templateVars(msg));
    const encoded = encodeSms(text, this.cfg.dataCoding);
    const segments = smsSegments(text);
    const logFields = { provider: 'sms', transport: 'smpp', kind: msg.kind, to: maskPhone(msg.to), mailbox: msg.mailbox };
    if (encoded.dataCoding !== this.cfg.dataCoding) {
      this.logger.info('smpp.data_coding_switched', { ...logFields, configured: this.cfg.dataCoding, used: encoded.dataCoding });
    }
    const started = Date.now();
    try {
      const session = await this.waitForBind(this.cfg.connectTimeoutMs);
      const messageId = await this.submit(session, msg.to, encoded);
      this.logger.info('delivery.sent', {
        ...logFields,
        messageId,
        dataCoding: encoded.dataCoding,
        segments: segments.segments,
        ms: Date.now() - started,
      });
      return messageId === '' ? {} : { messageId };
    } catch (err) {
      const failure =
        err instanceof MemfaError ? err : deliveryFailed('sms', `SMPP submit failed: ${describeError(err, [msg.code, this.password])}`, { transport: 'smpp' }, err);
      this.logger.warn('delivery.failed', { ...logFields, error: failure.message, ms: Date.now() - started });
      throw failure;
    }
  }

  async check(): Promise<CheckResult> {
    if (this.closing !== null) return { ok: false, error: 'SMPP sender is closed' };
    // At start-up the first bind is usually still in flight: report its outcome, not 'connecting'.
    if (this.state === 'connecting') {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.attemptListeners.delete(done);
          resolve();
        };
        // The attempt has its own connectTimeoutMs deadline; this margin only guards against a hang.
        const timer = setTimeout(done, this.cfg.connectTimeoutMs + 1000);
        this.attemptListeners.add(done);
      });
    }
    return this.state === 'bound' ? { ok: true } : { ok: false, error: `SMPP gateway not bound: ${this.lastError}` };
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    for (const waiter of this.waiters) waiter.reject(deliveryFailed('sms', 'SMPP sender is closed', { transport: 'smpp' }));
    this.waiters.clear();
    const session = this.session;
    if (session !== null) {
      if (this.state === 'bound') {
        // Polite unbind so the gateway frees the bind slot now rather than at its idle timeout.
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            session.socket.off('close', done);
            resolve();
          };
          const timer = setTimeout(done, CLOSE_GRACE_MS);
          // The gateway may already be gone; its unbind_resp will then never come.
          session.socket.once('close', done);
          if (!session.unbind({}, done)) done();
        });
      }
      await new Promise<void>((resolve) => {
        if (session.socket.destroyed) return resolve();
        const timer = setTimeout(() => session.destroy(), CLOSE_GRACE_MS);
        session.socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        session.close();
      });
    }
    this.clearSessionTimers();
    this.state = 'closed';
    this.lastError = 'sender closed';
    this.logger.info('smpp.closed', { host: this.cfg.host, port: this.cfg.port });
  }

  private connect(): void {
    if (this.closing !== null) return;
    this.reconnectTimer = null;
    this.state = 'connecting';
    this.attemptError = null;
    this.readPassword().then(
      (password) => {
        if (this.closing !== null) {
          this.state = 'closed';
          return;
        }
        try {
          this.open(password);
        } catch (err) {
          // net.connect throws synchronously on options it cannot use (a bad port, say).
          this.session = null;
          this.clearSessionTimers();
          this.lastError = describeError(err, [password]);
          this.attemptEnded();
          this.scheduleReconnect();
        }
      },
      (err: unknown) => {
        this.lastError = describeError(err);
        this.attemptEnded();
        this.scheduleReconnect();
      },
    );
  }

  private async readPassword(): Promise<string> {
    if (this.cfg.passwordFile !== undefined) {
      this.password = await readSecretFile(this.cfg.passwordFile, 'sms.smpp.passwordFile', this.logger);
    } else {
      this.password = this.cfg.password ?? '';
    }
    return this.password;
  }

  private open(password: string): void {
    const { cfg } = this;
    const session = smpp.connect({
      host: cfg.host,
      port: cfg.port,
      tls: cfg.tls,
      rejectUnauthorized: cfg.rejectUnauthorized,
    });
    this.session = session;
    this.attemptTimer = setTimeout(() => {
      this.abandon(session, `connect and bind did not complete within ${cfg.connectTimeoutMs} ms`);
    }, cfg.connectTimeoutMs);

    session.on('error', (err: unknown) => {
      if (this.session === session && this.attemptError === null) this.attemptError = describeError(err, [password]);
      // A socket error is followed by 'close', but a malformed PDU leaves the library's reader
      // stuck with the socket open: destroy it either way so that 'close' comes.
      if (!session.socket.destroyed) session.destroy();
    });
    session.on('close', () => this.onClosed(session));
    session.on(cfg.tls ? 'secureConnect' : 'connect', () => this.bind(session, password));

    // The gateway's requests: each must be answered or a strict gateway drops the session.
    session.on('enquire_link', (pdu: smpp.PDU) => session.send(pdu.response()));
    session.on('deliver_sm', (pdu: smpp.PDU) => {
      // Delivery receipts and mobile-originated messages: memfa does not use them, but an
      // unanswered deliver_sm makes the gateway redeliver it forever.
      session.send(pdu.response({ message_id: '' }));
    });
    session.on('unbind', (pdu: smpp.PDU) => {
      this.attemptError = 'the gateway unbound the session';
      session.send(pdu.response());
      session.close();
    });
    session.on('unknown', (pdu: smpp.PDU) => session.send(pdu.response()));
  }

  private bind(session: smpp.Session, password: string): void {
    const { cfg } = this;
    const params = {
      system_id: cfg.systemId,
      password,
      system_type: cfg.systemType,
      interface_version: INTERFACE_VERSION,
    };
    const onResponse = (pdu: smpp.PDU): void => {
      if (this.session !== session) return;
      if (pdu.command_status !== 0) {
        const name = smppStatusName(pdu.command_status);
        this.abandon(session, `bind refused: ${name} (${hex(pdu.command_status)})`);
        return;
      }
      if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
      this.attemptTimer = null;
      this.state = 'bound';
      this.lastError = '';
      this.backoffMs = cfg.reconnect.initialMs;
      this.startEnquireLink(session);
      this.logger.info('smpp.bound', { host: cfg.host, port: cfg.port, systemId: cfg.systemId, mode: cfg.bindMode });
      for (const waiter of this.waiters) waiter.resolve(session);
      this.waiters.clear();
      this.attemptEnded();
    };
    if (cfg.bindMode === 'transceiver') session.bind_transceiver(params, onResponse);
    else session.bind_transmitter(params, onResponse);
  }

  private startEnquireLink(session: smpp.Session): void {
    this.enquireUnanswered = false;
    this.enquireTimer = setInterval(() => {
      // A half-open TCP connection looks bound forever; an unanswered enquire_link exposes it.
      if (this.enquireUnanswered) {
        this.abandon(session, `enquire_link not answered within ${this.cfg.enquireLinkMs} ms`);
        return;
      }
      this.enquireUnanswered = true;
      session.enquire_link({}, () => {
        this.enquireUnanswered = false;
      });
    }, this.cfg.enquireLinkMs);
  }

  /** Records why a connection is being given up and destroys it; 'close' does the rest. */
  private abandon(session: smpp.Session, reason: string): void {
    if (this.session !== session) return;
    this.attemptError = reason;
    session.destroy();
  }

  private onClosed(session: smpp.Session): void {
    if (this.session !== session) return;
    const wasBound = this.state === 'bound';
    this.session = null;
    this.clearSessionTimers();
    this.lastError = this.attemptError ?? (wasBound ? 'connection closed by the gateway' : 'connection closed before the bind completed');
    for (const fail of this.inflight) {
      fail(deliveryFailed('sms', `SMPP connection lost before submit_sm_resp: ${this.lastError}`, { transport: 'smpp' }));
    }
    this.inflight.clear();
    if (!wasBound) this.attemptEnded();
    if (this.closing !== null) {
      this.state = 'closed';
      return;
    }
    if (wasBound) this.logger.warn('smpp.unbound', { host: this.cfg.host, port: this.cfg.port, error: this.lastError });
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing !== null) {
      this.state = 'closed';
      return;
    }
    this.state = 'waiting';
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.cfg.reconnect.maxMs);
    this.logger.info('smpp.reconnect_scheduled', { host: this.cfg.host, port: this.cfg.port, inMs: delay, error: this.lastError });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private attemptEnded(): void {
    for (const listener of [...this.attemptListeners]) listener();
  }

  private clearSessionTimers(): void {
    if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
    if (this.enquireTimer !== null) clearInterval(this.enquireTimer);
    this.attemptTimer = null;
    this.enquireTimer = null;
  }

  private waitForBind(timeoutMs: number): Promise<smpp.Session> {
    if (this.state === 'bound' && this.session !== null) return Promise.resolve(this.session);
    return new Promise<smpp.Session>((resolve, reject) => {
      const waiter: BindWaiter = {
        resolve: (session) => {
          clearTimeout(timer);
          resolve(session);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          deliveryFailed('sms', `SMPP gateway not bound: ${this.lastError}`, {
            transport: 'smpp',
            smppState: this.state,
            waitedMs: timeoutMs,
          }),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private submit(session: smpp.Session, to: string, encoded: EncodedSms): Promise<string> {
    const { cfg } = this;
    const params: smpp.PduParams = {
      source_addr_ton: cfg.sourceTon,
      source_addr_npi: cfg.sourceNpi,
      source_addr: cfg.sourceAddr,
      dest_addr_ton: cfg.destTon,
      dest_addr_npi: cfg.destNpi,
      // SMPP addresses are digits only; the '+' is what TON international says.
      destination_addr: to.slice(1),
      data_coding: encoded.dataCoding,
      registered_delivery: 0,
    };
    if (encoded.bytes.length <= SHORT_MESSAGE_MAX) params.short_message = encoded.bytes;
    else params.message_payload = encoded.bytes;

    return new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: MemfaError | null, messageId = ''): void => {
        if (!this.inflight.delete(fail)) return;
        clearTimeout(timer);
        if (err === null) resolve(messageId);
        else reject(err);
      };
      const fail = (err: MemfaError): void => finish(err);
      this.inflight.add(fail);

      let sent: boolean;
      try {
        sent = session.submit_sm(params, onResponse);
      } catch (err) {
        // The library encodes while building the PDU; a value it cannot encode throws here.
        finish(deliveryFailed('sms', `SMPP submit_sm could not be built: ${describeError(err)}`, { transport: 'smpp' }, err));
        return;
      }
      if (!sent) {
        finish(deliveryFailed('sms', 'SMPP connection is not writable', { transport: 'smpp' }));
        return;
      }
      timer = setTimeout(() => {
        finish(
          deliveryFailed('sms', `SMPP gateway did not answer submit_sm within ${cfg.submitTimeoutMs} ms`, {
            transport: 'smpp',
            timeoutMs: cfg.submitTimeoutMs,
          }),
        );
      }, cfg.submitTimeoutMs);

      function onResponse(pdu: smpp.PDU): void {
        if (pdu.command_status === 0) {
          finish(null, typeof pdu.message_id === 'string' ? pdu.message_id : '');
          return;
        }
        const name = smppStatusName(pdu.command_status);
        const via = pdu.command === 'generic_nack' ? 'generic_nack' : 'submit_sm';
        finish(
          deliveryFailed('sms', `SMPP ${via} refused: ${name} (${hex(pdu.command_status)})`, {
            transport: 'smpp',
            smppStatus: pdu.command_status,
            smppError: name,
          }),
        );
      }
    });
  }
}
