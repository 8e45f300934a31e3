// The default store: a snapshot written through lowdb plus an append-only journal beside it, in
// parts with one job each:
//   memory.ts     the records, in maps that every read is served from; changes and their undo
//   journal.ts    each transaction made durable as one line (group commit), and replay at start
//   snapshot.ts   the snapshot file as a lowdb Adapter that writes durably
//   compactor.ts  when and how the journal is folded into the snapshot, in the background
// This file puts them together behind the Store interface.
//
// Why a journal: rewriting the whole snapshot per change costs O(store) per login, which a host
// with 100,000 mailboxes cannot afford. A change is one journal line, appended and fdatasync'd;
// changes that arrive while a sync is running share the next one (group commit). When the journal
// grows past a threshold, and on shutdown, it is folded into the snapshot, written durably (temp
// file, fsync, rename, fsync dir), and dropped.
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';
import { assertPrivateFileIfPresent, fsyncDir } from '../files/durable.js';
import { MemfaError } from '../protocol/errors.js';
import { Compactor, DEFAULT_COMPACT_JOURNAL_BYTES, emptySnapshot } from './compactor.js';
import { Journal, replayJournal } from './journal.js';
import { MemoryState, type Op } from './memory.js';
import { CURRENT_SCHEMA, migrate } from './schema.js';
import type { ListOptions, Store, StoreTx } from './types.js';

export { DEFAULT_COMPACT_JOURNAL_BYTES };

export interface FileStoreOptions {
  compactJournalBytes?: number;
  /** Skip the permission and owner check (tests of other things on odd file systems). */
  checkPermissions?: boolean;
  onEvent?: (event: string, fields: Record<string, unknown>) => void;
  /**
   * Test seam: opens the journal for appending. The default is fs.open(O_WRONLY|O_APPEND|O_CREAT,
   * 0600); tests pass a wrapper whose write/datasync fail on demand to exercise STORE_FAILED.
   */
  openJournal?: (file: string) => Promise<FileHandle>;
}

export class FileStore implements Store {
  private closed = false;
  readonly journalFile: string;
  readonly oldJournalFile: string;

  private constructor(
    readonly file: string,
    private readonly memory: MemoryState,
    private readonly journal: Journal,
    private readonly compactor: Compactor,
  ) {
    this.journalFile = journal.file;
    this.oldJournalFile = journal.oldFile;
  }

  static async open(file: string, options: FileStoreOptions = {}): Promise<FileStore> {
    if (options.checkPermissions ?? true) {
      for (const f of [file, file + '.journal.old', file + '.journal']) await assertPrivateFileIfPresent(f, 'store file');
    }
    const memory = new MemoryState();
    const compactor = new Compactor(file, memory, { journalBytes: options.compactJournalBytes ?? DEFAULT_COMPACT_JOURNAL_BYTES, onEvent: options.onEvent });
    const data = await compactor.read();
    const fresh = data === null;
    memory.load(fresh ? emptySnapshot() : migrate(data, file));
    // The journals beside an older snapshot were written by the older memfa (and by this one
    // since, if it crashed before a compaction): their records are migrated as they are replayed.
    const declared = (data as { schemaVersion?: unknown } | null)?.schemaVersion;
    const journalSchema = fresh ? CURRENT_SCHEMA : typeof declared === 'number' ? declared : 0;
    const old = await replayJournal(file + '.journal.old', memory, journalSchema, false, options.onEvent);
    const current = await replayJournal(file + '.journal', memory, journalSchema, true, options.onEvent);
    const journal: Journal = await Journal.open(file, { length: current.length, oldExists: old.exists }, memory, {
      ...(options.openJournal ? { openJournal: options.openJournal } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
      afterWrite: () => compactor.afterWrite(journal),
    });
    await fsyncDir(path.dirname(file));
    // A new store gets its snapshot now; one whose last compaction did not finish finishes it; a
    // migrated one is written in the current schema, so that no journal mixes two.
    if (fresh || old.exists || journalSchema < CURRENT_SCHEMA) await compactor.compactNow(journal);
    compactor.serve();
    return new FileStore(file, memory, journal, compactor);
  }

  getMailbox(address: string): MailboxRecord | undefined {
    return this.memory.getMailbox(address);
  }
  getDomain(domain: string): DomainRecord | undefined {
    return this.memory.getDomain(domain);
  }
  getGlobal(): LevelSettings {
    return this.memory.getGlobal();
  }
  getMeta<T>(key: string): T | undefined {
    return this.memory.getMeta<T>(key);
  }
  listMailboxes(options: ListOptions = {}): MailboxRecord[] {
    return this.memory.listMailboxes(options);
  }
  allMailboxes(): Iterable<MailboxRecord> {
    return this.memory.allMailboxes();
  }
  listDomains(): DomainRecord[] {
    return this.memory.listDomains();
  }
  countMailboxes(domain?: string): number {
    return this.memory.countMailboxes(domain);
  }

  /** The snapshot's size as last written or read, and the journal's durable bytes since (for the metrics). */
  fileSizes(): { snapshotBytes: number; journalBytes: number } {
    return { snapshotBytes: this.compactor.snapshotBytes, journalBytes: this.journal.bytes };
  }

  transact<T>(change: (tx: StoreTx) => T): Promise<T> {
    if (this.closed) return Promise.reject(new MemfaError('SHUTTING_DOWN', 'the store is closed'));
    const memory = this.memory;
    const ops: Op[] = [];
    const undo: Op[] = [];
    const write = (op: Op) => {
      undo.push([op[0], op[1], memory.current(op[0], op[1])]);
      // The journal gets the value as stored, so that it says exactly what memory holds.
      ops.push([op[0], op[1], memory.apply(op)]);
    };
    const tx: StoreTx = {
      getMailbox: (a) => memory.getMailbox(a),
      getDomain: (d) => memory.getDomain(d),
      getGlobal: () => memory.getGlobal(),
      getMeta: <M>(k: string) => memory.getMeta<M>(k),
      putMailbox: (r) => write(['m', r.address, r]),
      deleteMailbox: (a) => {
        if (!memory.hasMailbox(a)) return false;
        write(['m', a, null]);
        return true;
      },
      putDomain: (r) => write(['d', r.domain, r]),
      deleteDomain: (d) => {
        if (!memory.hasDomain(d)) return false;
        write(['d', d, null]);
        return true;
      },
      putGlobal: (s) => write(['g', '', s]),
      putMeta: (k, v) => write(['x', k, v]),
    };
    let result: T;
    try {
      result = change(tx);
    } catch (err) {
      memory.undo(undo);
      return Promise.reject(err);
    }
    if (ops.length === 0) return Promise.resolve(result);
    return this.journal.append(++memory.seq, ops, undo, result) as Promise<T>;
  }

  /** Waits for queued writes and a background compaction; used by shutdown. */
  async drain(): Promise<void> {
    do {
      await this.journal.idle();
      await this.compactor.idle();
    } while (this.journal.busy);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drain();
    try {
      await this.journal.cutBack().catch(() => undefined);
      if ((this.journal.bytes > 0 || this.journal.oldExists) && !this.journal.suspect) await this.compactor.compactNow(this.journal);
    } finally {
      await this.journal.close();
    }
  }
}
