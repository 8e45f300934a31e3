// Human-readable rendering of app passwords and of what a mail-protocol login would get
// (explain --protocol). --json bypasses all of this.
import type { ChalkInstance } from 'chalk';
import { count } from '../core/wording.js';
import type { AppPasswordAdded, AppPasswordList, AppPasswordRevoked, AppPasswordView, ProtocolExplainResult } from '../protocol/results.js';
import { formatMailbox, iso, rows } from './format.js';

function lastUsed(a: AppPasswordView): string {
  if (a.lastUsed === null) return 'never used';
  return `last used ${iso(a.lastUsed.at)} from ${a.lastUsed.ip} (${a.lastUsed.country ?? 'unknown country'}), ${count(a.uses, 'use', 'uses')}`;
}

function scope(a: AppPasswordView): string {
  const protocols = a.protocols.length === 5 ? 'all protocols' : a.protocols.join(',');
  const networks = a.networks.length === 0 ? 'any network' : a.networks.join(',');
  return `${protocols}; ${networks}`;
}

function expiry(a: AppPasswordView, c: ChalkInstance): string {
  if (a.expiresAt === null) return 'never expires';
  return a.expired ? c.red(`expired ${iso(a.expiresAt)}`) : `expires ${iso(a.expiresAt)}`;
}

export function formatAppPasswordAdded(r: AppPasswordAdded, c: ChalkInstance): string {
  return [
    c.bold(r.password),
    `the app password "${r.name}" (id ${r.id}) for ${r.address}; it is shown only now. Type it into the mail client in place of the password (dashes and case do not matter).`,
    rows([
      ['protocols', r.protocols.join(', ')],
      ['networks', r.networks.length === 0 ? 'any' : r.networks.join(', ')],
      ['expires', r.expiresAt === null ? 'never' : iso(r.expiresAt)],
    ]),
  ].join('\n');
}

export function formatAppPasswordList(r: AppPasswordList, c: ChalkInstance): string {
  if (r.appPasswords.length === 0) return `${r.address} has no app passwords`;
  const head = `${r.address}: ${count(r.appPasswords.length, 'app password', 'app passwords')} (at most ${r.max})`;
  const lines = r.appPasswords.map((a) => [a.id, a.name, scope(a), `created ${iso(a.createdAt)}`, expiry(a, c), lastUsed(a)].join('\t'));
  return [head, ...lines].join('\n');
}

export function formatAppPasswordRevoked(r: AppPasswordRevoked): string {
  if (r.revoked.length === 0) return `${r.address} had no app passwords to revoke`;
  return `revoked ${r.revoked.map((a) => `"${a.name}" (${a.id})`).join(', ')} of ${r.address}; ${count(r.left, 'app password', 'app passwords')} left`;
}

export function formatProtocolExplain(x: ProtocolExplainResult, c: ChalkInstance): string {
  const d = x.decision;
  const colour = d.result === 'deny' ? c.red : d.result === 'allow' ? c.green : c.yellow;
  return [
    formatMailbox(x.mailbox, c),
    '',
    c.bold(`${x.protocol} login from ${x.ip} (${x.country ?? 'unknown country'})`),
    ...x.steps.map((s) => `  - ${s}`),
    '',
    `${c.bold('an app password')}: ${x.appPasswords.some((a) => a.accepted) ? c.green(`allow (app-password): ${x.appPasswords.filter((a) => a.accepted).map((a) => a.name).join(', ')}`) : 'none of the mailbox\'s would be accepted here'}`,
    `${c.bold('any other password')}: ${colour(d.result)} (${d.reason})${d.matched ? `, matched ${d.matched}` : ''}${d.message ? `: "${d.message}"` : ''}`,
  ].join('\n');
}
