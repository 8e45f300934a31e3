// Secrets at rest: the keys of one key file (key-file.ts), sealing with the current key and
// opening with whichever key sealed (seal.ts), changed by rotation (rotation.ts).

import { hkdfSync } from 'node:crypto';
import { createKeyFile, freshKeyFile, KEY_BYTES, missingKeyFile, readKeyFile, writeKeyFile, type KeyFileContent } from './key-file.js';
import { withoutKey, withRotatedKey } from './rotation.js';
import { cannotOpen, openWith, parseSealed, sealWith } from './seal.js';

// Callers of the ring name their secrets' AAD with it; it lives with the cipher.
export { secretAad } from './seal.js';

export interface KeyringOptions {
  /** Create a fresh key file when none exists (first start); otherwise a missing file is an error. */
  create: boolean;
}

export class Keyring {
  readonly path: string;
  #file: KeyFileContent;
  /**
   * Keyed hashes (one-time codes, recovery codes, admin tokens) are one-way: once stored, they
   * cannot be re-keyed because the plain value is gone. If their keys came from the rotating
   * encryption keys, retiring a key would silently invalidate every stored hash (all recovery codes
   * would stop working). So MAC keys derive from the file's separate seed, which rotation leaves
   * alone. Replacing the seed is a deliberate, separate act that invalidates every stored hash.
   */
  #macKeys = new Map<string, Buffer>();
  /** Serialises the changes so that two rewrites of the key file never interleave. */
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: KeyFileContent) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Loads the key file at `path`. When it is missing and `create` is true (the daemon's first
   * start), writes a new one (mode 0600, exclusive create, fsynced with its directory); when
   * missing and `create` is false, or when it is readable by group/others, owned by another uid,
   * or malformed, throws CONFIG_INVALID naming the file.
   */
  static async load(path: string, options: KeyringOptions): Promise<Keyring> {
    let read = readKeyFile(path);
    if (read === null) {
      if (!options.create) throw missingKeyFile(path);
      await createKeyFile(path, freshKeyFile());
      read = readKeyFile(path);
      if (read === null) throw missingKeyFile(path);
    }
    return new Keyring(path, read.content);
  }

  get currentKid(): string {
    return this.#file.current;
  }

  /** Key ids in the file, oldest first (the file's order). */
  kids(): string[] {
    return [...this.#file.keys.keys()];
  }

  seal(plaintext: Buffer, aad: string): string {
    const kid = this.#file.current;
    const key = this.#file.keys.get(kid);
    if (key === undefined) throw cannotOpen(kid); // parseKeyFile makes "current" one of "keys"
    return sealWith(kid, key, plaintext, aad);
  }

  open(sealed: string, aad: string): Buffer {
    const parts = parseSealed(sealed);
    const key = this.#file.keys.get(parts.kid);
    if (key === undefined) throw cannotOpen(parts.kid);
    return openWith(parts, key, aad);
  }

  /** Whether the value was sealed with a key other than the current one (a re-seal sweep target). */
  needsReseal(sealed: string): boolean {
    return parseSealed(sealed).kid !== this.#file.current;
  }

  /** Opens and seals again under the current key; returns the value unchanged if already current. */
  reseal(sealed: string, aad: string): string {
    if (!this.needsReseal(sealed)) return sealed;
    return this.seal(this.open(sealed, aad), aad);
  }

  /** Adds a fresh key, makes it current and saves the key file. Returns the new kid. */
  rotate(): Promise<string> {
    return this.#change(withRotatedKey);
  }

  /**
   * Drops a key for good. Call only after every value sealed with it has been re-sealed: values
   * still sealed with it can never be opened again.
   */
  async retire(kid: string): Promise<void> {
    await this.#change((file) => ({ file: withoutKey(file, kid, this.path), kid }));
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
      key = Buffer.from(hkdfSync('sha256', this.#file.mac, Buffer.from('memfa-mac-v1'), Buffer.from(purpose, 'utf8'), KEY_BYTES));
      this.#macKeys.set(purpose, key);
    }
    return Buffer.from(key);
  }

  /** Applies a change and saves it; the ring changes only once it is saved. */
  #change(change: (file: KeyFileContent) => { file: KeyFileContent; kid: string }): Promise<string> {
    return this.#serialised(async () => {
      const next = change(this.#file);
      await writeKeyFile(this.path, next.file);
      this.#file = next.file;
      return next.kid;
    });
  }

  #serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(task, task);
    this.#writes = run.catch(() => undefined);
    return run;
  }
}
