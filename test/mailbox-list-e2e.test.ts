// memfa mailbox list with filters, through the real daemon: each filter, combined, paged, and
// for a domain administrator.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import { fromBase32, totpCode } from '../src/core/totp.js';
import type { MailboxListResult } from '../src/protocol/results.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const GB = '81.2.69.142';
const TOTP = { algorithm: 'SHA1' as const, digits: 6, period: 30, window: 1 };

function wrongCode(key: Buffer, now = Date.now()): string {
  const valid = new Set([-2, -1, 0, 1, 2].map((s) => totpCode(key, now + s * 30_000, TOTP)));
  for (let i = 0; ; i++) {
    const c = String(i).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}

describe('mailbox list filters', () => {
  let d: TestDaemon;
  const list = (args: string[]) => d.json<MailboxListResult>(['mailbox', 'list', ...args]);
  const names = (r: MailboxListResult) => r.mailboxes.map((m) => m.address);

  before(async () => {
    d = await startDaemon({ config: { lockout: { threshold: 2 }, providers: { sms: { enabled: true, transport: 'log' } } } });
    await d.json(['domain', 'set', 'f.example', '--challenge', 'always', '--provider', 'totp']);
    // a: stored, provider totp, no secret.
    await d.json(['mailbox', 'set', 'a@f.example', '--challenge', 'always']);
    // b: enrolled.
    await d.json(['enroll', 'b@f.example', '--no-confirm']);
    // c: an enrolment started, not confirmed.
    await d.json(['enroll', 'c@f.example']);
    // s: provider sms: nothing to enrol.
    await d.json(['mailbox', 'set', 's@f.example', '--provider', 'sms', '--phone', '+12015550123']);
    // l: enrolled, then locked by two wrong codes.
    const key = fromBase32((await d.json<{ secret: string }>(['enroll', 'l@f.example', '--no-confirm'])).secret);
    const bad = wrongCode(key);
    for (let i = 0; i < 2; i++) await call(d.hookSocket, 'verify', { user: 'l@f.example', ip: GB, code: bad });
    // x: another domain, provider totp (the default), no secret.
    await d.json(['mailbox', 'set', 'x@other.example', '--challenge', 'always']);
  });
  after(() => d.cleanup());

  it('lists everything without filters, as before', async () => {
    const all = await list([]);
    assert.deepEqual(names(all), ['a@f.example', 'b@f.example', 'c@f.example', 'l@f.example', 's@f.example', 'x@other.example']);
    assert.equal(all.total, 6);
  });

  it('each filter keeps only the mailboxes it names, and total counts them', async () => {
    const locked = await list(['--locked']);
    assert.deepEqual([names(locked), locked.total], [['l@f.example'], 1]);
    assert.ok(locked.mailboxes[0]!.locked);
    const notEnrolled = await list(['--not-enrolled']);
    assert.deepEqual([names(notEnrolled), notEnrolled.total], [['a@f.example', 'c@f.example', 'x@other.example'], 3]);
    const pending = await list(['--pending']);
    assert.deepEqual([names(pending), pending.mailboxes[0]!.totp], [['c@f.example'], 'pending']);
    const sms = await list(['--provider', 'sms']);
    assert.deepEqual(names(sms), ['s@f.example']);
    const email = await list(['--provider', 'email']);
    assert.deepEqual([names(email), email.total], [[], 0]);
    const human = await d.cli(['mailbox', 'list', '--provider', 'email']);
    assert.equal(human.stdout.trim(), 'no stored mailbox passes the filters');
  });

  it('filters combine with each other and with the domain', async () => {
    assert.deepEqual(names(await list(['--not-enrolled', '--domain', 'f.example'])), ['a@f.example', 'c@f.example']);
    assert.deepEqual(names(await list(['--not-enrolled', '--pending'])), ['c@f.example']);
    assert.deepEqual(names(await list(['--locked', '--provider', 'totp'])), ['l@f.example']);
    assert.deepEqual(names(await list(['--locked', '--provider', 'sms'])), []);
    // false keeps the others (over the protocol; the command line only says true).
    const unlocked = (await call(d.adminSocket, 'mailbox.list', { locked: false, provider: 'totp', domain: 'f.example' })) as MailboxListResult;
    assert.deepEqual(names(unlocked), ['a@f.example', 'b@f.example', 'c@f.example']);
  });

  it('paging with filters: --limit counts the mailboxes that pass, --after goes on from the last one', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await list(['--not-enrolled', '--limit', '1', ...(after === undefined ? [] : ['--after', after])]);
      assert.equal(r.total, 3, 'total counts every match, not the page');
      if (r.mailboxes.length === 0) break;
      assert.equal(r.mailboxes.length, 1);
      seen.push(r.mailboxes[0]!.address);
      after = r.mailboxes[0]!.address;
    }
    assert.deepEqual(seen, ['a@f.example', 'c@f.example', 'x@other.example']);
    // An --after between matches starts at the next match.
    assert.deepEqual(names(await list(['--not-enrolled', '--after', 'b@f.example', '--limit', '1'])), ['c@f.example']);
  });

  it('a bad filter value is refused, naming it', async () => {
    const r = await d.cli(['mailbox', 'list', '--provider', 'pigeon']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /--provider/);
    await assert.rejects(call(d.adminSocket, 'mailbox.list', { locked: 'yes' } as never), (e: Error & { code?: string }) => e.code === 'INVALID_PARAMS' && /locked/.test(e.message));
  });

  it('a domain administrator filters within their domain only', async () => {
    const token = (await d.json<{ token: string }>(['admin', 'add', 'fadmin', '--domain', 'f.example'])).token;
    const tokenFile = path.join(d.dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const r = await d.cli(['--json', '--token-file', tokenFile, 'mailbox', 'list', '--not-enrolled']);
    assert.equal(r.code, 0, r.stderr);
    const mine = JSON.parse(r.stdout) as MailboxListResult;
    assert.deepEqual([names(mine), mine.total], [['a@f.example', 'c@f.example'], 2]);
  });
});
