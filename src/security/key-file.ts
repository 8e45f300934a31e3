// The key file: its format, and reading and writing it.
//
// Key file (mode 0600, owned by the daemon's uid):
//   { "version": 1, "current": "<kid>", "keys": { "<kid>": "<base64 32 bytes>", ... },
//     "mac": "<base64 32 bytes>" }
//
// "keys" are in the order they were added, oldest first, and every change keeps that order: a key
// after the current one was added for a rotation that has not made it current yet (rotation.ts).
// (A key id of digits only would be put first by any JSON parser; generated ids never are.)
// "mac" is the seed of the keys for keyed hashes, which rotation leaves alone (keyring.ts).
//
// The same file may be installed on several hosts whose daemons share one store; it is never
// stored in a database.

import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { MemfaError } from '../protocol/errors.js';
import { assertPrivateFile, createFileExclusive, errnoCode, writeFileAtomic } from '../files/durable.js';

export const KEY_BYTES = 32;
export const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const WHAT = 'key file';
/** Thousands of keys; the file is read while the daemon runs, so it is bounded like any input. */
export const MAX_KEY_FILE_BYTES = 1024 * 1024;
const FIELDS = ['version', 'current', 'keys', 'mac'];

/** What a key file holds; `keys` in the file's order, oldest first. Never changed in place. */
export interface KeyFileContent {
  readonly current: string;
  readonly keys: ReadonlyMap<string, Buffer>;
  readonly mac: Buffer;
}

/**
 * One version of the file on disk (device, inode, size, change times), to tell whether the file
 * was replaced or rewritten since it was read without reading it again.
 */
export type KeyFileVersion = string;

export function newKid(): string {
  // The date makes a key's age visible wherever its kid appears (key file, sealed values); the
  // random part keeps two keys made on one day apart.
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return `${day}-${randomBytes(3).toString('hex')}`;
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** A fresh key file's content: one key, current, and a MAC seed. */
export function freshKeyFile(): KeyFileContent {
  const kid = newKid();
  return { current: kid, keys: new Map([[kid, newKey()]]), mac: newKey() };
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

/** Parses the text of the key file at `path`; every fault is CONFIG_INVALID naming the file, never quoting it. */
export function parseKeyFile(path: string, text: string): KeyFileContent {
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
    if (!FIELDS.includes(field)) throw malformedFile(path, `unknown field "${field}"`);
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

export function serialiseKeyFile(content: KeyFileContent): string {
  const file = {
    version: 1,
    current: content.current,
    keys: Object.fromEntries([...content.keys].map(([kid, key]) => [kid, key.toString('base64')])),
    mac: content.mac.toString('base64'),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

function versionOf(stats: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): KeyFileVersion {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}`;
}

/**
 * The version of the file now at `path`, or null when no regular file is there (then there is
 * nothing in it to read).
 */
export function keyFileVersion(path: string): KeyFileVersion | null {
  try {
    const stats = statSync(path, { bigint: true });
    return stats.isFile() ? versionOf(stats) : null;
  } catch {
    return null;
  }
}

/**
 * Reads and parses the key file, or null when it does not exist. Refuses (CONFIG_INVALID, naming
 * the file) one that is readable by group or others, owned by another uid, or malformed.
 * Synchronous: it is read at start and, rarely, again while running (keyring.ts), and it is small.
 */
export function readKeyFile(path: string): { content: KeyFileContent; version: KeyFileVersion } | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return null;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be opened (${code})`, { data: { path }, cause: error });
  }
  let text: string;
  let version: KeyFileVersion;
  try {
    // Checked on the open descriptor, so the file checked is the file read.
    const stats = fstatSync(fd, { bigint: true });
    assertPrivateFile(path, fstatSync(fd), WHAT, { checkOwner: true });
    if (stats.size > BigInt(MAX_KEY_FILE_BYTES)) throw malformedFile(path, `larger than ${MAX_KEY_FILE_BYTES} bytes`);
    version = versionOf(stats);
    text = readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof MemfaError) throw error;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be read (${errnoCode(error)})`, { data: { path }, cause: error });
  } finally {
    closeSync(fd);
  }
  return { content: parseKeyFile(path, text), version };
}

export function missingKeyFile(path: string): MemfaError {
  return new MemfaError('CONFIG_INVALID', `${WHAT} ${path} missing`, {
    data: { path },
    hint: 'restore the key file from backup; without it stored secrets cannot be opened',
  });
}

/**
 * Creates the key file with `content` (mode 0600, exclusive, fsynced with its directory). When
 * another process created it first, theirs is kept: keys are never overwritten.
 */
export async function createKeyFile(path: string, content: KeyFileContent): Promise<void> {
  try {
    await createFileExclusive(path, serialiseKeyFile(content));
  } catch (error) {
    if (errnoCode(error) === 'EEXIST') return;
    throw new MemfaError('CONFIG_INVALID', `${WHAT} ${path} cannot be created (${errnoCode(error)})`, {
      data: { path },
      hint: `check that ${dirname(path)} exists and is writable by the daemon`,
      cause: error,
    });
  }
}

/** Replaces the key file atomically with `content`; STORE_FAILED (the file unchanged) if it cannot. */
export async function writeKeyFile(path: string, content: KeyFileContent): Promise<KeyFileVersion | null> {
  try {
    await writeFileAtomic(path, serialiseKeyFile(content));
  } catch (error) {
    throw new MemfaError('STORE_FAILED', `${WHAT} ${path} could not be written (${errnoCode(error)}); it is unchanged`, {
      data: { path },
      cause: error,
    });
  }
  return keyFileVersion(path);
}
