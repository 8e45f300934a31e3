// A Store (store/types.ts) held in memory only, without a journal: for tests of the services over
// the file store's ports (store/state-ports.ts FileStatePorts) without files or a daemon. It keeps
// the file store's rules that the services rely on: records are frozen copies, a transaction runs
// synchronously and is undone when its callback throws, and it resolves only on a later turn (as
// the journal's write does), so that concurrent callers interleave as they would on disk.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';
import { MemfaError } from '../protocol/errors.js';
import { deepFreeze } from './records.js';
import type { ListOptions, Store, StoreTx } from './types.js';

type Undo = () => void;

export class MemoryStore implements Store {
  readonly file = ':memory:';
  private readonly mailboxes = new Map<string, MailboxRecord>();
  private readonly domains = new Map<string, DomainRecord>();
  private readonly meta = new Map<string, unknown>();
  private global: LevelSettings = deepFreeze({});
  private closed = false;
  /** Transactions that wrote something; a test may count them. */
  commits = 0;

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
    const suffix = options.domain === undefined ? null : '@' + options.domain;
    const limit = options.limit ?? Infinity;
    const out: MailboxRecord[] = [];
    for (const address of [...this.mailboxes.keys()].sort()) {
      if (out.length >= limit) break;
      if (options.after !== undefined && address <= options.after) continue;
      if (suffix !== null && !address.endsWith(suffix)) continue;
      const rec = this.mailboxes.get(address)!;
      if (options.where === undefined || options.where(rec)) out.push(rec);
    }
    return out;
  }

  allMailboxes(): Iterable<MailboxRecord> {
    return [...this.mailboxes.values()];
  }

  listDomains(): DomainRecord[] {
    return [...this.domains.keys()].sort().map((d) => this.domains.get(d)!);
  }

  countMailboxes(domain?: string): number {
    if (domain === undefined) return this.mailboxes.size;
    let n = 0;
    for (const address of this.mailboxes.keys()) if (address.endsWith('@' + domain)) n++;
    return n;
  }

  transact<T>(change: (tx: StoreTx) => T): Promise<T> {
    if (this.closed) return Promise.reject(new MemfaError('SHUTTING_DOWN', 'the store is closed'));
    const undo: Undo[] = [];
    const set = <K, V>(map: Map<K, V>, key: K, value: V | null) => {
      const had = map.has(key);
      const before = map.get(key);
      undo.push(() => (had ? map.set(key, before as V) : map.delete(key)));
      if (value === null) map.delete(key);
      else map.set(key, deepFreeze(structuredClone(value)));
    };
    const tx: StoreTx = {
      getMailbox: (a) => this.getMailbox(a),
      getDomain: (d) => this.getDomain(d),
      getGlobal: () => this.getGlobal(),
      getMeta: <M>(k: string) => this.getMeta<M>(k),
      putMailbox: (r) => set(this.mailboxes, r.address, r),
      deleteMailbox: (a) => {
        if (!this.mailboxes.has(a)) return false;
        set(this.mailboxes, a, null);
        return true;
      },
      putDomain: (r) => set(this.domains, r.domain, r),
      deleteDomain: (d) => {
        if (!this.domains.has(d)) return false;
        set(this.domains, d, null);
        return true;
      },
      putGlobal: (s) => {
        const before = this.global;
        undo.push(() => (this.global = before));
        this.global = deepFreeze(structuredClone(s));
      },
      putMeta: (k, v) => set(this.meta, k, v),
    };
    let result: T;
    try {
      result = change(tx);
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      return Promise.reject(err);
    }
    if (undo.length > 0) this.commits++;
    return new Promise((resolve) => setImmediate(() => resolve(result)));
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
