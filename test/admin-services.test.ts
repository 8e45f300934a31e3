// The administration's services over in-memory ports and an injected clock, without a daemon:
// what a domain administrator's token grants, and what several daemons sharing one state must
// agree on (one key rotation at a time, the provider policy). The same services run in the daemon
// (services/handlers.ts); the end-to-end tests hold them to the protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { AuditEvent } from '../src/audit/entry.js';
import { validateConfig } from '../src/config/load.js';
import { newMailbox, type MailboxRecord } from '../src/core/model.js';
import { MemfaError } from '../src/protocol/errors.js';
import { keyedHasher } from '../src/security/hash.js';
import { DomainAdmins } from '../src/services/admins.js';
import { MailboxList } from '../src/services/mailbox-list.js';
import { PlatformPolicy } from '../src/services/policy.js';
import type { AuditReader, CallContext, KeyAdmin } from '../src/services/ports.js';
import { KEY_ROTATION_CLAIM_MS, SecurityAdmin } from '../src/services/security-admin.js';
import { SettingsAdmin } from '../src/services/settings-admin.js';
import { FileStatePorts } from '../src/store/state-ports.js';
import { MemoryStore } from './helpers/memory-store.js';

const T0 = Date.UTC(2026, 2, 1, 9);
const PLATFORM: CallContext = { socket: 'admin', actor: 'admin' };

function isError(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof MemfaError, `expected a MemfaError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  };
}

/** One state shared by the "daemons" of a test, a clock the test moves, and what was audited. */
function world() {
  const store = new MemoryStore();
  const state = new FileStatePorts(store);
  let now = T0;
  const clock = () => now;
  const audited: AuditEvent[] = [];
  const audit: { append(e: AuditEvent): Promise<void> } & AuditReader = {
    append: (e) => {
      audited.push(e);
      return Promise.resolve();
    },
    query: () => Promise.resolve([]),
    verify: () => Promise.reject(new Error('not used')),
    status: () => {
      throw new Error('not used');
    },
  };
  const config = validateConfig({ dataDir: '/nonexistent/memfa-test' }, 'test', {}, {});
  const hashes = keyedHasher((purpose) => createHash('sha256').update(`test key for ${purpose}`).digest());
  const random = { bytes: (n: number) => randomBytes(n), int: (min: number, max: number) => randomInt(min, max) };
  /** The services of one daemon on the shared state. */
  const daemon = () => {
    const policy = new PlatformPolicy({ config, clock, state, audit, hasGateway: () => false });
    return {
      admins: new DomainAdmins({ clock, random, state, hashes, audit }),
      settings: new SettingsAdmin({ config, clock, state, audit, policy }),
      list: new MailboxList({ config, clock, state }),
      policy,
    };
  };
  return { store, state, config, clock, audit, audited, daemon, advance: (ms: number) => (now += ms) };
}

async function put(state: FileStatePorts, rec: MailboxRecord): Promise<void> {
  await state.updateMailbox(rec.address, () => ({ next: rec, result: undefined }));
}

test("a domain administrator's token grants its domains only: mailbox and domain settings, lists, and nothing once revoked", async () => {
  const w = world();
  const { admins, settings, list } = w.daemon();
  const { token } = await admins.add({ name: 'Ops', domains: ['x.test', 'X.TEST'] }, PLATFORM);
  assert.match(token, /^memfa_[a-f0-9]{16}_[A-Za-z0-9_-]{43}$/);
  const secret = token.split('_')[2]!;
  assert.ok(!JSON.stringify(w.store.getMeta('domainAdmins')).includes(secret), 'only a keyed hash of the token is stored');

  const scope = await admins.authenticate(token);
  assert.deepEqual(scope, { admin: 'ops', domains: ['x.test'] });
  const ops: CallContext = { socket: 'hook', actor: 'domain-admin:ops', scope };

  await put(w.state, newMailbox('b@x.test', T0));
  await put(w.state, newMailbox('a@y.test', T0));
  await settings.setDomain({ domain: 'y.test', settings: { challenge: 'always' } }, PLATFORM);
  await settings.setDomain({ domain: 'x.test', settings: { challenge: 'new-ip' } }, ops);

  const shown = await settings.setMailbox({ address: 'a@x.test', settings: { challenge: 'always' } }, ops);
  assert.equal(shown.effective.challenge.value, 'always');
  await assert.rejects(settings.setMailbox({ address: 'a@y.test', settings: { challenge: 'never' } }, ops), isError('FORBIDDEN', /no right to domain y\.test/));
  await assert.rejects(settings.showMailbox({ address: 'a@y.test' }, ops), isError('FORBIDDEN'));
  await assert.rejects(settings.showDomain({ domain: 'y.test' }, ops), isError('FORBIDDEN'));
  // Keys that are the platform's stay the platform's, in the administrator's own domain too.
  await assert.rejects(settings.setDomain({ domain: 'x.test', settings: { usersMayConfigure: false } }, ops), isError('FORBIDDEN', /usersMayConfigure/));

  // Lists: only the domain of the token, and its total.
  const rows = await list.list({}, ops);
  assert.deepEqual(rows.mailboxes.map((r) => r.address), ['a@x.test', 'b@x.test']);
  assert.equal(rows.total, 2);
  assert.deepEqual((await list.list({}, PLATFORM)).total, 3);
  await assert.rejects(list.list({ domain: 'y.test' }, ops), isError('FORBIDDEN'));
  assert.deepEqual((await settings.listDomains(ops)).domains.map((d) => d.domain), ['x.test']);
  assert.deepEqual((await settings.listDomains(PLATFORM)).domains.map((d) => d.domain), ['x.test', 'y.test']);

  // The audit names the administrator.
  assert.ok(w.audited.some((e) => e.action === 'mailbox.set' && e.actor === 'domain-admin:ops' && e.mailbox === 'a@x.test'));

  // A token with the right id and another secret, a malformed one, and the token once revoked.
  const forged = `memfa_${token.split('_')[1]}_${'A'.repeat(43)}`;
  await assert.rejects(admins.authenticate(forged), isError('UNAUTHENTICATED'));
  await assert.rejects(admins.authenticate('memfa_nothex_x'), isError('UNAUTHENTICATED'));
  await assert.rejects(admins.add({ name: 'ops', domains: ['z.test'] }, PLATFORM), isError('CONFLICT', /named ops exists/));
  await admins.remove({ name: 'ops' }, PLATFORM);
  await assert.rejects(admins.authenticate(token), isError('UNAUTHENTICATED'));
  assert.deepEqual((await admins.list()).admins, []);
});

test('another daemon of the same state authenticates the token and sees a revocation at once: nothing is kept in service memory', async () => {
  const w = world();
  const one = w.daemon();
  const two = w.daemon();
  const { token } = await one.admins.add({ name: 'ops', domains: ['x.test'] }, PLATFORM);
  assert.deepEqual(await two.admins.authenticate(token), { admin: 'ops', domains: ['x.test'] });
  await two.admins.remove({ name: 'ops' }, PLATFORM);
  await assert.rejects(one.admins.authenticate(token), isError('UNAUTHENTICATED'));
});

test("a provider policy change through one daemon holds at once for another daemon's checks", async () => {
  const w = world();
  const one = w.daemon();
  const two = w.daemon();
  const { token } = await one.admins.add({ name: 'ops', domains: ['x.test'] }, PLATFORM);
  const ops: CallContext = { socket: 'hook', actor: 'domain-admin:ops', scope: await two.admins.authenticate(token) };
  await two.settings.setMailbox({ address: 'a@x.test', settings: { provider: 'totp' } }, ops);
  const changed = await one.policy.change({ provider: 'totp', domainAdmins: false }, PLATFORM);
  assert.equal(changed.domainAdmins, false);
  assert.equal(changed.mailboxes, 1, 'the one stored mailbox uses totp');
  await assert.rejects(two.settings.setMailbox({ address: 'b@x.test', settings: { provider: 'totp' } }, ops), isError('FORBIDDEN', /may not assign provider totp/));
  assert.equal((await two.policy.list()).providers.find((p) => p.name === 'totp')?.domainAdmins, false);
});

/** A key file shared by the daemons of a test; rotate() waits for the gate the test gives it. */
class SharedKeys implements KeyAdmin {
  currentKid = 'k1';
  private all = ['k1'];
  private made = 1;
  /** Each rotate() takes the next gate, if any, and waits for it. */
  readonly gates: Promise<void>[] = [];

  kids(): string[] {
    return [...this.all];
  }
  add(): Promise<string> {
    const kid = `k${++this.made}`;
    this.all.push(kid);
    return Promise.resolve(kid);
  }
  async rotate(): Promise<string> {
    await this.gates.shift();
    const kid = `k${++this.made}`;
    this.all.push(kid);
    this.currentKid = kid;
    return kid;
  }
  retire(kid: string): Promise<void> {
    this.all = this.all.filter((k) => k !== kid);
    return Promise.resolve();
  }
  needsReseal(sealed: string): boolean {
    return sealed.split('.')[1] !== this.currentKid;
  }
  reseal(sealed: string): string {
    const parts = sealed.split('.');
    parts[1] = this.currentKid;
    return parts.join('.');
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Lets the pending promise chains of the services run (each store write resolves on a later turn). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('two daemons on one state: one key rotation at a time, key.add refused meanwhile, a claim that ran out is taken over', async () => {
  const w = world();
  const keys = new SharedKeys();
  const security = (holder: string) => new SecurityAdmin({ clock: w.clock, state: w.state, keys, audit: w.audit, holder });
  const a = security('daemon-a');
  const b = security('daemon-b');
  for (const address of ['m1@x.test', 'm2@x.test']) {
    await put(w.state, { ...newMailbox(address, T0), totp: { sealedSecret: 'v1.k1.iv.tag.ct', activatedAt: T0, lastAcceptedStep: null } });
  }

  // A rotation on a, and the refusals on b while it runs.
  const first = gate();
  keys.gates.push(first.wait);
  const rotationA = a.rotateKey(PLATFORM);
  await settle();
  await assert.rejects(b.rotateKey(PLATFORM), isError('CONFLICT', /^a key rotation is already running$/));
  await assert.rejects(b.addKey(PLATFORM), isError('CONFLICT', /^a key rotation is running; add the key after it$/));
  await assert.rejects(a.addKey(PLATFORM), isError('CONFLICT'));
  first.open();
  const done = await rotationA;
  assert.equal(done.resealed, 2);
  assert.deepEqual(done.retired, ['k1']);
  for (const address of ['m1@x.test', 'm2@x.test']) assert.equal((await w.state.getMailbox(address))?.totp?.sealedSecret, `v1.${done.kid}.iv.tag.ct`);
  // Released at the end: b may add a key now.
  assert.equal((await b.addKey(PLATFORM)).kid, 'k3');

  // a stops midway (its key file step hangs past the claim's time): b takes the job over, and a,
  // when it wakes, finds its claim gone and stops without touching anything more.
  const stalled = gate();
  const second = gate();
  keys.gates.push(stalled.wait, second.wait);
  const rotationA2 = a.rotateKey(PLATFORM);
  await settle();
  await assert.rejects(b.rotateKey(PLATFORM), isError('CONFLICT'), 'still held before its time runs out');
  w.advance(KEY_ROTATION_CLAIM_MS + 1);
  const rotationB = b.rotateKey(PLATFORM);
  await settle();
  stalled.open();
  await assert.rejects(rotationA2, isError('CONFLICT', /taken over by another daemon/));
  // a's stop released nothing of b's: the job is still b's.
  await assert.rejects(a.addKey(PLATFORM), isError('CONFLICT', /rotation is running/));
  second.open();
  const byB = await rotationB;
  for (const address of ['m1@x.test', 'm2@x.test']) assert.equal((await w.state.getMailbox(address))?.totp?.sealedSecret, `v1.${byB.kid}.iv.tag.ct`);
  assert.equal((await a.addKey(PLATFORM)).current, byB.kid, 'free again once b is done');
  assert.equal(w.audited.filter((e) => e.action === 'key.rotate').length, 2, 'the stopped rotation audited nothing');
});
