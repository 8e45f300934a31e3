import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isIPv4 } from 'node:net';
import { dottedQuad, loadCountryLookup } from '../src/geo/country.js';

test('dottedQuad gives the 32-bit value of what net.isIPv4 accepts, and -1 for anything else', () => {
  assert.equal(dottedQuad('0.0.0.0'), 0);
  assert.equal(dottedQuad('1.2.3.4'), 0x01020304);
  assert.equal(dottedQuad('81.2.69.142'), ((81 << 24) >>> 0) + (2 << 16) + (69 << 8) + 142);
  assert.equal(dottedQuad('255.255.255.255'), 4294967295);
  const texts = ['', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '256.1.1.1', '1.2.3.256', '01.2.3.4', '1.2.3.00', '1.2.3.4 ', ' 1.2.3.4',
    '1.2.3.a', '1.2.3.-4', '::1', '::ffff:1.2.3.4', '2001:db8::1', '1234.1.1.1', '0.0.0.09', '10.0.0.0', '100.200.250.199', '1.2.3.4\n', '１.2.3.4'];
  // And a seeded spread of near-misses: digits and dots in every arrangement.
  let x = 12345;
  for (let i = 0; i < 20_000; i++) {
    let t = '';
    const len = 1 + (i % 16);
    for (let j = 0; j < len; j++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      t += '0123456789...'[x % 13];
    }
    texts.push(t);
  }
  assert.ok(texts.filter((t) => isIPv4(t)).length >= 50, 'the spread holds valid addresses too');
  for (const t of texts) {
    const n = dottedQuad(t);
    if (isIPv4(t)) {
      const parts = t.split('.').map(Number);
      assert.equal(n, ((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]!, t);
    } else assert.equal(n, -1, JSON.stringify(t));
  }
});

test('the country lookup answers as geoip-lite does, for IPv4 and IPv6, cached or not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'memfa-geo-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const country = await loadCountryLookup(dir);
  // The oracle: geoip-lite itself, by string, on the same country data memfa pointed it at.
  const geoip = createRequire(import.meta.url)('geoip-lite') as { lookup(ip: string): { country: string } | null };
  const expected = (ip: string) => geoip.lookup(ip)?.country || null;
  const addresses: string[] = ['8.8.8.8', '81.2.69.142', '10.1.2.3', '127.0.0.1', '192.168.0.1', '2001:4860:4860::8888', '::1'];
  // A spread over the whole IPv4 space: more addresses than the cache has slots, so that slots are
  // shared and answers replaced.
  for (let i = 0; i < 20_000; i++) {
    const n = (i * 2654435761) >>> 0;
    addresses.push(`${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  }
  let placed = 0;
  for (const ip of addresses) {
    const answer = country(ip);
    assert.equal(answer, expected(ip), ip);
    if (answer !== null) placed++;
  }
  assert.ok(placed > 5000, `most public addresses are placed (${placed})`);
  assert.equal(country('8.8.8.8'), 'US');
  assert.equal(country('10.1.2.3'), null);
  // Again, now from the cache for the recent ones and recomputed for the evicted ones.
  for (const ip of addresses) assert.equal(country(ip), expected(ip), ip);
});
