// Printing and exiting for the command layer: data to stdout, errors to stderr with a hint,
// distinct exit codes. The only place (with its siblings in cli/) that writes to the terminal.
import { EXIT, MemfaError } from '../protocol/errors.js';
import { loadConfig, type ConfigOverrides } from '../config/load.js';
import type { MemfaConfig } from '../config/types.js';
import type { SocketKind } from '../protocol/methods.js';

export interface GlobalOptions extends ConfigOverrides {
  socket?: string | undefined;
  tokenFile?: string | undefined;
  json?: boolean | undefined;
  color?: boolean | undefined;
}

export function useColor(opts: GlobalOptions, stream: NodeJS.WriteStream = process.stdout): boolean {
  if (opts.color === false) return false;
  if (process.env['NO_COLOR'] !== undefined && process.env['NO_COLOR'] !== '') return false;
  return stream.isTTY === true;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function toMemfaError(err: unknown): MemfaError {
  if (err instanceof MemfaError) return err;
  return new MemfaError('INTERNAL', (err as Error)?.message ?? String(err));
}

/** The one JSON document a failing command prints under --json (memfa(1), ERRORS). */
export function printErrorDocument(e: MemfaError): void {
  const doc: Record<string, unknown> = { result: 'error', error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.data ?? {}) } };
  const reason = e.data?.['reason'];
  if (typeof reason === 'string') doc['reason'] = reason;
  printJson(doc);
}

/** Warnings of an answer, after its output, on standard error (which --json leaves alone). */
export function warn(warnings: readonly string[] | undefined): void {
  for (const w of warnings ?? []) process.stderr.write(`memfa: warning: ${w}\n`);
}

/** The lines of an error's message: one per problem when INVALID_PARAMS lists several (data.errors). */
export function errorLines(e: MemfaError): string[] {
  const listed = e.data?.['errors'];
  if (e.code !== 'INVALID_PARAMS' || !Array.isArray(listed) || listed.length < 2) return [e.message];
  if (!listed.every((p: unknown) => typeof (p as { message?: unknown } | null)?.message === 'string')) return [e.message];
  const lines = listed.map((p: { message: string }) => p.message);
  const more = e.data?.['moreErrors'];
  if (typeof more === 'number' && more > 0) lines.push(`and ${more} more`);
  return lines;
}

/** Reports an error and returns the exit code to leave with. */
export function reportError(err: unknown, opts: GlobalOptions): number {
  const e = toMemfaError(err);
  if (opts.json) printErrorDocument(e);
  process.stderr.write(`${errorLines(e).map((l) => `memfa: ${l}\n`).join('')}${e.hint ? `hint: ${e.hint}\n` : ''}`);
  return e.exitCode;
}

export function configFor(opts: GlobalOptions): MemfaConfig {
  return loadConfig(opts);
}

/** The socket a command talks to: --socket, else the configured one for its kind. */
export function socketFor(opts: GlobalOptions, kind: SocketKind): string {
  if (opts.socket) return opts.socket;
  return configFor(opts).sockets[kind].path;
}

export const GENERIC_USAGE_HINT = 'see memfa --help or man memfa';

export function usage(message: string): MemfaError {
  return new MemfaError('USAGE', message, { hint: GENERIC_USAGE_HINT });
}

export { EXIT };
