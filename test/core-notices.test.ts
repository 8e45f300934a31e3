// The queue rules of security notices (core/notices.ts) and their text (delivery/notice.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_MS, dueNotice, keptNotices, NOTICE_KINDS, nextDue, queueNotice, replaceNotice, retryDelay, type NoticeKind, type NoticePolicy, type PendingNotice } from '../src/core/notices.js';
import { configuredNoticeTemplates, DEFAULT_NOTICE_SUBJECTS, NOTICE_PLACEHOLDERS, renderNotice } from '../src/delivery/notice.js';
import { templateProblems } from '../src/daemon/preflight.js';
import { validateConfig } from '../src/config/load.js';

const POLICY: NoticePolicy = { maxPerKindPerDay: 2, maxAttempts: 3, retryInitialMs: 60_000, retryMaxMs: 300_000 };
const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

function notice(kind: NoticeKind, at: number, over: Partial<PendingNotice> = {}): PendingNotice {
  return { id: `${kind}-${at}`, kind, at, ip: '192.0.2.1', country: 'GB', to: ['a@example.org'], attempts: 0, nextAt: at, ...over };
}

test('queueNotice: at most maxPerKindPerDay of one kind in any 24 hours; other kinds keep their own budget', () => {
  let notices = undefined as ReturnType<typeof queueNotice>['notices'] | undefined;
  const queue = (kind: NoticeKind, at: number) => {
    const r = queueNotice(notices, notice(kind, at), at, POLICY);
    notices = r.notices;
    return r.queued;
  };
  assert.equal(queue('mailbox-locked', T0), true);
  assert.equal(queue('mailbox-locked', T0 + 1000), true);
  assert.equal(queue('mailbox-locked', T0 + 2000), false, 'a third lock notice the same day is suppressed');
  assert.equal(queue('new-country', T0 + 3000), true, 'the budget is per kind: the new-country notice still goes out');
  assert.equal(notices!.pending.length, 3);
  // Sent notices still count for the day: the bound is on notices made, not on a full queue.
  notices = { ...notices!, pending: [] };
  assert.equal(queue('mailbox-locked', T0 + DAY_MS - 1), false);
  assert.equal(queue('mailbox-locked', T0 + DAY_MS), true, 'the first lock notice is a day old: one more may go');
  assert.deepEqual(notices!.recent.map((r) => r.kind), ['mailbox-locked', 'new-country', 'mailbox-locked'], 'entries older than a day are dropped');
});

test('retryDelay doubles from retryInitialMs up to retryMaxMs', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 20].map((a) => retryDelay(a, POLICY)), [60_000, 120_000, 240_000, 300_000, 300_000, 300_000]);
});

test('dueNotice takes the oldest due one; nextDue the earliest time; replaceNotice and keptNotices', () => {
  const a = notice('totp-enrolled', T0, { nextAt: T0 + 5000 });
  const b = notice('recovery-codes-generated', T0 + 1000);
  const c = notice('new-country', T0 + 2000);
  const notices = { pending: [c, a, b], recent: [] };
  assert.equal(dueNotice(notices, T0 + 2000)?.id, b.id, 'a waits for its retry; b is older than c');
  assert.equal(dueNotice(notices, T0 + 5000)?.id, a.id);
  assert.equal(dueNotice(notices, T0), undefined);
  assert.equal(nextDue(notices), T0 + 1000);
  assert.equal(nextDue(undefined), null);
  const after = replaceNotice(notices, b.id, null);
  assert.deepEqual(after.pending.map((n) => n.id), [c.id, a.id]);
  assert.equal(replaceNotice(notices, a.id, { ...a, attempts: 1 }).pending[1]!.attempts, 1);
  assert.equal(keptNotices({ pending: [], recent: [{ kind: 'new-country', at: T0 }] }, T0 + DAY_MS), undefined);
  assert.deepEqual(keptNotices({ pending: [], recent: [{ kind: 'new-country', at: T0 }] }, T0 + 1), { pending: [], recent: [{ kind: 'new-country', at: T0 }] });
});

test('renderNotice: every kind has its subject; the text says what, when and from where, and cannot carry a code', () => {
  const templates = Object.fromEntries(NOTICE_KINDS.map((k) => [k, { subject: null, text: null }])) as Parameters<typeof renderNotice>[2];
  for (const kind of NOTICE_KINDS) {
    const { subject, text } = renderNotice(notice(kind, T0, { until: T0 + 60_000, left: 7 }), 'bob@example.org', templates, 'Call the help desk.');
    assert.ok(DEFAULT_NOTICE_SUBJECTS[kind].length > 0 && subject.includes('bob@example.org'), subject);
    assert.match(text, /When: 2025-06-01 12:00 UTC/);
    assert.match(text, /From: 192\.0\.2\.1 \(GB\)/);
    assert.match(text, /Call the help desk\./);
  }
  const locked = renderNotice(notice('mailbox-locked', T0, { until: null, ip: null, country: null }), 'bob@example.org', templates, 'x');
  assert.match(locked.text, /It stays locked until an administrator unlocks it\./);
  assert.match(locked.text, /From: no address known \(unknown country\)/);
  assert.match(renderNotice(notice('recovery-code-used', T0, { left: 1 }), 'b@example.org', templates, 'x').text, /1 recovery code is left\./);
  // A value that came from a login cannot start a header line.
  const forged = renderNotice(notice('new-country', T0, { country: 'GB\r\nBcc: x@evil.example' }), 'b@example.org', templates, 'x');
  assert.ok(!forged.subject.includes('\n') && !forged.text.includes('\nBcc:'), forged.subject);
  assert.ok(!(NOTICE_PLACEHOLDERS as readonly string[]).includes('code'));
});

test('notice templates are checked at start: unknown placeholders ({code} among them) are refused, naming the key', () => {
  const config = validateConfig({ notifications: { templates: { 'new-country': { subject: 'Hi {mailbox}', text: 'Your code {code} from {ip}' }, 'mailbox-locked': { text: '{detail}' } } } }, 'test.json');
  assert.deepEqual(configuredNoticeTemplates(config.notifications.templates).map(([k]) => k), ['notifications.templates.new-country.subject', 'notifications.templates.new-country.text', 'notifications.templates.mailbox-locked.text']);
  const problems = templateProblems(config);
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, /^notifications\.templates\.new-country\.text: unknown placeholder \{code\}/);
  assert.throws(() => validateConfig({ notifications: { templates: { 'no-such-kind': { text: 'x' } } } }, 'test.json'), /notifications\.templates\.no-such-kind: unknown key/);
  assert.throws(() => validateConfig({ notifications: { retryInitialSeconds: 600, retryMaxSeconds: 60 } }, 'test.json'), /notifications\.retryInitialSeconds: must not exceed notifications\.retryMaxSeconds/);
});
