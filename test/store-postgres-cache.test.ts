// The read cache of the PostgreSQL store (store/postgres/cache.ts, cached-reads.ts, listener.ts)
// on a throwaway cluster, with two daemons' worth of ports on one database, each with its own
// pool, cache and listening connection: a change through one is what the other's next read sees
// within a second (announced by the writing transaction), at once on the daemon that made it, and
// at once everywhere for what is never cached; the time-to-live when an announcement is lost; the
// flush when the listener connects again; the bound on entries.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { LockoutPolicy } from '../src/core/lockout.js';
import { newMailbox, type AppPassword, type MailboxRecord } from '../src/core/model.js';
import { POLICY_KEY } from '../src/services/policy.js';
import type { FailureEffects, LoginView, SuccessEffects } from '../src/services/store-ports.js';
import { MISS, ReadCache } from '../src/store/postgres/cache.js';
import { ChangeListener, type ListenerEvents } from '../src/store/postgres/listener.js';
import { migrate } from '../src/store/postgres/migrate.js';
import { createPool, Db, type PostgresSettings } from '../src/store/postgres/pool.js';
import { PgStatePorts } from '../src/store/postgres/state-ports.js';
import { pgSettings, postgresMissing, startPostgres, type PgCluster } from './helpers/postgres.js';

const T0 = Date.UTC(2026, 0, 1);
const STRICT: LockoutPolicy = { threshold: 2, baseDelayMs: 60_000, maxDelayMs: 3_600_000, hardLockAfter: 4 };
const success = (now = T0): SuccessEffects => ({ kind: 'elsewhere', now, location: { ip: '192.0.2.50', country: 'NL', policy: { maxEntries: 20, maxAgeMs: 86_400_000 * 365 } } });
const failure = (now = T0): FailureEffects => ({ kind: 'elsewhere', now, policy: STRICT });
const missing = postgresMissing();

interface Node {
  db: Db;
  cache: ReadCache;
  listener: ChangeListener;
  ports: PgStatePorts;
  /** What loginViewNow answers now (a fresh `into` each time). */
  now(address: string): LoginView | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `cond` holds, polling; how long it took, or a failure after `limitMs`. */
async function within(limitMs: number, cond: () => boolean | Promise<boolean>, what: string): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await cond()) return performance.now() - start;
    if (performance.now() - start > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await sleep(5);
  }
}

describe(`the read cache on one database, two daemons${missing === null ? '' : ` (SKIPPED: ${missing})`}`, { skip: missing ?? false }, () => {
  let cluster: PgCluster;
  let name: string;
  const opened: Node[] = [];

  const open = async (cache: { ttlMs: number; entries: number }, events: ListenerEvents = {}): Promise<Node> => {
    const settings: PostgresSettings = pgSettings(cluster, name, { poolMax: 4, cache });
    const db = new Db(createPool(settings));
    const rc = new ReadCache(cache);
    const listener = new ChangeListener(settings, rc, events);
    listener.start();
    await listener.ready;
    const ports = new PgStatePorts(db, { cache: rc });
    const node: Node = { db, cache: rc, listener, ports, now: (address) => ports.loginViewNow(address, { mailbox: undefined, domain: undefined, global: {} }) };
    opened.push(node);
    return node;
  };

  /** A superuser's connection of the test's own, for what no port does. */
  const raw = async (sql: string, values: unknown[] = []) => {
    const c = new pg.Client(cluster.clientConfig(name));
    await c.connect();
    try {
      return await (values.length === 0 ? c.query(sql) : c.query(sql, values));
    } finally {
      await c.end();
    }
  };

  before(async () => {
    cluster = await startPostgres();
    name = await cluster.createDatabase();
    const db = new Db(createPool(pgSettings(cluster, name)));
    await migrate(db);
    await db.close();
  });
  after(async () => {
    for (const n of opened) {
      await n.listener.stop();
      await n.db.close();
    }
    await cluster?.stop();
  });

  const seed = (n: Node, rec: MailboxRecord) => n.ports.updateMailbox(rec.address, () => ({ next: rec, result: null }));
  /**
   * Waits until `n`'s listener has had every announcement of the writes committed so far: one of
   * the test's own is sent after them, and PostgreSQL delivers them in the order of their commits.
   */
  const settled = async (n: Node) => {
    const tag = `barrier:${Math.random()}`;
    let seen = false;
    const invalidate = n.cache.invalidate.bind(n.cache);
    n.cache.invalidate = (key) => {
      if (key === tag) seen = true;
      invalidate(key);
    };
    try {
      await raw('SELECT pg_notify($1, $2)', ['memfa_cache', tag]);
      await within(2000, () => seen, 'the announcements so far delivered');
    } finally {
      n.cache.invalidate = invalidate;
    }
  };
  /**
   * Reads `address` into the cache once the announcements of earlier writes (even this daemon's
   * own) are in: a read that one of them overtakes does not fill the cache, by design.
   */
  const warm = async (n: Node, address: string) => {
    await settled(n);
    await n.ports.loginView(address);
    assert.notEqual(n.now(address), undefined, `${address} cached`);
  };

  it('a change through one daemon is what the other reads within a second; at once on the one that made it', async () => {
    const a = await open({ ttlMs: 60_000, entries: 1000 });
    const b = await open({ ttlMs: 60_000, entries: 1000 });
    await seed(a, { ...newMailbox('who@cache.test', T0), settings: { challenge: 'never' }, phone: '+31612345678' });
    await warm(b, 'who@cache.test');
    const cached = b.now('who@cache.test');
    assert.equal(cached?.partial, true, 'answered from the cache');
    assert.deepEqual(cached?.mailbox?.settings, { challenge: 'never' });
    assert.equal(cached?.mailbox?.phone, '+31612345678');

    // The mailbox's settings.
    await a.ports.updateMailbox('who@cache.test', (cur) => ({ next: { ...cur!, settings: { challenge: 'always' } }, result: null }));
    assert.equal(a.now('who@cache.test'), undefined, 'the daemon that wrote it reads it anew at once');
    const took = await within(1000, () => b.now('who@cache.test') === undefined, 'the other daemon dropped the mailbox');
    assert.deepEqual((await b.ports.loginView('who@cache.test')).mailbox?.settings, { challenge: 'always' });
    await warm(b, 'who@cache.test');
    assert.deepEqual(b.now('who@cache.test')?.mailbox?.settings, { challenge: 'always' }, 'and caches the new value');

    // The domain's and the global settings, the provider policy.
    await a.ports.updateDomain('cache.test', () => ({ next: { domain: 'cache.test', settings: { challenge: 'new-ip' }, updatedAt: T0 }, result: null }));
    await within(1000, () => b.now('who@cache.test') === undefined, 'the domain change reached the other daemon');
    assert.deepEqual((await b.ports.loginView('who@cache.test')).domain, { challenge: 'new-ip' });
    await warm(b, 'who@cache.test');
    await a.ports.updateGlobal(() => ({ challenge: 'new-country' }));
    await within(1000, () => b.now('who@cache.test') === undefined, 'the global change reached the other daemon');
    assert.deepEqual((await b.ports.loginView('who@cache.test')).global, { challenge: 'new-country' });
    assert.equal(await b.ports.getMeta(POLICY_KEY), undefined);
    await a.ports.updateMeta(POLICY_KEY, () => ({ next: { sms: { enabled: false } }, result: null }));
    await within(1000, async () => (await b.ports.getMeta<{ sms?: { enabled: boolean } }>(POLICY_KEY))?.sms?.enabled === false, 'the policy change reached the other daemon');
    // Held, the policy is answered at once (verify's fast path awaits nothing for it); changed
    // through the other daemon, it is no longer held until it is read again.
    assert.deepEqual(b.ports.getMetaIfHeld(POLICY_KEY), { value: { sms: { enabled: false } } });
    await a.ports.updateMeta(POLICY_KEY, () => ({ next: { sms: { enabled: true } }, result: null }));
    await within(1000, () => b.ports.getMetaIfHeld(POLICY_KEY) === undefined, 'the policy change dropped the held copy');
    assert.deepEqual(await b.ports.getMeta(POLICY_KEY), { sms: { enabled: true } });
    assert.deepEqual(b.ports.getMetaIfHeld(POLICY_KEY), { value: { sms: { enabled: true } } });
    assert.equal(b.ports.getMetaIfHeld('domainAdmins'), undefined, 'only the cached documents are held');

    // Remembered locations: a success through one daemon remembers one more address.
    await a.ports.updateMailbox('who@cache.test', (cur) => ({ next: { ...cur!, totp: { sealedSecret: 'v1.k.s', activatedAt: T0, lastAcceptedStep: 1 } }, result: null }));
    await within(1000, () => b.now('who@cache.test') === undefined, 'the enrolment reached the other daemon');
    await warm(b, 'who@cache.test');
    assert.deepEqual(b.now('who@cache.test')?.mailbox?.ips, []);
    assert.equal((await a.ports.acceptTotpStep('who@cache.test', 'v1.k.s', 2, { success: success(), failure: failure() })).outcome, 'accepted');
    await within(1000, () => b.now('who@cache.test') === undefined, 'the remembered address reached the other daemon');
    assert.deepEqual((await b.ports.loginView('who@cache.test')).mailbox?.ips.map((e) => e.ip), ['192.0.2.50']);
    assert.ok(took < 1000, `applied in ${took.toFixed(0)} ms`);
  });

  it('counters, steps and codes are never served from the cache: every daemon sees them at once', async () => {
    const a = await open({ ttlMs: 60_000, entries: 1000 });
    const b = await open({ ttlMs: 60_000, entries: 1000 });
    await seed(a, { ...newMailbox('lock@cache.test', T0), totp: { sealedSecret: 'v1.k.s', activatedAt: T0, lastAcceptedStep: 7 }, recoveryCodeHashes: ['h:r'] });
    await a.ports.openCode('lock@cache.test', { hash: 'h:c', provider: 'sms', destination: '+31612345678', createdAt: T0, expiresAt: T0 + 300_000, failedTries: 0, sends: 1, lastSentAt: T0 });
    await warm(b, 'lock@cache.test');
    const part = b.now('lock@cache.test')!.mailbox!;
    assert.notEqual(part.totp, null, 'it has an active secret');
    assert.deepEqual([part.totp!.sealedSecret, part.totp!.lastAcceptedStep], ['', null], 'but neither the secret nor its step is in the cache');
    assert.deepEqual([part.openCode, part.recoveryCodeHashes, part.appPasswords, part.pendingTotp], [null, [], [], null], 'nor the code, recovery codes, app passwords, pending secret');
    for (let i = 0; i < STRICT.threshold; i++) await a.ports.recordFailure('lock@cache.test', failure());
    // No announcement is needed: the next read of the lock on any daemon asks the database.
    const seen = await b.ports.loginView('lock@cache.test');
    assert.equal(seen.partial, undefined, 'loginView is always whole');
    assert.equal(seen.mailbox?.failures.elsewhere?.consecutive, STRICT.threshold);
    assert.equal(seen.mailbox?.totp?.lastAcceptedStep, 7);
    assert.equal(seen.mailbox?.openCode?.hash, 'h:c');
    assert.deepEqual(await b.ports.recordFailure('lock@cache.test', failure()), { outcome: 'locked', until: T0 + STRICT.baseDelayMs });
    assert.deepEqual(b.now('lock@cache.test')?.mailbox?.failures, { known: null, elsewhere: null }, 'the partial view never holds failures');
  });

  it('what leaves the read-mostly part as it was announces nothing: the other daemon keeps serving it', async () => {
    const a = await open({ ttlMs: 60_000, entries: 1000 });
    const b = await open({ ttlMs: 60_000, entries: 1000 });
    const ap: AppPassword = { id: 'ap1', name: 'phone', hash: 'h:ap', protocols: ['imap'], networks: [], createdAt: T0, expiresAt: null, lastUsed: null, uses: 0 };
    await seed(a, { ...newMailbox('quiet@cache.test', T0), settings: { challenge: 'new-ip' }, ips: [{ ip: '192.0.2.1', firstSeen: T0, lastSeen: T0 }], appPasswords: [ap] });
    await warm(b, 'quiet@cache.test');
    // A failure, a code, a grace login, an app password's use (a whole-record rewrite): none is cached.
    await a.ports.recordFailure('quiet@cache.test', failure());
    await a.ports.openCode('quiet@cache.test', { hash: 'h:c', provider: 'sms', destination: '+31612345678', createdAt: T0, expiresAt: T0 + 300_000, failedTries: 0, sends: 1, lastSentAt: T0 });
    await a.ports.countGraceLogin('quiet@cache.test', 5, T0);
    await a.ports.updateMailboxes(['quiet@cache.test'], (rec) => ({ next: { ...rec!, appPasswords: rec!.appPasswords.map((x) => ({ ...x, uses: x.uses + 3, lastUsed: { at: T0, ip: '192.0.2.9', country: null } })) }, result: null }));
    await settled(b);
    assert.equal(b.now('quiet@cache.test')?.partial, true, 'still cached on the other daemon');
    assert.equal((await a.ports.getMailbox('quiet@cache.test'))?.appPasswords[0]?.uses, 3);
  });

  it('an announcement lost: the entry lives no longer than its time-to-live', async () => {
    const b = await open({ ttlMs: 2000, entries: 1000 });
    await seed(b, { ...newMailbox('ttl@cache.test', T0), settings: { challenge: 'never' } });
    await warm(b, 'ttl@cache.test');
    const filled = performance.now();
    // Written with the triggers off (replication role): nobody is told.
    await raw(`SET session_replication_role = replica; UPDATE mailboxes SET settings = '{"challenge":"always"}' WHERE address = 'ttl@cache.test'`);
    await sleep(50);
    assert.deepEqual(b.now('ttl@cache.test')?.mailbox?.settings, { challenge: 'never' }, 'not told: still the old value, within its time');
    await within(4000, () => b.now('ttl@cache.test') === undefined, 'the entry expired');
    const age = performance.now() - filled;
    assert.ok(age >= 1900 && age < 3500, `expired ${age.toFixed(0)} ms after it was filled`);
    assert.deepEqual((await b.ports.loginView('ttl@cache.test')).mailbox?.settings, { challenge: 'always' });
  });

  it('the listener terminated: nothing served meanwhile, everything flushed when it listens again', async () => {
    let listened = 0;
    const b = await open({ ttlMs: 60_000, entries: 1000 }, { listening: (n) => (listened = n) });
    await seed(b, { ...newMailbox('gone@cache.test', T0), settings: { challenge: 'never' } });
    await warm(b, 'gone@cache.test');
    const pid = b.listener.pid;
    assert.notEqual(pid, null);
    const killed = await raw('SELECT pg_terminate_backend($1) AS ok', [pid]);
    assert.equal(killed.rows[0].ok, true);
    await within(2000, () => !b.cache.serving, 'the listener noticed');
    assert.equal(b.now('gone@cache.test'), undefined, 'not served while not listening');
    await b.ports.loginView('gone@cache.test');
    assert.equal(b.cache.size, 0, 'not filled while not listening');
    // A change nobody announces (triggers off) while it is away: the flush is what makes it seen.
    await raw(`SET session_replication_role = replica; UPDATE mailboxes SET settings = '{"challenge":"always"}' WHERE address = 'gone@cache.test'`);
    await within(10_000, () => b.cache.serving && listened === 1, 'the listener listens again');
    assert.notEqual(b.listener.pid, pid);
    assert.equal(b.now('gone@cache.test'), undefined, 'flushed on reconnect');
    assert.deepEqual((await b.ports.loginView('gone@cache.test')).mailbox?.settings, { challenge: 'always' });
    assert.deepEqual(b.now('gone@cache.test')?.mailbox?.settings, { challenge: 'always' }, 'and serving again');
  });

  it('the server restarted: the cache is off meanwhile, and the listener comes back by itself', async () => {
    let listened = 0;
    const lost: string[] = [];
    const b = await open({ ttlMs: 60_000, entries: 1000 }, { listening: (n) => (listened = n), lost: (e) => lost.push(e) });
    await seed(b, newMailbox('restart@cache.test', T0));
    await warm(b, 'restart@cache.test');
    await cluster.pause();
    try {
      await within(5000, () => !b.cache.serving, 'the listener noticed');
      assert.equal(b.now('restart@cache.test'), undefined);
      await sleep(500);
    } finally {
      await cluster.start();
    }
    await within(15_000, () => b.cache.serving && listened === 1, 'listening again');
    assert.equal(lost.length, 1, `one loss reported, not one per try to connect: ${lost.join('; ')}`);
    assert.equal(b.now('restart@cache.test'), undefined, 'flushed');
    await warm(b, 'restart@cache.test');
  });

  it('a read that an announcement overtook does not put its stale answer into the cache', () => {
    const c = new ReadCache({ ttlMs: 60_000, entries: 10 });
    c.setActive(true);
    const before = c.ticket();
    c.invalidate('m:x');
    c.fill('m:x', before, 'old');
    assert.equal(c.size, 0, 'the read started before the change');
    c.fill('m:x', c.ticket(), 'new');
    assert.equal(c.get('m:x'), 'new');
    const beforeFlush = c.ticket();
    c.setActive(true);
    c.fill('m:y', beforeFlush, 'old');
    assert.equal(c.size, 0, 'a read from before a flush loses too');
  });

  it('entries past their time go as new ones come, a few per fill, and are never served', () => {
    let t = 0;
    const c = new ReadCache({ ttlMs: 100, entries: 1000, clock: () => t });
    c.setActive(true);
    for (let i = 0; i < 5; i++) c.fill(`k${i}`, c.ticket(), i);
    t = 99;
    assert.equal(c.get('k4'), 4);
    t = 200;
    c.fill('new', c.ticket(), 'x');
    assert.equal(c.size, 4, 'the two oldest swept');
    assert.equal(c.get('k4'), MISS, 'an expired entry is a miss');
    // Left in its place (deleting and setting a key again grows its hash chain in V8's Map): the
    // next fill of it refreshes it there, and the sweep of fills drops it otherwise.
    assert.equal(c.size, 4);
    c.fill('k4', c.ticket(), 'y');
    assert.equal(c.size, 2, 'k4 refreshed in place, no second entry; k2 and k3 swept by this fill');
    assert.equal(c.get('k4'), 'y');
    t = 400;
    for (let i = 0; i < 3; i++) c.fill(`later${i}`, c.ticket(), i);
    assert.equal(c.size, 3, 'every expired entry swept by the fills after it');
  });

  it('an entry used again once it is among the older half of the bound is kept when the oldest go', () => {
    const c = new ReadCache({ ttlMs: 60_000, entries: 10 });
    c.setActive(true);
    for (let i = 0; i < 10; i++) c.fill(`k${i}`, c.ticket(), i);
    // k0 and k1 are the oldest; k1 is used again (nine entries placed after it: the older half).
    assert.equal(c.get('k1'), 1);
    c.fill('a', c.ticket(), 'a');
    c.fill('b', c.ticket(), 'b');
    assert.equal(c.size, 10);
    assert.equal(c.get('k0'), MISS, 'the least recently used went first');
    assert.equal(c.get('k2'), MISS, 'then the next oldest');
    assert.equal(c.get('k1'), 1, 'the one used again stayed');
  });

  it('cached mailboxes with the same settings share one frozen copy of them; what the fast path does not read is empty', async () => {
    const b = await open({ ttlMs: 60_000, entries: 1000 });
    const settings = { challenge: 'new-ip' as const, provider: 'totp' as const };
    for (const who of ['s1', 's2']) await seed(b, { ...newMailbox(`${who}@share.test`, T0), settings: { ...settings } });
    await seed(b, { ...newMailbox('s3@share.test', T0), settings: { challenge: 'always' } });
    for (const who of ['s1', 's2', 's3']) await warm(b, `${who}@share.test`);
    const [m1, m2, m3] = ['s1', 's2', 's3'].map((who) => b.now(`${who}@share.test`)!.mailbox!);
    assert.deepEqual(m1!.settings, settings);
    assert.equal(m1!.settings, m2!.settings, 'one copy for equal settings');
    assert.notEqual(m1!.settings, m3!.settings);
    assert.deepEqual(m3!.settings, { challenge: 'always' });
    assert.ok(Object.isFrozen(m1!.settings) && Object.isFrozen(m1), 'a shared copy cannot be changed through one entry');
    assert.deepEqual([m1!.failures, m1!.recoveryCodeHashes, m1!.appPasswords, m1!.openCode, m1!.pendingTotp], [{ known: null, elsewhere: null }, [], [], null, null]);
  });

  it('at most cacheEntries entries, the least recently used going first', async () => {
    const b = await open({ ttlMs: 60_000, entries: 5 });
    for (let i = 1; i <= 6; i++) await seed(b, newMailbox(`m${i}@lru.test`, T0));
    await settled(b);
    // Each view is three entries (the global settings, the domain's, the mailbox's): 5 hold three mailboxes.
    for (let i = 1; i <= 5; i++) await b.ports.loginView(`m${i}@lru.test`);
    assert.equal(b.cache.size, 5);
    assert.deepEqual([1, 2, 3, 4, 5].map((i) => b.now(`m${i}@lru.test`) !== undefined), [false, false, true, true, true]);
    // m3, then m5, then m4 used last, in that order: m3 goes first when m6 comes.
    b.now('m5@lru.test');
    b.now('m4@lru.test');
    await b.ports.loginView('m6@lru.test');
    assert.equal(b.cache.size, 5);
    assert.deepEqual([3, 4, 5, 6].map((i) => b.now(`m${i}@lru.test`) !== undefined), [false, true, true, true]);
  });

});
