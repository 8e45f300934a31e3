// Country codes a rule may name: exactly those geoip-lite's country data can return.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { GEOIP_COUNTRIES } from '../src/core/countries.js';
import { normaliseCountry } from '../src/core/validate.js';
import { MemfaError } from '../src/protocol/errors.js';

/** Every country code in a geoip-lite country file: fixed-size records ending in two ASCII letters. */
function codesIn(file: string, recordSize: number): Set<string> {
  const buf = readFileSync(file);
  assert.equal(buf.length % recordSize, 0, `${file}: whole records`);
  const codes = new Set<string>();
  for (let at = 0; at < buf.length; at += recordSize) codes.add(buf.toString('latin1', at + recordSize - 2, at + recordSize));
  return codes;
}

test('the accepted country codes are the codes of the installed geoip-lite country data', () => {
  const dir = path.join(path.dirname(createRequire(import.meta.url).resolve('geoip-lite/package.json')), 'data');
  // IPv4: start, end (4 bytes each), country (2); IPv6: start, end (16 bytes each), country (2).
  const data = new Set([...codesIn(path.join(dir, 'geoip-country.dat'), 10), ...codesIn(path.join(dir, 'geoip-country6.dat'), 34)]);
  assert.deepEqual([...GEOIP_COUNTRIES].sort(), [...data].sort());
  for (const code of GEOIP_COUNTRIES) assert.equal(normaliseCountry(code.toLowerCase()), code);
});

test('a code the data never returns is refused, naming the code meant', () => {
  const refusal = (input: string): string => {
    try {
      normaliseCountry(input, 'countryRule.countries');
    } catch (err) {
      assert.ok(err instanceof MemfaError && err.code === 'INVALID_PARAMS', String(err));
      assert.equal(err.data?.['param'], 'countryRule.countries');
      assert.ok(err.message.startsWith(`countryRule.countries: '${input}' `), err.message);
      return err.message;
    }
    assert.fail(`${input} was accepted`);
  };
  assert.match(refusal('UK'), /did you mean GB \(United Kingdom\)\?$/);
  assert.match(refusal('uk'), /did you mean GB/);
  assert.match(refusal('EL'), /code for Greece.*did you mean GR \(Greece\)\?$/);
  assert.match(refusal('EU'), /European Union, not a country.*\(AT,BE,.*,DE,.*,SK\)$/);
  assert.match(refusal('YU'), /withdrawn.*did you mean RS \(Serbia\) or ME \(Montenegro\)\?$/);
  assert.match(refusal('XX'), /user-assigned/);
  assert.match(refusal('QQ'), /user-assigned/);
  assert.match(refusal('ED'), /did you mean DE \(Germany\)\?$/);
  assert.match(refusal('JJ'), /not an ISO 3166-1 country code/);
  assert.match(refusal('DEU'), /alpha-3/);
  assert.match(refusal('9Z'), /two letters/);
  assert.equal(normaliseCountry('xk'), 'XK', 'Kosovo, as the data names it');
});
