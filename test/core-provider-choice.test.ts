// Which provider can give a mailbox its factor (core/provider-choice.ts): a table of cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EffectiveSettings, FallbackProvider, ProviderName, SettingSource } from '../src/core/model.js';
import { chooseProvider, describeChoice, sendOrder, settingsFor, type ProviderFacts } from '../src/core/provider-choice.js';
import { freshEntries } from '../src/core/decide.js';

function settings(provider: ProviderName, fallbackProvider: FallbackProvider, sources: { provider?: SettingSource; fallbackProvider?: SettingSource } = {}): EffectiveSettings {
  return {
    challenge: 'always',
    provider,
    fallbackProvider,
    countryRules: [],
    trustedNetworks: [],
    usersMayConfigure: true,
    minChallenge: null,
    enrolmentGrace: 'none',
    notifications: true,
    primaryPassword: 'app-password',
    sources: { challenge: 'global', provider: sources.provider ?? 'domain', fallbackProvider: sources.fallbackProvider ?? 'global', usersMayConfigure: 'default', enrolmentGrace: 'default', notifications: 'default', primaryPassword: 'default' },
  };
}

function facts(disabled: ProviderName[] = [], noGateway: ('sms' | 'email')[] = []): ProviderFacts {
  return { enabled: (p) => !disabled.includes(p), hasGateway: (p) => !noGateway.includes(p) };
}

const BOTH = { phone: '+447700900123', altEmail: 'a@home.example' };
const NEITHER = { phone: null, altEmail: null };

test('chooseProvider: the provider, else the fallback, else why neither', () => {
  const cases: { name: string; eff: EffectiveSettings; rec: { phone: string | null; altEmail: string | null }; facts: ProviderFacts; want: [string, string | null, string | null, string | null]; problems: (string | null)[]; text: string }[] = [
    { name: 'usable provider', eff: settings('email', 'sms'), rec: BOTH, facts: facts(), want: ['usable', 'email', 'provider', 'domain'], problems: [null, null], text: 'email (from domain)' },
    { name: 'disabled provider, usable fallback', eff: settings('email', 'sms'), rec: BOTH, facts: facts(['email']), want: ['usable', 'sms', 'fallback', 'global'], problems: ['disabled', null], text: 'sms (fallback, from global; email from domain is disabled)' },
    { name: 'no alternate address, usable fallback', eff: settings('email', 'sms'), rec: { phone: '+447700900123', altEmail: null }, facts: facts(), want: ['usable', 'sms', 'fallback', 'global'], problems: ['no-destination', null], text: 'sms (fallback, from global; email from domain has no alternate address for this mailbox)' },
    { name: 'usable provider, fallback without gateway', eff: settings('totp', 'sms'), rec: NEITHER, facts: facts([], ['sms']), want: ['usable', 'totp', 'provider', 'domain'], problems: [null, 'no-gateway'], text: 'totp (from domain); fallback sms from global has no gateway (smpp is not configured)' },
    { name: 'no gateway, no fallback', eff: settings('email', 'none'), rec: BOTH, facts: facts([], ['email']), want: ['unusable', null, null, null], problems: ['no-gateway'], text: 'none usable: email from domain has no gateway (smtp is not configured), and no fallback is set' },
    { name: 'disabled provider, fallback without phone', eff: settings('totp', 'sms'), rec: NEITHER, facts: facts(['totp']), want: ['unusable', null, null, null], problems: ['disabled', 'no-destination'], text: 'none usable: totp from domain is disabled; fallback sms from global has no phone number for this mailbox' },
    { name: 'all disabled', eff: settings('sms', 'email'), rec: BOTH, facts: facts(['sms', 'email']), want: ['disabled', null, null, null], problems: ['disabled', 'disabled'], text: 'none usable: sms from domain is disabled; fallback email from global is disabled' },
    { name: 'fallback equal to the provider is no second candidate', eff: settings('sms', 'sms'), rec: NEITHER, facts: facts(), want: ['unusable', null, null, null], problems: ['no-destination'], text: 'none usable: sms from domain has no phone number for this mailbox, and no fallback is set' },
  ];
  for (const c of cases) {
    const choice = chooseProvider(c.eff, c.rec, c.facts);
    assert.deepEqual([choice.outcome, choice.provider, choice.role, choice.source], c.want, c.name);
    assert.deepEqual(choice.candidates.map((x) => x.problem), c.problems, c.name);
    assert.equal(describeChoice(choice), c.text, c.name);
  }
});

test('settingsFor puts the fallback in the provider\'s place, with its source; sendOrder lists the code providers to try', () => {
  const eff = settings('email', 'sms');
  const viaFallback = chooseProvider(eff, BOTH, facts(['email']));
  const s = settingsFor(eff, viaFallback);
  assert.deepEqual([s.provider, s.fallbackProvider, s.sources.provider], ['sms', 'none', 'global']);
  assert.deepEqual(sendOrder(viaFallback), ['sms']);

  const both = chooseProvider(eff, BOTH, facts());
  assert.equal(settingsFor(eff, both), eff, 'unchanged when the provider itself is used');
  assert.deepEqual(sendOrder(both), ['email', 'sms']);
  assert.deepEqual(sendOrder(chooseProvider(settings('sms', 'totp'), BOTH, facts())), ['sms'], 'a totp fallback is not a send');
  assert.deepEqual(sendOrder(chooseProvider(settings('email', 'sms'), { phone: null, altEmail: 'a@home.example' }, facts())), ['email'], 'a fallback that cannot send is not tried');
  assert.deepEqual(sendOrder(chooseProvider(settings('email', 'none'), NEITHER, facts())), []);
});

test('freshEntries keeps what still counts, as decide() counts it', () => {
  const policy = { maxEntries: 10, maxAgeMs: 1000 };
  const entries = [{ ip: 'a', firstSeen: 0, lastSeen: 9000 }, { ip: 'b', firstSeen: 0, lastSeen: 8999 }, { ip: 'c', firstSeen: 0, lastSeen: 12000 }];
  assert.deepEqual(freshEntries(entries, 10_000, policy).map((e) => e.ip), ['a', 'c']);
});
