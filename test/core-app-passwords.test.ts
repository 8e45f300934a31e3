import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import {
  APP_PASSWORD_LETTERS,
  appPasswordRefusal,
  canonicalAppPassword,
  generateAppPassword,
  normaliseAppPasswordName,
  parseAppNetworks,
  parseAppProtocols,
  parseExpiry,
  type AppPassword,
} from '../src/core/app-passwords.js';
import { ipInNetworks } from '../src/core/validate.js';
import { MemfaError } from '../src/protocol/errors.js';

const param = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MemfaError);
    assert.equal(err.code, 'INVALID_PARAMS');
    return String(err.data?.['param']);
  }
  assert.fail('expected INVALID_PARAMS');
};

test('a generated app password: six groups of four letters, at least 100 bits, canonical without dashes', () => {
  assert.ok(APP_PASSWORD_LETTERS * Math.log2(23) >= 100);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = generateAppPassword(randomInt);
    assert.match(p, /^[a-hj-km-np-z]{4}(-[a-hj-km-np-z]{4}){5}$/);
    const c = canonicalAppPassword(p);
    assert.equal(c, p.replaceAll('-', ''));
    seen.add(c!);
  }
  assert.equal(seen.size, 200);
});

test('canonical form: case, spaces and dashes ignored; anything else is not an app password', () => {
  assert.equal(canonicalAppPassword('ABCD efgh-JKMN pqrs tuvw-xyza'), 'abcdefghjkmnpqrstuvwxyza');
  assert.equal(canonicalAppPassword('abcd-efgh-jkmn-pqrs-tuvw'), null, 'too short');
  assert.equal(canonicalAppPassword('abcd-efgh-ijkl-pqrs-tuvw-xyza'), null, 'i and l are not in the alphabet');
  assert.equal(canonicalAppPassword('correct horse battery staple'), null);
  assert.equal(canonicalAppPassword('a'.repeat(10_000)), null);
});

test('names, protocols, networks and expiry are checked, each error naming its field', () => {
  assert.equal(normaliseAppPasswordName('  phone '), 'phone');
  assert.equal(param(() => normaliseAppPasswordName('')), 'name');
  assert.equal(param(() => normaliseAppPasswordName('x'.repeat(65))), 'name');
  assert.deepEqual(parseAppProtocols('all'), ['imap', 'pop3', 'smtp', 'sieve', 'dav']);
  assert.deepEqual(parseAppProtocols('smtp, imap,imap'), ['imap', 'smtp']);
  assert.equal(param(() => parseAppProtocols('imap,webmail')), 'protocols');
  assert.equal(param(() => parseAppProtocols([])), 'protocols');
  assert.deepEqual(parseAppNetworks('192.0.2.0/24, 2001:db8::/32'), ['192.0.2.0/24', '2001:db8::/32']);
  assert.throws(() => parseAppNetworks('10.0.0.0/33,foo'), (err: MemfaError) => /10\.0\.0\.0\/33/.test(err.message) && /foo/.test(err.message));
  const now = Date.UTC(2026, 0, 1);
  assert.equal(parseExpiry('90d', now), now + 90 * 86_400_000);
  assert.equal(parseExpiry('12h', now), now + 12 * 3_600_000);
  assert.equal(parseExpiry('2027-01-01', now), Date.UTC(2027, 0, 1));
  assert.equal(parseExpiry(undefined, now), null);
  assert.equal(param(() => parseExpiry('2020-01-01', now)), 'expires');
  assert.equal(param(() => parseExpiry('tomorrow', now)), 'expires');
  assert.equal(param(() => parseExpiry('0d', now)), 'expires');
});

test('a matched app password is refused outside its protocols, networks and lifetime', () => {
  const now = Date.UTC(2026, 0, 1);
  const ap: AppPassword = { id: 'a1', name: 'phone', hash: 'h1:x', protocols: ['imap', 'smtp'], networks: ['192.0.2.0/24'], createdAt: now, expiresAt: now + 1000, lastUsed: null, uses: 0 };
  const inNets = (ip: string, cidrs: readonly string[]) => ipInNetworks(ip, cidrs) !== null;
  assert.equal(appPasswordRefusal(ap, { protocol: 'imap', ip: '192.0.2.7', now }, inNets), null);
  assert.equal(appPasswordRefusal(ap, { protocol: 'pop3', ip: '192.0.2.7', now }, inNets), 'app-password-protocol');
  assert.equal(appPasswordRefusal(ap, { protocol: 'imap', ip: '198.51.100.1', now }, inNets), 'app-password-network');
  assert.equal(appPasswordRefusal(ap, { protocol: 'imap', ip: '192.0.2.7', now: now + 1000 }, inNets), 'app-password-expired');
  assert.equal(appPasswordRefusal({ ...ap, networks: [], expiresAt: null }, { protocol: 'smtp', ip: '203.0.113.9', now: now + 10 ** 12 }, inNets), null);
});
