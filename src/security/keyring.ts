// Secrets at rest: the keys of one key file (key-file.ts), sealing with the current key and
// opening with whichever key sealed (seal.ts), changed by rotation (rotation.ts, which also has
// the plan for several daemons sharing one store).
//
// The ring holds what the key file held when it was last read or written, and reads the file again
// in two cases, so that a key file installed while the daemon runs (by hand, or from another host)
// is taken:
//   - opening a value sealed with a kid it lacks, before it fails: the file may have gained that
//     key. Only when the file changed (another inode, size or change time) since it was last read
//     or written: a value no key opens costs a stat, not a read, however often it is met.
//   - before each change it writes (add, rotate, retire), so that the change extends what the file
//     holds instead of overwriting it with what was read earlier. (Only the daemon writes the
//     file; a file installed during the moment of a write is overwritten.)
// The file read again must keep the MAC seed and every key the ring holds, unchanged, but for a
// key retired from the store through another daemon (rotation.checkReread); otherwise it is not
// taken and the caller gets CONFIG_INVALID.

import { hkdfSync } from 'node:crypto';
import { createKeyFile, freshKeyFile, KEY_BYTES, keyFileVersion, missingKeyFile, readKeyFile, writeKeyFile, type KeyFileContent, type KeyFileVersion } from './key-file.js';
import { checkReread, withAddedKey, withoutKey, withRotatedKey } from './rotation.js';
import { MemfaError } from '../protocol/errors.js';
import { cannotOpen, openWith, parseSealed, sealWith } from './seal.js';

// Callers of the ring name their secrets' AAD with it; it lives with the cipher.
export { secretAad } from './seal.js';

export interface KeyringOptions {
  /** Create a fresh key file when none exists (first start); otherwise a missing file is an error. */
  create: boolean;
  /** Told each time the key file was read again and taken (never anything secret). */
  onReread?: (event: KeyFileReread) => void;
  /**
   * Whether key `kid` was retired from the store through another daemon (several daemons on one
   * store: daemon/key-ring.ts), so that a file read again may lack it. Absent: none was.
   */
  retired?: (kid: string) => boolean;
}

export interface KeyFileReread {
  /** A sealed value named a kid the ring lacked, or the ring was about to write the file. */
  why: 'unknown-kid' | 'before-write';
  /** The kid that was lacking, for 'unknown-kid'. */
  kid?: string;
  /** What the file holds now. */
  current: string;
  kids: string[];
}

export class Keyring {
  readonly path: string;
  #file: KeyFileContent;
  /** The version of the file #file was read from or written as; null if none could be told. */
  #version: KeyFileVersion | null;
  readonly #onReread: ((event: KeyFileReread) => void) | undefined;
  readonly #retired: ((kid: string) => boolean) | undefined;
  /**
   * Keyed hashes (one-time codes, recovery codes, admin tokens) are one-way: once stored, they
   * cannot be re-keyed because the plain value is gone. If their keys came from the rotating
   * encryption keys, retiring a key would silently invalidate every stored hash (all recovery codes
   * would stop working). So MAC keys derive from the file's separate seed, which rotation leaves
   * alone and a re-read may not change. Replacing the seed is a deliberate, separate act that
   * invalidates every stored hash.
   */
  #macKeys = new Map<string, Buffer>();
  /** Serialises the changes so that two rewrites of the key file never interleave. */
  #writes: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: KeyFileContent, version: KeyFileVersion | null, options: KeyringOptions) {
    this.path = path;
    this.#file = file;
    this.#version = version;
    this.#onReread = options.onReread;
    this.#retired = options.retired;
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
    return new Keyring(path, read.content, read.version, options);
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

  /**
   * Seals with key `kid` rather than the file's current one: with several daemons on one store,
   * the key the store names current (daemon/key-ring.ts), which a node whose file still names
   * another must use too. A kid the ring lacks is looked for in the file again (it may have been
   * installed meanwhile); still lacking it, nothing is sealed.
   */
  sealWith(kid: string, plaintext: Buffer, aad: string): string {
    let key = this.#file.keys.get(kid);
    if (key === undefined && this.#reread('unknown-kid', kid)) key = this.#file.keys.get(kid);
    if (key === undefined) {
      throw new MemfaError('CONFIG_INVALID', `the key file ${this.path} lacks key ${kid}, which the store makes current; nothing was sealed`, {
        data: { kid, file: this.path },
        hint: `copy ${this.path} from the node that ran memfa key add or rotate; the daemon takes it at once`,
      });
    }
    return sealWith(kid, key, plaintext, aad);
  }

  open(sealed: string, aad: string): Buffer {
    const parts = parseSealed(sealed);
    let key = this.#file.keys.get(parts.kid);
    if (key === undefined && this.#reread('unknown-kid', parts.kid)) key = this.#file.keys.get(parts.kid);
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

  /**
   * Adds a fresh key after the others without making it current (rotation phase 1): nothing is
   * sealed with it until `rotate` makes it current. Returns its kid; CONFLICT if an added key is
   * waiting already.
   */
  add(): Promise<string> {
    return this.#change(withAddedKey);
  }

  /** Makes the added key current, or a fresh key when none was added; saves the key file. Returns the kid. */
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

  /**
   * Takes the key file's content if the file changed since it was last read or written; whether
   * it did. A file that is gone or is no regular file holds nothing to take.
   */
  #reread(why: KeyFileReread['why'], kid?: string): boolean {
    const version = keyFileVersion(this.path);
    if (version === null || version === this.#version) return false;
    const read = readKeyFile(this.path);
    if (read === null) return false;
    checkReread(this.#file, read.content, this.path, this.#retired);
    this.#file = read.content;
    this.#version = read.version;
    this.#onReread?.({ why, ...(kid === undefined ? {} : { kid }), current: this.#file.current, kids: this.kids() });
    return true;
  }

  /** Applies a change to what the file holds now and saves it; the change reaches the ring once saved. */
  #change(change: (file: KeyFileContent) => { file: KeyFileContent; kid: string }): Promise<string> {
    return this.#serialised(async () => {
      this.#reread('before-write');
      const next = change(this.#file);
      const version = await writeKeyFile(this.path, next.file);
      this.#file = next.file;
      this.#version = version;
      return next.kid;
    });
  }

  #serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(task, task);
    this.#writes = run.catch(() => undefined);
    return run;
  }
}
