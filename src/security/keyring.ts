// Secrets at rest: AES-256-GCM under keys read from one key file.
//
// Key file (mode 0600, owned by the daemon's uid):
//   { "version": 1, "current": "<kid>", "keys": { "<kid>": "<base64 32 bytes>", ... },
//     "mac": "<base64 32 bytes>" }
// Sealed value: v1.<kid>.<iv b64url>.<tag b64url>.<ciphertext b64url>
//
// Several keys live side by side so that rotation needs no downtime: `rotate` adds a key and makes
// it current, old values still open and report `needsReseal`, a sweep re-seals them, and only then
// does `retire` drop the old key. The ring cannot know whether the sweep finished; retiring too
// early makes the remaining values unopenable, and `open` then says so loudly.
//
// The additional authenticated data names the purpose and the mailbox ('totp:alice@example.org'),
// so a sealed value copied into another mailbox's record, or into another field, fails to open.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MemfaError } from '../protocol/errors.js';
import { assertPrivateFile, createFileExclusive, errnoCode, writeFileAtomic } from '../files/durable.js';

const FORMAT = 'v1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL_PATTERN = /^[A-Za-z0-9_-]*$/;
const WHAT = 'key file';

interface KeyFile {
  version: 1;
  current: string;
  keys: Record<string, string>;
  mac: string;
}

export interface LoadKeyringOptions {
  /** Create a fresh key file when none exists (first start); otherwise a missing file is an error. */
  create: boolean;
}

function newKid(): string {
  // The date makes a key's age visible wherever its kid appears (key file, sealed values); the
  // random part keeps two rotations on one day apart.
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return `${day}-${randomBytes(3).toString('hex')}`;
}

function cannotOpen(kid: string | null): MemfaError {
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

interface SealedParts {
  kid: string;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function parseSealed(sealed: string): SealedParts {
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

function decodeKey(path: string, field: string, value: unknown): Buffer {
  // Only canonical base64 is accepted: Node's decoder silently skips junk, which would turn a typo
  // into a different (shorter) key instead of an error.
  if (typeof value === 'string') {
    const key = Buffer.from(value, 'base64');
    if (key.length === KEY_BYTES && key.toString('base64') === value) return key;
  }
  throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} is malformed: "${field}" must be the base64 encoding of ${KEY_BYTES} bytes`, {
    data: { path, field },
  });
}

function malformedFile(path: string, problem: string): MemfaError {
  return new MemfaError('CONFIG_INVALID', `${WHAT} ${path} is malformed: ${problem}`, { data: { path } });
}

function parseKeyFile(path: string, text: string): { current: string; keys: Map<string, Buffer>; mac: Buffer } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    // The parser's own message quotes the text around the fault, which may be key material.
    throw malformedFile(path, 'not valid JSON');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformedFile(path, 'not a JSON object');
  const file = raw as Record<string, unknown>;
  for (const field of Object.keys(file)) {
    if (!['version', 'current', 'keys', 'mac'].includes(field)) throw malformedFile(path, `unknown field "${field}"`);
  }
  if (file.version !== 1) throw malformedFile(path, '"version" must be 1');
  const keysRaw = file.keys;
  if (typeof keysRaw !== 'object' || keysRaw === null || Array.isArray(keysRaw)) throw malformedFile(path, '"keys" must be an object');
  const keys = new Map<string, Buffer>();
  for (const [kid, value] of Object.entries(keysRaw)) {
    if (!KID_PATTERN.test(kid)) throw malformedFile(path, 'a key id must be 1-64 characters of A-Z a-z 0-9 _ -');
    keys.set(kid, decodeKey(path, `keys.${kid}`, value));
  }
  if (typeof file.current !== 'string' || !keys.has(file.current)) {
    throw malformedFile(path, '"current" must name one of "keys"');
  }
  const mac = decodeKey(path, 'mac', file.mac);
  return { current: file.current, keys, mac };
}

async function readKeyFile(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await openFile(path, 'r');
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return null;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be opened (${code})`, { data: { path }, cause: error });
  }
  try {
    // Checked on the open descriptor, so the file checked is the file read.
    assertPrivateFile(path, await handle.stat(), WHAT, { checkOwner: true });
    return await handle.readFile('utf8');
  } catch (error) {
    if (error instanceof MemfaError) throw error;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  } finally {
    await handle.close();
  }
}

function serialise(current: string, keys: Map<string, Buffer>, mac: Buffer): string {
  const file: KeyFile = {
    version: 1,
    current,
    keys: Object.fromEntries([...keys].map(([kid, key]) => [kid, key.toString('base64')])),
    mac: mac.toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

export class Keyring {
  readonly path: string;
  #current: string;
  #keys: Map<string, Buffer>;
  /**
   * Keyed hashes (one-time codes, recovery codes, admin tokens) are one-way: once stored, they
   * cannot be re-keyed because the plain value is gone. If their keys came from the rotating
   * encryption keys, retiring a key would silently invalidate every stored hash (all recovery codes
   * would stop working). So MAC keys derive from this separate seed, which rotation leaves alone.
   * Replacing the seed is a deliberate, separate act that invalidates every stored hash.
   */
  #macSeed: Buffer;
  #macKeys = new Map<string, Buffer>();
  /** Serialises rotate/retire so two rewrites of the key file never interleave. */
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(path: string, current: string, keys: Map<string, Buffer>, macSeed: Buffer) {
    this.path = path;
    this.#current = current;
    this.#keys = keys;
    this.#macSeed = macSeed;
  }

  /** See {@link loadOrCreateKeyring}. */
  static async load(path: string, options: LoadKeyringOptions): Promise<Keyring> {
    let text = await readKeyFile(path);
    if (text === null) {
      if (!options.create) {
        throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} missing`, {
          data: { path },
          hint: 'restore the key file from backup; without it stored secrets cannot be opened',
        });
      }
      const kid = newKid();
      const created = serialise(kid, new Map([[kid, randomBytes(KEY_BYTES)]]), randomBytes(KEY_BYTES));
      try {
        await createFileExclusive(path, created);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') {
          throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be created (${errnoCode(error)})`, {
            data: { path },
            hint: `check that ${dirname(path)} exists and is writable by the daemon`,
            cause: error,
          });
        }
        // Another process created it first: use theirs, never overwrite keys.
      }
      text = await readKeyFile(path);
      if (text === null) throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} missing`, { data: { path } });
    }
    const { current, keys, mac } = parseKeyFile(path, text);
    return new Keyring(path, current, keys, mac);
  }

  get currentKid(): string {
    return this.#current;
  }

  hasKid(kid: string): boolean {
    return this.#keys.has(kid);
  }

  /** Key ids in the file, oldest first (insertion order of the file). */
  kids(): string[] {
    return [...this.#keys.keys()];
  }

  seal(plaintext: Buffer, aad: string): string {
    const kid = this.#current;
    const key = this.#keys.get(kid);
    if (key === undefined) throw cannotOpen(kid);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT, kid, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  open(sealed: string, aad: string): Buffer {
    const parts = parseSealed(sealed);
    const key = this.#keys.get(parts.kid);
    if (key === undefined) throw cannotOpen(parts.kid);
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

  /** Whether the value was sealed with a key other than the current one (a re-seal sweep target). */
  needsReseal(sealed: string): boolean {
    return parseSealed(sealed).kid !== this.#current;
  }

  /** Opens and seals again under the current key; returns the value unchanged if already current. */
  reseal(sealed: string, aad: string): string {
    if (!this.needsReseal(sealed)) return sealed;
    return this.seal(this.open(sealed, aad), aad);
  }

  /** Adds a fresh key, makes it current and saves the key file. Returns the new kid. */
  rotate(): Promise<string> {
    return this.#serialised(async () => {
      let kid = newKid();
      while (this.#keys.has(kid)) kid = newKid();
      const keys = new Map(this.#keys);
      keys.set(kid, randomBytes(KEY_BYTES));
      await this.#save(kid, keys);
      this.#keys = keys;
      this.#current = kid;
      return kid;
    });
  }

  /**
   * Drops a key for good. Call only after every value sealed with it has been re-sealed: values
   * still sealed with it can never be opened again.
   */
  retire(kid: string): Promise<void> {
    return this.#serialised(async () => {
      if (!this.#keys.has(kid)) {
        throw new MemfaError('NOT_FOUND', `key ${KID_PATTERN.test(kid) ? kid : '(invalid id)'} is not in ${WHAT} ${this.path}`);
      }
      if (kid === this.#current) {
        throw new MemfaError('CONFLICT', `key ${kid} is the current key and cannot be retired`, { hint: 'rotate first' });
      }
      const keys = new Map(this.#keys);
      keys.delete(kid);
      await this.#save(this.#current, keys);
      this.#keys = keys;
    });
  }

  /**
   * A 32-byte key for keyed hashes of one purpose (e.g. 'code', 'recovery', 'admin-token'),
   * derived by HKDF-SHA256 from the long-lived MAC seed, so it is the same across rotations.
   * Distinct purposes get independent keys, so a hash made for one cannot be replayed as another.
   */
  macKey(purpose: string): Buffer {
    if (purpose.length === 0) throw new TypeError('macKey: purpose must not be empty');
    let key = this.#macKeys.get(purpose);
    if (key === undefined) {
      key = Buffer.from(hkdfSync('sha256', this.#macSeed, Buffer.from('memfa-mac-v1'), Buffer.from(purpose, 'utf8'), KEY_BYTES));
      this.#macKeys.set(purpose, key);
    }
    return Buffer.from(key);
  }

  async #save(current: string, keys: Map<string, Buffer>): Promise<void> {
    try {
      await writeFileAtomic(this.path, serialise(current, keys, this.#macSeed));
    } catch (error) {
      throw new MemfaError('STORE_FAILED', `${WHAT} ${this.path} could not be written (${errnoCode(error)}); it is unchanged`, {
        data: { path: this.path },
        cause: error,
      });
    }
  }

  #serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(task, task);
    this.#writes = run.catch(() => undefined);
    return run;
  }
}

/**
 * Loads the key file at `path`. When it is missing and `create` is true, writes a new one (mode
 * 0600, exclusive create, fsynced with its directory); when missing and `create` is false, or when
 * it is readable by group/others, owned by another uid, or malformed, throws CONFIG_INVALID
 * naming the file.
 */
export function loadOrCreateKeyring(path: string, options: LoadKeyringOptions): Promise<Keyring> {
  return Keyring.load(path, options);
}

/** The additional authenticated data for a secret of `purpose` belonging to `mailbox`. */
export function secretAad(purpose: string, mailbox: string): string {
  return `${purpose}:${mailbox}`;
}
