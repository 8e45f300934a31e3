// Key rotation: the changes a rotation makes to a key file, and the rules a daemon keeps when it
// reads its key file again. No I/O here: these take and give KeyFileContent; keyring.ts reads and
// writes the file, and services/security-admin.ts re-seals the store.
//
// One daemon (the file store), `memfa key rotate`:
//   a key becomes current (the one added by `memfa key add`, or a fresh one); every secret is
//   re-sealed under it in batches while logins go on; then every other key is retired. Old values
//   still open until they are re-sealed, because their key stays in the file until the end. A
//   crash midway leaves the old keys in the file; running rotate again finishes the job.
//
// Several daemons sharing one store (PostgreSQL). Each host has its own copy of the one key
// file. Two things must never happen: a daemon seals with a key another daemon lacks (that daemon
// then fails every login of the mailbox), and a key leaves a host while a value sealed with it is
// still stored or a daemon may still seal with it. What is built (daemon/key-ring.ts):
//   - the store records the key ring: its kids, the kid that seals, a fingerprint of the MAC
//     seed (only ids and an HMAC: the key file never enters a database); key add, rotate and
//     retire through any daemon update it;
//   - every daemon seals with the kid the record names current (read again every few seconds),
//     whatever its own file names; lacking that key, it reads its file again and, still lacking
//     it, refuses to seal rather than seal with another;
//   - a rotation, once the new kid is recorded, waits for every daemon to have read it before it
//     re-seals, so that nothing is sealed behind the sweep under the old key; it retires the old
//     keys only after the sweep; a daemon may then take a file without a key the record no longer
//     lists (checkReread's `retired`);
//   - at start, a daemon whose file lacks the recorded current kid, or has another MAC seed, is
//     refused, and one value per kid in the store must open.
// The steps for an administrator (memfa(1), Key rotation): key add on one host, the key file
// copied to every host, key rotate once, the key file copied again. Not built: the store does not
// record which kids each running daemon holds, so a rotation is not refused while one of them
// lacks the new key (that daemon refuses to seal and to open the re-sealed values until it is
// given the file).
// What each daemon checks, so that one with an older key file neither seals with a key the
// others cannot open nor fails to open what they sealed:
//   - opening a value whose kid it lacks, it reads its key file again (once for each change of the
//     file) before it fails, loudly, naming the kid;
//   - a key file read again must keep the MAC seed and every key the daemon holds, unchanged (but
//     for keys retired from the store through another daemon): a kid names one key for ever
//     (checkReread below).

import { MemfaError } from '../protocol/errors.js';
import { KID_PATTERN, newKey, newKid, type KeyFileContent } from './key-file.js';

function fresh(file: KeyFileContent): { kid: string; key: Buffer } {
  let kid = newKid();
  while (file.keys.has(kid)) kid = newKid();
  return { kid, key: newKey() };
}

/** Keys added after the current one: prepared for a rotation, not yet sealing anything here. */
export function nextKids(file: KeyFileContent): string[] {
  const kids = [...file.keys.keys()];
  return kids.slice(kids.indexOf(file.current) + 1);
}

/** Adds a fresh key after the others, not current: phase 1. CONFLICT if one was added already. */
export function withAddedKey(file: KeyFileContent): { file: KeyFileContent; kid: string } {
  const next = nextKids(file).at(-1);
  if (next !== undefined) {
    throw new MemfaError('CONFLICT', `key ${next} was added and is not current yet`, { data: { kid: next }, hint: 'memfa key rotate makes it current' });
  }
  const { kid, key } = fresh(file);
  return { file: { ...file, keys: new Map([...file.keys, [kid, key]]) }, kid };
}

/** Makes the newest added key current, or a fresh key when none was added. */
export function withRotatedKey(file: KeyFileContent): { file: KeyFileContent; kid: string } {
  const next = nextKids(file).at(-1);
  if (next !== undefined) return { file: { ...file, current: next }, kid: next };
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

/**
 * A key file read again while the daemon runs may add keys and name another current key (another
 * host's rotation, installed here), but must keep the MAC seed (or every keyed hash in the store
 * would stop matching) and every key the daemon holds, unchanged (or values sealed with it would
 * stop opening). Keys leave through the daemon's own retire, or with a restart, where every key id
 * in the store must open. CONFIG_INVALID otherwise; the caller keeps the keys it holds.
 */
export function checkReread(held: KeyFileContent, reread: KeyFileContent, path: string, retired: (kid: string) => boolean = () => false): void {
  if (!held.mac.equals(reread.mac)) {
    throw new MemfaError('CONFIG_INVALID', `key file ${path} now holds another MAC key than the one the daemon holds; it was not taken`, {
      data: { path },
      hint: 'install the key file that belongs to this store: with another MAC key, codes, recovery codes and tokens stop matching',
    });
  }
  for (const [kid, key] of held.keys) {
    const theirs = reread.keys.get(kid);
    // With several daemons, a key retired through another daemon (no stored value needs it) may go.
    if (theirs === undefined && retired(kid)) continue;
    if (theirs === undefined) {
      throw new MemfaError('CONFIG_INVALID', `key file ${path} no longer holds key ${kid}, which the daemon holds; it was not taken`, {
        data: { path, kid },
        hint: 'install a key file that holds every key of this store; memfa key rotate retires keys, or restart the daemon with the new file',
      });
    }
    if (!theirs.equals(key)) {
      throw new MemfaError('CONFIG_INVALID', `key file ${path} now holds another key under the id ${kid}; it was not taken`, {
        data: { path, kid },
        hint: 'a key id names one key for ever: install the key file that belongs to this store',
      });
    }
  }
}
