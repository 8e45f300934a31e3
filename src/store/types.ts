// The store as memfa's use cases see it. Reads are served from memory; every change goes through
// transact(), whose promise resolves only once the change is durable on disk. A SQL backend for a
// farm of daemons would implement the same interface.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';

export interface StoreReader {
  getMailbox(address: string): MailboxRecord | undefined;
  getDomain(domain: string): DomainRecord | undefined;
  getGlobal(): LevelSettings;
  getMeta<T>(key: string): T | undefined;
}

/** A transaction: reads see its own writes. Records are replaced whole, never mutated in place. */
export interface StoreTx extends StoreReader {
  putMailbox(record: MailboxRecord): void;
  deleteMailbox(address: string): boolean;
  putDomain(record: DomainRecord): void;
  deleteDomain(domain: string): boolean;
  putGlobal(settings: LevelSettings): void;
  putMeta(key: string, value: unknown): void;
}

export interface ListOptions {
  domain?: string | undefined;
  after?: string | undefined;
  limit?: number | undefined;
  /** Only the records it accepts (limit counts those); paging by `after` is unchanged. */
  where?: ((record: MailboxRecord) => boolean) | undefined;
}

export interface Store extends StoreReader {
  readonly file: string;
  listMailboxes(options?: ListOptions): MailboxRecord[];
  /** Every stored mailbox, in no particular order (cheaper than listMailboxes for a full scan). */
  allMailboxes(): Iterable<MailboxRecord>;
  listDomains(): DomainRecord[];
  countMailboxes(domain?: string): number;
  /**
   * Runs `change` synchronously against the current state (so check-then-act is atomic in the one
   * daemon process) and resolves with its result once the change is durable. If the write fails
   * the change is undone in memory and the promise rejects with STORE_FAILED.
   */
  transact<T>(change: (tx: StoreTx) => T): Promise<T>;
  /** Folds the journal into the snapshot and closes files. */
  close(): Promise<void>;
}
