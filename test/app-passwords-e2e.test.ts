// App passwords through the real daemon and bin/memfa: made, listed and revoked by administrators
// (platform and domain), stored only as keyed hashes, checked by login.check for their protocols,
// networks and lifetime, their use recorded without a store write per login (issue 14).
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { call } from '../src/client/call.js';
import type { MemfaError } from '../src/protocol/errors.js';
import type { AppPasswordAdded, AppPasswordList, LoginCheckResult, ProtocolExplainResult } from '../src/protocol/results.js';
import type { AppProtocol } from '../src/protocol/vocabulary.js';
import { makeTempDir, startDaemon, type TestDaemon } from './helpers/daemon.js';

const NET = '192.0.2.0/24';
const INSIDE = '192.0.2.7';
const OUTSIDE = '198.51.100.9';

async function refusal(p: Promise<unknown>): Promise<MemfaError> {
  try {
    const r = await p;
    assert.fail(`expected a refusal, got ${JSON.stringify(r)}`);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_ASSERTION') throw err;
    return err as MemfaError;
  }
}

/** Journal entries that write the record of `address` (the journal holds one JSON line per transaction). */
async function recordWrites(d: TestDaemon, address: string): Promise<number> {
  const text = await readFile(path.join(d.dataDir, 'memfa.json.journal'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.includes(JSON.stringify(address))).length;
}

describe('app passwords made by administrators', () => {
  let d: TestDaemon;
  let dir: string;
  let clockFile: string;
  let offset = 0;
  const shift = async (ms: number) => {
    offset += ms;
    await writeFile(clockFile, String(offset));
  };
  const check = (user: string, password: string, ip = INSIDE, protocol: AppProtocol = 'imap') =>
    call(d.hookSocket, 'login.check', { user, ip, protocol, password }) as Promise<LoginCheckResult>;

  before(async () => {
    dir = await makeTempDir();
    clockFile = path.join(dir, 'clock');
    await writeFile(clockFile, '0');
    d = await startDaemon({ dir, config: { log: { level: 'debug' }, appPasswords: { maxPerMailbox: 3, usageFlushSeconds: 3600 } }, env: { MEMFA_UNSAFE_TEST_CLOCK: clockFile } });
    await d.json(['domain', 'set', 'ap.example', '--challenge', 'always']);
  });
  after(async () => {
    await d.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('add prints the password once, grouped; the store keeps only a keyed hash', async () => {
    const r = await d.cli(['app-password', 'add', 'alice@ap.example', '--name', 'phone', '--protocols', 'imap,smtp', '--networks', NET, '--expires', '30d']);
    assert.equal(r.code, 0, r.stderr);
    const password = r.stdout.split('\n')[0]!;
    assert.match(password, /^[a-hj-km-np-z]{4}(-[a-hj-km-np-z]{4}){5}$/);
    assert.match(r.stdout, /shown only now/);
    const added = await d.json<AppPasswordAdded>(['app-password', 'add', 'alice@ap.example', '--name', 'laptop']);
    assert.deepEqual(added.protocols, ['imap', 'pop3', 'smtp', 'sieve', 'dav'], 'all protocols by default');
    assert.deepEqual([added.networks, added.expiresAt], [[], null]);
    const files = await Promise.all((await readdir(d.dataDir)).filter((f) => f.startsWith('memfa.json')).map((f) => readFile(path.join(d.dataDir, f), 'utf8')));
    for (const pw of [password, added.password]) {
      const plain = pw.replaceAll('-', '');
      assert.ok(!files.some((t) => t.includes(plain) || t.includes(pw)), 'the password is nowhere in the store');
    }
    assert.ok(files.some((t) => /"hash":"h1:[A-Za-z0-9_-]{43}"/.test(t)), 'a keyed hash is stored');
    const list = await d.json<AppPasswordList>(['app-password', 'list', 'alice@ap.example']);
    assert.deepEqual(list.appPasswords.map((a) => a.name), ['phone', 'laptop']);
    assert.ok(!JSON.stringify(list).includes('h1:'), 'list shows no hash');
    assert.equal(list.appPasswords[0]!.lastUsed, null);
    // Accepted as typed: other case, spaces instead of dashes, no separators.
    assert.equal((await check('alice@ap.example', password.toUpperCase().replaceAll('-', ' '))).result, 'allow');
    assert.equal((await check('alice@ap.example', added.password.replaceAll('-', ''), OUTSIDE, 'dav')).result, 'allow');
  });

  it('bad input is refused naming the field; a taken name and a full list are conflicts', async () => {
    const bad: [string[], string][] = [
      [['--protocols', 'imap,webmail'], 'protocols'],
      [['--networks', '10.0.0.1/8'], 'networks'],
      [['--expires', '2001-01-01'], 'expires'],
      [['--expires', 'soon'], 'expires'],
    ];
    for (const [flags, param] of bad) {
      const r = await d.cli(['--json', 'app-password', 'add', 'bob@ap.example', '--name', 'x', ...flags]);
      assert.equal(r.code, 64, `${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { error: { param: string } }).error.param, param);
    }
    const taken = await d.cli(['app-password', 'add', 'alice@ap.example', '--name', 'PHONE']);
    assert.equal(taken.code, 65, taken.stderr);
    assert.match(taken.stderr, /already has an app password named 'phone'/);
    await d.json(['app-password', 'add', 'alice@ap.example', '--name', 'third']);
    const full = await d.cli(['app-password', 'add', 'alice@ap.example', '--name', 'fourth']);
    assert.equal(full.code, 65);
    assert.match(full.stderr, /maxPerMailbox/);
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'bob@ap.example'])).stored, false, 'a refused add stores nothing');
  });

  it('login.check: the protocols, networks and lifetime of an app password; revoked, it is gone at once', async () => {
    const ap = await d.json<AppPasswordAdded>(['app-password', 'add', 'carol@ap.example', '--name', 'mail', '--protocols', 'imap', '--networks', NET, '--expires', '2h']);
    assert.deepEqual(await check('carol@ap.example', ap.password), {
      user: 'carol@ap.example',
      ip: INSIDE,
      country: null,
      protocol: 'imap',
      result: 'allow',
      reason: 'app-password',
      appPasswordId: ap.id,
    });
    const pop = await check('carol@ap.example', ap.password, INSIDE, 'pop3');
    assert.deepEqual([pop.result, pop.reason, pop.message], ['deny', 'app-password-protocol', 'this app password is not valid for POP3']);
    assert.equal((await check('carol@ap.example', ap.password, OUTSIDE)).reason, 'app-password-network');
    const x = await d.json<ProtocolExplainResult>(['explain', 'carol@ap.example', '--ip', OUTSIDE, '--protocol', 'imap']);
    assert.deepEqual(x.appPasswords, [{ id: ap.id, name: 'mail', accepted: false, refusal: 'app-password-network' }]);
    assert.deepEqual([x.decision.result, x.decision.reason], ['deny', 'app-password-required']);
    await shift(2 * 3_600_000);
    const expired = await check('carol@ap.example', ap.password);
    assert.deepEqual([expired.result, expired.reason], ['deny', 'app-password-expired']);
    const list = await d.json<AppPasswordList>(['app-password', 'list', 'carol@ap.example']);
    assert.equal(list.appPasswords[0]!.expired, true);

    const other = await d.json<AppPasswordAdded>(['app-password', 'add', 'carol@ap.example', '--name', 'other']);
    assert.equal((await check('carol@ap.example', other.password)).result, 'allow');
    const byName = await d.json<{ revoked: { id: string }[] }>(['app-password', 'revoke', 'carol@ap.example', 'OTHER']);
    assert.deepEqual(byName.revoked.map((r) => r.id), [other.id]);
    const gone = await check('carol@ap.example', other.password);
    assert.deepEqual([gone.result, gone.reason], ['deny', 'app-password-required'], 'a revoked app password is just a wrong password');
    const byId = await d.json<{ revoked: { name: string }[]; left: number }>(['app-password', 'revoke', 'carol@ap.example', ap.id]);
    assert.deepEqual([byId.revoked.map((r) => r.name), byId.left], [['mail'], 0]);
    const none = await d.cli(['app-password', 'revoke', 'carol@ap.example', 'mail']);
    assert.equal(none.code, 67, none.stderr);
    const usage = await d.cli(['app-password', 'revoke', 'carol@ap.example']);
    assert.equal(usage.code, 64, 'neither an id nor --all');
    const audit = await d.json<{ entries: { action: string; result: string }[] }>(['audit', '--mailbox', 'carol@ap.example']);
    const actions = audit.entries.map((e) => `${e.action}:${e.result}`);
    for (const want of ['app-password.add:ok', 'app-password.revoke:ok', 'login.check:deny', 'login.check:allow']) assert.ok(actions.includes(want), `audited ${want}: ${actions.join(' ')}`);
  });

  it('use is shown at once but written at most once per interval, and at shutdown', async () => {
    const ap = await d.json<AppPasswordAdded>(['app-password', 'add', 'dave@ap.example', '--name', 'poller']);
    const before = await recordWrites(d, 'dave@ap.example');
    assert.equal(before, 1, 'the add was written');
    for (let i = 0; i < 25; i++) assert.equal((await check('dave@ap.example', ap.password, i % 2 === 0 ? OUTSIDE : INSIDE)).result, 'allow');
    assert.equal(await recordWrites(d, 'dave@ap.example'), before, 'no store write for 25 logins');
    const seen = await d.json<AppPasswordList>(['app-password', 'list', 'dave@ap.example']);
    assert.equal(seen.appPasswords[0]!.uses, 25);
    assert.deepEqual([seen.appPasswords[0]!.lastUsed?.ip, seen.appPasswords[0]!.lastUsed?.country], [OUTSIDE, null]);
    await d.stop();
    await d.restart();
    const kept = await d.json<AppPasswordList>(['app-password', 'list', 'dave@ap.example']);
    assert.deepEqual([kept.appPasswords[0]!.uses, kept.appPasswords[0]!.lastUsed?.ip], [25, OUTSIDE], 'flushed at shutdown');
  });

  it('the password never reaches the daemon log or the audit trail', async () => {
    const ap = await d.json<AppPasswordAdded>(['app-password', 'add', 'erin@ap.example', '--name', 'secret-test']);
    await check('erin@ap.example', ap.password);
    await check('erin@ap.example', 'Primary-Password-123');
    const audit = [await readFile(path.join(d.dataDir, 'audit.log'), 'utf8'), await readFile(path.join(d.dataDir, 'audit-security.log'), 'utf8')].join('');
    for (const text of [d.log(), audit]) {
      assert.ok(!text.includes(ap.password) && !text.includes(ap.password.replaceAll('-', '')), 'no app password');
      assert.ok(!text.includes('Primary-Password-123'), 'no primary password');
    }
    assert.match(d.log(), /"method":"login.check"/, 'the debug log has the request, without its parameters');
  });

  it('login.check stores nothing for a mailbox nobody configured', async () => {
    for (const password of ['some password', 'abcd-efgh-jkmn-pqrs-tuvw-xyza']) {
      const r = await check('nobody@ap.example', password, OUTSIDE);
      assert.deepEqual([r.result, r.reason], ['deny', 'app-password-required']);
    }
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'nobody@ap.example'])).stored, false);
    assert.equal((await check('nobody@elsewhere.example', 'x', OUTSIDE)).reason, 'mode-never');
  });

  it('domain administrators manage app passwords of their domains only, as the policy allows', async () => {
    const token = (await d.json<{ token: string }>(['admin', 'add', 'ap-admin', '--domain', 'ap.example'])).token;
    const tokenFile = path.join(d.dir, 'token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const asAdmin = (args: string[]) => d.cli(['--token-file', tokenFile, '--json', ...args]);
    const made = await asAdmin(['app-password', 'add', 'frank@ap.example', '--name', 'phone']);
    assert.equal(made.code, 0, made.stderr);
    assert.equal((await asAdmin(['app-password', 'list', 'frank@ap.example'])).code, 0);
    const foreign = await asAdmin(['app-password', 'add', 'frank@other.example', '--name', 'phone']);
    assert.equal(foreign.code, 77, 'another domain');
    assert.equal((await asAdmin(['app-password', 'list', 'frank@other.example'])).code, 77);
    await d.json(['providers', 'set', 'app-password', '--domain-admins', 'no']);
    const refused = await asAdmin(['app-password', 'add', 'frank@ap.example', '--name', 'tablet']);
    assert.equal(refused.code, 77, refused.stdout);
    assert.match(refused.stdout, /domain administrators may not create app passwords/);
    assert.equal((await asAdmin(['app-password', 'revoke', 'frank@ap.example', 'phone'])).code, 0, 'revoking stays allowed');
    await d.json(['providers', 'set', 'app-password', '--domain-admins', 'yes']);
    const e = await refusal(call(d.hookSocket, 'app-password.add', { address: 'frank@ap.example', name: 'x' }));
    assert.equal(e.code, 'METHOD_NOT_ALLOWED', 'without a token the hook socket has no app-password.add');
  });

  it('providers disable app-password: no app password is accepted or created until it is enabled again', async () => {
    const ap = await d.json<AppPasswordAdded>(['app-password', 'add', 'gina@ap.example', '--name', 'phone']);
    const rows = await d.json<{ providers: { name: string; mailboxes: number }[] }>(['providers', 'list']);
    assert.ok((rows.providers.find((p) => p.name === 'app-password')?.mailboxes ?? 0) >= 1);
    const off = await d.cli(['providers', 'disable', 'app-password']);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stdout, /ignores every app password/);
    assert.equal((await check('gina@ap.example', ap.password)).reason, 'app-password-required');
    assert.equal((await d.cli(['app-password', 'add', 'gina@ap.example', '--name', 'tablet'])).code, 65);
    await d.json(['providers', 'enable', 'app-password']);
    assert.equal((await check('gina@ap.example', ap.password)).result, 'allow');
  });
});
