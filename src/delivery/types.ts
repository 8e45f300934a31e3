// The delivery port: what services need from a way of getting a code to a person, and the
// configuration each transport is built from. Nothing here knows nodemailer or smpp.

import type { CodeProvider } from '../protocol/vocabulary.js';

/** The providers that deliver a code (sms, email): the protocol's list. */
export type Provider = CodeProvider;

/** One message to deliver. `to` is an E.164 number (sms) or an address (email). */
export interface OutgoingCode {
  /** 'test' is an administrator's delivery test: it carries no code. */
  kind: 'code' | 'test';
  to: string;
  code?: string;
  mailbox: string;
  /** Address of the login that asked for the code, shown so the owner can spot a stranger. */
  ip?: string;
  country?: string | null;
  /** Epoch ms; the message states it so a late SMS is recognisably stale. */
  expiresAt?: number;
}

export interface SendResult {
  /** The gateway's or server's id for the message, for correlating with its logs. */
  messageId?: string;
}

export type CheckResult = { ok: true } | { ok: false; error: string };

export interface Sender {
  readonly provider: Provider;
  /** 'smtp', 'smpp' or 'log' for the senders here; a test double may name itself. */
  readonly transport: string;
  /** Resolves once the server or gateway accepted the message; otherwise rejects with DELIVERY_FAILED. */
  send(msg: OutgoingCode): Promise<SendResult>;
  /** A start-up / health check: can a message be handed over right now? Never rejects. */
  check(): Promise<CheckResult>;
  /** Releases connections and timers; the sender refuses to send afterwards. */
  close(): Promise<void>;
}

/** Structured log sink. Fields never hold a code or a secret; recipients are masked. */
export interface DeliveryLogger {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
  error(event: string, fields: Record<string, unknown>): void;
}

export interface SmtpAuthConfig {
  user: string;
  /** Prefer passFile: a password in the configuration file ends up in backups and diffs. */
  pass?: string;
  /** File holding the password (trailing newline ignored), read on first use. */
  passFile?: string;
}

export interface SmtpConfig {
  host: string;
  port: number;
  /** 'tls': TLS from the first byte (465); 'starttls': upgrade required (587); 'none': plain text. */
  secure: 'tls' | 'starttls' | 'none';
  /** Default true; false only for a relay with a self-signed certificate on a trusted network. */
  rejectUnauthorized: boolean;
  auth?: SmtpAuthConfig;
  /** From header and envelope sender, e.g. `"Mail security" <mfa@example.org>`. */
  from: string;
  pool: boolean;
  maxConnections: number;
  /** Bounds connecting, the greeting, each reply and the whole send. */
  timeoutMs: number;
  subject: string;
  text: string;
  html: string;
  /**
   * Optional https origin (e.g. webmail) the code is bound to; when set, the message carries an
   * OTP-Token header (draft-goto-otp-token) so a mail client can offer to fill the code in.
   */
  otpOrigin?: string;
}

/** The data_coding values whose encoding memfa can produce. */
export type SmppDataCoding = 0 | 1 | 3 | 8;

export interface SmppConfig {
  host: string;
  port: number;
  tls: boolean;
  rejectUnauthorized: boolean;
  systemId: string;
  password?: string;
  /** File holding the password (trailing newline ignored), read at every bind so it can rotate. */
  passwordFile?: string;
  systemType: string;
  bindMode: 'transmitter' | 'transceiver';
  sourceAddr: string;
  sourceTon: number;
  sourceNpi: number;
  destTon: number;
  destNpi: number;
  /**
   * 0: SMSC default alphabet (sent as GSM 03.38); 1: IA5/ASCII; 3: Latin-1; 8: UCS-2.
   * A text the chosen alphabet cannot carry is sent as UCS-2 instead of being mangled.
   */
  dataCoding: SmppDataCoding;
  enquireLinkMs: number;
  /** Bounds one connect+bind attempt, and how long a send waits for a bind. */
  connectTimeoutMs: number;
  submitTimeoutMs: number;
  reconnect: { initialMs: number; maxMs: number };
  template: string;
}

export interface LogTransportConfig {
  file: string;
}

export const DEFAULT_SMTP_TEMPLATES = {
  subject: 'Your memfa login code for {mailbox}',
  text: [
    'Your login code for {mailbox} is: {code}',
    '',
    'It is valid until {expiry}.',
    'Requested from {ip} ({country}).',
    '',
    'If you did not try to log in, change your password now. Never share this code.',
    '',
  ].join('\n'),
  html: [
    '<!doctype html>',
    '<html><body style="font-family: sans-serif">',
    '<p>Your login code for <b>{mailbox}</b> is:</p>',
    '<p style="font-size: 1.6em; font-family: monospace; letter-spacing: 0.15em"><b>{code}</b></p>',
    '<p>It is valid until {expiry}.<br>Requested from {ip} ({country}).</p>',
    '<p>If you did not try to log in, change your password now. Never share this code.</p>',
    '</body></html>',
    '',
  ].join('\n'),
} as const;

/**
 * 47 characters plus the values: with a 10-digit code and the 9-character expiry (`13:45 UTC`),
 * a mailbox of up to 94 characters still fits one 160-character GSM-7 segment.
 */
export const DEFAULT_SMS_TEMPLATE = 'memfa code {code} for {mailbox}. Valid until {expiry}. Never share it.';
