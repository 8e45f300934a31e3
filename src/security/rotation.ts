// Key rotation: the changes a rotation makes to a key file. No I/O here: these take and give
// KeyFileContent; keyring.ts reads and writes the file, and services/security-admin.ts re-seals the
// store.
//
// `memfa key rotate` (services/security-admin.ts): a fresh key becomes current; every secret is
// re-sealed under it in batches while logins go on; then every other key is retired. Old values
// still open until they are re-sealed, because their key stays in the file until the end. A crash
// midway leaves the old keys in the file; running rotate again finishes the job.

import { MemfaError } from '../protocol/errors.js';
import { KID_PATTERN, newKey, newKid, type KeyFileContent } from './key-file.js';

function fresh(file: KeyFileContent): { kid: string; key: Buffer } {
  let kid = newKid();
  while (file.keys.has(kid)) kid = newKid();
  return { kid, key: newKey() };
}

/** Adds a fresh key and makes it current. */
export function withRotatedKey(file: KeyFileContent): { file: KeyFileContent; kid: string } {
  const { kid, key } = fresh(file);
  return { file: { ...file, current: kid, keys: new Map([...file.keys, [kid, key]]) }, kid };
}

/**
 * Drops a key for good: only once no stored value is sealed with it, for values still sealed with
 * it can never be opened again. The current key cannot be retired.
 */
export function withoutKey(file: KeyFileContent, kid: string, path: string): KeyFileContent {
  if (!file.keys.has(kid)) {
    throw new MemfaError('NOT_FOUND', `key ${KID_PATTERN.test(kid) ? kid : '(invalid id)'} is not in key file ${path}`);
  }
  if (kid === file.current) {
    throw new MemfaError('CONFLICT', `key ${kid} is the current key and cannot be retired`, { hint: 'rotate first' });
  }
  const keys = new Map(file.keys);
  keys.delete(kid);
  return { ...file, keys };
}
