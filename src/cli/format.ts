// Human-readable rendering of results. --json bypasses all of this.
import type { ChalkInstance } from 'chalk';
import type { AuditStreamStatus, AuditVerifyResult, EffectiveView, ExplainResult, MailboxView, StatusResult } from '../protocol/results.js';

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function rows(pairs: [string, string][]): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function formatEffective(e: EffectiveView, c: ChalkInstance): [string, string][] {
  const src = (s: string) => c.dim(`(${s})`);
  return [
    ['challenge', `${e.challenge.value} ${src(e.challenge.source)}`],
    ['provider', `${e.provider.value} ${src(e.provider.source)}`],
    ['fallback', `${e.fallbackProvider.value} ${src(e.fallbackProvider.source)}`],
    ['users may configure', `${e.usersMayConfigure.value ? 'yes' : 'no'} ${src(e.usersMayConfigure.source)}`],
    ['country rules', e.countryRules.length === 0 ? 'none' : e.countryRules.map((r) => `${r.rule.mode} ${r.rule.countries.join(',')} ${src(r.level)}`).join('; ')],
    ['trusted networks', e.trustedNetworks.length === 0 ? 'none' : e.trustedNetworks.join(', ')],
  ];
}

function lockText(m: MailboxView, c: ChalkInstance): string {
  const state = m.lock.locked ? c.red(`locked (${m.lock.reason}) until ${m.lock.until === null ? 'an administrator unlocks it' : iso(m.lock.until)}`) : c.green('not locked');
  return `${state}, ${m.lock.failures} consecutive failures`;
}

export function formatLock(m: MailboxView, c: ChalkInstance): string {
  return `${m.address}: ${lockText(m, c)}`;
}

export function formatMailbox(m: MailboxView, c: ChalkInstance): string {
  return rows([
    ['mailbox', `${c.bold(m.address)}${m.stored ? '' : c.dim(' (not stored: inherits everything)')}`],
    ...formatEffective(m.effective, c),
    ['phone', m.phone ?? '-'],
    ['alternate email', m.altEmail ?? '-'],
    ['totp', m.totp === 'active' ? `active since ${iso(m.totpActivatedAt)}` : m.totp],
    ['remembered IPs', m.ips.length === 0 ? 'none' : m.ips.map((i) => `${i.ip} (last ${iso(i.lastSeen)})`).join(', ')],
    ['remembered countries', m.countries.length === 0 ? 'none' : m.countries.map((i) => `${i.country} (last ${iso(i.lastSeen)})`).join(', ')],
    ['lock', lockText(m, c)],
    ['recovery codes left', String(m.recoveryCodesLeft)],
  ]);
}

export function formatStatus(s: StatusResult, c: ChalkInstance): string {
  return rows([
    ['version', s.version],
    ['pid', String(s.pid)],
    ['uptime', `${s.uptimeSeconds} s`],
    ['store', s.store],
    ['mailboxes', String(s.mailboxes)],
    ['domains', String(s.domains)],
    ['admin socket', s.sockets.admin],
    ['hook socket', s.sockets.hook],
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
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (r.ok) {
    const each = r.streams.map((s) => (s.ok ? `${s.stream} ${plural(s.lines, 'line')} in ${plural(s.files, 'file')}` : '')).join(', ');
    const lost = r.lost > 0 ? c.yellow(`; ${plural(r.lost, 'event')} lost to failed writes, as recorded in the log`) : '';
    return c.green(`audit log intact: ${r.lines} lines in ${r.files} files (${each})`) + lost;
  }
  return r.streams
    .map((s) => (s.ok ? c.green(`${s.stream}: intact, ${plural(s.lines, 'line')}`) : c.red(`audit log broken at ${s.file} line ${s.line}: ${s.problem}`)))
    .join('\n');
}

export function formatExplain(x: ExplainResult, c: ChalkInstance): string {
  const d = x.decision;
  const colour = d.result === 'allow' ? c.green : d.result === 'deny' ? c.red : c.yellow;
  return [
    formatMailbox(x.mailbox, c),
    '',
    c.bold(`login from ${x.ip} (${x.country ?? 'unknown country'})`),
    ...x.steps.map((s) => `  - ${s}`),
    '',
    `${c.bold('decision')}: ${colour(d.result)} (${d.reason})${d.matched ? `, matched ${d.matched}` : ''}${d.rule ? `, rule ${d.rule}` : ''}`,
  ].join('\n');
}

export { rows, iso };
