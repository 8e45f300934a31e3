import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHALLENGE_MODES, PROVIDERS, type ChallengeMode, type CountryRule, type EffectiveSettings, type ProviderName, type SettingSource } from '../src/core/model.js';
import {
  DECISION_REASONS,
  decide,
  rememberLocation,
  type Decision,
  type DecisionReason,
  type MailboxHistory,
  type RememberPolicy,
} from '../src/core/decide.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const POLICY: RememberPolicy = { maxEntries: 5, maxAgeMs: 180 * DAY };
const IP = '203.0.113.7';
const OTHER_IP = '198.51.100.9';

function settings(over: Partial<EffectiveSettings> = {}): EffectiveSettings {
  return {
    challenge: 'new-ip',
    provider: 'sms',
    fallbackProvider: 'none',
    countryRules: [],
    trustedNetworks: [],
    usersMayConfigure: true,
    minChallenge: null,
    enrolmentGrace: 'none',
    notifications: true,
    primaryPassword: 'app-password',
    sources: { challenge: 'global', provider: 'global', fallbackProvider: 'default', usersMayConfigure: 'default', enrolmentGrace: 'default', notifications: 'default', primaryPassword: 'default' },
    ...over,
  };
}

// History variants. "known-ip" remembers only the IP and "known-country" only the country, so the
// two modes are tested independently; "expired" remembers both, but too long ago.
type HistoryCase = 'none' | 'known-ip' | 'known-country' | 'expired';
function history(kind: HistoryCase, hasActiveTotp: boolean): MailboxHistory {
  const recent = NOW - 10 * DAY;
  const old = NOW - 181 * DAY;
  const decoyIp = { ip: OTHER_IP, firstSeen: recent, lastSeen: recent };
  const decoyCountry = { country: 'JP', firstSeen: recent, lastSeen: recent };
  switch (kind) {
    case 'none':
      return { ips: [decoyIp], countries: [decoyCountry], hasActiveTotp };
    case 'known-ip':
      return { ips: [decoyIp, { ip: IP, firstSeen: recent - DAY, lastSeen: recent }], countries: [decoyCountry], hasActiveTotp };
    case 'known-country':
      return { ips: [decoyIp], countries: [decoyCountry, { country: 'DE', firstSeen: recent, lastSeen: recent }], hasActiveTotp };
    case 'expired':
      return {
        ips: [decoyIp, { ip: IP, firstSeen: old - DAY, lastSeen: old }],
        countries: [decoyCountry, { country: 'DE', firstSeen: old, lastSeen: old }],
        hasActiveTotp,
      };
  }
}

// Login countries: DE is the one a history may remember, FR is resolved but never remembered,
// null is an address the geo lookup cannot place.
const COUNTRIES = { known: 'DE', other: 'FR', null: null } as const;
type CountryCase = keyof typeof COUNTRIES;

// Expected outcome before the provider is considered: 'allow:<reason>' or 'factor:<reason>'.
// Columns: login country DE, FR, null.
type Base = `allow:${DecisionReason}` | `factor:${DecisionReason}`;
const EXPECTED: Record<ChallengeMode, Record<HistoryCase, [Base, Base, Base]>> = {
  never: {
    none: ['allow:mode-never', 'allow:mode-never', 'allow:mode-never'],
    'known-ip': ['allow:mode-never', 'allow:mode-never', 'allow:mode-never'],
    'known-country': ['allow:mode-never', 'allow:mode-never', 'allow:mode-never'],
    expired: ['allow:mode-never', 'allow:mode-never', 'allow:mode-never'],
  },
  always: {
    none: ['factor:always', 'factor:always', 'factor:always'],
    'known-ip': ['factor:always', 'factor:always', 'factor:always'],
    'known-country': ['factor:always', 'factor:always', 'factor:always'],
    expired: ['factor:always', 'factor:always', 'factor:always'],
  },
  'new-ip': {
    none: ['factor:new-ip', 'factor:new-ip', 'factor:new-ip'],
    'known-ip': ['allow:known-ip', 'allow:known-ip', 'allow:known-ip'],
    'known-country': ['factor:new-ip', 'factor:new-ip', 'factor:new-ip'],
    expired: ['factor:new-ip', 'factor:new-ip', 'factor:new-ip'],
  },
  'new-country': {
    none: ['factor:new-country', 'factor:new-country', 'factor:country-unknown'],
    'known-ip': ['factor:new-country', 'factor:new-country', 'factor:country-unknown'],
    'known-country': ['allow:known-country', 'factor:new-country', 'factor:country-unknown'],
    expired: ['factor:new-country', 'factor:new-country', 'factor:country-unknown'],
  },
};

test('decide: every mode × provider × history × country × TOTP state', () => {
  let cases = 0;
  const countryCases = Object.keys(COUNTRIES) as CountryCase[];
  for (const mode of CHALLENGE_MODES) {
    for (const provider of PROVIDERS) {
      for (const kind of ['none', 'known-ip', 'known-country', 'expired'] as const) {
        for (const [col, countryCase] of countryCases.entries()) {
          for (const totp of [false, true]) {
            const base = EXPECTED[mode][kind][col];
            assert.ok(base !== undefined);
            const [outcome, reason] = base.split(':') as ['allow' | 'factor', DecisionReason];
            let want: Pick<Decision, 'action' | 'reason' | 'provider'>;
            if (outcome === 'allow') want = { action: 'allow', reason, provider };
            else if (provider === 'totp' && !totp) want = { action: 'enroll', reason: 'enroll-required', provider };
            else want = { action: 'challenge', reason, provider };

            const d = decide(settings({ challenge: mode, provider }), history(kind, totp), { ip: IP, country: COUNTRIES[countryCase], now: NOW }, POLICY);
            const label = `mode=${mode} provider=${provider} history=${kind} country=${countryCase} totp=${totp}`;
            assert.deepEqual({ action: d.action, reason: d.reason, provider: d.provider }, want, label);
            assert.equal(d.rule, undefined, label);
            if (d.reason === 'known-ip') assert.equal(d.matched, IP, label);
            else if (d.reason === 'known-country') assert.equal(d.matched, 'DE', label);
            else assert.equal(d.matched, undefined, label);
            cases++;
          }
        }
      }
    }
  }
  assert.equal(cases, 4 * 3 * 4 * 3 * 2);
});

test('decide: expiry boundary with an injected clock', () => {
  const seen = NOW - POLICY.maxAgeMs;
  const h: MailboxHistory = {
    ips: [{ ip: IP, firstSeen: seen, lastSeen: seen }],
    countries: [{ country: 'DE', firstSeen: seen, lastSeen: seen }],
    hasActiveTotp: true,
  };
  const at = (now: number, challenge: ChallengeMode): string =>
    decide(settings({ challenge, provider: 'totp' }), h, { ip: IP, country: 'DE', now }, POLICY).reason;
  assert.equal(at(NOW, 'new-ip'), 'known-ip');
  assert.equal(at(NOW + 1, 'new-ip'), 'new-ip');
  assert.equal(at(NOW, 'new-country'), 'known-country');
  assert.equal(at(NOW + 1, 'new-country'), 'new-country');
  // A lastSeen ahead of the clock (the clock was stepped back) still counts.
  assert.equal(at(seen - DAY, 'new-ip'), 'known-ip');
});

test('decide: addresses and countries compare in canonical form', () => {
  const h: MailboxHistory = {
    ips: [
      { ip: '192.0.2.1', firstSeen: NOW, lastSeen: NOW },
      { ip: '2001:db8::1', firstSeen: NOW, lastSeen: NOW },
    ],
    countries: [{ country: 'DE', firstSeen: NOW, lastSeen: NOW }],
    hasActiveTotp: true,
  };
  const s = settings({ challenge: 'new-ip' });
  assert.equal(decide(s, h, { ip: '::ffff:192.0.2.1', country: null, now: NOW }, POLICY).reason, 'known-ip');
  assert.equal(decide(s, h, { ip: '2001:DB8:0::0:1', country: null, now: NOW }, POLICY).reason, 'known-ip');
  assert.equal(decide(settings({ challenge: 'new-country' }), h, { ip: IP, country: 'de', now: NOW }, POLICY).reason, 'known-country');
  assert.throws(() => decide(s, h, { ip: 'not-an-ip', country: null, now: NOW }, POLICY), /ip: /);
});

// ---------------------------------------------------------------------------------------------
// Country rules and trusted networks

const rule = (mode: CountryRule['mode'], ...countries: string[]): CountryRule => ({ mode, countries });
const at = (level: SettingSource, r: CountryRule): EffectiveSettings['countryRules'][number] => ({ level, rule: r });

test('decide: country rules table', () => {
  const table: [name: string, rules: EffectiveSettings['countryRules'], country: string | null, deny: null | { matched: string; rule: string }][] = [
    ['no rules', [], 'RU', null],
    ['block hits', [at('global', rule('block', 'RU', 'KP'))], 'RU', { matched: 'RU', rule: 'global block RU,KP' }],
    ['block misses', [at('global', rule('block', 'RU', 'KP'))], 'DE', null],
    ['block with unknown country does not refuse', [at('global', rule('block', 'RU'))], null, null],
    ['allow-only hits', [at('domain', rule('allow-only', 'DE', 'AT'))], 'AT', null],
    ['allow-only refuses others', [at('domain', rule('allow-only', 'DE', 'AT'))], 'FR', { matched: 'FR', rule: 'domain allow-only DE,AT' }],
    ['allow-only refuses unknown', [at('mailbox', rule('allow-only', 'DE'))], null, { matched: 'unknown', rule: 'mailbox allow-only DE' }],
    [
      'all levels apply: global block beats domain allow-only',
      [at('global', rule('block', 'AT')), at('domain', rule('allow-only', 'DE', 'AT'))],
      'AT',
      { matched: 'AT', rule: 'global block AT' },
    ],
    [
      'all levels apply: mailbox narrows domain',
      [at('domain', rule('allow-only', 'DE', 'AT')), at('mailbox', rule('allow-only', 'DE'))],
      'AT',
      { matched: 'AT', rule: 'mailbox allow-only DE' },
    ],
    [
      'all levels apply: passes every rule',
      [at('global', rule('block', 'KP')), at('domain', rule('allow-only', 'DE', 'AT')), at('mailbox', rule('block', 'AT'))],
      'DE',
      null,
    ],
    [
      'first refusing rule is reported',
      [at('global', rule('allow-only', 'DE')), at('mailbox', rule('block', 'FR'))],
      'FR',
      { matched: 'FR', rule: 'global allow-only DE' },
    ],
    ['lower-case login country', [at('global', rule('block', 'RU'))], 'ru', { matched: 'RU', rule: 'global block RU' }],
  ];
  for (const [name, countryRules, country, deny] of table) {
    for (const challenge of CHALLENGE_MODES) {
      const d = decide(settings({ challenge, provider: 'totp', countryRules }), history('known-ip', true), { ip: IP, country, now: NOW }, POLICY);
      if (deny) {
        assert.deepEqual(d, { action: 'deny', reason: 'country-blocked', provider: 'totp', ...deny }, `${name} (${challenge})`);
      } else {
        assert.notEqual(d.action, 'deny', `${name} (${challenge})`);
      }
    }
  }
});

test('decide: trusted networks allow before any mode, but a blocked country still wins', () => {
  const trustedNetworks = ['10.0.0.0/8', '2001:db8::/32'];
  for (const challenge of CHALLENGE_MODES) {
    for (const provider of PROVIDERS) {
      const s = settings({ challenge, provider, trustedNetworks });
      // Even TOTP without an enrolled secret: trusted networks do not need a factor at all.
      assert.deepEqual(decide(s, history('none', false), { ip: '10.2.3.4', country: null, now: NOW }, POLICY), {
        action: 'allow',
        reason: 'trusted-network',
        provider,
        matched: '10.0.0.0/8',
      });
      assert.deepEqual(decide(s, history('none', false), { ip: '::ffff:10.2.3.4', country: 'FR', now: NOW }, POLICY).reason, 'trusted-network');
      assert.deepEqual(decide(s, history('none', false), { ip: '2001:db8::5', country: 'FR', now: NOW }, POLICY).matched, '2001:db8::/32');
      assert.notEqual(decide(s, history('none', false), { ip: '11.0.0.1', country: 'FR', now: NOW }, POLICY).reason, 'trusted-network');

      const blocked = settings({ challenge, provider, trustedNetworks, countryRules: [at('global', rule('block', 'FR'))] });
      assert.equal(decide(blocked, history('none', true), { ip: '10.2.3.4', country: 'FR', now: NOW }, POLICY).action, 'deny');
      const allowOnly = settings({ challenge, provider, trustedNetworks, countryRules: [at('domain', rule('allow-only', 'DE'))] });
      assert.equal(decide(allowOnly, history('none', true), { ip: '10.2.3.4', country: null, now: NOW }, POLICY).action, 'deny');
    }
  }
});

test('decide: the inputs are not modified', () => {
  const s = settings({ challenge: 'new-country', countryRules: [at('global', rule('block', 'RU'))], trustedNetworks: ['10.0.0.0/8'] });
  const h = history('known-country', true);
  const before = structuredClone({ s, h });
  decide(s, h, { ip: IP, country: 'DE', now: NOW }, POLICY);
  assert.deepEqual({ s, h }, before);
});

test('DECISION_REASONS: unique, described, and covering what services report', () => {
  const names = DECISION_REASONS.map((r) => r.reason);
  assert.equal(new Set(names).size, names.length);
  for (const r of DECISION_REASONS) {
    assert.match(r.description, /^[a-z].*[^.]$/, r.reason);
    assert.ok(!r.description.includes('\n'), r.reason);
  }
  const required: DecisionReason[] = [
    'country-blocked', 'trusted-network', 'mode-never', 'known-ip', 'known-country', 'always', 'new-ip', 'new-country',
    'country-unknown', 'enroll-required', 'code-valid', 'code-invalid', 'code-reused', 'code-expired', 'no-open-code',
    'locked', 'recovery-code-used', 'delivery-failed', 'enrolled', 'provider-disabled', 'provider-unusable', 'rate-limited', 'enrolment-grace',
  ];
  assert.deepEqual([...names].sort(), [...required].sort());
});

// ---------------------------------------------------------------------------------------------
// rememberLocation

test('rememberLocation: adds new entries and refreshes known ones without mutating', () => {
  const h = {
    ips: [{ ip: IP, firstSeen: NOW - 5 * DAY, lastSeen: NOW - 2 * DAY }],
    countries: [{ country: 'DE', firstSeen: NOW - 5 * DAY, lastSeen: NOW - 2 * DAY }],
  };
  const before = structuredClone(h);
  const r1 = rememberLocation(h, IP, 'de', NOW, POLICY);
  assert.deepEqual(r1, {
    ips: [{ ip: IP, firstSeen: NOW - 5 * DAY, lastSeen: NOW }],
    countries: [{ country: 'DE', firstSeen: NOW - 5 * DAY, lastSeen: NOW }],
  });
  assert.deepEqual(h, before);
  assert.notEqual(r1.ips, h.ips);

  const r2 = rememberLocation(r1, '::ffff:192.0.2.1', 'FR', NOW + 1, POLICY);
  assert.deepEqual(r2, {
    ips: [
      { ip: '192.0.2.1', firstSeen: NOW + 1, lastSeen: NOW + 1 },
      { ip: IP, firstSeen: NOW - 5 * DAY, lastSeen: NOW },
    ],
    countries: [
      { country: 'FR', firstSeen: NOW + 1, lastSeen: NOW + 1 },
      { country: 'DE', firstSeen: NOW - 5 * DAY, lastSeen: NOW },
    ],
  });
});

test('rememberLocation: a null country leaves countries alone', () => {
  const h = { ips: [], countries: [{ country: 'DE', firstSeen: NOW, lastSeen: NOW }] };
  assert.deepEqual(rememberLocation(h, IP, null, NOW + 1, POLICY), {
    ips: [{ ip: IP, firstSeen: NOW + 1, lastSeen: NOW + 1 }],
    countries: [{ country: 'DE', firstSeen: NOW, lastSeen: NOW }],
  });
});

test('rememberLocation: expired entries are dropped; a returning expired IP starts afresh', () => {
  const old = NOW - POLICY.maxAgeMs - 1;
  const h = {
    ips: [
      { ip: IP, firstSeen: old - DAY, lastSeen: old },
      { ip: OTHER_IP, firstSeen: old, lastSeen: old },
      { ip: '192.0.2.50', firstSeen: NOW - POLICY.maxAgeMs, lastSeen: NOW - POLICY.maxAgeMs },
    ],
    countries: [{ country: 'JP', firstSeen: old, lastSeen: old }],
  };
  assert.deepEqual(rememberLocation(h, IP, null, NOW, POLICY), {
    ips: [
      { ip: IP, firstSeen: NOW, lastSeen: NOW },
      { ip: '192.0.2.50', firstSeen: NOW - POLICY.maxAgeMs, lastSeen: NOW - POLICY.maxAgeMs },
    ],
    countries: [],
  });
});

test('rememberLocation: keeps at most maxEntries, evicting the least recently seen', () => {
  const policy: RememberPolicy = { maxEntries: 3, maxAgeMs: 365 * DAY };
  let h: { ips: MailboxHistory['ips']; countries: MailboxHistory['countries'] } = { ips: [], countries: [] };
  const sequence: [string, string][] = [
    ['192.0.2.1', 'DE'],
    ['192.0.2.2', 'FR'],
    ['192.0.2.3', 'IT'],
    ['192.0.2.1', 'DE'], // refresh .1: now .2 is the oldest
    ['192.0.2.4', 'ES'],
  ];
  sequence.forEach(([ip, country], i) => {
    h = rememberLocation(h, ip, country, NOW + i * 1000, policy);
  });
  assert.deepEqual(
    h.ips.map((e) => e.ip),
    ['192.0.2.4', '192.0.2.1', '192.0.2.3'],
  );
  assert.deepEqual(
    h.countries.map((e) => e.country),
    ['ES', 'DE', 'IT'],
  );
  assert.equal(h.ips.find((e) => e.ip === '192.0.2.1')?.firstSeen, NOW);

  // A store holding more than maxEntries (the limit was lowered) is trimmed on the next update.
  assert.equal(rememberLocation(h, '192.0.2.9', null, NOW + 10_000, { ...policy, maxEntries: 1 }).ips.length, 1);
  assert.deepEqual(rememberLocation(h, '192.0.2.9', 'DE', NOW + 10_000, { ...policy, maxEntries: 0 }), { ips: [], countries: [] });
});

test('rememberLocation then decide: a remembered login is known next time', () => {
  const s: EffectiveSettings = settings({ challenge: 'new-ip', provider: 'totp' as ProviderName });
  const empty = { ips: [], countries: [] };
  assert.equal(decide(s, { ...empty, hasActiveTotp: true }, { ip: IP, country: 'DE', now: NOW }, POLICY).action, 'challenge');
  const h = rememberLocation(empty, IP, 'DE', NOW, POLICY);
  assert.equal(decide(s, { ...h, hasActiveTotp: true }, { ip: IP, country: 'DE', now: NOW + DAY }, POLICY).reason, 'known-ip');
  assert.equal(decide(s, { ...h, hasActiveTotp: true }, { ip: IP, country: 'DE', now: NOW + POLICY.maxAgeMs + 1 }, POLICY).reason, 'new-ip');
});

test('rememberLocation: the same result as a plain copy-and-sort, on random histories with ties and disorder', () => {
  // The reference: copy every fresh entry, update or add, stable-sort by lastSeen (latest first), cut.
  const reference = (entries: readonly { ip: string; firstSeen: number; lastSeen: number }[], ip: string, now: number, policy: RememberPolicy) => {
    const kept = entries.filter((e) => now - e.lastSeen <= policy.maxAgeMs).map((e) => ({ ...e }));
    const existing = kept.find((e) => e.ip === ip);
    if (existing) existing.lastSeen = Math.max(existing.lastSeen, now);
    else kept.push({ ip, firstSeen: now, lastSeen: now });
    kept.sort((a, b) => b.lastSeen - a.lastSeen);
    return kept.slice(0, policy.maxEntries);
  };
  let seed = 11;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let run = 0; run < 2000; run++) {
    const policy: RememberPolicy = { maxEntries: 1 + rand(6), maxAgeMs: 10 * DAY };
    // Few distinct times, so that ties are common; some entries expired, some in the future.
    const times = [NOW - 11 * DAY, NOW - 2 * DAY, NOW - DAY, NOW, NOW + DAY];
    const ips = Array.from({ length: rand(8) }, (_, i) => ({ ip: `192.0.2.${i}`, firstSeen: NOW - 20 * DAY, lastSeen: times[rand(times.length)]! }));
    const ip = `192.0.2.${rand(10)}`;
    const before = structuredClone(ips);
    const got = rememberLocation({ ips, countries: [] }, ip, null, NOW, policy).ips;
    assert.deepEqual(got, reference(ips, ip, NOW, policy), `run ${run}`);
    assert.deepEqual(ips, before, 'the input is not modified');
  }
});
