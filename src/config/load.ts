// Finds, reads and validates the configuration. Shared by the daemon and the CLI (which needs only
// the socket paths), so it must stay light: node:fs and node:path only.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemfaError } from '../protocol/errors.js';
import { crossKeyProblems } from './rules.js';
import { CONFIG_SPEC, type Node, type Section } from './spec.js';
import type { MemfaConfig } from './types.js';
import type { SocketKind } from '../protocol/methods.js';

export const SYSTEM_CONFIG = '/etc/memfa/memfa.json';
export const SHIPPED_CONFIG = fileURLToPath(new URL('../../../config/memfa.json', import.meta.url));

export interface ConfigOverrides {
  config?: string | undefined;
  dataDir?: string | undefined;
  runDir?: string | undefined;
  adminSocket?: string | undefined;
  hookSocket?: string | undefined;
  selfSocket?: string | undefined;
}

/** --config, then $MEMFA_CONFIG, then /etc/memfa/memfa.json, then the shipped default. */
export function findConfigFile(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env['MEMFA_CONFIG']) return path.resolve(env['MEMFA_CONFIG']);
  if (existsSync(SYSTEM_CONFIG)) return SYSTEM_CONFIG;
  return SHIPPED_CONFIG;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function defaultsOf(node: Section): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(node.fields)) {
    out[key] = child.kind === 'leaf' ? child.default : child.nullable ? null : defaultsOf(child);
  }
  return out;
}

/**
 * Validates `input` against `node`, appending every problem to `errors`; returns the merged value,
 * with the default in place of a value that failed its check (so that the rest can still be
 * resolved and checked, see checkConfig).
 */
function walk(node: Node, input: unknown, key: string, errors: string[]): unknown {
  if (node.kind === 'leaf') {
    if (input === undefined) return node.default;
    const problem = node.check(input);
    if (problem) {
      errors.push(`${key}: ${problem}`);
      return node.default;
    }
    return input;
  }
  if (input === undefined) return node.nullable ? null : defaultsOf(node);
  if (input === null && node.nullable) return null;
  if (!isPlainObject(input)) {
    errors.push(`${key || 'configuration'}: must be an object${node.nullable ? ' or null' : ''}`);
    return node.nullable ? null : defaultsOf(node);
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(input)) {
    if (!Object.prototype.hasOwnProperty.call(node.fields, k)) errors.push(`${key ? key + '.' : ''}${k}: unknown key`);
  }
  for (const [k, child] of Object.entries(node.fields)) {
    const childKey = key ? `${key}.${k}` : k;
    if (node.required?.includes(k) && input[k] === undefined) {
      errors.push(`${childKey}: is required when ${key} is configured`);
      continue;
    }
    out[k] = walk(child, input[k], childKey, errors);
  }
  return out;
}

export const CONFIG_HINT = 'fix the keys named above; man 5 memfa.conf lists every key';

/** The error for a configuration with `errors`, each naming its key. */
export function configInvalid(source: string, errors: string[]): MemfaError {
  return new MemfaError('CONFIG_INVALID', `invalid configuration in ${source}:\n  ${errors.join('\n  ')}`, { data: { file: source, errors }, hint: CONFIG_HINT });
}

export interface ConfigCheck {
  /**
   * The configuration with paths resolved. When `errors` is not empty, a key that failed its own
   * check holds its default here: good enough to run further checks on, never to run with.
   */
  config: MemfaConfig;
  /** Every problem found, each "key: problem". */
  errors: string[];
  /** The keys named in `errors`. */
  badKeys: Set<string>;
}

/** Checks `raw` against the schema and the cross-key rules, collecting every problem. */
export function checkConfig(raw: unknown, source: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): ConfigCheck {
  const errors: string[] = [];
  const merged = walk(CONFIG_SPEC, raw, '', errors) as Record<string, unknown>;
  const keyOf = (e: string) => e.slice(0, e.indexOf(':'));
  errors.push(...crossKeyProblems(merged, new Set(errors.map(keyOf))));
  const c = merged as unknown as Omit<MemfaConfig, 'sockets' | 'keyFile' | 'source'> & {
    sockets: Record<SocketKind, { path: string | null; mode: string; group: string | null; allowWideMode: boolean }>;
    keyFile: string | null;
  };
  // Relative paths are relative to the configuration file, so a config can travel with its data.
  const base = path.isAbsolute(source) ? path.dirname(source) : process.cwd();
  const abs = (p: string, from = base) => path.resolve(from, p);
  const dataDir = abs(overrides.dataDir ?? env['MEMFA_DATA_DIR'] ?? c.dataDir, overrides.dataDir || env['MEMFA_DATA_DIR'] ? process.cwd() : base);
  const runDir = abs(overrides.runDir ?? env['MEMFA_RUN_DIR'] ?? c.runDir, overrides.runDir || env['MEMFA_RUN_DIR'] ? process.cwd() : base);
  const socketPath = (kind: SocketKind, override: string | undefined, explicitEnv: string | undefined): string => {
    const explicit = override ?? explicitEnv;
    if (explicit) return defaultSocketPath(path.resolve(explicit));
    const configured = c.sockets[kind].path;
    return defaultSocketPath(configured ? abs(configured, runDir) : path.join(runDir, `${kind}.sock`));
  };
  const socket = (kind: SocketKind, override: string | undefined, explicitEnv: string | undefined) => ({
    path: socketPath(kind, override, explicitEnv),
    mode: parseInt(c.sockets[kind].mode, 8),
    group: c.sockets[kind].group,
    allowWideMode: c.sockets[kind].allowWideMode,
  });
  // Written out, not looped over the socket kinds: the docs test finds each variable by its name.
  const sockets: Record<SocketKind, MemfaConfig['sockets']['admin']> = {
    admin: socket('admin', overrides.adminSocket, env['MEMFA_ADMIN_SOCKET']),
    hook: socket('hook', overrides.hookSocket, env['MEMFA_HOOK_SOCKET']),
    self: socket('self', overrides.selfSocket, env['MEMFA_SELF_SOCKET']),
  };
  // Two kinds on one path would give one group the rights of both.
  const kinds = Object.keys(sockets) as SocketKind[];
  for (const [i, kind] of kinds.entries()) {
    const other = kinds.slice(0, i).find((k) => sockets[k].path === sockets[kind].path);
    if (other !== undefined) errors.push(`sockets.${kind}.path: the same path as sockets.${other}.path (${sockets[kind].path}); each socket needs its own`);
  }
  // A socket path for the metrics listener is relative to the run directory, like the sockets.
  const metricsListen = c.metrics.listen !== null && c.metrics.listen.includes('/') ? abs(c.metrics.listen, runDir) : c.metrics.listen;
  const clash = kinds.find((k) => sockets[k].path === metricsListen);
  if (clash !== undefined) errors.push(`metrics.listen: the same path as sockets.${clash}.path (${metricsListen}); the metrics listener needs its own`);
  const config: MemfaConfig = {
    ...c,
    metrics: { ...c.metrics, listen: metricsListen },
    source,
    dataDir,
    runDir,
    sockets,
    store: {
      ...c.store,
      file: abs(c.store.file, dataDir),
      postgres: c.store.postgres && { ...c.store.postgres, passwordFile: c.store.postgres.passwordFile && abs(c.store.postgres.passwordFile), caFile: c.store.postgres.caFile && abs(c.store.postgres.caFile) },
    },
    keyFile: abs(c.keyFile ?? 'memfa.key', dataDir),
    audit: { ...c.audit, file: abs(c.audit.file, dataDir), security: { ...c.audit.security, file: abs(c.audit.security.file, dataDir) } },
    logTransport: { file: abs(c.logTransport.file, dataDir) },
    smtp: c.smtp && { ...c.smtp, passwordFile: c.smtp.passwordFile && abs(c.smtp.passwordFile) },
    smpp: c.smpp && { ...c.smpp, passwordFile: c.smpp.passwordFile && abs(c.smpp.passwordFile) },
  };
  return { config, errors, badKeys: new Set(errors.map(keyOf)) };
}

export function validateConfig(raw: unknown, source: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): MemfaConfig {
  const { config, errors } = checkConfig(raw, source, overrides, env);
  if (errors.length > 0) throw configInvalid(source, errors);
  return config;
}

/** On Windows a socket path becomes a named pipe in \\.\pipe\ derived from it. */
export function defaultSocketPath(p: string): string {
  if (process.platform !== 'win32' || p.startsWith('\\\\.\\pipe\\')) return p;
  return '\\\\.\\pipe\\memfa-' + p.replace(/^[A-Za-z]:/, '').replace(/[\\/:]+/g, '-').replace(/^-+/, '');
}

/** The configuration file's JSON, or CONFIG_INVALID naming the file. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (err as Error).message;
    throw new MemfaError('CONFIG_INVALID', `cannot read configuration ${file}: ${reason}`, { data: { file }, hint: 'pass --config FILE or set MEMFA_CONFIG' });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MemfaError('CONFIG_INVALID', `configuration ${file} is not valid JSON: ${(err as Error).message}`, { data: { file } });
  }
}

export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): MemfaConfig {
  const file = findConfigFile(overrides.config, env);
  return validateConfig(readConfigFile(file), file, overrides, env);
}
