// The checks of a configuration that need more than the file itself: message templates, socket
// groups (the system's group database), the key file and the database's password and CA files. The daemon runs each at start, and
// `memfa config check` runs the same functions, so the two cannot disagree. Nothing here writes.
import { readFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { checkConfig, readConfigFile, type ConfigOverrides } from '../config/load.js';
import type { MemfaConfig } from '../config/types.js';
import { configuredNoticeTemplates, NOTICE_PLACEHOLDERS } from '../delivery/notice.js';
import { TEMPLATE_PLACEHOLDERS, validateTemplate } from '../delivery/template.js';
import { MemfaError } from '../protocol/errors.js';
import { SOCKET_KINDS } from '../protocol/methods.js';
import { CODE_PROVIDERS } from '../protocol/vocabulary.js';
import { Keyring } from '../security/keyring.js';

/**
 * Problems with the configured message templates, each "key: problem". Every configured section
 * is checked, used by a provider or not: a broken template must not wait for the day its transport
 * is switched on.
 */
export function templateProblems(config: MemfaConfig): string[] {
  const templates: [string, string | null][] = [];
  if (config.smtp !== null) templates.push(['smtp.subject', config.smtp.subject], ['smtp.text', config.smtp.text], ['smtp.html', config.smtp.html]);
  if (config.smpp !== null) templates.push(['smpp.template', config.smpp.template]);
  const problems: string[] = [];
  for (const [key, tpl] of templates) {
    if (tpl === null || tpl === undefined) continue;
    // The subject need not carry the code; every body must.
    for (const problem of validateTemplate(tpl, TEMPLATE_PLACEHOLDERS, key.endsWith('subject') ? [] : ['code'])) problems.push(`${key}: ${problem}`);
  }
  // A notice has no {code} to carry, and its templates can name none.
  for (const [key, tpl] of configuredNoticeTemplates(config.notifications.templates)) {
    for (const problem of validateTemplate(tpl, NOTICE_PLACEHOLDERS)) problems.push(`${key}: ${problem}`);
  }
  return problems;
}

/** Throws CONFIG_INVALID listing every template problem (the daemon's start). */
export function assertTemplates(config: MemfaConfig): void {
  const errors = templateProblems(config);
  if (errors.length > 0) throw new MemfaError('CONFIG_INVALID', `invalid templates:\n  ${errors.join('\n  ')}`, { data: { errors } });
}

/** The id of group `name` (a name from /etc/group, or a number), or CONFIG_INVALID naming `key`. */
export function groupId(name: string, key: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(name)) return Number(name);
  const line = readFileSync(groupFile, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === name);
  const gid = line?.split(':')[2];
  if (gid === undefined) throw new MemfaError('CONFIG_INVALID', `${key}: group "${name}" does not exist`, { data: { key } });
  return Number(gid);
}

/** Problems with the configured socket groups, each "key: problem". */
export function socketGroupProblems(config: MemfaConfig, groupFile = '/etc/group'): string[] {
  if (process.platform === 'win32') return [];
  const problems: string[] = [];
  for (const kind of SOCKET_KINDS) {
    const group = config.sockets[kind].group;
    if (group === null) continue;
    try {
      groupId(group, `sockets.${kind}.group`, groupFile);
    } catch (err) {
      problems.push(err instanceof MemfaError ? err.message : `sockets.${kind}.group: cannot read ${groupFile}: ${(err as Error).message}`);
    }
  }
  return problems;
}

export interface Findings {
  /** What would stop the daemon. */
  errors: string[];
  /** What this check could not vouch for, or what deserves a look. */
  warnings: string[];
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/**
 * The key file as the daemon's start reads it (security/keyring.ts, never creating it). Run as a
 * user other than the file's owner, the owner cannot be judged (the daemon's user is not known
 * here): that is a warning, as is a file this user may not read.
 */
export async function keyFileFindings(config: MemfaConfig): Promise<Findings> {
  const file = config.keyFile;
  const found: Findings = { errors: [], warnings: [] };
  const info = await stat(file).catch((err: unknown) => errnoOf(err) ?? 'EIO');
  if (typeof info === 'string') {
    if (info !== 'ENOENT') {
      found.warnings.push(`keyFile: ${file} cannot be checked by uid ${process.getuid?.() ?? '?'} (${info}); run the check as the daemon's user`);
      return found;
    }
    if (config.store.backend === 'postgres') {
      found.warnings.push(`keyFile: ${file} does not exist; a daemon creates it only when it is the first to use the database, otherwise copy it from the node that created it`);
      return found;
    }
    // The daemon creates a key file only for a store that has never had one.
    const store = await stat(config.store.file).catch((err: unknown) => errnoOf(err) ?? 'EIO');
    if (typeof store === 'string' && store === 'ENOENT') found.warnings.push(`keyFile: ${file} does not exist yet; the daemon creates it at its first start`);
    else if (typeof store === 'string') found.warnings.push(`keyFile: ${file} does not exist, and the store ${config.store.file} cannot be checked (${store})`);
    else found.errors.push(`keyFile: ${file} is missing but the store ${config.store.file} exists; the daemon refuses to start (restore the key file from backup)`);
    return found;
  }
  try {
    await Keyring.load(file, { create: false });
  } catch (err) {
    const e = err instanceof MemfaError ? err : new MemfaError('CONFIG_INVALID', `key file ${file}: ${(err as Error).message}`);
    const data = e.data ?? {};
    if ('owner' in data && 'uid' in data) {
      found.warnings.push(`keyFile: ${file} is owned by uid ${String(data['owner'])}, not by uid ${String(data['uid'])} running this check; run the check as the daemon's user to check its owner and contents`);
    } else if (errnoOf(e.cause) === 'EACCES') {
      found.warnings.push(`keyFile: ${file} cannot be read by uid ${process.getuid?.() ?? '?'}; run the check as the daemon's user`);
    } else {
      found.errors.push(`keyFile: ${e.message}`);
    }
  }
  return found;
}

/**
 * What can be checked of store.postgres without the database (`memfa config check` needs no
 * server): the password file and the CA file readable by this user. Whether the database answers,
 * and to these credentials, only the daemon's start finds out.
 */
export async function postgresFindings(config: MemfaConfig): Promise<Findings> {
  const found: Findings = { errors: [], warnings: [] };
  const pg = config.store.postgres;
  if (config.store.backend !== 'postgres' || pg === null) return found;
  const readable = async (key: string, file: string) => {
    try {
      await access(file, constants.R_OK);
      const info = await stat(file);
      if (!info.isFile()) found.errors.push(`${key}: ${file} is not a regular file`);
      else if (key.endsWith('passwordFile') && (info.mode & 0o077) !== 0) found.warnings.push(`${key}: ${file} can be read by group or others (mode ${(info.mode & 0o777).toString(8)}); make it 0600 or 0640`);
    } catch (err) {
      const code = errnoOf(err) ?? 'EIO';
      if (code === 'EACCES') found.warnings.push(`${key}: ${file} cannot be read by uid ${process.getuid?.() ?? '?'}; run the check as the daemon's user`);
      else found.errors.push(`${key}: ${file} cannot be read (${code})`);
    }
  };
  if (pg.passwordFile !== null) await readable('store.postgres.passwordFile', pg.passwordFile);
  if (pg.caFile !== null && pg.tls === 'verify-full' && !pg.host.startsWith('/')) await readable('store.postgres.caFile', pg.caFile);
  if (pg.tls !== 'verify-full' && !pg.host.startsWith('/')) {
    found.warnings.push(`store.postgres.tls: "${pg.tls}" does not check the server's certificate${pg.tls === 'disable' ? ' and sends everything in plain text' : ''}; use "verify-full" over a network`);
  }
  return found;
}

/** What deserves a warning in a valid configuration (the daemon logs the same at start). */
export function configWarnings(config: MemfaConfig): string[] {
  const warnings: string[] = [];
  for (const provider of CODE_PROVIDERS) {
    if (config.providers[provider].transport === 'log') {
      warnings.push(`providers.${provider}.transport: "log" writes every code in plain text to ${config.logTransport.file}; for development only`);
    }
  }
  return warnings;
}

export interface ConfigReport extends Findings {
  file: string;
}

/**
 * Everything `memfa config check` reports for `file`: the validator's problems (every key and the
 * cross-key rules) and those of the start checks above, which run on whatever part of the file is
 * valid. Reads only; needs no daemon.
 */
export async function checkConfiguration(file: string, overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<ConfigReport> {
  let raw: unknown;
  try {
    raw = readConfigFile(file);
  } catch (err) {
    return { file, errors: [(err as Error).message], warnings: [] };
  }
  const { config, errors, badKeys } = checkConfig(raw, file, overrides, env);
  const report: ConfigReport = { file, errors: [...errors], warnings: configWarnings(config) };
  report.errors.push(...templateProblems(config), ...socketGroupProblems(config));
  if (!badKeys.has('store') && !badKeys.has('store.postgres')) {
    const db = await postgresFindings(config);
    report.errors.push(...db.errors);
    report.warnings.push(...db.warnings);
  }
  // A bad path would point the check at another file than the daemon would use.
  if (!['dataDir', 'keyFile', 'store.file', 'store'].some((k) => badKeys.has(k))) {
    const keys = await keyFileFindings(config);
    report.errors.push(...keys.errors);
    report.warnings.push(...keys.warnings);
  }
  return report;
}
