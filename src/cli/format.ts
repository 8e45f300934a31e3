// Human-readable rendering of results. --json bypasses all of this.
import type { ChalkInstance } from 'chalk';
import type { EffectiveView, ExplainResult, LockView, MailboxView, StatusResult } from '../protocol/results.js';

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

function lockText(l: LockView, c: ChalkInstance): string {
  const state = l.locked ? c.red(`locked (${l.reason}) until ${l.until === null ? 'an administrator unlocks it' : iso(l.until)}`) : c.green('not locked');
  return `${state}, ${l.failures} consecutive ${l.failures === 1 ? 'failure' : 'failures'}`;
}

export function formatLock(m: MailboxView, c: ChalkInstance): string {
  return `${m.address}: remembered IPs: ${lockText(m.lock.known, c)}; other IPs: ${lockText(m.lock.elsewhere, c)}`;
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
    ['lock, remembered IPs', lockText(m.lock.known, c)],
    ['lock, other IPs', lockText(m.lock.elsewhere, c)],
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
  ]);
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
