// Sealing: AES-256-GCM under one key, with additional authenticated data.
//
// Sealed value: v1.<kid>.<iv b64url>.<tag b64url>.<ciphertext b64url>
//
// The kid names the key that sealed the value, so that a value outlives the key being current and
// any daemon holding that key can open it. The additional authenticated data names the purpose and
// the mailbox ('totp:alice@example.org'), so a sealed value copied into another mailbox's record,
// or into another field, fails to open.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { MemfaError } from '../protocol/errors.js';
import { KID_PATTERN } from './key-file.js';

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64URL_PATTERN = /^[A-Za-z0-9_-]*$/;

export { secretAad } from '../core/secret-binding.js';

export function cannotOpen(kid: string | null): MemfaError {
  const shown = kid !== null && KID_PATTERN.test(kid) ? kid : '(unreadable)';
  return new MemfaError('CONFIG_INVALID', `secret sealed with key ${shown} cannot be opened: wrong or missing key file`, {
    data: { kid: shown },
    hint: 'check that the daemon reads the key file the secret was sealed with and that the key was not retired; a secret copied from another mailbox also fails here',
  });
}

function malformedSealed(): MemfaError {
  return new MemfaError('CONFIG_INVALID', 'sealed secret is malformed (expected v1.<kid>.<iv>.<tag>.<ciphertext>)', {
    hint: 'the stored value was damaged or is not a memfa sealed secret',
  });
}

export interface SealedParts {
  kid: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/** The parts of a sealed value; CONFIG_INVALID if it is not one. */
export function parseSealed(sealed: string): SealedParts {
  const parts = sealed.split('.');
  if (parts.length !== 5) throw malformedSealed();
  const [version, kid, iv, tag, ciphertext] = parts as [string, string, string, string, string];
  if (version !== FORMAT || !KID_PATTERN.test(kid)) throw malformedSealed();
  if (!B64URL_PATTERN.test(iv) || !B64URL_PATTERN.test(tag) || !B64URL_PATTERN.test(ciphertext)) throw malformedSealed();
  const parsed = {
    kid,
    iv: Buffer.from(iv, 'base64url'),
    tag: Buffer.from(tag, 'base64url'),
    ciphertext: Buffer.from(ciphertext, 'base64url'),
  };
  if (parsed.iv.length !== IV_BYTES || parsed.tag.length !== TAG_BYTES) throw malformedSealed();
  return parsed;
}

/** The id of the key a value was sealed with. */
export function sealedKid(sealed: string): string {
  return parseSealed(sealed).kid;
}

export function sealWith(kid: string, key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [FORMAT, kid, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
}

/** Opens a sealed value with the key its kid names; a wrong key, AAD or any tampering fails alike. */
export function openWith(parts: SealedParts, key: Buffer, aad: string): Buffer {
  // authTagLength pins the tag to 16 bytes; without it Node accepts truncated tags.
  const decipher = createDecipheriv('aes-256-gcm', key, parts.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(parts.tag);
  try {
    const plaintext = decipher.update(parts.ciphertext);
    decipher.final(); // checks the tag; GCM gives no further bytes
    return plaintext;
  } catch {
    throw cannotOpen(parts.kid);
  }
}
