import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeGrace, graceState, MAX_GRACE_LOGINS, parseEnrolmentGrace } from '../src/core/grace.js';
import { applySettingsPatch, resolveSettings } from '../src/core/settings.js';
import { MemfaError } from '../src/protocol/errors.js';

const T = Date.parse('2030-07-01T00:00:00.000Z');

test('parseEnrolmentGrace: none, an object or its command-line text, normalised', () => {
  assert.equal(parseEnrolmentGrace('none'), 'none');
  assert.deepEqual(parseEnrolmentGrace({ until: '2030-07-01' }), { until: '2030-07-01T00:00:00.000Z' });
  assert.deepEqual(parseEnrolmentGrace({ until: '2030-07-01T10:00:00+02:00', logins: 3 }), { until: '2030-07-01T08:00:00.000Z', logins: 3 });
  assert.deepEqual(parseEnrolmentGrace('logins=5'), { logins: 5 });
  assert.deepEqual(parseEnrolmentGrace(' until=2030-07-01 , logins=7 '), { until: '2030-07-01T00:00:00.000Z', logins: 7 });
  assert.deepEqual(parseEnrolmentGrace({ logins: MAX_GRACE_LOGINS }), { logins: MAX_GRACE_LOGINS });
});

test('parseEnrolmentGrace: every bad form is refused, naming the part', () => {
  const cases: [unknown, string][] = [
    [{}, 'enrolmentGrace'],
    ['', 'enrolmentGrace'],
    ['forever', 'enrolmentGrace'],
    [['logins=1'], 'enrolmentGrace'],
    [{ logins: 0 }, 'enrolmentGrace.logins'],
    [{ logins: MAX_GRACE_LOGINS + 1 }, 'enrolmentGrace.logins'],
    [{ logins: 1.5 }, 'enrolmentGrace.logins'],
    [{ logins: '3x' }, 'enrolmentGrace.logins'],
    [{ until: 20300701 }, 'enrolmentGrace.until'],
    [{ until: '2030-02-30' }, 'enrolmentGrace.until'],
    [{ until: '2030-13-01' }, 'enrolmentGrace.until'],
    [{ until: '2030-07-01T08:00' }, 'enrolmentGrace.until'],
    [{ until: 'tomorrow' }, 'enrolmentGrace.until'],
    [{ until: '2030-07-01', days: 3 }, 'enrolmentGrace.days'],
  ];
  for (const [value, param] of cases) {
    assert.throws(
      () => parseEnrolmentGrace(value),
      (e: unknown) => e instanceof MemfaError && e.code === 'INVALID_PARAMS' && e.data?.['param'] === param && e.message.startsWith(param),
      JSON.stringify(value),
    );
  }
});

test('graceState: the first limit reached ends it; an unstored mailbox is bounded by the date alone', () => {
  const rows: [Parameters<typeof graceState>, ReturnType<typeof graceState>][] = [
    [['none', 0, true, T], { active: false, why: 'none' }],
    [[{ logins: 3 }, 0, true, T], { active: true, loginsLeft: 2, until: null }],
    [[{ logins: 3 }, 2, true, T], { active: true, loginsLeft: 0, until: null }],
    [[{ logins: 3 }, 3, true, T], { active: false, why: 'used' }],
    [[{ logins: 3 }, 9, true, T], { active: false, why: 'used' }],
    [[{ until: '2030-07-01T00:00:00.000Z' }, 99, true, T - 1], { active: true, loginsLeft: null, until: T }],
    [[{ until: '2030-07-01T00:00:00.000Z' }, 0, true, T], { active: false, why: 'ended' }],
    [[{ until: '2030-07-01T00:00:00.000Z', logins: 2 }, 1, true, T - 1], { active: true, loginsLeft: 0, until: T }],
    [[{ until: '2030-07-01T00:00:00.000Z', logins: 2 }, 2, true, T - 1], { active: false, why: 'used' }],
    [[{ until: '2030-07-01T00:00:00.000Z', logins: 2 }, 0, true, T + 1], { active: false, why: 'ended' }],
    [[{ logins: 3 }, 0, false, T], { active: false, why: 'unstored' }],
    [[{ until: '2030-07-01T00:00:00.000Z', logins: 3 }, 0, false, T - 1], { active: true, loginsLeft: null, until: T }],
    [[{ until: '2030-07-01T00:00:00.000Z', logins: 3 }, 0, false, T], { active: false, why: 'ended' }],
  ];
  for (const [args, want] of rows) assert.deepEqual(graceState(...args), want, JSON.stringify(args));
});

test('enrolmentGrace in settings: patched at every level, the most specific wins, inherit removes it', () => {
  const global = applySettingsPatch({}, { enrolmentGrace: 'logins=5' }, 'global');
  const domain = applySettingsPatch({}, { enrolmentGrace: { until: '2030-07-01' } }, 'domain');
  const mailbox = applySettingsPatch({}, { enrolmentGrace: 'none' }, 'mailbox');
  const defaults = { challenge: 'always', provider: 'totp' } as const;
  assert.deepEqual(resolveSettings(defaults, {}, undefined, undefined).enrolmentGrace, 'none');
  const g = resolveSettings(defaults, global, undefined, undefined);
  assert.deepEqual([g.enrolmentGrace, g.sources.enrolmentGrace], [{ logins: 5 }, 'global']);
  const dm = resolveSettings(defaults, global, domain, undefined);
  assert.deepEqual([dm.enrolmentGrace, dm.sources.enrolmentGrace], [{ until: '2030-07-01T00:00:00.000Z' }, 'domain']);
  const mb = resolveSettings(defaults, global, domain, mailbox);
  assert.deepEqual([mb.enrolmentGrace, mb.sources.enrolmentGrace], ['none', 'mailbox']);
  assert.deepEqual(applySettingsPatch(mailbox, { enrolmentGrace: 'inherit' }, 'mailbox'), {});
  assert.throws(() => applySettingsPatch({}, { enrolmentGrace: { logins: -1 } }, 'domain'), (e: unknown) => e instanceof MemfaError && e.data?.['param'] === 'enrolmentGrace.logins');
  assert.throws(() => applySettingsPatch({}, { enrolmentGrace: 'none' }, 'user'), /can only be set at global or domain or mailbox level/);
  assert.equal(describeGrace({ until: '2030-07-01T00:00:00.000Z', logins: 1 }), 'until 2030-07-01T00:00:00.000Z or 1 login');
});
