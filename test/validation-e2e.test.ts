// What an administrator typing commands gets back for bad input, through the real daemon and CLI
// (issue 13): every problem of a request at once, country codes geoip can return, phone numbers
// that can receive SMS, alternate addresses that are not the mailbox, no empty records.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDaemon, type CliResult, type TestDaemon } from './helpers/daemon.js';
import { rpc } from './helpers/protocol-tools.js';

interface ErrorDoc {
  result: 'error';
  error: { code: string; message: string; param?: string; errors?: { param: string; message: string }[] };
}

function refused(r: CliResult, what: string, exit = 64): ErrorDoc {
  assert.equal(r.code, exit, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as ErrorDoc;
}

describe('bad input: every problem of a request at once, each naming its field', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { sms: { enabled: true, transport: 'log' }, email: { enabled: true, transport: 'log' } } } });
  });
  after(() => d.cleanup());

  it('mailbox set reports a bad phone, a bad alternate address and a bad country together', async () => {
    const args = ['mailbox', 'set', 'u1@a.example', '--phone', '123', '--alt-email', 'notanemail', '--country-allow', '9Z'];
    const doc = refused(await d.cli(['--json', ...args]), 'three bad values');
    assert.equal(doc.error.code, 'INVALID_PARAMS');
    assert.deepEqual(doc.error.errors?.map((e) => e.param).sort(), ['altEmail', 'countryRule.countries', 'phone']);
    assert.equal(doc.error.param, doc.error.errors?.[0]?.param, 'param names the first problem');
    // For people: one line per problem on standard error, each naming its field.
    const human = await d.cli(args);
    assert.equal(human.code, 64);
    const lines = human.stderr.split('\n').filter((l) => l.startsWith('memfa: '));
    assert.equal(lines.length, 3, human.stderr);
    for (const field of ['phone', 'altEmail', 'countryRule.countries']) assert.ok(lines.some((l) => l.startsWith(`memfa: ${field}: `)), `${field} in ${human.stderr}`);
    // Nothing was stored.
    const shown = await d.json<{ stored: boolean }>(['mailbox', 'show', 'u1@a.example']);
    assert.equal(shown.stored, false);
  });

  it('the mailbox with a +tag is refused as its own alternate address', async () => {
    const doc = refused(await d.cli(['--json', 'mailbox', 'set', 'u1@a.example', '--alt-email', 'U1+tag@A.example', '--provider', 'email']), 'plus alias');
    assert.equal(doc.error.param, 'altEmail');
    assert.match(doc.error.message, /^altEmail: 'u1\+tag@a\.example' delivers to the mailbox u1@a\.example itself/);
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'u1@a.example'])).stored, false);
  });

  it('a list of trusted networks reports every bad entry', async () => {
    const doc = refused(await d.cli(['--json', 'domain', 'set', 'nets.example', '--trusted-networks', '10.0.0.0/33,192.0.2.0/24,foo']), 'two bad networks');
    const messages = doc.error.errors?.map((e) => e.message) ?? [];
    assert.equal(messages.length, 2, doc.error.message);
    assert.match(messages[0]!, /^trustedNetworks: '10\.0\.0\.0\/33'/);
    assert.match(messages[1]!, /^trustedNetworks: 'foo'/);
    assert.deepEqual(doc.error.errors?.map((e) => e.param), ['trustedNetworks', 'trustedNetworks']);
  });

  it('an unknown parameter does not hide a bad value beside it', async () => {
    const answer = await rpc(d.selfSocket, 'self.set', { user: 'u2@a.example', challenge: 'sometimes', colour: 'red' });
    const data = answer['error']?.data as ErrorDoc['error'];
    assert.equal(data.code, 'INVALID_PARAMS');
    assert.deepEqual(data.errors?.map((e) => e.param).sort(), ['challenge', 'colour']);
    assert.match(answer['error'].message, /colour/);
    assert.match(answer['error'].message, /challenge/);
  });
});

describe('country rules name only codes the country data returns', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  it('UK, EU and unassigned codes are refused with what to write instead, and nothing is stored', async () => {
    const uk = refused(await d.cli(['--json', 'domain', 'set', 'geo.example', '--country-block', 'UK']), 'UK');
    assert.match(uk.error.message, /^countryRule\.countries: 'UK' is not an ISO 3166-1 country code.*did you mean GB/);
    const eu = refused(await d.cli(['--json', 'domain', 'set', 'geo.example', '--country-allow', 'EU,DE']), 'EU');
    assert.match(eu.error.message, /European Union, not a country/);
    const both = refused(await d.cli(['--json', 'mailbox', 'set', 'm@geo.example', '--country-block', 'QQ,gb,XX']), 'QQ and XX');
    assert.deepEqual(both.error.errors?.map((e) => /'(..)'/.exec(e.message)?.[1]), ['QQ', 'XX']);
    const shown = await d.json<{ stored: boolean }>(['domain', 'show', 'geo.example']);
    assert.equal(shown.stored, false);
  });

  it('codes the data returns are accepted in any case', async () => {
    const r = await d.json<{ settings: { countryRule: { mode: string; countries: string[] } } }>(['domain', 'set', 'geo.example', '--country-block', 'gb,xk,Fr']);
    assert.deepEqual(r.settings.countryRule, { mode: 'block', countries: ['FR', 'GB', 'XK'] });
  });
});

describe('phone numbers: E.164 by the numbering plans, and only numbers that can receive SMS', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon({ config: { providers: { sms: { enabled: true, transport: 'log' } } } });
  });
  after(() => d.cleanup());

  it('a trunk prefix after the country code is dropped', async () => {
    const r = await d.json<{ phone: string }>(['mailbox', 'set', 'p1@tel.example', '--phone', '+44 (0)7400 123456', '--provider', 'sms']);
    assert.equal(r.phone, '+447400123456');
  });

  it('a landline, a number not in use and a malformed one are refused, naming the field; nothing is stored', async () => {
    const landline = refused(await d.cli(['--json', 'mailbox', 'set', 'p2@tel.example', '--phone', '+44 (0)20 7946-0958', '--provider', 'sms']), 'landline');
    assert.equal(landline.error.param, 'phone');
    assert.match(landline.error.message, /^phone: '\+44 \(0\)20 7946-0958' is a landline \(fixed-line\) number in GB, which cannot receive SMS codes; give a mobile number$/);
    const unused = refused(await d.cli(['--json', 'mailbox', 'set', 'p2@tel.example', '--phone', '+44 7700 900789']), 'not in use');
    assert.match(unused.error.message, /not a valid number in the numbering plan/);
    const self = refused(await d.cli(['--json', 'self', '--user', 'p2@tel.example', 'set', '--phone', '+49 30 901820']), 'self set, landline');
    assert.match(self.error.message, /^phone: .*landline/);
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'p2@tel.example'])).stored, false);
    const test = refused(await d.cli(['--json', 'provider', 'test', 'sms', '--to', '+44 20 7946 0958']), 'provider test to a landline');
    assert.match(test.error.message, /^to: .*landline/);
  });

  it('a number stored in the old form still receives codes', async () => {
    // Stored before numbers were checked against the plans: E.164 in form, with the trunk 0 kept.
    await d.json(['mailbox', 'set', 'old@tel.example', '--challenge', 'always', '--provider', 'sms', '--phone', '+447400123456']);
    assert.equal(await d.stop(), 0);
    const store = path.join(d.dataDir, 'memfa.json');
    const snap = JSON.parse(await readFile(store, 'utf8'));
    snap.mailboxes['old@tel.example'].phone = '+4402079460958';
    await writeFile(store, JSON.stringify(snap), { mode: 0o600 });
    await d.restart();
    assert.equal((await d.json<{ phone: string }>(['mailbox', 'show', 'old@tel.example'])).phone, '+4402079460958');
    const v = await d.json<{ result: string; provider: string }>(['verify', '--user', 'old@tel.example', '--ip', '81.2.69.142'], { expectCode: 2 });
    assert.deepEqual([v.result, v.provider], ['challenge', 'sms']);
    const sent = (await readFile(path.join(d.dataDir, 'outbox.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { to: string });
    assert.equal(sent.at(-1)?.to, '+4402079460958');
  });
});

describe('set with nothing to set is a usage error, never an empty record', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  it('each set command names what can be set, and stores nothing', async () => {
    const cases: [string[], string[]][] = [
      [['mailbox', 'set', 'e1@empty.example'], ['--challenge', '--provider', '--country-block', '--phone', '--alt-email']],
      [['domain', 'set', 'empty.example'], ['--challenge', '--trusted-networks', '--min-challenge']],
      [['global', 'set'], ['--challenge', '--users-may-configure']],
      [['self', '--user', 'e1@empty.example', 'set'], ['--challenge', '--provider', '--phone', '--alt-email']],
    ];
    for (const [args, options] of cases) {
      const doc = refused(await d.cli(['--json', ...args]), args.join(' '));
      assert.equal(doc.error.code, 'USAGE', args.join(' '));
      assert.match(doc.error.message, /nothing to change/);
      for (const o of options) assert.ok(doc.error.message.includes(o), `${args.join(' ')} names ${o}: ${doc.error.message}`);
      if (args[0] === 'self') assert.ok(!doc.error.message.includes('--current-code-stdin'), 'proof is not a change');
    }
    // With --current-code-stdin alone, self set has nothing to change either.
    const proofOnly = await d.cli(['self', '--user', 'e1@empty.example', 'set', '--current-code-stdin'], { stdin: '123456\n' });
    assert.equal(proofOnly.code, 64, proofOnly.stderr);
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'e1@empty.example'])).stored, false);
    assert.equal((await d.json<{ stored: boolean }>(['domain', 'show', 'empty.example'])).stored, false);
  });

  it('the daemon refuses an empty change from any client, naming what can be given', async () => {
    const answers = await Promise.all([
      rpc(d.adminSocket, 'mailbox.set', { address: 'e2@empty.example' }),
      rpc(d.adminSocket, 'mailbox.set', { address: 'e2@empty.example', settings: {} }),
      rpc(d.adminSocket, 'domain.set', { domain: 'empty.example', settings: {} }),
      rpc(d.adminSocket, 'global.set', { settings: {} }),
      rpc(d.selfSocket, 'self.set', { user: 'e2@empty.example' }),
    ]);
    for (const a of answers) {
      assert.equal(a['error']?.data?.code, 'INVALID_PARAMS', JSON.stringify(a));
      assert.match(a['error'].message, /nothing to change/);
    }
    assert.match(answers[0]!['error'].message, /give settings \(challenge, .*\), phone or altEmail$/);
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'e2@empty.example'])).stored, false);
    const domains = await d.json<{ domains: unknown[] }>(['domain', 'list']);
    assert.deepEqual(domains.domains, []);
  });
});

describe('domain list prints settings for people, never raw JSON', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.cleanup());

  it('each setting in words, in one line per domain', async () => {
    await d.json(['domain', 'set', 'c.example', '--challenge', 'always', '--provider', 'totp', '--country-block', 'FR,GB', '--trusted-networks', '192.0.2.0/24,2001:db8::/32', '--users-may-configure', 'yes', '--min-challenge', 'new-ip']);
    await d.json(['mailbox', 'set', 'a@c.example', '--challenge', 'never']);
    await d.json(['domain', 'set', 'd.example', '--country-allow', 'DE', '--fallback', 'none']);
    const r = await d.cli(['domain', 'list']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /[{}[\]"]/, r.stdout);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines, [
      'c.example\t1 mailbox\tchallenge always, provider totp, country rule: block FR,GB, trusted networks 192.0.2.0/24,2001:db8::/32, users may configure yes, minimum challenge new-ip',
      'd.example\t0 mailboxes\tfallback none, country rule: allow only DE',
    ]);
  });
});

describe('a provider the platform disabled', () => {
  let d: TestDaemon;
  let tokenFile: string;
  before(async () => {
    d = await startDaemon({ config: { providers: { sms: { enabled: false, transport: 'log', domainAdmins: true }, email: { enabled: true, transport: 'log', domainAdmins: true } } } });
    const { token } = await d.json<{ token: string }>(['admin', 'add', 'off-admin', '--domain', 'off.example']);
    tokenFile = path.join(d.dir, 'token');
    await writeFile(tokenFile, token + '\n', { mode: 0o600 });
  });
  after(() => d.cleanup());

  it('the platform administrator may assign it, and is told what that does', async () => {
    const set = await d.cli(['--json', 'mailbox', 'set', 'm@off.example', '--provider', 'sms', '--phone', '+12015550150', '--fallback', 'email', '--alt-email', 'm@home.example']);
    assert.equal(set.code, 0, set.stderr);
    const r = JSON.parse(set.stdout) as { settings: { provider: string }; warnings: string[] };
    assert.equal(r.settings.provider, 'sms', 'stored');
    assert.equal(r.warnings.length, 1, JSON.stringify(r.warnings));
    assert.match(r.warnings[0]!, /^provider sms is disabled on this platform: until it is enabled \(memfa providers enable sms\), .*fallback provider.*denied \(provider-disabled\)$/);
    assert.match(set.stderr, /^memfa: warning: provider sms is disabled/m);
    // For people too, after the settings.
    const human = await d.cli(['domain', 'set', 'other.example', '--fallback', 'sms']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /^memfa: warning: fallback sms is disabled on this platform: it is not used until .*memfa providers enable sms/m);
    const global = await d.json<{ warnings: string[] }>(['global', 'set', '--provider', 'sms']);
    assert.equal(global.warnings.length, 1);
    await d.json(['global', 'set', '--provider', 'inherit']);
    // An enabled provider, or removing one, warns of nothing.
    assert.deepEqual((await d.json<{ warnings: string[] }>(['mailbox', 'set', 'm@off.example', '--fallback', 'email'])).warnings, []);
    assert.deepEqual((await d.json<{ warnings: string[] }>(['mailbox', 'set', 'm@off.example', '--provider', 'inherit'])).warnings, []);
  });

  it('a domain administrator may not assign it', async () => {
    const r = await d.cli(['--json', '--token-file', tokenFile, 'mailbox', 'set', 'n@off.example', '--provider', 'sms', '--phone', '+12015550151']);
    const doc = refused(r, 'domain administrator', 65);
    assert.equal(doc.error.code, 'PROVIDER_DISABLED');
    assert.equal((await d.json<{ stored: boolean }>(['mailbox', 'show', 'n@off.example'])).stored, false);
  });
});

