// A Store (store/types.ts) kept in memory only, for tests of the services and of the state ports:
// no journal, no files. It keeps what the file store promises its callers: a transaction runs
// synchronously and sees its own writes, a change that throws leaves nothing behind, records are
// handed out frozen (a service that mutates one fails loudly), and transact resolves only after
// the change is in place. `failWrites` makes the next transactions reject as a full disk would.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../src/core/model.js';
import { domainOf } from '../../src/core/validate.js';
import { MemfaError } from '../../src/protocol/errors.js';
import type { ListOptions, Store, StoreTx } from '../../src/store/types.js';

function frozen<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  for (const v of Object.values(value as Record<string, unknown>)) frozen(v);
  return Object.freeze(value);
}

const copy = <T>(value: T): T => frozen(structuredClone(value));

export class MemoryStore implements Store {
  readonly file = ':memory:';
  private readonly mailboxes = new Map<string, MailboxRecord>();
  private readonly domains = new Map<string, DomainRecord>();
  private readonly meta = new Map<string, unknown>();
  private global: LevelSettings = {};
  /** Transactions committed (each a durable write in the file store). */
  commits = 0;
  /** While set, every transaction is undone and rejects with STORE_FAILED. */
  failWrites = false;

  getMailbox(address: string): MailboxRecord | undefined {
    return this.mailboxes.get(address);
  }

  getDomain(domain: string): DomainRecord | undefined {
    return this.domains.get(domain);
  }

  getGlobal(): LevelSettings {
    return this.global;
  }

  getMeta<T>(key: string): T | undefined {
    return this.meta.get(key) as T | undefined;
  }

  listMailboxes(options: ListOptions = {}): MailboxRecord[] {
    const out: MailboxRecord[] = [];
    for (const address of [...this.mailboxes.keys()].sort()) {
      if (options.limit !== undefined && out.length >= options.limit) break;
      if (options.after !== undefined && address <= options.after) continue;
      if (options.domain !== undefined && domainOf(address) !== options.domain) continue;
      const rec = this.mailboxes.get(address)!;
      if (options.where === undefined || options.where(rec)) out.push(rec);
    }
    return out;
  }

  allMailboxes(): Iterable<MailboxRecord> {
    return this.mailboxes.values();
  }

  listDomains(): DomainRecord[] {
    return [...this.domains.values()].sort((a, b) => (a.domain < b.domain ? -1 : 1));
  }

  countMailboxes(domain?: string): number {
    if (domain === undefined) return this.mailboxes.size;
    let n = 0;
    for (const address of this.mailboxes.keys()) if (domainOf(address) === domain) n++;
    return n;
  }

  transact<T>(change: (tx: StoreTx) => T): Promise<T> {
    const mailboxes = new Map<string, MailboxRecord | null>();
    const domains = new Map<string, DomainRecord | null>();
    const meta = new Map<string, unknown>();
    let global: LevelSettings | null = null;
    const tx: StoreTx = {
      getMailbox: (a) => (mailboxes.has(a) ? mailboxes.get(a) ?? undefined : this.mailboxes.get(a)),
      getDomain: (d) => (domains.has(d) ? domains.get(d) ?? undefined : this.domains.get(d)),
      getGlobal: () => global ?? this.global,
      getMeta: <V>(k: string) => (meta.has(k) ? (meta.get(k) ?? undefined) : this.meta.get(k)) as V | undefined,
      putMailbox: (r) => void mailboxes.set(r.address, copy(r)),
      deleteMailbox: (a) => {
        const had = tx.getMailbox(a) !== undefined;
        mailboxes.set(a, null);
        return had;
      },
      putDomain: (r) => void domains.set(r.domain, copy(r)),
      deleteDomain: (d) => {
        const had = tx.getDomain(d) !== undefined;
        domains.set(d, null);
        return had;
      },
      putGlobal: (s) => void (global = copy(s)),
      putMeta: (k, v) => void meta.set(k, v === null ? null : copy(v)),
    };
    let result: T;
    try {
      result = change(tx);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.failWrites) return Promise.reject(new MemfaError('STORE_FAILED', 'the store could not be written (a test made it fail)'));
    for (const [a, r] of mailboxes) {
      if (r === null) this.mailboxes.delete(a);
      else this.mailboxes.set(a, r);
    }
    for (const [d, r] of domains) {
      if (r === null) this.domains.delete(d);
      else this.domains.set(d, r);
    }
    for (const [k, v] of meta) {
      if (v === null) this.meta.delete(k);
      else this.meta.set(k, v);
    }
    if (global !== null) this.global = global;
    this.commits++;
    return Promise.resolve(result);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
