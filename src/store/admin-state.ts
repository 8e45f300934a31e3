// The file store's answers to what administration asks beyond one record (services/store-ports.ts:
// MailboxSearch, MailboxPages, DomainAdminStore, SealedSecretSample, JobClaims). Where a database
// would use an index or a query, the file store scans its memory: the same answers, at the cost of
// a scan. Job claims live in memory only: one daemon owns a file store (the data directory's
// lock), so a restart, which ends every job, frees them.
import { hasCriteria, mailboxRow, meetsCriteria } from '../core/mailbox-row.js';
import type { MailboxRecord } from '../core/model.js';
import { domainOf } from '../core/validate.js';
import type { DomainAdminRecord, DomainAdminStore, JobClaims, MailboxPages, MailboxQuery, MailboxSearch, SealedSecretSample } from '../services/store-ports.js';
import type { Store, StoreReader } from './types.js';

/** Where the domain administrators are kept: one meta document, by id (as stores have them). */
export const DOMAIN_ADMINS_KEY = 'domainAdmins';

function domainAdmins(reader: StoreReader): Record<string, DomainAdminRecord> {
  return reader.getMeta<Record<string, DomainAdminRecord>>(DOMAIN_ADMINS_KEY) ?? {};
}

export class FileAdminState implements MailboxSearch, MailboxPages, DomainAdminStore, SealedSecretSample, JobClaims {
  /** Few (one per kind of job): never more than the jobs there are. */
  private readonly claims = new Map<string, { holder: string; until: number }>();

  constructor(private readonly store: Store) {}

  findMailboxes(q: MailboxQuery): Promise<{ total: number; mailboxes: MailboxRecord[] }> {
    const limit = q.limit ?? Infinity;
    const page = (where?: (r: MailboxRecord) => boolean) => (limit === 0 ? [] : this.store.listMailboxes({ domain: q.domain, after: q.after, limit, where }));
    if (!hasCriteria(q.criteria)) return Promise.resolve({ total: this.store.countMailboxes(q.domain), mailboxes: page() });
    const global = this.store.getGlobal();
    const meets = (r: MailboxRecord) => meetsCriteria(q.criteria, mailboxRow(q.defaults, global, this.store.getDomain(domainOf(r.address))?.settings, r, q.now), r);
    const suffix = q.domain === undefined ? null : '@' + q.domain;
    let total = 0;
    for (const r of this.store.allMailboxes()) if ((suffix === null || r.address.endsWith(suffix)) && meets(r)) total++;
    return Promise.resolve({ total, mailboxes: page(meets) });
  }

  updateMailboxes<T>(addresses: readonly string[], change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T[]> {
    return this.store.transact((tx) =>
      addresses.map((address) => {
        const { next, result } = change(tx.getMailbox(address));
        if (next === null) tx.deleteMailbox(address);
        else if (next !== undefined) tx.putMailbox(next);
        return result;
      }),
    );
  }

  getDomainAdmin(id: string): Promise<DomainAdminRecord | undefined> {
    const all = domainAdmins(this.store);
    return Promise.resolve(Object.hasOwn(all, id) ? all[id] : undefined);
  }

  listDomainAdmins(): Promise<DomainAdminRecord[]> {
    return Promise.resolve(Object.values(domainAdmins(this.store)).sort((a, b) => a.name.localeCompare(b.name)));
  }

  addDomainAdmin(record: DomainAdminRecord): Promise<'added' | 'exists'> {
    return this.store.transact((tx) => {
      const all = domainAdmins(tx);
      if (Object.values(all).some((a) => a.name === record.name)) return 'exists';
      tx.putMeta(DOMAIN_ADMINS_KEY, { ...all, [record.id]: record });
      return 'added';
    });
  }

  removeDomainAdmin(name: string): Promise<DomainAdminRecord | undefined> {
    return this.store.transact((tx) => {
      const all = { ...domainAdmins(tx) };
      const entry = Object.values(all).find((a) => a.name === name);
      if (entry === undefined) return undefined;
      delete all[entry.id];
      tx.putMeta(DOMAIN_ADMINS_KEY, all);
      return entry;
    });
  }

  sealedSecretPerKey(): Promise<{ kid: string; address: string; sealedSecret: string }[]> {
    const found = new Map<string, { kid: string; address: string; sealedSecret: string }>();
    for (const rec of this.store.allMailboxes()) {
      for (const sealed of [rec.totp?.sealedSecret, rec.pendingTotp?.sealedSecret]) {
        if (sealed === undefined) continue;
        // v1.<kid>.<iv>.<tag>.<ciphertext>; a malformed value is sampled too, and fails to open.
        const kid = sealed.split('.')[1] ?? '';
        if (!found.has(kid)) found.set(kid, { kid, address: rec.address, sealedSecret: sealed });
      }
    }
    return Promise.resolve([...found.values()]);
  }

  claimJob(job: string, holder: string, now: number, ttlMs: number): Promise<{ claimed: true } | { claimed: false; holder: string; until: number }> {
    const held = this.claims.get(job);
    if (held !== undefined && held.until > now && held.holder !== holder) return Promise.resolve({ claimed: false, ...held });
    this.claims.set(job, { holder, until: now + ttlMs });
    return Promise.resolve({ claimed: true });
  }

  releaseJob(job: string, holder: string): Promise<void> {
    if (this.claims.get(job)?.holder === holder) this.claims.delete(job);
    return Promise.resolve();
  }

  jobClaim(job: string, now: number): Promise<{ holder: string; until: number } | undefined> {
    const held = this.claims.get(job);
    return Promise.resolve(held !== undefined && held.until > now ? { ...held } : undefined);
  }
}
