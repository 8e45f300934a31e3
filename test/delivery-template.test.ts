import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatExpiry,
  renderTemplate,
  smsSegments,
  templateVars,
  validateTemplate,
  type TemplateVars,
} from '../src/delivery/template.js';
import { maskEmail, maskPhone, maskRecipient } from '../src/core/mask.js';
import { encodeSms, smppStatusName } from '../src/delivery/smpp-pdu.js';
import { DEFAULT_SMS_TEMPLATE, DEFAULT_SMTP_TEMPLATES } from '../src/delivery/types.js';

const VARS: TemplateVars = {
  code: '123456',
  mailbox: 'john@example.org',
  ip: '192.0.2.7',
  country: 'GB',
  expiry: '13:45 UTC',
};

test('renderTemplate fills every placeholder and leaves other braces alone', () => {
  assert.equal(
    renderTemplate('{code} for {mailbox} from {ip} ({country}) until {expiry}', VARS),
    '123456 for john@example.org from 192.0.2.7 (GB) until 13:45 UTC',
  );
  assert.equal(renderTemplate('p { margin: 0 } {code}', VARS), 'p { margin: 0 } 123456');
  assert.equal(renderTemplate('{code}{code}', VARS), '123456123456');
});

test('renderTemplate escapes values, not the template, in html mode', () => {
  const vars = { ...VARS, mailbox: '<script>"x"&\'y\'</script>' };
  assert.equal(
    renderTemplate('<b>{mailbox}</b>', vars, 'html'),
    '<b>&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;</b>',
  );
  assert.equal(renderTemplate('<b>{mailbox}</b>', vars), `<b>${vars.mailbox}</b>`);
});

test('renderTemplate refuses a placeholder it does not know', () => {
  assert.throws(() => renderTemplate('{nope}', VARS), /\{nope\}/);
});

test('validateTemplate names unknown and missing placeholders', () => {
  assert.deepEqual(validateTemplate(DEFAULT_SMS_TEMPLATE), []);
  assert.deepEqual(validateTemplate(DEFAULT_SMTP_TEMPLATES.html, undefined, ['code']), []);
  const problems = validateTemplate('{user} {user} {code}', ['code', 'mailbox']);
  assert.equal(problems.length, 1);
  assert.match(problems[0] ?? '', /unknown placeholder \{user\} \(allowed: \{code\}, \{mailbox\}\)/);
  assert.deepEqual(validateTemplate('no placeholders', undefined, ['code']), ['placeholder {code} is required']);
});

test('templateVars fills gaps, strips control characters and hides nothing but the test code', () => {
  const vars = templateVars({
    kind: 'code',
    to: '+447700900789',
    code: '0042',
    mailbox: 'evil@example.org\r\nBcc: x@y',
    expiresAt: Date.UTC(2030, 0, 2, 3, 4, 5),
  });
  assert.equal(vars.code, '0042');
  assert.equal(vars.mailbox, 'evil@example.org  Bcc: x@y');
  assert.equal(vars.ip, 'unknown address');
  assert.equal(vars.country, 'unknown country');
  assert.equal(vars.expiry, '03:04 UTC');
  assert.equal(templateVars({ kind: 'test', to: 'a@b.c', mailbox: 'a@b.c', country: null }).code, 'TEST');
  assert.equal(formatExpiry(undefined), 'soon');
});

test('the default SMS template fits one GSM-7 segment with a 10-digit code and a long mailbox', () => {
  const mailbox = `${'a'.repeat(70)}@example-mail-domain.org`; // 94 characters
  const text = renderTemplate(DEFAULT_SMS_TEMPLATE, { ...VARS, code: '1234567890', mailbox });
  assert.deepEqual(smsSegments(text), { encoding: 'GSM-7', units: 160, segments: 1 }, text);
  const longer = renderTemplate(DEFAULT_SMS_TEMPLATE, { ...VARS, code: '1234567890', mailbox: `a${mailbox}` });
  assert.equal(smsSegments(longer).segments, 2);
});

test('smsSegments counts GSM-7 extension characters twice and falls back to UCS-2', () => {
  assert.deepEqual(smsSegments('a'.repeat(160)), { encoding: 'GSM-7', units: 160, segments: 1 });
  assert.deepEqual(smsSegments('a'.repeat(161)), { encoding: 'GSM-7', units: 161, segments: 2 });
  assert.deepEqual(smsSegments('a'.repeat(306)), { encoding: 'GSM-7', units: 306, segments: 2 });
  assert.deepEqual(smsSegments('a'.repeat(307)), { encoding: 'GSM-7', units: 307, segments: 3 });
  assert.deepEqual(smsSegments('€'.repeat(80)), { encoding: 'GSM-7', units: 160, segments: 1 });
  assert.deepEqual(smsSegments('€'.repeat(81)), { encoding: 'GSM-7', units: 162, segments: 2 });
  assert.deepEqual(smsSegments('ж'.repeat(70)), { encoding: 'UCS-2', units: 70, segments: 1 });
  assert.deepEqual(smsSegments('ж'.repeat(71)), { encoding: 'UCS-2', units: 71, segments: 2 });
  assert.deepEqual(smsSegments('ж'.repeat(135)), { encoding: 'UCS-2', units: 135, segments: 3 });
  assert.equal(smsSegments('Grüße, Ærø').encoding, 'GSM-7');
});

test('maskPhone keeps the + and first two and last three digits', () => {
  assert.equal(maskPhone('+447700900789'), '+44*******789');
  assert.equal(maskPhone('+15551234567'), '+15******567');
  assert.equal(maskPhone('+1234'), '+**34');
  assert.equal(maskPhone(''), '***');
  assert.equal(maskRecipient('sms', '+447700900789'), '+44*******789');
});

test('maskEmail keeps the first character and the domain', () => {
  assert.equal(maskEmail('john@example.org'), 'j***@example.org');
  assert.equal(maskEmail('j@example.org'), '***@example.org');
  assert.equal(maskEmail('no-at-sign'), '***');
  assert.equal(maskRecipient('email', 'ann@x.io'), 'a***@x.io');
});

test('encodeSms honours data_coding and switches to UCS-2 when the alphabet cannot carry the text', () => {
  assert.deepEqual(encodeSms('a@b', 0), { dataCoding: 0, bytes: Buffer.from([0x61, 0x00, 0x62]) });
  assert.deepEqual(encodeSms('a@b', 1), { dataCoding: 1, bytes: Buffer.from('a@b', 'ascii') });
  assert.deepEqual(encodeSms('é', 3), { dataCoding: 3, bytes: Buffer.from([0xe9]) });
  assert.deepEqual(encodeSms('ж', 0), { dataCoding: 8, bytes: Buffer.from([0x04, 0x36]) });
  assert.deepEqual(encodeSms('é', 1), { dataCoding: 8, bytes: Buffer.from([0x00, 0xe9]) });
});

test('smppStatusName maps command_status to ESME_* names', () => {
  assert.equal(smppStatusName(0x58), 'ESME_RTHROTTLED');
  assert.equal(smppStatusName(0x45), 'ESME_RSUBMITFAIL');
  assert.equal(smppStatusName(0x400), 'ESME_0x00000400');
});
