// Recipients as they may appear in logs and answers: enough to tell which number or address was
// used, not enough to harvest them. A rule of what memfa shows, not of how it delivers: the
// services' answers (codes, provider test) and the delivery adapters' log lines both follow it.

import type { CodeProvider } from './model.js';

/** `+447700900789` → `+44*******789`: the country prefix and the last three digits stay. */
export function maskPhone(phone: string): string {
  const plus = phone.startsWith('+') ? '+' : '';
  const digits = phone.replace(/\D/g, '');
  if (digits.length === 0) return '***';
  // Too short to keep five digits and still hide something: keep only the last two.
  if (digits.length < 8) return plus + '*'.repeat(Math.max(digits.length - 2, 1)) + digits.slice(-2);
  return plus + digits.slice(0, 2) + '*'.repeat(digits.length - 5) + digits.slice(-3);
}

/** `john@example.org` → `j***@example.org`: the domain says which provider; the user is hidden. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '***';
  const local = address.slice(0, at);
  const first = local.length > 1 ? (Array.from(local)[0] ?? '') : '';
  return `${first}***${address.slice(at)}`;
}

export function maskRecipient(provider: CodeProvider, to: string): string {
  return provider === 'sms' ? maskPhone(to) : maskEmail(to);
}
