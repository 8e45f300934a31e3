// Every problem of one request in one INVALID_PARAMS error: the parameter schemas and the settings
// patches collect them instead of stopping at the first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applySettingsPatch } from '../src/core/settings.js';
import { MemfaError } from '../src/protocol/errors.js';
import { METHODS } from '../src/protocol/methods.js';
import { MAX_REPORTED_PROBLEMS } from '../src/protocol/problems.js';
import { errorLines } from '../src/cli/io.js';

function caught(fn: () => unknown): MemfaError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MemfaError, String(err));
    assert.equal(err.code, 'INVALID_PARAMS');
    return err;
  }
  assert.fail('expected INVALID_PARAMS');
}

const params = (e: MemfaError) => (e.data?.['errors'] as { param: string }[]).map((p) => p.param);

test('schema: unknown, missing and bad parameters are all reported, the first in data.param', () => {
  const set = METHODS['self.set'].params;
  const e = caught(() => set.parse({ challenge: 'sometimes', colour: 'red', phone: 12, currentCode: '' }, 'params'));
  assert.deepEqual(params(e).sort(), ['challenge', 'colour', 'currentCode', 'phone', 'user']);
  assert.equal(e.data?.['param'], params(e)[0]);
  for (const p of ['colour', 'user', 'challenge', 'phone', 'currentCode']) assert.match(e.message, new RegExp(p));
  // One problem keeps the shape it always had.
  const one = caught(() => set.parse({ user: 'a@example.com', colour: 'red' }, 'params'));
  assert.equal(one.message, 'unknown parameter "colour"');
  assert.deepEqual(one.data, { param: 'colour', errors: [{ param: 'colour', message: 'unknown parameter "colour"' }] });
});

test('schema: every bad item of an array is reported', () => {
  const add = METHODS['admin.add'].params;
  const e = caught(() => add.parse({ name: 'x', domains: ['a.example', 7, 'b.example', null] }, 'params'));
  assert.deepEqual(params(e), ['domains[1]', 'domains[3]']);
});

test('schema: a request with thousands of problems reports a bounded number of them', () => {
  const input: Record<string, unknown> = { user: 'a@example.com' };
  for (let i = 0; i < 5000; i++) input[`k${i}`] = i;
  const e = caught(() => METHODS['self.show'].params.parse(input, 'params'));
  assert.equal(params(e).length, MAX_REPORTED_PROBLEMS);
  assert.equal(e.data?.['moreErrors'], 5000 - MAX_REPORTED_PROBLEMS);
  assert.match(e.message, new RegExp(`and ${5000 - MAX_REPORTED_PROBLEMS} more$`));
});

test('settings patch: every bad list entry and every bad part of a country rule is reported', () => {
  const nets = caught(() => applySettingsPatch({}, { trustedNetworks: '10.0.0.0/33,192.0.2.0/24,foo' }, 'domain'));
  assert.deepEqual(params(nets), ['trustedNetworks', 'trustedNetworks']);
  assert.match(nets.message, /'10\.0\.0\.0\/33'.*; trustedNetworks: 'foo'/);

  const rule = caught(() => applySettingsPatch({}, { countryRule: { mode: 'deny', countries: ['DE', '9Z', 'D'], colour: 1 }, challenge: 'sometimes' }, 'domain'));
  assert.deepEqual(params(rule), ['countryRule.colour', 'countryRule.mode', 'countryRule.countries', 'countryRule.countries', 'challenge']);
  for (const bad of ['9Z', "'D'", 'deny', 'sometimes']) assert.ok(rule.message.includes(bad), `${bad} in ${rule.message}`);
});

test('the command prints one line per problem of INVALID_PARAMS, and other errors as they are', () => {
  const e = caught(() => applySettingsPatch({}, { challenge: 'x', minChallenge: 'y' }, 'domain'));
  assert.deepEqual(errorLines(e), [(e.data?.['errors'] as { message: string }[])[0]!.message, (e.data?.['errors'] as { message: string }[])[1]!.message]);
  // CONFIG_INVALID lists its problems as strings and in its message already.
  const config = new MemfaError('CONFIG_INVALID', 'invalid configuration in f:\n  a: x\n  b: y', { data: { errors: ['a: x', 'b: y'] } });
  assert.deepEqual(errorLines(config), [config.message]);
});
