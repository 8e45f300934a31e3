// TOTP (RFC 6238) over HOTP (RFC 4226), base32 secrets and otpauth:// URIs.
// Pure: the current time and the random source are parameters.

import { timingSafeEqual } from 'node:crypto';
import { hotp } from 'otplib';
import { HashAlgorithms, KeyEncodings, hotpToken, type HOTPOptions } from 'otplib/core.js';
import { MemfaError } from '../protocol/errors.js';

export const TOTP_ALGORITHMS = ['SHA1', 'SHA256', 'SHA512'] as const;
export type TotpAlgorithm = (typeof TOTP_ALGORITHMS)[number];

export interface TotpOptions {
  algorithm: TotpAlgorithm;
  digits: number;
  /** Seconds per time step. */
  period: number;
  /** Steps accepted either side of the current one (clock drift, slow typing). */
  window: number;
}

/** RFC 4226 requires at least 128 bits and recommends 160; authenticator apps expect 160 for SHA1. */
export const MIN_SECRET_BYTES = 20;

const MAX_WINDOW = 10;

function invalid(param: string, message: string): MemfaError {
  return new MemfaError('INVALID_PARAMS', message, { data: { param } });
}

// ---------------------------------------------------------------------------------------------
// Secrets and base32

export function generateTotpSecret(randomBytes: (n: number) => Buffer, bytes = MIN_SECRET_BYTES): Buffer {
  if (!Number.isInteger(bytes) || bytes < MIN_SECRET_BYTES || bytes > 128) {
    throw invalid('bytes', `bytes: a TOTP secret needs ${MIN_SECRET_BYTES} to 128 bytes, got ${String(bytes)}`);
  }
  const secret = randomBytes(bytes);
  // A short buffer from a broken random source would silently weaken every enrolment.
  if (!Buffer.isBuffer(secret) || secret.length !== bytes) {
    throw new MemfaError('INTERNAL', `random source returned ${Buffer.isBuffer(secret) ? secret.length : 'no'} bytes, wanted ${bytes}`);
  }
  return secret;
}

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

// Written here rather than taken from otplib's thirty-two plugin: its encoder passes the secret
// through an 'ascii' string, which corrupts every byte above 0x7f.
/** RFC 4648 base32, upper case, without '=' padding (what authenticator apps expect). */
export function toBase32(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of buf) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes base32 as people and other tools write it: spaces, dashes, lower case and trailing '='
 * padding are accepted. Throws INVALID_PARAMS (param 'secret') for anything else.
 */
export function fromBase32(str: string): Buffer {
  if (typeof str !== 'string') throw invalid('secret', 'secret: expected a base32 string');
  const clean = str.replace(/[\s-]/g, '').toUpperCase().replace(/=+$/, '');
  // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes: a truncated copy-and-paste.
  if (clean.length === 0 || [1, 3, 6].includes(clean.length % 8)) {
    throw invalid('secret', 'secret: not a valid base32 string (wrong length; was it copied completely?)');
  }
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = BASE32_ALPHABET.indexOf(ch);
    if (idx < 0) throw invalid('secret', `secret: '${ch}' is not a base32 character (A-Z, 2-7)`);
    value = ((value << 5) | idx) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

/** Groups of four for reading aloud or typing into an app: "JBSW Y3DP EHPK 3PXP". */
export function groupSecret(base32: string): string {
  const clean = base32.replace(/[\s=]/g, '').toUpperCase();
  return (clean.match(/.{1,4}/g) ?? []).join(' ');
}

// ---------------------------------------------------------------------------------------------
// Codes

function checkOptions(opts: TotpOptions): void {
  if (!TOTP_ALGORITHMS.includes(opts.algorithm)) {
    throw invalid('algorithm', `algorithm: expected one of ${TOTP_ALGORITHMS.join(', ')}, got ${String(opts.algorithm)}`);
  }
  checkDigits(opts.digits);
  if (!Number.isInteger(opts.period) || opts.period < 1 || opts.period > 300) {
    throw invalid('period', `period: expected 1 to 300 seconds, got ${String(opts.period)}`);
  }
  if (!Number.isInteger(opts.window) || opts.window < 0 || opts.window > MAX_WINDOW) {
    throw invalid('window', `window: expected 0 to ${MAX_WINDOW} steps, got ${String(opts.window)}`);
  }
}

function checkDigits(digits: number): void {
  // RFC 4226 sets 6 as the minimum; the 31-bit truncation cannot fill more than 8 digits evenly.
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) {
    throw invalid('digits', `digits: expected 6 to 8, got ${String(digits)}`);
  }
}

const HASHES: Record<TotpAlgorithm, HashAlgorithms> = {
  SHA1: HashAlgorithms.SHA1,
  SHA256: HashAlgorithms.SHA256,
  SHA512: HashAlgorithms.SHA512,
};

// otplib's HOTP merges, validates and freezes its options on every generate() call, which cost
// more than the HMAC itself: they are resolved once per (algorithm, digits) and handed to otplib's
// hotpToken. The key travels as hex and is used as given (otplib's default createHmacKey decodes
// and re-encodes it on every call).
const resolvedOptions = new Map<string, Readonly<HOTPOptions>>();
const keyAsGiven: HOTPOptions['createHmacKey'] = (_algorithm, secret) => secret;

function optionsFor(digits: number, algorithm: TotpAlgorithm): Readonly<HOTPOptions> {
  const id = `${algorithm}/${digits}`;
  let options = resolvedOptions.get(id);
  if (options === undefined) {
    // HOTP with the key as raw bytes (hex), never otplib's TOTP class: that one reads the system
    // clock and pads short keys for SHA256/512, which authenticator apps do not do.
    options = hotp.clone({ algorithm: HASHES[algorithm], digits, encoding: KeyEncodings.HEX, createHmacKey: keyAsGiven }).allOptions();
    resolvedOptions.set(id, options);
  }
  return options;
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length === 0) throw invalid('secret', 'secret: the key is empty');
}

export function hotpCode(key: Buffer, counter: number, digits: number, algorithm: TotpAlgorithm): string {
  checkKey(key);
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw invalid('counter', `counter: expected a non-negative integer, got ${String(counter)}`);
  }
  checkDigits(digits);
  if (!TOTP_ALGORITHMS.includes(algorithm)) {
    throw invalid('algorithm', `algorithm: expected one of ${TOTP_ALGORITHMS.join(', ')}, got ${String(algorithm)}`);
  }
  return hotpToken(key.toString('hex'), counter, optionsFor(digits, algorithm));
}

/** The RFC 6238 time step (T0 = 0) that `timeMs` falls in. */
export function timeStep(timeMs: number, period: number): number {
  if (!Number.isFinite(timeMs) || timeMs < 0) throw invalid('time', `time: expected a non-negative epoch in ms, got ${String(timeMs)}`);
  if (!Number.isInteger(period) || period < 1) throw invalid('period', `period: expected a positive integer, got ${String(period)}`);
  return Math.floor(timeMs / (period * 1000));
}

export function totpCode(key: Buffer, timeMs: number, opts: TotpOptions): string {
  checkOptions(opts);
  return hotpCode(key, timeStep(timeMs, opts.period), opts.digits, opts.algorithm);
}

export type TotpCheck = { ok: true; step: number } | { ok: false; reason: 'code-invalid' | 'code-reused' };

/**
 * Checks a code against every step in now ± window.
 *
 * Replay: a step <= lastAcceptedStep is refused ('code-reused') even if its code matches; the caller
 * stores the returned step as the new lastAcceptedStep. Should one code match several steps (a
 * 1-in-10^digits coincidence), the latest acceptable step is taken, so that the same code cannot
 * be accepted twice.
 *
 * Steps are tried latest first, each compared in constant time, and the first match decides: the
 * latest matching step is the one to accept, or, if it was accepted before, every earlier one was
 * too. A wrong code is compared with every step, so a failure takes the same time whatever the
 * code; only a right code (whose sender knows it is right) returns sooner, saving the HMACs of the
 * earlier steps on most logins. `code` must already be normalised (see normaliseCode): exactly
 * `digits` ASCII digits.
 */
export function checkTotp(key: Buffer, code: string, nowMs: number, opts: TotpOptions, lastAcceptedStep: number | null): TotpCheck {
  checkOptions(opts);
  if (typeof code !== 'string' || code.length !== opts.digits || !/^[0-9]+$/.test(code)) {
    return { ok: false, reason: 'code-invalid' };
  }
  const given = Buffer.from(code, 'ascii');
  const current = timeStep(nowMs, opts.period);
  checkKey(key);
  const keyHex = key.toString('hex');
  const options = optionsFor(opts.digits, opts.algorithm);
  for (let step = current + opts.window; step >= Math.max(0, current - opts.window); step--) {
    const expected = Buffer.from(hotpToken(keyHex, step, options), 'ascii');
    if (!timingSafeEqual(expected, given)) continue;
    if (lastAcceptedStep === null || step > lastAcceptedStep) return { ok: true, step };
    return { ok: false, reason: 'code-reused' };
  }
  return { ok: false, reason: 'code-invalid' };
}

// ---------------------------------------------------------------------------------------------
// otpauth:// URI (Google Authenticator Key Uri Format)

export interface OtpauthParams {
  issuer: string;
  account: string;
  secretBase32: string;
  algorithm: TotpAlgorithm;
  digits: number;
  period: number;
}

/**
 * `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
 * Label parts and the issuer parameter go through encodeURIComponent: spaces become %20 (a '+'
 * would be shown literally by several apps). The Key URI Format forbids a colon in the issuer and
 * the account: parsers split the label at the first colon, encoded (%3A) or not, so an issuer
 * "Acme: Mail" would come back as issuer "Acme" and account " Mail:user@...". It is refused.
 */
export function otpauthUri(p: OtpauthParams): string {
  if (typeof p.issuer !== 'string' || p.issuer.trim() === '') throw invalid('issuer', 'issuer: must not be empty');
  if (typeof p.account !== 'string' || p.account.trim() === '') throw invalid('account', 'account: must not be empty');
  for (const [param, value] of [['issuer', p.issuer], ['account', p.account]] as const) {
    if (value.includes(':')) throw invalid(param, `${param}: must not contain a colon, which separates the issuer from the account in an otpauth:// label`);
  }
  const secret = toBase32(fromBase32(p.secretBase32));
  checkOptions({ algorithm: p.algorithm, digits: p.digits, period: p.period, window: 0 });
  const issuer = encodeURIComponent(p.issuer);
  const account = encodeURIComponent(p.account);
  return (
    `otpauth://totp/${issuer}:${account}?secret=${secret}&issuer=${issuer}` +
    `&algorithm=${p.algorithm}&digits=${p.digits}&period=${p.period}`
  );
}
