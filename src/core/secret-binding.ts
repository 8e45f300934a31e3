// What a sealed secret belongs to: a purpose ('totp') and a mailbox. Sealing authenticates this
// string with the ciphertext (security/seal.ts), so that a sealed value copied into another
// mailbox's record, or into another field, fails to open. Pure: services name what a secret is
// for, the key ring seals and opens it.

/** The additional authenticated data for a secret of `purpose` belonging to `mailbox`. */
export function secretAad(purpose: string, mailbox: string): string {
  return `${purpose}:${mailbox}`;
}
