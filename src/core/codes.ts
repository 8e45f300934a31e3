// One-time numeric codes sent by SMS or email. Pure: the random source is a parameter
// (crypto.randomInt in the daemon, a seeded or scripted function in tests).

import { MemfaError } from '../protocol/errors.js';

export const MIN_CODE_DIGITS = 6;
export const MAX_CODE_DIGITS = 10;
/** Longer input is refused before any work is done on it. */
export const MAX_CODE_INPUT = 64;

/**
 * A uniformly distributed code of exactly `digits` digits, leading zeros kept.
 * `randomInt(min, max)` must return an integer in [min, max) like crypto.randomInt; one draw over
 * [0, 10^digits) stays uniform, and 10^10 is well below crypto.randomInt's 2^48 range limit.
 */
export function generateNumericCode(randomInt: (min: number, max: number) => number, digits: number): string {
  if (!Number.isInteger(digits) || digits < MIN_CODE_DIGITS || digits > MAX_CODE_DIGITS) {
    throw new MemfaError('INVALID_PARAMS', `digits: expected ${MIN_CODE_DIGITS} to ${MAX_CODE_DIGITS}, got ${String(digits)}`, {
      data: { param: 'digits' },
    });
  }
  const max = 10 ** digits;
  const n = randomInt(0, max);
  // A misbehaving random source must not produce short or predictable codes unnoticed.
  if (!Number.isSafeInteger(n) || n < 0 || n >= max) {
    throw new MemfaError('INTERNAL', `random source returned ${String(n)}, outside [0, ${max})`);
  }
  return String(n).padStart(digits, '0');
}

/**
 * A code as typed or piped in: spaces, tabs and dashes inside ("123 456", "123-456") and trailing
 * CR/LF/NUL (from hooks that pass a raw line) are dropped. Returns null for anything that is not
 * then made of ASCII digits only, or is empty, or is longer than MAX_CODE_INPUT characters.
 */
export function normaliseCode(input: string): string | null {
  if (typeof input !== 'string' || input.length > MAX_CODE_INPUT) return null;
  const code = input.replace(/[\r\n\0]+$/, '').replace(/[ \t-]/g, '');
  return /^[0-9]+$/.test(code) ? code : null;
}
