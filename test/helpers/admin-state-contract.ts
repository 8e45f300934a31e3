// The administration's part of the state contract (services/store-ports.ts: MailboxSearch,
// MailboxPages, DomainAdminStore, SealedSecretSample, JobClaims): what every backend must answer
// alike, so that administration reads the same through the file store and the PostgreSQL store.
// The second-factor operations have their own contract (state-contract.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { newMailbox, type MailboxRecord } from '../../src/core/model.js';
import type { SettingsDefaults } from '../../src/core/settings.js';
import type { StatePorts } from '../../src/services/store-ports.js';

export interface AdminContractBackend {
  ports: StatePorts;
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 0, 1);
const DEFAULTS: SettingsDefaults = { challenge: 'never', provider: 'totp', fallbackProvider: 'none', usersMayConfigure: true, primaryPassword: 'app-password' };

async function put(p: StatePorts, rec: MailboxRecord): Promise<void> {
  await p.updateMailbox(rec.address, () => ({ next: rec, result: undefined }));
}

const enrolled = (address: string, kid = 'k1'): MailboxRecord => ({ ...newMailbox(address, T0), totp: { sealedSecret: `v1.${kid}.iv.tag.ct`, activatedAt: T0, lastAcceptedStep: null } });

/** A mailbox locked for logins from elsewhere until T0 + 1 h. */
const locked = (address: string): MailboxRecord => ({
  ...enrolled(address),
  failures: { known: null, elsewhere: { consecutive: 10, lastFailureAt: T0, lockedUntil: T0 + 3_600_000, hardLocked: false } },
});

export function runAdminStateContract(name: string, open: () => Promise<AdminContractBackend>): void {
  describe(`administration state contract: ${name}`, () => {
    const withBackend = (fn: (p: StatePorts) => Promise<void>) => async () => {
      const b = await open();
      try {
        await fn(b.ports);
      } finally {
        await b.close();
      }
    };

    it('findMailboxes: a page by address after `after`, and the total of all that meet the criteria, whatever the page', withBackend(async (p) => {
      for (const a of ['a@x.test', 'b@x.test', 'c@x.test', 'd@y.test']) await put(p, enrolled(a));
      await put(p, locked('e@x.test'));
      await put(p, newMailbox('f@x.test', T0));
      const q = { defaults: DEFAULTS, now: T0 };
      const all = await p.findMailboxes({ ...q, criteria: {} });
      assert.equal(all.total, 6);
      assert.deepEqual(all.mailboxes.map((r) => r.address), ['a@x.test', 'b@x.test', 'c@x.test', 'd@y.test', 'e@x.test', 'f@x.test']);
      const page = await p.findMailboxes({ ...q, domain: 'x.test', after: 'a@x.test', limit: 2, criteria: {} });
      assert.equal(page.total, 5, 'the domain total, not the page');
      assert.deepEqual(page.mailboxes.map((r) => r.address), ['b@x.test', 'c@x.test']);
      const lockedOnes = await p.findMailboxes({ ...q, criteria: { locked: true } });
      assert.equal(lockedOnes.total, 1);
      assert.deepEqual(lockedOnes.mailboxes.map((r) => r.address), ['e@x.test']);
      // Judged at the time given: the lock has run out an hour later.
      assert.equal((await p.findMailboxes({ ...q, now: T0 + 3_600_001, criteria: { locked: true } })).total, 0);
      const notEnrolled = await p.findMailboxes({ ...q, criteria: { notEnrolled: true } });
      assert.deepEqual(notEnrolled.mailboxes.map((r) => r.address), ['f@x.test']);
      const totalOnly = await p.findMailboxes({ ...q, limit: 0, criteria: { notEnrolled: false, locked: false } });
      assert.equal(totalOnly.total, 4);
      assert.deepEqual(totalOnly.mailboxes, []);
    }));

    it('findMailboxes judges the provider by the effective settings: the domain level counts', withBackend(async (p) => {
      await put(p, enrolled('a@x.test'));
      await put(p, enrolled('b@y.test'));
      await put(p, { ...enrolled('c@y.test'), settings: { provider: 'totp' } });
      await p.updateDomain('y.test', () => ({ next: { domain: 'y.test', settings: { provider: 'email' }, updatedAt: T0 }, result: undefined }));
      const byEmail = await p.findMailboxes({ defaults: DEFAULTS, now: T0, criteria: { provider: 'email' } });
      assert.deepEqual(byEmail.mailboxes.map((r) => r.address), ['b@y.test']);
      assert.equal((await p.findMailboxes({ defaults: DEFAULTS, now: T0, criteria: { provider: 'totp' } })).total, 2);
    }));

    it('updateMailboxes: one transaction for the page; a change that throws writes none of it', withBackend(async (p) => {
      for (const a of ['a@x.test', 'b@x.test']) await put(p, enrolled(a));
      const results = await p.updateMailboxes(['a@x.test', 'b@x.test', 'none@x.test'], (rec) => (rec === undefined ? { result: 'missing' } : { next: { ...rec, phone: '+447700900123' }, result: 'changed' }));
      assert.deepEqual(results, ['changed', 'changed', 'missing']);
      assert.equal((await p.getMailbox('b@x.test'))?.phone, '+447700900123');
      await assert.rejects(
        p.updateMailboxes(['a@x.test', 'b@x.test'], (rec) => {
          if (rec!.address === 'b@x.test') throw new Error('second fails');
          return { next: { ...rec!, phone: null }, result: undefined };
        }),
        /second fails/,
      );
      assert.equal((await p.getMailbox('a@x.test'))?.phone, '+447700900123', 'the first change was undone with the second');
      assert.equal(await p.getMailbox('none@x.test'), undefined);
    }));

    it('domain administrators: a name is taken once; get by id, list by name, remove by name', withBackend(async (p) => {
      const rec = (name: string, id: string) => ({ name, id, domains: ['x.test'], tokenHash: `h1:${id}`, createdAt: T0 });
      assert.equal(await p.addDomainAdmin(rec('zed', '00000000000000aa')), 'added');
      assert.equal(await p.addDomainAdmin(rec('amy', '00000000000000bb')), 'added');
      assert.equal(await p.addDomainAdmin(rec('zed', '00000000000000cc')), 'exists');
      assert.deepEqual((await p.listDomainAdmins()).map((a) => a.name), ['amy', 'zed']);
      assert.equal((await p.getDomainAdmin('00000000000000aa'))?.name, 'zed');
      assert.equal(await p.getDomainAdmin('00000000000000cc'), undefined, 'the refused record was not stored');
      assert.equal(await p.getDomainAdmin('toString'), undefined, 'an id is never a property of the container');
      assert.equal((await p.removeDomainAdmin('zed'))?.id, '00000000000000aa');
      assert.equal(await p.removeDomainAdmin('zed'), undefined);
      assert.equal(await p.getDomainAdmin('00000000000000aa'), undefined);
    }));

    it('concurrent adds of one name: exactly one is stored', withBackend(async (p) => {
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => p.addDomainAdmin({ name: 'same', id: i.toString(16).padStart(16, '0'), domains: ['x.test'], tokenHash: 'h1:x', createdAt: T0 })));
      assert.equal(outcomes.filter((o) => o === 'added').length, 1);
      assert.equal((await p.listDomainAdmins()).length, 1);
    }));

    it('sealedSecretPerKey: one sealed secret for each key id in use, active or pending', withBackend(async (p) => {
      await put(p, enrolled('a@x.test', 'k1'));
      await put(p, enrolled('b@x.test', 'k1'));
      await put(p, { ...newMailbox('c@x.test', T0), pendingTotp: { sealedSecret: 'v1.k2.iv.tag.ct', createdAt: T0, expiresAt: T0 + 600_000 } });
      await put(p, newMailbox('d@x.test', T0));
      // k3 seals an active secret of one mailbox and the pending one of another.
      await put(p, enrolled('f@x.test', 'k3'));
      await put(p, { ...newMailbox('e@x.test', T0), pendingTotp: { sealedSecret: 'v1.k3.iv.tag.ct', createdAt: T0, expiresAt: T0 + 600_000 } });
      const sample = await p.sealedSecretPerKey();
      assert.deepEqual(sample.map((s) => s.kid).sort(), ['k1', 'k2', 'k3']);
      for (const s of sample) assert.equal((await p.getMailbox(s.address))?.totp?.sealedSecret ?? (await p.getMailbox(s.address))?.pendingTotp?.sealedSecret, s.sealedSecret);
    }));

    it('job claims: one holder at a time, extended by its holder, released only by it, free once run out', withBackend(async (p) => {
      assert.equal(await p.jobClaim('job', T0), undefined);
      assert.deepEqual(await p.claimJob('job', 'a', T0, 1000), { claimed: true });
      assert.deepEqual(await p.claimJob('job', 'b', T0 + 500, 1000), { claimed: false, holder: 'a', until: T0 + 1000 });
      assert.deepEqual(await p.claimJob('other', 'b', T0 + 500, 1000), { claimed: true }, 'claims are by job');
      assert.deepEqual(await p.claimJob('job', 'a', T0 + 900, 1000), { claimed: true }, 'the holder extends its claim');
      assert.deepEqual(await p.jobClaim('job', T0 + 1500), { holder: 'a', until: T0 + 1900 });
      await p.releaseJob('job', 'b');
      assert.equal((await p.jobClaim('job', T0 + 1500))?.holder, 'a', 'another holder cannot release it');
      assert.equal(await p.jobClaim('job', T0 + 1900), undefined, 'run out at its time');
      assert.deepEqual(await p.claimJob('job', 'b', T0 + 1900, 1000), { claimed: true }, 'a claim that ran out is free');
      await p.releaseJob('job', 'b');
      assert.equal(await p.jobClaim('job', T0 + 1900), undefined);
    }));

    it('concurrent claims of one job: exactly one holder', withBackend(async (p) => {
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => p.claimJob('job', `h${i}`, T0, 60_000)));
      assert.equal(outcomes.filter((o) => o.claimed).length, 1);
    }));
  });
}
