// What an administrator typing commands gets back for bad input, through the real daemon and CLI
// (issue 13): every problem of a request at once, country codes geoip can return, phone numbers
// that can receive SMS, alternate addresses that are not the mailbox, no empty records.
import assert from 'node:assert/strict';
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

