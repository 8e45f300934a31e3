// Human-readable rendering of results: every text a command prints for people is made here.
// --json bypasses all of this.
import type { ChalkInstance } from 'chalk';
import type {
  AdminAddResult,
  AdminListResult,
  AuditQueryResult,
  AuditStreamStatus,
  AuditVerifyResult,
  DomainListResult,
  DomainView,
  EffectiveView,
  EnrolResult,
  ExplainResult,
  GlobalView,
  IpBlockClearResult,
  IpBlockListResult,
  KeyAddResult,
  KeyRotateResult,
  LockView,
  MailboxListResult,
  MailboxView,
  ProviderRow,
  ProviderTestResult,
  SelfCodeSent,
  SelfView,
  StatusResult,
  UnlockResult,
} from '../protocol/results.js';
import { describeGrace } from '../core/grace.js';
import { describeChoice } from '../core/provider-choice.js';
import { count } from '../core/wording.js';

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function rows(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function formatEffective(e: EffectiveView, c: ChalkInstance): [string, string][] {
  const src = (s: string) => c.dim(`(${s})`);
  const min = e.challenge.minimum;
  const challengeSource = min === undefined ? src(e.challenge.source) : min.raised ? src(`${min.source} minimum`) : `${src(e.challenge.source)} ${c.dim(`minimum ${min.value} (${min.source})`)}`;
  return [
    ['challenge', `${e.challenge.value} ${challengeSource}`],
    ['provider', `${e.provider.value} ${src(e.provider.source)}`],
    ['fallback', `${e.fallbackProvider.value} ${src(e.fallbackProvider.source)}`],
    ['users may configure', `${e.usersMayConfigure.value ? 'yes' : 'no'} ${src(e.usersMayConfigure.source)}`],
    ['enrolment grace', `${describeGrace(e.enrolmentGrace.value)} ${src(e.enrolmentGrace.source)}`],
    ['notifications', `${e.notifications.value ? 'yes' : 'no'} ${src(e.notifications.source)}`],
    ['country rules', e.countryRules.length === 0 ? 'none' : e.countryRules.map((r) => `${r.rule.mode} ${r.rule.countries.join(',')} ${src(r.level)}`).join('; ')],
    ['trusted networks', e.trustedNetworks.length === 0 ? 'none' : e.trustedNetworks.join(', ')],
    ['primary password', `${e.primaryPassword.value} ${src(e.primaryPassword.source)} ${c.dim('over IMAP, POP3, SMTP, ManageSieve, DAV')}`],
  ];
}

function ownChoices(s: Record<string, unknown>): string {
  const parts = Object.entries(s).map(([k, v]) => `${k} ${String(v)}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function lockText(l: LockView, c: ChalkInstance): string {
  const state = l.locked ? c.red(`locked (${l.reason}) until ${l.until === null ? 'an administrator unlocks it' : iso(l.until)}`) : c.green('not locked');
  return `${state}, ${count(l.failures, 'consecutive failure', 'consecutive failures')}`;
}

export function formatLock(m: MailboxView, c: ChalkInstance): string {
  return `${m.address}: remembered IPs: ${lockText(m.lock.known, c)}; other IPs: ${lockText(m.lock.elsewhere, c)}`;
}

export function formatMailbox(m: MailboxView, c: ChalkInstance): string {
  return rows([
    ['mailbox', `${c.bold(m.address)}${m.stored ? '' : c.dim(' (not stored: inherits everything)')}`],
    ...formatEffective(m.effective, c),
    // Only where it is not simply the configured provider: a fallback in its place, or none.
    ...(m.providerInUse !== undefined && m.providerInUse.candidates.some((x) => x.problem !== null)
      ? [['provider in use', m.providerInUse.provider === null ? c.red(describeChoice(m.providerInUse)) : c.yellow(describeChoice(m.providerInUse))] as [string, string]]
      : []),
    ["user's own choices", ownChoices(m.userSettings)],
    ['phone', m.phone ?? '-'],
    ['alternate email', m.altEmail ?? '-'],
    ['totp', m.totp === 'active' ? `active since ${iso(m.totpActivatedAt)}` : m.totp],
    ['remembered IPs', m.ips.length === 0 ? 'none' : m.ips.map((i) => `${i.ip} (last ${iso(i.lastSeen)})`).join(', ')],
    ['remembered countries', m.countries.length === 0 ? 'none' : m.countries.map((i) => `${i.country} (last ${iso(i.lastSeen)})`).join(', ')],
    ['lock, remembered IPs', lockText(m.lock.known, c)],
    ['lock, other IPs', lockText(m.lock.elsewhere, c)],
    ['recovery codes left', String(m.recoveryCodesLeft)],
    ...(m.enrolmentGraceLogins > 0 ? [['grace logins used', String(m.enrolmentGraceLogins)] as [string, string]] : []),
    ['app passwords', String(m.appPasswords)],
  ]);
}

export function formatStatus(s: StatusResult, c: ChalkInstance): string {
  return rows([
    ['version', s.version],
    ['pid', String(s.pid)],
    ['uptime', `${s.uptimeSeconds} s`],
    ['store', s.storeBackend === 'file' ? s.store : `${s.storeBackend} ${s.store}`],
    ['mailboxes', String(s.mailboxes)],
    ['domains', String(s.domains)],
    ['admin socket', s.sockets.admin],
    ['hook socket', s.sockets.hook],
    ['self socket', s.sockets.self],
    ...s.providers.map(
      (p): [string, string] => [
        `provider ${p.name}`,
        `${p.enabled ? c.green('enabled') : c.yellow('disabled')}, transport ${p.transport}, gateway ${p.gateway === 'down' ? c.red('down') : p.gateway}${p.detail ? ` (${p.detail})` : ''}`,
      ],
    ),
    ...s.audit.streams.map((a): [string, string] => [`audit ${a.name}`, auditStreamText(a, c)]),
  ]);
}

function auditStreamText(a: AuditStreamStatus, c: ChalkInstance): string {
  const problems: string[] = [];
  if (a.failedWrites > 0 || a.droppedLines > 0) problems.push(`${a.failedWrites} failed writes, ${a.droppedLines} lines lost${a.lastError === null ? '' : ` (last: ${a.lastError})`}`);
  if (a.gaps > 0) problems.push(`${a.gaps} breaks found and recorded`);
  return `${a.file}, seq ${a.seq}${problems.length === 0 ? '' : `, ${c.red(problems.join(', '))}`}`;
}

/** `audit verify`: intact with counts per stream, or each broken stream with its file and line. */
export function formatAuditVerify(r: AuditVerifyResult, c: ChalkInstance): string {
  const plural = (n: number, word: string) => count(n, word, `${word}s`);
  if (r.ok) {
    const inDatabase = r.database === true;
    const place = inDatabase ? 'the database' : `${r.files} files`;
    const each = r.streams.map((s) => (s.ok ? `${s.stream} ${plural(s.lines, 'line')}${inDatabase ? '' : ` in ${plural(s.files, 'file')}`}` : '')).join(', ');
    const lost = r.lost > 0 ? c.yellow(`; ${plural(r.lost, 'event')} lost to failed writes, as recorded in the log`) : '';
    return c.green(`audit log intact: ${r.lines} lines in ${place} (${each})`) + lost;
  }
  return r.streams
    .map((s) => (s.ok ? c.green(`${s.stream}: intact, ${plural(s.lines, 'line')}`) : c.red(`audit log broken at ${s.file} line ${s.line}: ${s.problem}`)))
    .join('\n');
}

export function formatExplain(x: ExplainResult, c: ChalkInstance): string {
  const d = x.decision;
  const colour = d.result === 'allow' ? c.green : d.result === 'deny' || d.result === 'error' ? c.red : c.yellow;
  return [
    formatMailbox(x.mailbox, c),
    '',
    c.bold(`login from ${x.ip} (${x.country ?? 'unknown country'})`),
    ...x.steps.map((s) => `  - ${s}`),
    '',
    `${c.bold('decision')}: ${colour(d.result)} (${d.reason})${d.matched ? `, matched ${d.matched}` : ''}${d.rule ? `, rule ${d.rule}` : ''}`,
  ].join('\n');
}

export function formatMailboxList(r: MailboxListResult, c: ChalkInstance, filtered = false): string {
  if (r.mailboxes.length === 0) return filtered ? 'no stored mailbox passes the filters' : 'no stored mailboxes';
  return r.mailboxes.map((m) => `${m.address}\t${m.challenge}\t${m.provider}\ttotp:${m.totp}${m.locked ? '\t' + c.red('locked') : ''}`).join('\n');
}

export function formatMailboxRemoved(address: string): string {
  return `removed ${address}`;
}

export function formatDomain(d: DomainView, c: ChalkInstance): string {
  return rows([['domain', `${c.bold(d.domain)} (${count(d.mailboxes, 'stored mailbox', 'stored mailboxes')})`], ...formatEffective(d.effective, c)]);
}

/** The words for each setting key, in the order they are listed. */
const SETTING_WORDS: Readonly<Record<string, string>> = {
  challenge: 'challenge',
  provider: 'provider',
  fallbackProvider: 'fallback',
  countryRule: 'country rule:',
  trustedNetworks: 'trusted networks',
  usersMayConfigure: 'users may configure',
  minChallenge: 'minimum challenge',
  notifications: 'notifications',
};

/** A setting's value in words: lists comma-separated, yes/no, a country rule as its mode and countries. */
function settingValue(key: string, v: unknown): string {
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.map((x) => settingValue(key, x)).join(',');
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (key === 'countryRule' && Array.isArray(o['countries'])) return `${o['mode'] === 'allow-only' ? 'allow only' : String(o['mode'])} ${settingValue(key, o['countries'])}`;
    return Object.entries(o).map(([k, x]) => `${k} ${settingValue(k, x)}`).join(' ');
  }
  return String(v);
}

/** The settings of one level in words, in a fixed order (keys this version does not know last). */
export function formatLevelSettings(settings: Record<string, unknown>): string {
  const keys = [...Object.keys(SETTING_WORDS).filter((k) => settings[k] !== undefined), ...Object.keys(settings).filter((k) => !Object.hasOwn(SETTING_WORDS, k))];
  if (keys.length === 0) return 'no settings of its own';
  return keys.map((k) => `${Object.hasOwn(SETTING_WORDS, k) ? SETTING_WORDS[k] : k} ${settingValue(k, settings[k])}`).join(', ');
}

export function formatDomainList(r: DomainListResult): string {
  if (r.domains.length === 0) return 'no domain settings';
  return r.domains.map((d) => `${d.domain}\t${count(d.mailboxes, 'mailbox', 'mailboxes')}\t${formatLevelSettings(d.settings)}`).join('\n');
}

export function formatDomainRemoved(domain: string, kept: readonly string[] = []): string {
  if (kept.length > 0) return `removed the settings of ${domain} that domain administrators may set; kept the platform administrator's: ${kept.join(', ')}`;
  return `removed the settings of ${domain}`;
}

export function formatGlobal(g: GlobalView, c: ChalkInstance): string {
  return rows(formatEffective(g.effective, c));
}

/**
 * The secret as an authenticator app takes it (the QR code is printed apart), with how long it
 * stays pending unless it is being activated at once.
 */
export function formatEnrolment(e: EnrolResult, c: ChalkInstance, pending = true): string {
  return rows([
    ['account', e.address],
    ['secret', c.bold(e.secretGrouped)],
    ['uri', e.otpauthUri],
    ['settings', `${e.algorithm}, ${e.digits} digits, ${e.period} s`],
    ...(pending ? [['pending until', new Date(e.expiresAt).toISOString()] as [string, string]] : []),
  ]);
}

/** A TOTP secret is only asked for when TOTP is the mailbox's provider: say so when it is not. */
export function formatProviderNote(address: string, provider: EffectiveView['provider'], c: ChalkInstance): string | null {
  if (provider.value === 'totp') return null;
  return c.yellow(
    `note: the provider of ${address} is ${provider.value} (from ${provider.source}): its logins are asked for ${provider.value} codes, not for this TOTP secret, until its provider is totp (memfa mailbox set ${address} --provider totp)`,
  );
}

export function formatActivated(address: string, how: 'forced' | 'confirmed', c: ChalkInstance): string {
  return how === 'forced' ? `activated ${address} without confirmation` : c.green(`activated: ${address} now uses TOTP`);
}

export function formatReset(address: string, secret: boolean, locations: boolean): string {
  return `reset ${address}: ${[secret ? 'TOTP secret removed' : '', locations ? 'locations forgotten' : ''].filter(Boolean).join(', ')}`;
}

export function formatUnlock(address: string, r: UnlockResult): string {
  return `unlocked ${address} (${count(r.failuresCleared, 'failure', 'failures')} cleared)`;
}

export function formatIpBlocks(r: IpBlockListResult): string {
  if (r.total === 0) return 'no blocked sources';
  const lines = r.blocks.map((b) => `${b.source}\t${b.reason}\tuntil ${iso(b.until)}\t${count(b.failures, 'failure', 'failures')}`);
  if (r.blocks.length < r.total) lines.push(`(${r.blocks.length} of ${r.total} shown)`);
  return lines.join('\n');
}

export function formatIpBlockCleared(r: IpBlockClearResult): string {
  if ('all' in r) return `cleared ${count(r.cleared, 'source', 'sources')} with a block or failures`;
  const was = r.blocked ? `blocked (${r.reason}) until ${iso(r.until)}` : 'not blocked';
  return `cleared ${r.source}: it was ${was}, with ${count(r.failures, 'failure', 'failures')}`;
}

export function formatRecoveryCodes(address: string, codes: string[], c: ChalkInstance): string {
  return [`recovery codes for ${address} (each works once; store them offline):`, ...codes.map((x) => '  ' + c.bold(x))].join('\n');
}

export function formatKeyAdd(r: KeyAddResult): string {
  return `added key ${r.kid}, not used yet; key ${r.current} still encrypts (memfa key rotate makes ${r.kid} current)`;
}

export function formatKeyRotate(r: KeyRotateResult): string {
  return `new key ${r.kid}; ${count(r.resealed, 'mailbox', 'mailboxes')} re-encrypted; retired ${r.retired.length === 0 ? 'nothing' : r.retired.join(', ')}`;
}

export function formatAudit(r: AuditQueryResult): string {
  if (r.entries.length === 0) return 'no matching entries';
  // A counted line (fast-path allows) stands for details.count logins; any other for one event.
  const logins = (e: AuditQueryResult['entries'][number]) => ((e.action === 'verify' || e.action === 'login.check') && typeof e.details?.count === 'number' ? e.details.count : 1);
  return r.entries.map((e) => [e.time, e.actor, e.mailbox ?? '-', e.action, e.result, e.reason ?? '-', e.ip ?? '-', e.country ?? '-', logins(e)].join('\t')).join('\n');
}

export function formatProviderRow(r: ProviderRow, c: ChalkInstance): string {
  // app-password is who may create app passwords: it has no gateway, and its mailboxes are those that have some.
  const gateway = r.name === 'app-password' ? 'gateway: -   ' : `gateway: ${r.gatewayConfigured ? r.transport : c.yellow('not configured')}`;
  const row = `${r.name.padEnd(12)} ${r.enabled ? c.green('enabled ') : c.yellow('disabled')}  domain admins: ${r.domainAdmins ? 'yes' : 'no '}  end users: ${r.endUsers ? 'yes' : 'no '}  ${gateway}  mailboxes: ${r.mailboxes}`;
  return r.enabled && !r.gatewayConfigured && r.name !== 'app-password' ? `${row}  ${c.red(`(enabled without a gateway: verify answers provider-unusable where ${r.name} is needed)`)}` : row;
}

export function formatAdminAdded(r: AdminAddResult, c: ChalkInstance): string {
  return `${c.bold(r.token)}\nthe token for ${r.name} (${r.domains.join(', ')}); it is shown only now: give it to them through a safe channel`;
}

export function formatAdminRemoved(name: string): string {
  return `removed ${name}; the token no longer works`;
}

export function formatAdminList(r: AdminListResult): string {
  if (r.admins.length === 0) return 'no domain administrators';
  return r.admins.map((a) => `${a.name}\t${a.domains.join(',')}\t${new Date(a.createdAt).toISOString()}`).join('\n');
}

export function formatSelf(v: SelfView): string {
  const choices = (allowed: string[]) => (!v.mayConfigure ? 'the user may not change it' : `may choose: ${allowed.length === 0 ? 'none' : allowed.join(', ')}`);
  return rows([
    ['mailbox', v.address],
    ['challenge', `${v.challenge} (${v.sources.challenge}; ${choices(v.allowedChallenges)})`],
    ['provider', `${v.provider} (${v.sources.provider}; ${choices(v.allowedProviders)})`],
    ['phone', v.phone ?? '-'],
    ['alternate email', v.altEmail ?? '-'],
    ['totp', v.totp],
    ['active factors', v.activeFactors.length === 0 ? 'none' : `${v.activeFactors.join(', ')} (changing them needs --current-code-stdin)`],
    ['may configure', v.mayConfigure ? 'yes' : 'no'],
    ['app passwords', `${v.appPasswords.count}${v.appPasswords.mayCreate ? '' : ' (the platform lets only administrators create them)'}`],
  ]);
}

export function formatSelfCodeSent(r: SelfCodeSent): string {
  if (!r.sent) return `the code sent before by ${r.provider} to ${r.destination} is valid until ${iso(r.expiresAt)}; not sent again${r.retryAfter === undefined ? '' : ` (another send is allowed in ${r.retryAfter} s)`}`;
  return `code ${r.resent ? 'sent again' : 'sent'} by ${r.provider} to ${r.destination}; valid until ${iso(r.expiresAt)}`;
}

export function formatSelfActivated(c: ChalkInstance): string {
  return c.green('activated');
}

export function formatLocationsForgotten(): string {
  return 'remembered locations forgotten';
}

export function formatProviderTest(r: ProviderTestResult, c: ChalkInstance): string {
  return c.green(`sent a test message to ${r.to} through ${r.transport} in ${r.ms} ms${r.messageId ? ` (id ${r.messageId})` : ''}`);
}

export { rows, iso };
