import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemfaError } from '../src/protocol/errors.js';
import { CHALLENGE_MODES, type LevelSettings, type SettingSource, type UserSettings } from '../src/core/model.js';
import { applySettingsPatch, atLeastAsStrict, DOMAIN_ADMIN_KEYS, resolveSettings, SETTING_LEVELS, type SettingsDefaults } from '../src/core/settings.js';

const DEFAULTS: SettingsDefaults = { challenge: 'never', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true };

test('resolveSettings: the most specific level wins, each with its source', () => {
  type Row = {
    name: string;
    global: LevelSettings;
    domain: LevelSettings | undefined;
    mailbox: LevelSettings | undefined;
    want: { challenge: string; provider: string; fallbackProvider: string; usersMayConfigure: boolean };
    sources: Record<'challenge' | 'provider' | 'fallbackProvider' | 'usersMayConfigure', SettingSource>;
  };
  const allDefault = { challenge: 'default', provider: 'default', fallbackProvider: 'default', usersMayConfigure: 'default' } as const;
  const rows: Row[] = [
    {
      name: 'nothing set anywhere',
      global: {},
      domain: undefined,
      mailbox: undefined,
      want: { challenge: 'never', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true },
      sources: allDefault,
    },
    {
      name: 'empty domain and mailbox records',
      global: {},
      domain: {},
      mailbox: {},
      want: { challenge: 'never', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true },
      sources: allDefault,
    },
    {
      name: 'global only',
      global: { challenge: 'always', provider: 'sms', fallbackProvider: 'email', usersMayConfigure: false },
      domain: undefined,
      mailbox: undefined,
      want: { challenge: 'always', provider: 'sms', fallbackProvider: 'email', usersMayConfigure: false },
      sources: { challenge: 'global', provider: 'global', fallbackProvider: 'global', usersMayConfigure: 'global' },
    },
    {
      name: 'domain over global',
      global: { challenge: 'always', provider: 'sms' },
      domain: { challenge: 'new-ip', usersMayConfigure: false },
      mailbox: undefined,
      want: { challenge: 'new-ip', provider: 'sms', fallbackProvider: 'none', usersMayConfigure: false },
      sources: { challenge: 'domain', provider: 'global', fallbackProvider: 'default', usersMayConfigure: 'domain' },
    },
    {
      name: 'mailbox over domain over global',
      global: { challenge: 'always', provider: 'sms', fallbackProvider: 'email' },
      domain: { challenge: 'new-ip', provider: 'email' },
      mailbox: { challenge: 'new-country', provider: 'totp', fallbackProvider: 'none' },
      want: { challenge: 'new-country', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true },
      sources: { challenge: 'mailbox', provider: 'mailbox', fallbackProvider: 'mailbox', usersMayConfigure: 'default' },
    },
    {
      name: 'mailbox inherits past an empty domain',
      global: { provider: 'email' },
      domain: {},
      mailbox: { challenge: 'always' },
      want: { challenge: 'always', provider: 'email', fallbackProvider: 'none', usersMayConfigure: true },
      sources: { challenge: 'mailbox', provider: 'global', fallbackProvider: 'default', usersMayConfigure: 'default' },
    },
    {
      name: 'a mailbox cannot grant itself usersMayConfigure',
      global: {},
      domain: { usersMayConfigure: false },
      mailbox: { usersMayConfigure: true },
      want: { challenge: 'never', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: false },
      sources: { challenge: 'default', provider: 'default', fallbackProvider: 'default', usersMayConfigure: 'domain' },
    },
    {
      name: 'a null value inherits like a missing one',
      global: { challenge: 'always' },
      domain: { challenge: null as unknown as undefined },
      mailbox: undefined,
      want: { challenge: 'always', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true },
      sources: { challenge: 'global', provider: 'default', fallbackProvider: 'default', usersMayConfigure: 'default' },
    },
  ];
  for (const row of rows) {
    const eff = resolveSettings(DEFAULTS, row.global, row.domain, row.mailbox);
    assert.deepEqual(
      { challenge: eff.challenge, provider: eff.provider, fallbackProvider: eff.fallbackProvider, usersMayConfigure: eff.usersMayConfigure },
      row.want,
      row.name,
    );
    // No row sets an enrolment grace, notifications or primaryPassword (see the tests below): they come from the default.
    assert.deepEqual(eff.sources, { ...row.sources, enrolmentGrace: 'default', notifications: 'default', primaryPassword: 'default' }, row.name);
  }
});

test('resolveSettings: notifications come from the most specific level that sets them, else the default (on)', () => {
  type Row = [name: string, defaults: SettingsDefaults, global: LevelSettings, domain: LevelSettings | undefined, mailbox: LevelSettings | undefined, want: boolean, source: SettingSource];
  const rows: Row[] = [
    ['no default, nothing set: on', DEFAULTS, {}, undefined, undefined, true, 'default'],
    ['the default off', { ...DEFAULTS, notifications: false }, {}, undefined, undefined, false, 'default'],
    ['global off', DEFAULTS, { notifications: false }, undefined, undefined, false, 'global'],
    ['domain on over global off', DEFAULTS, { notifications: false }, { notifications: true }, undefined, true, 'domain'],
    ['mailbox off over domain on', DEFAULTS, {}, { notifications: true }, { notifications: false }, false, 'mailbox'],
    ['mailbox on over global off', { ...DEFAULTS, notifications: false }, { notifications: false }, {}, { notifications: true }, true, 'mailbox'],
  ];
  for (const [name, defaults, global, domain, mailbox, want, source] of rows) {
    const eff = resolveSettings(defaults, global, domain, mailbox);
    assert.deepEqual([eff.notifications, eff.sources.notifications], [want, source], name);
  }
  assert.deepEqual(applySettingsPatch({}, { notifications: 'no' }, 'mailbox'), { notifications: false });
  assert.deepEqual(applySettingsPatch({ notifications: false }, { notifications: 'inherit' }, 'domain'), {});
  assert.throws(() => applySettingsPatch({}, { notifications: 'maybe' }, 'global'), (e: MemfaError) => e.code === 'INVALID_PARAMS' && /notifications: expected true or false/.test(e.message));
  assert.throws(() => applySettingsPatch({}, { notifications: false }, 'user'), (e: MemfaError) => e.code === 'INVALID_PARAMS' && /notifications: can only be set at global or domain or mailbox level/.test(e.message));
});


test('resolveSettings: primaryPassword from the most specific level, else the default, else app-password', () => {
  assert.equal(resolveSettings(DEFAULTS, {}, undefined, undefined).primaryPassword, 'app-password');
  const withDefault = { ...DEFAULTS, primaryPassword: 'password' as const };
  assert.equal(resolveSettings(withDefault, {}, undefined, undefined).primaryPassword, 'password');
  const g = resolveSettings(withDefault, { primaryPassword: 'known-location' }, {}, {});
  assert.deepEqual([g.primaryPassword, g.sources.primaryPassword], ['known-location', 'global']);
  const d = resolveSettings(withDefault, { primaryPassword: 'known-location' }, { primaryPassword: 'app-password' }, undefined);
  assert.deepEqual([d.primaryPassword, d.sources.primaryPassword], ['app-password', 'domain']);
  const m = resolveSettings(withDefault, {}, { primaryPassword: 'app-password' }, { primaryPassword: 'password' });
  assert.deepEqual([m.primaryPassword, m.sources.primaryPassword], ['password', 'mailbox']);
  assert.deepEqual(applySettingsPatch({}, { primaryPassword: 'known-location' }, 'mailbox'), { primaryPassword: 'known-location' });
  assert.deepEqual(applySettingsPatch({ primaryPassword: 'password' }, { primaryPassword: 'inherit' }, 'domain'), {});
  assert.throws(() => applySettingsPatch({}, { primaryPassword: 'otp' }, 'global'), (err: MemfaError) => err.data?.['param'] === 'primaryPassword');
  assert.throws(() => applySettingsPatch({}, { primaryPassword: 'password' }, 'user'), (err: MemfaError) => err.data?.['param'] === 'primaryPassword');
});

test('resolveSettings: missing optional defaults mean no fallback and no self-service', () => {
  const eff = resolveSettings({ challenge: 'always', provider: 'sms' }, {}, undefined, undefined);
  assert.equal(eff.fallbackProvider, 'none');
  assert.equal(eff.usersMayConfigure, false);
});

test('resolveSettings: country rules of every level are collected, none lifted', () => {
  const g: LevelSettings = { countryRule: { mode: 'block', countries: ['KP'] } };
  const d: LevelSettings = { countryRule: { mode: 'allow-only', countries: ['DE', 'AT'] } };
  const m: LevelSettings = { countryRule: { mode: 'block', countries: ['AT'] } };
  assert.deepEqual(resolveSettings(DEFAULTS, g, d, m).countryRules, [
    { level: 'global', rule: { mode: 'block', countries: ['KP'] } },
    { level: 'domain', rule: { mode: 'allow-only', countries: ['DE', 'AT'] } },
    { level: 'mailbox', rule: { mode: 'block', countries: ['AT'] } },
  ]);
  assert.deepEqual(resolveSettings(DEFAULTS, g, { countryRule: null }, {}).countryRules, [
    { level: 'global', rule: { mode: 'block', countries: ['KP'] } },
  ]);
  assert.deepEqual(resolveSettings(DEFAULTS, {}, undefined, m).countryRules, [{ level: 'mailbox', rule: { mode: 'block', countries: ['AT'] } }]);
  assert.deepEqual(resolveSettings(DEFAULTS, {}, undefined, undefined).countryRules, []);

  // The result does not share arrays with the stored records.
  const eff = resolveSettings(DEFAULTS, g, undefined, undefined);
  eff.countryRules[0]?.rule.countries.push('XX');
  assert.deepEqual(g.countryRule?.countries, ['KP']);
});

test('resolveSettings: trusted networks are global ∪ domain; mailbox-level ignored', () => {
  const eff = resolveSettings(
    DEFAULTS,
    { trustedNetworks: ['10.0.0.0/8', '192.0.2.0/24'] },
    { trustedNetworks: ['192.0.2.0/24', '2001:db8::/32'] },
    { trustedNetworks: ['0.0.0.0/0'] },
  );
  assert.deepEqual(eff.trustedNetworks, ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32']);
  assert.deepEqual(resolveSettings(DEFAULTS, {}, undefined, { trustedNetworks: ['0.0.0.0/0'] }).trustedNetworks, []);
});

test("resolveSettings: the user's challenge applies only where at least as strict as every administrator level", () => {
  type Row = [name: string, global: LevelSettings, domain: LevelSettings | undefined, mailbox: LevelSettings | undefined, user: UserSettings | undefined, want: string, source: SettingSource];
  const rows: Row[] = [
    ['no user choice', {}, { challenge: 'new-ip' }, undefined, undefined, 'new-ip', 'domain'],
    ['stricter than the domain', {}, { challenge: 'new-ip' }, undefined, { challenge: 'always' }, 'always', 'user'],
    ['as strict as the domain', {}, { challenge: 'new-ip' }, undefined, { challenge: 'new-ip' }, 'new-ip', 'user'],
    ['weaker than the domain: ignored', {}, { challenge: 'new-ip' }, undefined, { challenge: 'new-country' }, 'new-ip', 'domain'],
    // The case: domain never, the administrator's mailbox setting always, the user never.
    ["weaker than the administrator's mailbox setting: ignored", {}, { challenge: 'never' }, { challenge: 'always' }, { challenge: 'never' }, 'always', 'mailbox'],
    ['stricter than the mailbox setting', {}, { challenge: 'always' }, { challenge: 'new-country' }, { challenge: 'new-ip' }, 'new-ip', 'user'],
    ['over the default', {}, undefined, undefined, { challenge: 'new-country' }, 'new-country', 'user'],
    ['over a weaker global', { challenge: 'never' }, {}, {}, { challenge: 'always' }, 'always', 'user'],
  ];
  for (const [name, g, dom, m, u, want, source] of rows) {
    const eff = resolveSettings(DEFAULTS, g, dom, m, u);
    assert.deepEqual([eff.challenge, eff.sources.challenge, eff.minChallenge], [want, source, null], name);
  }
});

test("resolveSettings: the user's provider applies unless an administrator set this mailbox's", () => {
  const eff = (mailbox: LevelSettings | undefined, user: UserSettings | undefined) => {
    const e = resolveSettings(DEFAULTS, { provider: 'email' }, { provider: 'totp' }, mailbox, user);
    return `${e.provider}:${e.sources.provider}`;
  };
  assert.equal(eff(undefined, { provider: 'sms' }), 'sms:user', 'over the domain');
  assert.equal(eff({ challenge: 'always' }, { provider: 'sms' }), 'sms:user', 'a mailbox setting of another key does not count');
  assert.equal(eff({ provider: 'email' }, { provider: 'sms' }), 'email:mailbox', "the administrator's mailbox setting wins");
  assert.equal(eff({ provider: null as unknown as undefined }, { provider: 'sms' }), 'sms:user', 'a null mailbox value is no setting');
  assert.equal(eff(undefined, {}), 'totp:domain');
});

test('resolveSettings: minChallenge is a floor over every level below the platform, domain over global', () => {
  type Row = [name: string, global: LevelSettings, domain: LevelSettings | undefined, mailbox: LevelSettings | undefined, user: UserSettings | undefined, want: string, source: SettingSource, min: unknown];
  const rows: Row[] = [
    ['global minimum raises a mailbox never', { minChallenge: 'new-ip' }, { challenge: 'always' }, { challenge: 'never' }, undefined, 'new-ip', 'global', { value: 'new-ip', source: 'global', raised: true }],
    ['a stricter setting stays, the minimum is reported', { minChallenge: 'new-country' }, { challenge: 'new-ip' }, undefined, undefined, 'new-ip', 'domain', { value: 'new-country', source: 'global', raised: false }],
    ['domain minimum over the domain challenge', {}, { challenge: 'never', minChallenge: 'always' }, { challenge: 'new-ip' }, undefined, 'always', 'domain', { value: 'always', source: 'domain', raised: true }],
    ['the domain minimum is used over the global one', { minChallenge: 'always' }, { minChallenge: 'new-country' }, undefined, undefined, 'new-country', 'domain', { value: 'new-country', source: 'domain', raised: true }],
    ['over a user choice', { minChallenge: 'always' }, undefined, undefined, { challenge: 'new-ip' }, 'always', 'global', { value: 'always', source: 'global', raised: true }],
    ['a stricter user choice stays', { minChallenge: 'new-ip' }, undefined, undefined, { challenge: 'always' }, 'always', 'user', { value: 'new-ip', source: 'global', raised: false }],
    ['equal is not raised', { minChallenge: 'always' }, { challenge: 'always' }, undefined, undefined, 'always', 'domain', { value: 'always', source: 'global', raised: false }],
    ['a mailbox-level minimum is not honoured', {}, undefined, { minChallenge: 'always' }, undefined, 'never', 'default', null],
  ];
  for (const [name, g, dom, m, u, want, source, min] of rows) {
    const eff = resolveSettings(DEFAULTS, g, dom, m, u);
    assert.deepEqual([eff.challenge, eff.sources.challenge, eff.minChallenge], [want, source, min], name);
  }
});

test('atLeastAsStrict: never < new-country < new-ip < always', () => {
  const order = ['never', 'new-country', 'new-ip', 'always'] as const;
  assert.deepEqual([...CHALLENGE_MODES].sort((a, b) => order.indexOf(a) - order.indexOf(b)), [...order]);
  for (const [i, a] of order.entries()) for (const [j, b] of order.entries()) assert.equal(atLeastAsStrict(a, b), i >= j, `${a} vs ${b}`);
});

test('applySettingsPatch: minChallenge at global and domain only; the user level takes challenge and provider only', () => {
  assert.deepEqual(applySettingsPatch({}, { minChallenge: 'new-ip' }, 'global'), { minChallenge: 'new-ip' });
  assert.deepEqual(applySettingsPatch({ minChallenge: 'always', challenge: 'never' }, { minChallenge: 'inherit' }, 'domain'), { challenge: 'never' });
  assert.throws(() => applySettingsPatch({}, { minChallenge: 'always' }, 'mailbox'), /minChallenge: can only be set at global or domain level, not mailbox/);
  assert.throws(() => applySettingsPatch({}, { minChallenge: 'sometimes' }, 'global'), invalidWith(['minChallenge']));
  assert.deepEqual(applySettingsPatch({ challenge: 'always', provider: 'sms' }, { challenge: 'inherit', provider: 'email' }, 'user'), { provider: 'email' });
  for (const key of ['fallbackProvider', 'countryRule', 'trustedNetworks', 'usersMayConfigure', 'minChallenge']) {
    assert.throws(() => applySettingsPatch({}, { [key]: 'inherit' }, 'user'), new RegExp(`${key}: can only be set at .* level, not user`), key);
  }
  // What a domain administrator may set is a part of the domain level, and never a platform key.
  for (const key of DOMAIN_ADMIN_KEYS) assert.ok(SETTING_LEVELS[key].includes('domain'), key);
  for (const key of ['trustedNetworks', 'usersMayConfigure', 'minChallenge'] as const) assert.ok(!DOMAIN_ADMIN_KEYS.includes(key), key);
});

// ---------------------------------------------------------------------------------------------

function invalidWith(params: string[]): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof MemfaError, `expected MemfaError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_PARAMS');
    assert.equal(err.data?.param, params[0]);
    const errors = err.data?.errors as { param: string; message: string }[];
    assert.deepEqual(
      errors.map((e) => e.param),
      params,
    );
    for (const e of errors) assert.ok(err.message.includes(e.message));
    return true;
  };
}

test('applySettingsPatch: sets, normalises and removes keys without touching the input', () => {
  const current: LevelSettings = { challenge: 'always', provider: 'sms', trustedNetworks: ['10.0.0.0/8'] };
  const frozen = structuredClone(current);
  const next = applySettingsPatch(
    current,
    {
      challenge: 'inherit',
      provider: 'email',
      fallbackProvider: 'none',
      countryRule: { mode: 'allow-only', countries: ['de', ' at ', 'DE'] },
      trustedNetworks: ['192.0.2.0/24', '2001:DB8::/32', '192.0.2.0/24', '198.51.100.1'],
      usersMayConfigure: false,
    },
    'domain',
  );
  assert.deepEqual(next, {
    provider: 'email',
    fallbackProvider: 'none',
    countryRule: { mode: 'allow-only', countries: ['AT', 'DE'] },
    trustedNetworks: ['192.0.2.0/24', '2001:db8::/32', '198.51.100.1/32'],
    usersMayConfigure: false,
  });
  assert.deepEqual(current, frozen);
});

test('applySettingsPatch: inherit and null remove; comma strings and CLI booleans accepted', () => {
  const current: LevelSettings = { challenge: 'always', countryRule: { mode: 'block', countries: ['KP'] }, usersMayConfigure: true };
  assert.deepEqual(applySettingsPatch(current, { challenge: null, countryRule: 'inherit', usersMayConfigure: 'inherit' }, 'global'), {});
  assert.deepEqual(applySettingsPatch({}, { trustedNetworks: '10.0.0.0/8, 192.0.2.0/24', usersMayConfigure: 'yes' }, 'global'), {
    trustedNetworks: ['10.0.0.0/8', '192.0.2.0/24'],
    usersMayConfigure: true,
  });
  assert.deepEqual(applySettingsPatch({}, { countryRule: { mode: 'block', countries: 'ru,kp' } }, 'mailbox'), {
    countryRule: { mode: 'block', countries: ['KP', 'RU'] },
  });
  assert.deepEqual(applySettingsPatch({}, { trustedNetworks: [] }, 'domain'), { trustedNetworks: [] });
  assert.deepEqual(applySettingsPatch({ provider: 'sms' }, {}, 'mailbox'), { provider: 'sms' });
});

test('applySettingsPatch: every mode and provider name at every level', () => {
  for (const level of ['global', 'domain', 'mailbox'] as const) {
    for (const challenge of ['never', 'always', 'new-ip', 'new-country'] as const) {
      assert.equal(applySettingsPatch({}, { challenge }, level).challenge, challenge);
    }
    for (const provider of ['totp', 'sms', 'email'] as const) {
      assert.equal(applySettingsPatch({}, { provider }, level).provider, provider);
      assert.equal(applySettingsPatch({}, { fallbackProvider: provider }, level).fallbackProvider, provider);
    }
    assert.equal(applySettingsPatch({}, { fallbackProvider: 'none' }, level).fallbackProvider, 'none');
  }
});

test('applySettingsPatch: errors name the key; all problems reported at once; nothing applied', () => {
  const table: [patch: Record<string, unknown>, level: 'global' | 'domain' | 'mailbox', params: string[]][] = [
    [{ colour: 'red' }, 'global', ['colour']],
    [{ challenge: 'sometimes' }, 'global', ['challenge']],
    [{ challenge: 'ALWAYS' }, 'global', ['challenge']],
    [{ challenge: 1 }, 'domain', ['challenge']],
    [{ provider: 'none' }, 'domain', ['provider']],
    [{ provider: 'carrier-pigeon' }, 'mailbox', ['provider']],
    [{ fallbackProvider: 'fax' }, 'mailbox', ['fallbackProvider']],
    [{ countryRule: 'block DE' }, 'global', ['countryRule']],
    [{ countryRule: ['DE'] }, 'global', ['countryRule']],
    [{ countryRule: { mode: 'deny', countries: ['DE'] } }, 'global', ['countryRule.mode']],
    [{ countryRule: { mode: 'block', countries: [] } }, 'global', ['countryRule.countries']],
    [{ countryRule: { mode: 'allow-only', countries: '' } }, 'global', ['countryRule.countries']],
    [{ countryRule: { mode: 'block', countries: ['DEU'] } }, 'global', ['countryRule.countries']],
    [{ countryRule: { mode: 'block', countries: 7 } }, 'global', ['countryRule.countries']],
    [{ countryRule: { mode: 'block', countries: ['DE'], extra: 1 } }, 'global', ['countryRule.extra']],
    [{ trustedNetworks: ['10.0.0.0/8'] }, 'mailbox', ['trustedNetworks']],
    [{ trustedNetworks: ['10.1.0.0/8'] }, 'domain', ['trustedNetworks']],
    [{ trustedNetworks: 'not-a-net' }, 'global', ['trustedNetworks']],
    [{ trustedNetworks: 5 }, 'global', ['trustedNetworks']],
    [{ usersMayConfigure: true }, 'mailbox', ['usersMayConfigure']],
    [{ usersMayConfigure: 'inherit' }, 'mailbox', ['usersMayConfigure']],
    [{ usersMayConfigure: 'maybe' }, 'domain', ['usersMayConfigure']],
    [{ challenge: 'x', provider: 'y', nonsense: 1, trustedNetworks: ['::/0'] }, 'mailbox', ['challenge', 'provider', 'nonsense', 'trustedNetworks']],
    [{ __proto__: 'x', constructor: 'y' } as Record<string, unknown>, 'global', ['constructor']],
  ];
  for (const [patch, level, params] of table) {
    const current: LevelSettings = { challenge: 'always' };
    assert.throws(() => applySettingsPatch(current, patch, level), invalidWith(params), JSON.stringify(patch));
    assert.deepEqual(current, { challenge: 'always' });
  }
  assert.throws(
    () => applySettingsPatch({}, null as unknown as Record<string, unknown>, 'global'),
    (err: unknown) => err instanceof MemfaError && err.code === 'INVALID_PARAMS' && err.data?.param === 'settings',
  );
});

test('applySettingsPatch: messages are readable', () => {
  assert.throws(
    () => applySettingsPatch({}, { trustedNetworks: ['10.0.0.0/8'] }, 'mailbox'),
    /trustedNetworks: can only be set at global or domain level, not mailbox/,
  );
  assert.throws(() => applySettingsPatch({}, { colour: 'red' }, 'global'), /colour: unknown setting \(expected one of challenge, provider/);
  assert.throws(() => applySettingsPatch({}, { challenge: 'sometimes' }, 'global'), /challenge: expected one of never, always, new-ip, new-country or 'inherit', got "sometimes"/);
  assert.throws(() => applySettingsPatch({}, { trustedNetworks: ['10.1.0.0/8'] }, 'global'), /did you mean 10\.0\.0\.0\/8/);
});
