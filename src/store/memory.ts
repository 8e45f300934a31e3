// The store's state in memory: every record, frozen, in maps that reads are served from; a change
// is an operation applied to them, and its undo is the operation that puts back what it replaced.
// Nothing here touches a file: the journal makes changes durable, the snapshot holds this state.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';
import { CURRENT_SCHEMA, migrateJournalMailbox, type Snapshot, type SnapshotOut } from './schema.js';
import { deepFreeze, RecordPool } from './records.js';
import type { ListOptions, StoreReader } from './types.js';

export type Collection = 'm' | 'd' | 'g' | 'x'; // mailboxes, domains, global, meta
/** One change: the key's new value in a collection (null deletes it). */
export type Op = [Collection, string, unknown];

/** A change not yet durable: its sequence number and the operations that undo it. */
export interface Undoable {
  seq: number;
  undo: Op[];
}

export class MemoryState implements StoreReader {
  private readonly mailboxes = new Map<string, MailboxRecord>();
  private readonly domains = new Map<string, DomainRecord>();
  private readonly meta = new Map<string, unknown>();
  /** Values mailbox records share in memory (see records.ts). */
  private readonly pool = new RecordPool();
  /** Mailboxes per domain, kept in step with `mailboxes` so counting is O(1). */
  private readonly perDomain = new Map<string, number>();
  /** Sorted addresses for listing and paging; rebuilt only after an insert or delete. */
  private sortedAddresses: string[] | null = null;
  private global: LevelSettings = {};
  /** The sequence number of the last change applied. */
  seq = 0;

  load(s: Snapshot): void {
    this.seq = s.seq;
    this.global = deepFreeze(s.global ?? {});
    const mailboxes = s.mailboxes instanceof Map ? s.mailboxes.entries() : Object.entries(s.mailboxes);
    for (const [k, v] of mailboxes) this.setMailbox(k, this.pool.parsedMailbox(v));
    for (const [k, v] of Object.entries(s.domains)) this.domains.set(k, deepFreeze(v));
    for (const [k, v] of Object.entries(s.meta)) this.meta.set(k, deepFreeze(v));
  }

  /** Applies one change; returns the value as stored (the journal records that). */
  apply(op: Op): unknown {
    return this.applyValue(op, false, CURRENT_SCHEMA);
  }

  /**
   * Applies a change read back from a journal written in `schema`: the value was parsed by the
   * store, and nobody else holds it.
   */
  applyReplayed(op: Op, schema: number): void {
    this.applyValue(op, true, schema);
  }

  /** Puts back what `undo` holds, newest first. */
  undo(undo: readonly Op[]): void {
    for (let j = undo.length - 1; j >= 0; j--) this.apply(undo[j]!);
  }

  private applyValue([c, k, v]: Op, parsed: boolean, schema: number): unknown {
    switch (c) {
      case 'm': {
        if (v === null) {
          this.deleteMailbox(k);
          return null;
        }
        const record = parsed
          ? this.pool.parsedMailbox((schema < CURRENT_SCHEMA ? migrateJournalMailbox(v, schema) : v) as MailboxRecord)
          : this.pool.mailbox(v as MailboxRecord);
        this.setMailbox(k, record);
        return record;
      }
      case 'd':
        if (v === null) this.domains.delete(k);
        else this.domains.set(k, deepFreeze(v as DomainRecord));
        return v;
      case 'g':
        this.global = deepFreeze((v ?? {}) as LevelSettings);
        return v;
      case 'x':
        if (v === null) this.meta.delete(k);
        else this.meta.set(k, deepFreeze(v));
        return v;
    }
  }

  private setMailbox(key: string, record: MailboxRecord): void {
    // The key and the record's address are the same text: hold it once.
    const own = (record as Partial<MailboxRecord> | null)?.address;
    const address = own === key ? own : key;
    if (!this.mailboxes.has(address)) {
      const domain = address.slice(address.lastIndexOf('@') + 1);
      this.perDomain.set(domain, (this.perDomain.get(domain) ?? 0) + 1);
      this.sortedAddresses = null;
    }
    this.mailboxes.set(address, record);
  }

  private deleteMailbox(address: string): void {
    if (!this.mailboxes.delete(address)) return;
    const domain = address.slice(address.lastIndexOf('@') + 1);
    const n = (this.perDomain.get(domain) ?? 1) - 1;
    if (n === 0) this.perDomain.delete(domain);
    else this.perDomain.set(domain, n);
    this.sortedAddresses = null;
  }

  /** The value a change to (c, k) replaces: what its undo puts back. */
  current(c: Collection, k: string): unknown {
    switch (c) {
      case 'm':
        return this.mailboxes.get(k) ?? null;
      case 'd':
        return this.domains.get(k) ?? null;
      case 'g':
        return this.global;
      case 'x':
        return this.meta.get(k) ?? null;
    }
  }

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
  hasMailbox(address: string): boolean {
    return this.mailboxes.has(address);
  }
  hasDomain(domain: string): boolean {
    return this.domains.has(domain);
  }

  listMailboxes(options: ListOptions = {}): MailboxRecord[] {
    this.sortedAddresses ??= [...this.mailboxes.keys()].sort();
    const sorted = this.sortedAddresses;
    const suffix = options.domain === undefined ? null : '@' + options.domain;
    const limit = options.limit ?? Infinity;
    // Binary search for the first address after `after`, so that paging costs O(page), not O(store).
    let lo = 0;
    if (options.after !== undefined) {
      let hi = sorted.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid]! <= options.after) lo = mid + 1;
        else hi = mid;
      }
    }
    const where = options.where;
    const out: MailboxRecord[] = [];
    for (let i = lo; i < sorted.length && out.length < limit; i++) {
      const k = sorted[i]!;
      if (suffix !== null && !k.endsWith(suffix)) continue;
      const rec = this.mailboxes.get(k)!;
      if (where === undefined || where(rec)) out.push(rec);
    }
    return out;
  }

  allMailboxes(): Iterable<MailboxRecord> {
    return this.mailboxes.values();
  }

  listDomains(): DomainRecord[] {
    return [...this.domains.keys()].sort().map((k) => this.domains.get(k)!);
  }

  countMailboxes(domain?: string): number {
    return domain === undefined ? this.mailboxes.size : (this.perDomain.get(domain) ?? 0);
  }

  /**
   * The state without the changes `pending` (not durable yet, oldest first), for a snapshot.
   * Records are frozen and replaced, never changed, so copying the maps is enough. With nothing
   * pending and `copy` false: the maps themselves, for a caller that knows nothing can change them
   * while the snapshot is written (a copy of 100,000 entries is a few MB at the daemon's peak, on
   * shutdown).
   */
  view(pending: readonly Undoable[], copy = true): SnapshotOut {
    if (!copy && pending.length === 0) {
      return { schemaVersion: CURRENT_SCHEMA, seq: this.seq, global: this.global, domains: this.domains, mailboxes: this.mailboxes, meta: this.meta };
    }
    const mailboxes = new Map(this.mailboxes);
    const domains = new Map(this.domains);
    const meta = new Map(this.meta);
    let global = this.global;
    let seq = this.seq;
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i]!;
      seq = p.seq - 1;
      for (let j = p.undo.length - 1; j >= 0; j--) {
        const [c, k, v] = p.undo[j]!;
        const target = c === 'm' ? mailboxes : c === 'd' ? domains : c === 'x' ? meta : null;
        if (target === null) global = (v ?? {}) as LevelSettings;
        else if (v === null) target.delete(k);
        else (target as Map<string, unknown>).set(k, v);
      }
    }
    return { schemaVersion: CURRENT_SCHEMA, seq, global, domains, mailboxes, meta };
  }
}
