import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemfaError } from '../src/protocol/errors.js';
import {
  domainOf,
  ipInNetworks,
  normaliseAddress,
  normaliseAltEmail,
  normaliseCidr,
  normaliseCountry,
  normaliseDomain,
  normaliseIp,
  normaliseE164,
} from '../src/core/validate.js';

function rejects(fn: () => unknown, param: string, label: string, messagePart?: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof MemfaError, `${label}: expected MemfaError, got ${String(err)}`);
      assert.equal(err.code, 'INVALID_PARAMS', label);
      assert.equal(err.data?.param, param, label);
      assert.ok(err.message.startsWith(`${param}: `), `${label}: message names the parameter: ${err.message}`);
      if (messagePart) assert.match(err.message, messagePart, label);
      return true;
    },
    label,
  );
}

test('normaliseAddress: accepted and normalised', () => {
  const table: [string, string][] = [
    ['alice@example.com', 'alice@example.com'],
    ['  Alice@Example.COM \n', 'alice@example.com'],
    ['first.last+tag@mail.example.co.uk', 'first.last+tag@mail.example.co.uk'],
    ["o'brien@example.ie", "o'brien@example.ie"],
    ['a_b-c=d@sub-domain.example', 'a_b-c=d@sub-domain.example'],
    ['x@example.com.', 'x@example.com'],
    ['x@xn--mnchen-3ya.de', 'x@xn--mnchen-3ya.de'],
    ['x@München.de', 'x@xn--mnchen-3ya.de'],
    ['1@2.example', '1@2.example'],
    [`${'l'.repeat(64)}@example.com`, `${'l'.repeat(64)}@example.com`],
  ];
  for (const [input, want] of table) assert.equal(normaliseAddress(input), want, input);
});

test('normaliseAddress: refused, naming the parameter', () => {
  const bad: unknown[] = [
    '',
    '   ',
    'alice',
    'alice@',
    '@example.com',
    'a@b@example.com',
    'alice@localhost',
    'alice@example',
    'alice@1.2.3.4',
    'alice@[1.2.3.4]',
    'al ice@example.com',
    'alice@exa mple.com',
    'alice\t@example.com',
    'alice\0@example.com',
    'alice\u00a0@example.com',
    'alice\u200b@example.com',
    '.alice@example.com',
    'alice.@example.com',
    'al..ice@example.com',
    '"alice"@example.com',
    'alice,bob@example.com',
    'alice@-example.com',
    'alice@example-.com',
    'alice@exa_mple.com',
    'alice@example..com',
    'jürgen@example.com',
    `${'l'.repeat(65)}@example.com`,
    `a@${'d'.repeat(64)}.com`,
    `a@${Array.from({ length: 50 }, () => 'abcd').join('.')}.com`,
    `${'l'.repeat(60)}@${Array.from({ length: 40 }, () => 'abcd').join('.')}.com`,
    null,
    undefined,
    42,
    ['a@b.de'],
  ];
  for (const input of bad) rejects(() => normaliseAddress(input), 'user', JSON.stringify(input) ?? String(input));
  rejects(() => normaliseAddress('nope', 'altEmail'), 'altEmail', 'custom param');
});

test('normaliseDomain and domainOf', () => {
  assert.equal(normaliseDomain(' Example.COM. '), 'example.com');
  assert.equal(normaliseDomain('mail.EXAMPLE.org'), 'mail.example.org');
  assert.equal(normaliseDomain('bücher.example'), 'xn--bcher-kva.example');
  for (const bad of ['', 'com', 'example..com', '-a.com', 'a-.com', 'a b.com', '1.2.3.4', 'a@b.com', 'a/b.com', null]) {
    rejects(() => normaliseDomain(bad), 'domain', String(bad));
  }
  assert.equal(domainOf('alice@example.com'), 'example.com');
  assert.equal(domainOf(normaliseAddress('Bob@Sub.Example.ORG')), 'sub.example.org');
  rejects(() => domainOf('nodomain'), 'user', 'no @');
});

test('normaliseAltEmail: valid and different from the mailbox', () => {
  assert.equal(normaliseAltEmail(' Alice@Other.example ', 'alice@example.com'), 'alice@other.example');
  rejects(() => normaliseAltEmail('ALICE@example.com', 'alice@example.com'), 'altEmail', 'same', /must differ/);
  rejects(() => normaliseAltEmail('alice@example.com', 'Alice@Example.com'), 'altEmail', 'same, mailbox not normalised', /must differ/);
  rejects(() => normaliseAltEmail('not-an-address', 'alice@example.com'), 'altEmail', 'invalid');
});

test('normaliseIp: table', () => {
  const table: [string, string][] = [
    ['192.0.2.1', '192.0.2.1'],
    [' 192.0.2.1 ', '192.0.2.1'],
    ['0.0.0.0', '0.0.0.0'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:201', '192.0.2.1'],
    ['0:0:0:0:0:ffff:c000:0201', '192.0.2.1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::', '::'],
    ['fe80::1', 'fe80::1'],
    // Not mapped: IPv4-compatible (deprecated) and NAT64 stay IPv6.
    ['::c000:201', '::c000:201'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['::ffff:0:c000:201', '::ffff:0:c000:201'],
  ];
  for (const [input, want] of table) assert.equal(normaliseIp(input), want, input);
});

test('normaliseIp: refused', () => {
  const bad: unknown[] = [
    '',
    'localhost',
    '192.0.2',
    '192.0.2.256',
    '192.000.002.001',
    '01.2.3.4',
    '192.0.2.1/32',
    '[::1]',
    'fe80::1%eth0',
    '2001:db8::1::2',
    '1:2:3:4:5:6:7:8:9',
    '192.0.2.1:25',
    null,
    3232235777,
  ];
  for (const input of bad) rejects(() => normaliseIp(input), 'ip', String(input));
  rejects(() => normaliseIp('x', 'clientIp'), 'clientIp', 'custom param');
});

// The stored form, which delivery checks; the numbering plans are test/core-phone.test.ts's.
test('normaliseE164: table', () => {
  const good: [string, string][] = [
    ['+4915112345678', '+4915112345678'],
    ['+49 151 1234 5678', '+4915112345678'],
    ['+1 (415) 555-2671', '+14155552671'],
    ['+44.20.7946.0958', '+442079460958'],
    [' +12345678 ', '+12345678'],
    ['+123456789012345', '+123456789012345'],
  ];
  for (const [input, want] of good) assert.equal(normaliseE164(input), want, input);
  const bad: unknown[] = ['', '4915112345678', '0049 151 1234', '+0151234567', '+1234567', '+1234567890123456', '+49 151 abc', '++4915112345678', '+49/151/123', null];
  for (const input of bad) rejects(() => normaliseE164(input), 'phone', String(input));
});

test('normaliseCountry: table', () => {
  assert.equal(normaliseCountry('de'), 'DE');
  assert.equal(normaliseCountry(' Fr '), 'FR');
  for (const bad of ['', 'D', 'DEU', 'D3', 'ÄT', '--', null]) rejects(() => normaliseCountry(bad), 'country', String(bad));
});

test('normaliseCidr: table', () => {
  const table: [string, string][] = [
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['192.0.2.1', '192.0.2.1/32'],
    ['192.0.2.0/24', '192.0.2.0/24'],
    ['192.0.2.128/25', '192.0.2.128/25'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['2001:DB8::/32', '2001:db8::/32'],
    ['2001:db8::1', '2001:db8::1/128'],
    ['2001:db8:0:0:0:0:0:0/48', '2001:db8::/48'],
    ['2001:db8:ff00::/40', '2001:db8:ff00::/40'],
    ['::/0', '::/0'],
    ['::ffff:0:0/96', '::ffff:0:0/96'],
  ];
  for (const [input, want] of table) assert.equal(normaliseCidr(input), want, input);

  rejects(() => normaliseCidr('10.1.2.3/8'), 'trustedNetworks', 'host bits', /did you mean 10\.0\.0\.0\/8/);
  rejects(() => normaliseCidr('2001:db8::1/32'), 'trustedNetworks', 'v6 host bits', /did you mean 2001:db8::\/32/);
  rejects(() => normaliseCidr('2001:db8:ff80::/40'), 'trustedNetworks', 'v6 partial group', /did you mean 2001:db8:ff00::\/40/);
  const bad: unknown[] = ['', '10.0.0.0/33', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8', '10.0.0/8', '2001:db8::/129', 'fe80::%eth0/64', 'example.com/24', '10.0.0.0/08x', null];
  for (const input of bad) rejects(() => normaliseCidr(input), 'trustedNetworks', String(input));
});

test('ipInNetworks: first matching CIDR or null', () => {
  const nets = ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32', '198.51.100.7/32'];
  const table: [string, string | null][] = [
    ['10.1.2.3', '10.0.0.0/8'],
    ['10.255.255.255', '10.0.0.0/8'],
    ['11.0.0.0', null],
    ['192.0.2.200', '192.0.2.0/24'],
    ['192.0.3.1', null],
    ['::ffff:10.9.9.9', '10.0.0.0/8'],
    ['2001:db8:1::5', '2001:db8::/32'],
    ['2001:db9::1', null],
    ['198.51.100.7', '198.51.100.7/32'],
    ['198.51.100.8', null],
  ];
  for (const [ip, want] of table) assert.equal(ipInNetworks(ip, nets), want, ip);
  assert.equal(ipInNetworks('10.0.0.1', []), null);
  assert.equal(ipInNetworks('10.0.0.1', ['0.0.0.0/0']), '0.0.0.0/0');
  assert.equal(ipInNetworks('2001:db8::1', ['0.0.0.0/0']), null);
  assert.equal(ipInNetworks('192.0.2.1', ['::ffff:0:0/96']), '::ffff:0:0/96');
  rejects(() => ipInNetworks('nope', nets), 'ip', 'bad ip');
  rejects(() => ipInNetworks('10.0.0.1', ['10.0.0.0/99']), 'trustedNetworks', 'bad cidr');
});

test('normaliseAltEmail: the mailbox with a +subaddress, in any case, is the mailbox itself', () => {
  for (const alt of ['alice+mfa@example.com', 'Alice+MFA@Example.COM', 'alice+@example.com', 'alice+a+b@example.com']) {
    rejects(() => normaliseAltEmail(alt, 'alice@example.com'), 'altEmail', alt, /delivers to the mailbox alice@example\.com itself/);
  }
  // The mailbox may itself carry a subaddress; the address both deliver to is compared.
  rejects(() => normaliseAltEmail('alice@example.com', 'alice+web@example.com'), 'altEmail', 'mailbox with a subaddress', /delivers to the mailbox/);
  rejects(() => normaliseAltEmail('alice+mfa@bücher.example', 'alice@xn--bcher-kva.example'), 'altEmail', 'IDN spelling', /delivers to the mailbox/);
  // Other mailboxes, on this domain or another, are fine.
  assert.equal(normaliseAltEmail('alice+mfa@other.example', 'alice@example.com'), 'alice+mfa@other.example');
  assert.equal(normaliseAltEmail('alicia@example.com', 'alice@example.com'), 'alicia@example.com');
  assert.equal(normaliseAltEmail('+tag@example.com', 'alice@example.com'), '+tag@example.com');
});
