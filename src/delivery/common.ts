// Pieces every transport shares: the failure it reports, secrets read from files, keeping
// secrets out of text that came back from a server, and sharing a check in flight.

import { readFile, stat } from 'node:fs/promises';
import { MemfaError } from '../protocol/errors.js';
import type { DeliveryLogger, Provider } from './types.js';

export function deliveryFailed(
  provider: Provider,
  message: string,
  data: Record<string, unknown> = {},
  cause?: unknown,
): MemfaError {
  return new MemfaError('DELIVERY_FAILED', message, {
    data: { provider, ...data },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Replaces every occurrence of a secret (the code, a password) in text that is about to go into an
 * error or a log line. A server reply may quote what it was sent.
 */
export function redact(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/**
 * Reads a password file. Only the last line break is dropped, so a password may end in spaces.
 * Warns once per read when others can read the file: the password is as safe as its mode.
 */
export async function readSecretFile(path: string, key: string, logger: DeliveryLogger): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
    if (process.platform !== 'win32') {
      const { mode } = await stat(path);
      if ((mode & 0o077) !== 0) {
        logger.warn('delivery.secret_file_mode', { key, path, mode: `0${(mode & 0o777).toString(8)}` });
      }
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new MemfaError('CONFIG_INVALID', `cannot read ${key} ${path}: ${code}`, { data: { key, path, errno: code } });
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') {
    throw new MemfaError('CONFIG_INVALID', `${key} ${path} is empty`, { data: { key, path } });
  }
  return secret;
}

/** A short, single-line, secret-free rendering of an unknown thrown value. */
export function describeError(err: unknown, secrets: ReadonlyArray<string | undefined> = []): string {
  const raw = err instanceof Error ? err.message : String(err);
  const line = raw.split(/\r?\n/).filter((l) => l.trim() !== '')[0] ?? 'unknown error';
  const clipped = line.length > 200 ? `${line.slice(0, 200)}…` : line;
  return redact(clipped, secrets);
}

/**
 * Wraps `run` so that callers arriving while a call is in flight share it instead of starting
 * another: a storm of health checks then costs the gateway one connection at a time.
 */
export function sharedInFlight<T>(run: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | null = null;
  return () => {
    if (inFlight === null) {
      const started: Promise<T> = run().finally(() => {
        if (inFlight === started) inFlight = null;
      });
      inFlight = started;
    }
    return inFlight;
  };
}
