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
// Several daemons sharing one store (the SQL store; planned, not built yet). Each host has its
// own copy of the one key file. Two things must never happen: a daemon seals with a key another
// daemon lacks (that daemon then fails every login of the mailbox), and a key leaves a host while
// a value sealed with it is still stored or a daemon may still seal with it. So a rotation runs in
// phases, each finished on every host before the next starts:
//   1. add: `memfa key add` on one host adds a key after the current one, not current; the
//      resulting key file is installed on every host. Daemons take it at restart, or when they
//      meet a value sealed with a key they lack (keyring.ts), or before they write the file.
//   2. switch: the new key becomes current on every host. The kid of the current key moves into
//      the store (only the kid: the key file never enters a database); each daemon records in the
//      store the kids it holds and the kid it seals with (at start, after every re-read, and
//      periodically), and the switch is refused until every live daemon holds the new key.
//   3. re-seal: one daemon sweeps the store, each value replaced only if it is still the value
//      read (a conditional update, so a concurrent enrolment wins); refused to start until every
//      live daemon seals with the new key, or a lagging one would seal old values behind it.
//   4. retire: the old key is removed from every host's key file; refused while any stored value
//      names it or any live daemon still seals with it. A daemon takes a file without a key it
//      holds only by its own retire or at start (checkReread).
// What each daemon checks, so that one with an older key file neither seals with a key the
// others cannot open nor fails to open what they sealed:
//   - opening a value whose kid it lacks, it reads its key file again (once for each change of the
//     file) before it fails, loudly, naming the kid (built);
//   - a key file read again must keep the MAC seed and every key the daemon holds, unchanged: a
//     kid names one key for ever (built, checkReread below);
//   - it seals only with the store's current kid, reading its key file again if it lacks that key,
//     and refuses to seal (the enrolment fails naming the kid) rather than seal with another (SQL
//     store; with one daemon, the file's "current" is that kid, built);
//   - at start, one value per kid in the store must open (daemon/main.ts, built), and it records
//     its kids in the store before it answers (SQL store).
// Built for the file store: keys added before they are current (`memfa key add`, taken by the next
// `memfa key rotate`), the re-reads and their checks. Left for the SQL store: the current kid and
// each daemon's kids in the store, and switch, re-seal and retire as separate, guarded steps.

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
export function checkReread(held: KeyFileContent, reread: KeyFileContent, path: string): void {
  if (!held.mac.equals(reread.mac)) {
    throw new MemfaError('CONFIG_INVALID', `key file ${path} now holds another MAC key than the one the daemon holds; it was not taken`, {
      data: { path },
      hint: 'install the key file that belongs to this store: with another MAC key, codes, recovery codes and tokens stop matching',
    });
  }
  for (const [kid, key] of held.keys) {
    const theirs = reread.keys.get(kid);
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
