// Human output of settings: words, never raw JSON, whatever a level holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLevelSettings } from '../src/cli/format.js';

test('formatLevelSettings: every key in words, in a fixed order, keys it does not know last', () => {
  assert.equal(formatLevelSettings({}), 'no settings of its own');
  assert.equal(
    formatLevelSettings({ minChallenge: 'new-ip', countryRule: { mode: 'block', countries: ['FR', 'GB'] }, challenge: 'always', usersMayConfigure: false }),
    'challenge always, country rule: block FR,GB, users may configure no, minimum challenge new-ip',
  );
  // A key added by a later version, of any shape, is still printed without JSON.
  const later = formatLevelSettings({ enrolmentGrace: { days: 7, notify: true }, aliases: ['a', 'b'], constructor: 'x' });
  assert.equal(later, 'enrolmentGrace days 7 notify yes, aliases a,b, constructor x');
  assert.doesNotMatch(later, /[{}[\]"]/);
});
