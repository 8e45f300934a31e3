import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideProtocolLogin, LOGIN_CHECK_REASONS, type ProtocolLoginSettings } from '../src/core/protocol-login.js';

const NOW = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;
const history = { ips: [{ ip: '192.0.2.10', firstSeen: NOW - 10 * DAY, lastSeen: NOW - DAY }, { ip: '192.0.2.99', firstSeen: NOW - 400 * DAY, lastSeen: NOW - 300 * DAY }], countries: [{ country: 'DE', firstSeen: NOW - 10 * DAY, lastSeen: NOW - DAY }] };
const REMEMBER = { maxEntries: 20, maxAgeMs: 180 * DAY };
const base: ProtocolLoginSettings = { challenge: 'always', primaryPassword: 'app-password', countryRules: [], trustedNetwork: null };
const login = (ip: string, country: string | null = 'GB') => ({ protocol: 'imap' as const, ip, country, now: NOW });

test('an app password that matched: allowed, or refused with its own reason and text', () => {
  assert.deepEqual(decideProtocolLogin(base, history, REMEMBER, login('203.0.113.1'), { name: 'phone', refusal: null }), { result: 'allow', reason: 'app-password', matched: 'phone' });
  const d = decideProtocolLogin(base, history, REMEMBER, login('203.0.113.1'), { name: 'phone', refusal: 'app-password-protocol' });
  assert.equal(d.result, 'deny');
  assert.equal(d.reason, 'app-password-protocol');
  assert.match(d.message!, /not valid for IMAP/);
  assert.equal(decideProtocolLogin(base, history, REMEMBER, login('203.0.113.1'), { name: 'phone', refusal: 'app-password-expired' }).reason, 'app-password-expired');
  assert.equal(decideProtocolLogin(base, history, REMEMBER, login('203.0.113.1'), { name: 'phone', refusal: 'app-password-network' }).reason, 'app-password-network');
});

test('the three primaryPassword settings', () => {
  assert.deepEqual(decideProtocolLogin({ ...base, primaryPassword: 'password' }, history, REMEMBER, login('203.0.113.1'), null), { result: 'continue', reason: 'primary-password' });
  const refused = decideProtocolLogin(base, history, REMEMBER, login('192.0.2.10'), null);
  assert.equal(refused.result, 'deny');
  assert.equal(refused.reason, 'app-password-required');
  assert.match(refused.message!, /app password for IMAP/);
  const known = { ...base, primaryPassword: 'known-location' as const };
  assert.deepEqual(decideProtocolLogin(known, history, REMEMBER, login('192.0.2.10'), null), { result: 'continue', reason: 'known-location', matched: '192.0.2.10' });
  assert.equal(decideProtocolLogin(known, history, REMEMBER, login('192.0.2.99'), null).reason, 'unknown-location', 'an expired location does not count');
  assert.equal(decideProtocolLogin(known, history, REMEMBER, login('203.0.113.1', 'DE'), null).reason, 'unknown-location', 'countries count only in mode new-country');
  assert.deepEqual(decideProtocolLogin({ ...known, challenge: 'new-country' }, history, REMEMBER, login('203.0.113.1', 'DE'), null), { result: 'continue', reason: 'known-location', matched: 'DE' });
});

test('mode never and trusted networks let the primary password through; country rules refuse even an app password', () => {
  assert.equal(decideProtocolLogin({ ...base, challenge: 'never' }, history, REMEMBER, login('203.0.113.1'), null).reason, 'mode-never');
  assert.deepEqual(decideProtocolLogin({ ...base, trustedNetwork: '203.0.113.0/24' }, history, REMEMBER, login('203.0.113.1'), null), { result: 'continue', reason: 'trusted-network', matched: '203.0.113.0/24' });
  const blocked = { ...base, countryRules: [{ level: 'global', rule: { mode: 'block' as const, countries: ['GB'] } }] };
  assert.equal(decideProtocolLogin(blocked, history, REMEMBER, login('203.0.113.1'), { name: 'phone', refusal: null }).reason, 'country-blocked');
  const allowOnly = { ...base, countryRules: [{ level: 'domain', rule: { mode: 'allow-only' as const, countries: ['DE'] } }] };
  assert.equal(decideProtocolLogin(allowOnly, history, REMEMBER, login('203.0.113.1', null), null).reason, 'country-blocked', 'an unknown country is not in an allow-only list');
});

test('every reason has its documented result, and every refusal a message without secrets', () => {
  for (const r of LOGIN_CHECK_REASONS) assert.ok(r.description.length > 10, r.reason);
  const denies = [
    decideProtocolLogin(base, history, REMEMBER, login('203.0.113.1'), null),
    decideProtocolLogin({ ...base, primaryPassword: 'known-location' }, history, REMEMBER, login('203.0.113.1'), null),
    decideProtocolLogin({ ...base, countryRules: [{ level: 'global', rule: { mode: 'block', countries: ['GB'] } }] }, history, REMEMBER, login('203.0.113.1'), null),
  ];
  for (const d of denies) {
    assert.equal(d.result, 'deny');
    assert.equal(LOGIN_CHECK_REASONS.find((r) => r.reason === d.reason)?.result, 'deny');
    assert.ok(d.message && d.message.length < 120 && !/[\r\n]/.test(d.message), d.reason);
  }
});
