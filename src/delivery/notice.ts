// The text of a security notice: a subject and a plain-text body per kind, from the configured
// templates (notifications.templates.KIND) or the built-in ones. The placeholders carry what
// happened, when and from where; there is none for a code or a secret, so no template can leak one.
import { NOTICE_EVENTS, NOTICE_KINDS, type NoticeKind, type PendingNotice } from '../core/notices.js';
import { clean, renderTemplate } from './template.js';

export const NOTICE_PLACEHOLDERS = ['mailbox', 'event', 'time', 'ip', 'country', 'detail', 'support'] as const;

export const DEFAULT_NOTICE_SUBJECTS: Readonly<Record<NoticeKind, string>> = {
  'new-country': 'New sign-in to {mailbox} from {country}',
  'totp-enrolled': 'An authenticator app was set up for {mailbox}',
  'totp-reset': 'The authenticator app of {mailbox} was removed',
  'recovery-codes-generated': 'New recovery codes for {mailbox}',
  'recovery-code-used': 'A recovery code of {mailbox} was used',
  'app-password-created': 'An app password was created for {mailbox}',
  'mailbox-locked': '{mailbox} was locked after failed sign-ins',
};

export const DEFAULT_NOTICE_TEXT = [
  '{event}',
  '',
  'Mailbox: {mailbox}',
  'When: {time}',
  'From: {ip} ({country})',
  '{detail}',
  '',
  '{support}',
  '',
  'This is an automatic security notice. It never contains a code or a password, and nobody will ask you for one.',
  '',
].join('\n');

export interface NoticeTemplates {
  subject: string | null;
  text: string | null;
}

/** `2025-03-01 13:45 UTC`: a notice may be read days later, so the date is part of it. */
export function formatNoticeTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/:\d\d\.\d{3}Z$/, ' UTC');
}

/** The {detail} line of a notice: what follows from the event, or nothing. */
export function noticeDetail(n: PendingNotice): string {
  if (n.kind === 'mailbox-locked') {
    return n.until === null || n.until === undefined ? 'It stays locked until an administrator unlocks it.' : `Sign-ins that need a code are refused until ${formatNoticeTime(n.until)}.`;
  }
  if (n.kind === 'recovery-code-used' && n.left !== undefined) return n.left === 1 ? '1 recovery code is left.' : `${n.left} recovery codes are left.`;
  return '';
}

export function noticeVars(n: PendingNotice, mailbox: string, support: string): Record<(typeof NOTICE_PLACEHOLDERS)[number], string> {
  return {
    mailbox: clean(mailbox),
    event: NOTICE_EVENTS[n.kind],
    time: formatNoticeTime(n.at),
    ip: n.ip === null || n.ip === '' ? 'no address known' : clean(n.ip),
    country: n.country === null || n.country === '' ? 'unknown country' : clean(n.country),
    detail: noticeDetail(n),
    support: clean(support),
  };
}

/** The subject (one line) and text of notice `n` for `mailbox`. */
export function renderNotice(n: PendingNotice, mailbox: string, templates: Readonly<Record<NoticeKind, NoticeTemplates>>, support: string): { subject: string; text: string } {
  const vars = noticeVars(n, mailbox, support);
  const own = templates[n.kind];
  return {
    subject: renderTemplate(own.subject ?? DEFAULT_NOTICE_SUBJECTS[n.kind], vars).replace(/\s+/g, ' ').trim(),
    text: renderTemplate(own.text ?? DEFAULT_NOTICE_TEXT, vars),
  };
}

/** Every configured notice template, as [configuration key, template] pairs. */
export function configuredNoticeTemplates(templates: Readonly<Record<NoticeKind, NoticeTemplates>>): [string, string][] {
  const out: [string, string][] = [];
  for (const kind of NOTICE_KINDS) {
    for (const part of ['subject', 'text'] as const) {
      const tpl = templates[kind][part];
      if (tpl !== null) out.push([`notifications.templates.${kind}.${part}`, tpl]);
    }
  }
  return out;
}
