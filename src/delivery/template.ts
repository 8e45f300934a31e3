// Message templates: `{name}` placeholders filled from a fixed set of values. Only a brace
// pair around a bare identifier is a placeholder, so CSS such as `p { margin: 0 }` in an HTML
// template stays literal text.

import { MemfaError } from '../protocol/errors.js';
import type { OutgoingCode } from './types.js';

export const TEMPLATE_PLACEHOLDERS = ['code', 'mailbox', 'ip', 'country', 'expiry'] as const;
export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];
export type TemplateVars = Record<TemplatePlaceholder, string>;

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Shown in place of the code in an administrator's delivery test. */
export const TEST_CODE_TEXT = 'TEST';

/**
 * Problems with a template, one message each (empty when it is fine), so a configuration loader
 * can report them all under the key it read the template from.
 */
export function validateTemplate(
  tpl: string,
  allowed: readonly string[] = TEMPLATE_PLACEHOLDERS,
  required: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const match of tpl.matchAll(PLACEHOLDER)) {
    const name = match[1] as string;
    seen.add(name);
    if (!allowed.includes(name) && !problems.some((p) => p.startsWith(`unknown placeholder {${name}}`))) {
      problems.push(`unknown placeholder {${name}} (allowed: ${allowed.map((a) => `{${a}}`).join(', ')})`);
    }
  }
  for (const name of required) {
    if (!seen.has(name)) problems.push(`placeholder {${name}} is required`);
  }
  return problems;
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

/**
 * Fills the placeholders; in 'html' mode the values (not the template) are escaped. An unknown
 * placeholder throws: validateTemplate should have refused it when the configuration loaded.
 */
export function renderTemplate(tpl: string, vars: Readonly<Record<string, string>>, mode: 'text' | 'html' = 'text'): string {
  return tpl.replace(PLACEHOLDER, (_whole, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(vars, name)) {
      throw new MemfaError('CONFIG_INVALID', `template placeholder {${name}} is not known`, { data: { placeholder: name } });
    }
    const value = vars[name]!;
    return mode === 'html' ? escapeHtml(value) : value;
  });
}

/** `13:45 UTC`: short enough for an SMS, and a code lives minutes, so the date adds nothing. */
export function formatExpiry(expiresAt: number | undefined): string {
  if (expiresAt === undefined || !Number.isFinite(expiresAt)) return 'soon';
  const d = new Date(expiresAt);
  const hh = String(d.getUTCHours()).padStart(2, '0');
  const mm = String(d.getUTCMinutes()).padStart(2, '0');
  return `${hh}:${mm} UTC`;
}

// Values come from login attempts (the IP) and the store; a control character in one could
// forge a line of an SMS or, in a subject, a header.
export function clean(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim();
}

export function templateVars(msg: OutgoingCode): TemplateVars {
  return {
    code: msg.kind === 'test' ? TEST_CODE_TEXT : clean(msg.code ?? ''),
    mailbox: clean(msg.mailbox),
    ip: msg.ip === undefined || msg.ip === '' ? 'unknown address' : clean(msg.ip),
    country: msg.country === undefined || msg.country === null || msg.country === '' ? 'unknown country' : clean(msg.country),
    expiry: formatExpiry(msg.expiresAt),
  };
}

// GSM 03.38 default alphabet and the characters of its extension table (each sent as ESC + char,
// so they cost two septets).
const GSM7_BASIC = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
    '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM7_EXTENSION = new Set('\f^{}\\[~]|€');

export function isGsm7(text: string): boolean {
  for (const ch of text) {
    if (!GSM7_BASIC.has(ch) && !GSM7_EXTENSION.has(ch)) return false;
  }
  return true;
}

export interface SmsSegments {
  encoding: 'GSM-7' | 'UCS-2';
  /** Septets (GSM-7) or UTF-16 code units (UCS-2) the text needs. */
  units: number;
  segments: number;
}

/**
 * How many SMS parts a text costs: GSM-7 carries 160 septets in one part, 153 per part once
 * concatenated; UCS-2 70, then 67. An estimate: a gateway may also split by its own rules.
 */
export function smsSegments(text: string): SmsSegments {
  if (isGsm7(text)) {
    let units = 0;
    for (const ch of text) units += GSM7_EXTENSION.has(ch) ? 2 : 1;
    return { encoding: 'GSM-7', units, segments: units <= 160 ? 1 : Math.ceil(units / 153) };
  }
  const units = text.length;
  return { encoding: 'UCS-2', units, segments: units <= 70 ? 1 : Math.ceil(units / 67) };
}
