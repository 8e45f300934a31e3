// Phone numbers people give: libphonenumber's numbering plans, E.164, and only numbers that can
// receive SMS; and the library stays out of everything a login loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePhone } from '../src/core/phone.js';
import { MemfaError } from '../src/protocol/errors.js';
import { packagesReached } from './helpers/imports.js';

test('normalisePhone: numbers that can receive SMS, in E.164, trunk prefixes dropped', () => {
  const good: [string, string][] = [
    ['+44 (0)7400 123456', '+447400123456'],
    ['+44 0 7400 123456', '+447400123456'],
    ['+49 (0)151 1234 5678', '+4915112345678'],
    ['+4915112345678', '+4915112345678'],
    ['+33 6 12 34 56 78', '+33612345678'],
    [' +41.79.123.45.67 ', '+41791234567'],
    // The North American plan does not tell mobiles from landlines: any valid number.
    ['+1 (201) 555-0123', '+12015550123'],
  ];
  for (const [input, want] of good) assert.equal(normalisePhone(input), want, input);
});

test('normalisePhone: refusals name the field and say what is wrong', () => {
  const table: [unknown, RegExp][] = [
    ['+44 (0)20 7946-0958', /'\+44 \(0\)20 7946-0958' is a landline \(fixed-line\) number in GB, which cannot receive SMS codes; give a mobile number$/],
    ['+49 30 901820', /landline.* in DE/],
    ['+1 800 555 0199', /toll-free/],
    ['+44 7700 900789', /not a valid number in the numbering plan of/],
    ['+15551234567', /not a valid number/],
    ['+12345678', /not a valid number|too short/],
    ['+999 1234567', /country calling code/],
    ['+4', /too short/],
    ['0049 151 12345678', /international form.*\+49 151 12345678/],
    ['015112345678', /international form/],
    ['+49 151 abc', /only digits/],
    ['+1 800 FLOWERS', /only digits/],
    ['+49 151 1234 5678 ext 5', /only digits/],
    ['', /must not be empty/],
    [null, /expected a string/],
    ['+1' + '2'.repeat(70), /longer than 64/],
  ];
  for (const [input, message] of table) {
    assert.throws(
      () => normalisePhone(input, 'phone'),
      (err: unknown) => err instanceof MemfaError && err.code === 'INVALID_PARAMS' && err.data?.['param'] === 'phone' && err.message.startsWith('phone: ') && message.test(err.message),
      String(input),
    );
  }
});

test('libphonenumber is loaded by no login: not by memfa verify, not by the daemon at start', () => {
  assert.ok(!packagesReached('cli/verify.js', true).has('libphonenumber-js'), 'memfa verify, with everything it may import');
  assert.ok(!packagesReached('daemon/main.js', false).has('libphonenumber-js'), 'the daemon at start');
  // The walk sees it where it is: the daemon loads it on demand, for a phone number written.
  assert.ok(packagesReached('daemon/main.js', true).has('libphonenumber-js'), 'the daemon on demand');
  assert.ok(packagesReached('daemon/main.js', false).has('nodemailer'), 'a package the daemon imports at start is seen');
});
