import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ipv4Number, loadCountryLookup } from '../src/geo/country.js';

test('ipv4Number gives the 32-bit value of a dotted quad', () => {
  assert.equal(ipv4Number('0.0.0.0'), 0);
  assert.equal(ipv4Number('1.2.3.4'), 0x01020304);
  assert.equal(ipv4Number('81.2.69.142'), ((81 << 24) >>> 0) + (2 << 16) + (69 << 8) + 142);
  assert.equal(ipv4Number('255.255.255.255'), 4294967295);
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
