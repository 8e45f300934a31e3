// Keyed hashes for values that must be checked but never stored: one-time codes, recovery codes,
// administrator tokens. Keys come from Keyring.macKey, which survives key rotation.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'h1:';
const MIN_KEY_BYTES = 16;

function checkPurpose(purpose: string): void {
  // The purpose and the value are joined with a NUL; a NUL inside the purpose would make two
  // different (purpose, value) pairs hash alike.
  if (purpose.length === 0 || purpose.includes('\0')) throw new TypeError('keyedHash: purpose must be non-empty and contain no NUL');
}

function mac(key: Buffer, purpose: string, value: string): Buffer {
  if (key.length < MIN_KEY_BYTES) throw new TypeError(`keyedHash: key must be at least ${MIN_KEY_BYTES} bytes`);
  checkPurpose(purpose);
  return createHmac('sha256', key).update(purpose, 'utf8').update('\0').update(value, 'utf8').digest();
}

/**
 * HMAC-SHA256 of `value` for `purpose` (e.g. 'email-code:alice@example.org'), as 'h1:<base64url>'.
 * The version prefix lets a later scheme live beside this one.
 */
export function keyedHash(key: Buffer, purpose: string, value: string): string {
  return PREFIX + mac(key, purpose, value).toString('base64url');
}

/** Whether `stored` is keyedHash(key, purpose, value); constant time in the value. */
export function verifyKeyedHash(key: Buffer, purpose: string, value: string, stored: string): boolean {
  const expected = Buffer.from(keyedHash(key, purpose, value), 'utf8');
  const actual = Buffer.from(stored, 'utf8');
  // A hash's length is public (fixed by the scheme); only equal lengths reach timingSafeEqual.
  if (actual.length !== expected.length) return false;
  return timingSafeEqual(actual, expected);
}

/**
 * The index of the first of `stored` that is keyedHash(key, purpose, value), or -1: one HMAC,
 * then a constant-time comparison with every stored hash (no early exit), so that neither the
 * time nor the work tells which one matched, or how many there are to try.
 */
export function keyedHashIndex(key: Buffer, purpose: string, value: string, stored: readonly string[]): number {
  const expected = Buffer.from(keyedHash(key, purpose, value), 'utf8');
  let found = -1;
  for (let i = 0; i < stored.length; i++) {
    const actual = Buffer.from(stored[i]!, 'utf8');
    const same = actual.length === expected.length && timingSafeEqual(actual, expected);
    if (same && found === -1) found = i;
  }
  return found;
}

/** A random token of `bytes` bytes from the CSPRNG, base64url-encoded. */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 1024) throw new RangeError('randomToken: bytes must be an integer from 16 to 1024');
  return randomBytes(bytes).toString('base64url');
}

/**
 * Keyed hashes under the key ring's stable keys (Keyring.macKey), for callers that name only what
 * a value is for: the key of `purpose` never leaves here. `scope` binds a hash to one owner (an
 * app password to its mailbox): the hash is of purpose `purpose:scope`, under the key of `purpose`.
 */
export function keyedHasher(macKey: (purpose: string) => Buffer) {
  const named = (purpose: string, scope: string | undefined) => (scope === undefined ? purpose : `${purpose}:${scope}`);
  return {
    hash: (purpose: string, value: string, scope?: string): string => keyedHash(macKey(purpose), named(purpose, scope), value),
    verify: (purpose: string, value: string, stored: string, scope?: string): boolean => verifyKeyedHash(macKey(purpose), named(purpose, scope), value, stored),
    indexOf: (purpose: string, value: string, stored: readonly string[], scope?: string): number => keyedHashIndex(macKey(purpose), named(purpose, scope), value, stored),
  };
}

/** Keyed hashes are compared in constant time: their length is public, their bytes are not. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
