// The default store: a lowdb JSON snapshot plus an append-only journal beside it.
//
// Why a journal: rewriting the whole snapshot per change costs O(store) per login, which a host
// with 100,000 mailboxes cannot afford. A change is one journal line, appended and fdatasync'd;
// changes that arrive while a sync is running share the next one (group commit). When the journal
// grows past a threshold, and on shutdown, it is folded into the snapshot through lowdb, written
// durably (temp file, fsync, rename, fsync dir), and dropped.
//
// Compaction must not stall logins: at 100,000 mailboxes the snapshot is ~70 MB. So the journal is
// first set aside as memfa.json.journal.old (appends go on into a fresh journal at once), the
// snapshot of the durable state is written in the background in pieces, and only once it is
// durable is the old journal deleted. At every instant the files on disk replay to the state that
// was acknowledged: snapshot, then the old journal, then the journal, skipping entries whose
// sequence number the snapshot already holds.
import { constants as fsc } from 'node:fs';
import { open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { Low, type Adapter } from 'lowdb';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';
import { MemfaError } from '../protocol/errors.js';
import { assertPrivateFileIfPresent, fsyncDir, writeFileAtomic } from '../files/durable.js';
import { CURRENT_SCHEMA, migrate, migrateJournalMailbox, readSnapshotLines, snapshotJson, type Snapshot, type SnapshotOut } from './schema.js';
import { deepFreeze, RecordPool } from './records.js';
import type { ListOptions, Store, StoreTx } from './types.js';
import path from 'node:path';
import { createInterface } from 'node:readline';

/**
 * The journal size that starts a compaction, unless the snapshot is larger (then its size). Each
 * compaction re-serialises the whole store, so this sets the cost per write: at 16 MiB a store of
 * 60,000 mailboxes under 8,000 writes/s compacted every 2-3 s, and writes took a quarter more CPU
 * and had a p99 of 24-33 ms, against 16-19 ms at 64 MiB. The price is a longer journal to replay
 * at start after a crash (95 MB took 1.4 s on the benchmark machine) and the disk it takes.
 * Redis rewrites its append-only file on the same rule (auto-aof-rewrite-min-size 64mb,
 * -percentage 100). The configuration's default (store.compactJournalBytes) is the same value.
 */
export const DEFAULT_COMPACT_JOURNAL_BYTES = 64 * 1024 * 1024;

/** The share of the event loop a background compaction may take to serialise the snapshot. */
const COMPACTION_CPU_SHARE = 0.25;

type Collection = 'm' | 'd' | 'g' | 'x'; // mailboxes, domains, global, meta
type Op = [Collection, string, unknown]; // value null = delete
interface Pending {
  seq: number;
  line: string;
  ops: Op[];
  undo: Op[];
  resolve: () => void;
  reject: (err: Error) => void;
}

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

class DurableJsonFile implements Adapter<SnapshotOut> {
  constructor(private readonly file: string) {}

  async read(): Promise<SnapshotOut | null> {
    const corrupt = (why: string) =>
      new MemfaError('STORE_CORRUPT', `store file ${this.file} is not valid JSON (${why}); refusing to start, the file was left untouched`, {
        data: { file: this.file },
        hint: 'restore the file from a backup, or move it aside to start with an empty store',
      });
    let handle: FileHandle;
    try {
      handle = await open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new MemfaError('STORE_CORRUPT', `cannot read store file ${this.file}: ${(err as Error).message}`, { data: { file: this.file } });
    }
    try {
      // The layout memfa writes is read a record at a time; anything else is parsed whole.
      const lines = createInterface({ input: handle.createReadStream({ encoding: 'utf8', autoClose: false }), crlfDelay: Infinity });
      let streamed: Record<string, unknown> | null;
      try {
        streamed = await readSnapshotLines(lines);
      } catch (err) {
        throw corrupt((err as Error).message);
      } finally {
        lines.close();
      }
      if (streamed !== null) return streamed as unknown as SnapshotOut;
      const text = await readFile(this.file, 'utf8');
      try {
        return JSON.parse(text) as SnapshotOut;
      } catch (err) {
        throw corrupt((err as Error).message);
      }
    } finally {
      await handle.close();
    }
  }

  async write(data: SnapshotOut): Promise<void> {
    await writeFileAtomic(this.file, snapshotJson(data));
  }

  /**
   * The same, while the daemon serves logins: serialising every record is most of a compaction's
   * cost, and done flat out it took most of the event loop for half a second at 60,000 mailboxes,
   * which is where the slowest writes of a busy daemon came from. Paced, it takes at most
   * COMPACTION_CPU_SHARE of the time, for a compaction that lasts longer.
   */
  async writeInBackground(data: SnapshotOut): Promise<void> {
    await writeFileAtomic(this.file, snapshotJson(data), { cpuShare: COMPACTION_CPU_SHARE });
  }
}

export class FileStore implements Store {
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
  private seq = 0;
  private journal: FileHandle | null = null;
  private journalBytes = 0;
  private journalSuspect = false;
  /** Set when the store can no longer promise durability; every write then fails. */
  private broken: MemfaError | null = null;
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** The background snapshot write, while one runs. */
  private compacting: Promise<void> | null = null;
  /** Size of the snapshot file as last written or read. */
  private snapshotBytes = 0;
  /** memfa.json.journal.old exists: set aside by a compaction whose snapshot is not durable yet. */
  private oldJournal = false;
  /** The schema version of the mailbox records in the journals being replayed. */
  private journalSchema = CURRENT_SCHEMA;
  readonly journalFile: string;
  readonly oldJournalFile: string;

  private constructor(
    readonly file: string,
    private readonly db: Low<SnapshotOut>,
    private readonly options: Required<Pick<FileStoreOptions, 'compactJournalBytes'>> & FileStoreOptions,
  ) {
    this.journalFile = file + '.journal';
    this.oldJournalFile = file + '.journal.old';
  }

  static async open(file: string, options: FileStoreOptions = {}): Promise<FileStore> {
    const opts = { compactJournalBytes: DEFAULT_COMPACT_JOURNAL_BYTES, checkPermissions: true, ...options };
    if (opts.checkPermissions) {
      for (const f of [file, file + '.journal.old', file + '.journal']) await assertPrivateFileIfPresent(f, 'store file');
    }
    const db = new Low<SnapshotOut>(new DurableJsonFile(file), emptySnapshot());
    const store = new FileStore(file, db, opts);
    await db.read();
    const existing = await stat(file).catch(() => null);
    const fresh = existing === null;
    store.snapshotBytes = existing?.size ?? 0;
    const declared = (db.data as { schemaVersion?: unknown } | null)?.schemaVersion;
    const snapshot = fresh ? emptySnapshot() : migrate(db.data, file);
    store.load(snapshot);
    // The store holds its own copies of the records now; let the parsed file go.
    db.data = emptySnapshot();
    // The journals beside an older snapshot were written by the older memfa (and by this one
    // since, if it crashed before a compaction): their records are migrated as they are replayed.
    store.journalSchema = fresh ? CURRENT_SCHEMA : typeof declared === 'number' ? declared : 0;
    store.oldJournal = await store.replayJournal(store.oldJournalFile, false);
    await store.replayJournal(store.journalFile, true);
    store.journal = await store.openJournal();
    await fsyncDir(path.dirname(file));
    // A new store gets its snapshot now; one whose last compaction did not finish finishes it; a
    // migrated one is written in the current schema, so that no journal mixes two.
    const migrated = store.journalSchema < CURRENT_SCHEMA;
    if (fresh || store.oldJournal || migrated) await store.compactNow();
    store.journalSchema = CURRENT_SCHEMA;
    return store;
  }

  private openJournal(): Promise<FileHandle> {
    return (this.options.openJournal ?? ((f: string) => open(f, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600)))(this.journalFile);
  }

  private load(s: Snapshot): void {
    this.seq = s.seq;
    this.global = deepFreeze(s.global ?? {});
    const mailboxes = s.mailboxes instanceof Map ? s.mailboxes.entries() : Object.entries(s.mailboxes);
    for (const [k, v] of mailboxes) this.setMailbox(k, this.pool.parsedMailbox(v));
    for (const [k, v] of Object.entries(s.domains)) this.domains.set(k, deepFreeze(v));
    for (const [k, v] of Object.entries(s.meta)) this.meta.set(k, deepFreeze(v));
  }

  /**
   * Applies the entries of `file` newer than the state; returns whether the file exists. The file
   * is read a piece at a time: a journal may be as large as the snapshot (~70 MB at 100,000
   * mailboxes) when a crash leaves it, and holding it whole would add that much to the start.
   */
  private async replayJournal(file: string, current: boolean): Promise<boolean> {
    const unreadable = (err: unknown) =>
      new MemfaError('STORE_CORRUPT', `cannot read store journal ${file}: ${(err as Error).message}`, { data: { file } });
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw unreadable(err);
    }
    let size = 0;
    /** Where the first line not yet applied starts; at the end, the length of the good journal. */
    let offset = 0;
    let applied = 0;
    try {
      const chunk = Buffer.allocUnsafe(JOURNAL_READ_BYTES);
      let carry: Buffer = Buffer.alloc(0); // the start of a line whose end is in the next piece
      let pos = 0;
      try {
        size = (await handle.stat()).size;
      } catch (err) {
        throw unreadable(err);
      }
      reading: while (pos < size) {
        let n: number;
        try {
          n = (await handle.read(chunk, 0, Math.min(chunk.length, size - pos), pos)).bytesRead;
        } catch (err) {
          throw unreadable(err);
        }
        if (n === 0) break;
        pos += n;
        const buf = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)]);
        let start = 0;
        for (;;) {
          const nl = buf.indexOf(0x0a, start);
          if (nl === -1) break; // the line goes on in the next piece, or is a torn tail
          const line = buf.subarray(start, nl).toString('utf8');
          let entry: { s: number; o: Op[] };
          try {
            entry = JSON.parse(line) as { s: number; o: Op[] };
            if (typeof entry.s !== 'number' || !Array.isArray(entry.o)) throw new Error('not a journal entry');
          } catch (err) {
            if (await zerosFrom(handle, offset + (nl - start) + 1, size)) break reading; // garbage last line: torn
            throw new MemfaError('STORE_CORRUPT', `store journal ${file} is corrupt at byte ${offset} (${(err as Error).message}); refusing to start, the file was left untouched`, {
              data: { file: file, offset },
            });
          }
          if (entry.s > this.seq) {
            for (const op of entry.o) this.apply(op, true);
            this.seq = entry.s;
            applied++;
          }
          offset += nl + 1 - start;
          start = nl + 1;
        }
        carry = Buffer.from(buf.subarray(start)); // a copy: the piece's buffer is read into again
      }
    } finally {
      await handle.close();
    }
    if (!current) {
      if (applied > 0) this.options.onEvent?.('store-journal-replayed', { file, entries: applied });
      return true; // the old journal is deleted, not mended, once the snapshot holds it
    }
    this.journalBytes = offset;
    if (offset < size) {
      // Drop the torn tail so that the next append starts on a line boundary.
      const h = await open(file, 'r+');
      try {
        await h.truncate(offset);
        await h.sync();
      } finally {
        await h.close();
      }
      this.options.onEvent?.('store-journal-torn-tail', { file: file, droppedBytes: size - offset });
    }
    if (applied > 0) this.options.onEvent?.('store-journal-replayed', { file, entries: applied });
    return true;
  }

  /**
   * Applies one change to memory; returns the value as stored (the journal records that).
   * `parsed`: the value was parsed from the journal by the store, and nobody else holds it.
   */
  private apply([c, k, v]: Op, parsed = false): unknown {
    switch (c) {
      case 'm': {
        if (v === null) {
          this.deleteMailbox(k);
          return null;
        }
        const record = parsed
          ? this.pool.parsedMailbox((this.journalSchema < CURRENT_SCHEMA ? migrateJournalMailbox(v, this.journalSchema) : v) as MailboxRecord)
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

  private current(c: Collection, k: string): unknown {
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

  /** The snapshot's size as last written or read, and the journal's since (for the metrics). */
  fileSizes(): { snapshotBytes: number; journalBytes: number } {
    return { snapshotBytes: this.snapshotBytes, journalBytes: this.journalBytes };
  }

  transact<T>(change: (tx: StoreTx) => T): Promise<T> {
    if (this.closed) return Promise.reject(new MemfaError('SHUTTING_DOWN', 'the store is closed'));
    const ops: Op[] = [];
    const undo: Op[] = [];
    const write = (op: Op) => {
      undo.push([op[0], op[1], this.current(op[0], op[1])]);
      // The journal gets the value as stored, so that it says exactly what memory holds.
      ops.push([op[0], op[1], this.apply(op)]);
    };
    const tx: StoreTx = {
      getMailbox: (a) => this.getMailbox(a),
      getDomain: (d) => this.getDomain(d),
      getGlobal: () => this.getGlobal(),
      getMeta: <M>(k: string) => this.getMeta<M>(k),
      putMailbox: (r) => write(['m', r.address, r]),
      deleteMailbox: (a) => {
        if (!this.mailboxes.has(a)) return false;
        write(['m', a, null]);
        return true;
      },
      putDomain: (r) => write(['d', r.domain, r]),
      deleteDomain: (d) => {
        if (!this.domains.has(d)) return false;
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
      for (let i = undo.length - 1; i >= 0; i--) this.apply(undo[i]!);
      return Promise.reject(err);
    }
    if (ops.length === 0) return Promise.resolve(result);
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ seq, line: JSON.stringify({ s: seq, o: ops }) + '\n', ops, undo, resolve: () => resolve(result), reject });
      this.kick();
    });
  }

  /** Starts the flush loop unless it runs. */
  private kick(): void {
    if (this.flushing !== null || this.queue.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = null;
      // A transaction queued after the loop's last look at the queue but before this callback
      // (e.g. by code resuming from the loop's last resolve) would otherwise wait forever.
      this.kick();
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        if (this.broken !== null) throw this.broken;
        if (this.journal === null) throw new Error('journal is not open');
        await this.cutSuspectTail();
        const data = Buffer.from(batch.map((p) => p.line).join(''), 'utf8');
        await this.journal.write(data);
        await this.journal.datasync();
        this.journalBytes += data.length;
      } catch (err) {
        // Undo newest first: later transactions were applied on top of this batch.
        const failed = [...batch, ...this.queue.splice(0)];
        for (let i = failed.length - 1; i >= 0; i--) {
          const undo = failed[i]!.undo;
          for (let j = undo.length - 1; j >= 0; j--) this.apply(undo[j]!);
        }
        this.journalSuspect = true;
        await this.cutSuspectTail().catch(() => undefined); // best effort now; retried before the next append
        this.options.onEvent?.('store-write-failed', { file: this.journalFile, error: (err as Error).message });
        const failure = new MemfaError('STORE_FAILED', `the store could not be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was changed`, {
          data: { file: this.journalFile },
          hint: 'check free disk space and the data directory; the daemon keeps serving reads',
        });
        for (const p of failed) p.reject(failure);
        continue;
      }
      for (const p of batch) p.resolve();
      // Compacting costs the size of the snapshot; waiting until the journal is at least that large
      // keeps the cost per write constant however large the store grows.
      if (this.journalBytes >= Math.max(this.options.compactJournalBytes, this.snapshotBytes) && this.compacting === null) {
        await this.startCompaction().catch((err: Error) => this.options.onEvent?.('store-compact-failed', { error: err.message }));
      }
    }
  }

  /**
   * Sets the journal aside and writes the snapshot in the background. Runs between two batches of
   * the flush loop, so no append is in progress.
   */
  private async startCompaction(): Promise<void> {
    const view = this.snapshot();
    if (!this.oldJournal) {
      await rename(this.journalFile, this.oldJournalFile);
      let next: FileHandle;
      try {
        next = await this.openJournal();
      } catch (err) {
        // Without a fresh journal, appends must go on into the one just set aside: put it back.
        await rename(this.oldJournalFile, this.journalFile);
        throw err;
      }
      const previous = this.journal;
      this.journal = next;
      this.journalBytes = 0;
      this.oldJournal = true;
      await previous?.close().catch(() => undefined);
      try {
        await fsyncDir(path.dirname(this.file));
      } catch (err) {
        // The new journal's name may not survive a crash: take no more writes until a restart
        // (everything acknowledged so far is in the journal set aside, whichever name it has).
        this.broken = new MemfaError('STORE_FAILED', `the store directory could not be synced (${(err as Error).message}); restart the daemon`, {
          data: { file: this.file },
        });
        throw err;
      }
    }
    // If a snapshot failed before, the old journal is still there: this one covers it too.
    this.compacting = this.writeSnapshot(view, true)
      .catch((err: Error) => this.options.onEvent?.('store-compact-failed', { error: err.message }))
      .finally(() => (this.compacting = null));
  }

  private async writeSnapshot(view: SnapshotOut, background = false): Promise<void> {
    if (background) {
      await (this.db.adapter as DurableJsonFile).writeInBackground(view);
    } else {
      this.db.data = view;
      await this.db.write();
    }
    this.snapshotBytes = (await stat(this.file)).size;
    if (this.oldJournal) {
      await unlink(this.oldJournalFile).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.oldJournal = false;
      await fsyncDir(path.dirname(this.file));
    }
    this.options.onEvent?.('store-compacted', { file: this.file, mailboxes: view.mailboxes instanceof Map ? view.mailboxes.size : Object.keys(view.mailboxes).length });
  }

  /**
   * After a failed append the journal may hold some or all of the failed batch (a short write, or
   * a write whose fsync failed). Those changes were reported as failed and undone in memory, so
   * they must not be replayed at the next start: cut the journal back to its last good length.
   */
  private async cutSuspectTail(): Promise<void> {
    if (!this.journalSuspect || this.journal === null) return;
    await this.journal.truncate(this.journalBytes);
    await this.journal.datasync();
    this.journalSuspect = false;
  }

  /**
   * The durable state, captured now: the in-memory state minus transactions still queued. Records
   * are frozen and replaced, never changed, so copying the maps is enough. `copy` false: the maps
   * themselves, for a caller that knows nothing can change them while the snapshot is written
   * (a copy of 100,000 entries is a few MB at the daemon's peak, on shutdown).
   */
  private snapshot(copy = true): SnapshotOut {
    if (!copy && this.queue.length === 0) {
      return { schemaVersion: CURRENT_SCHEMA, seq: this.seq, global: this.global, domains: this.domains, mailboxes: this.mailboxes, meta: this.meta };
    }
    const mailboxes = new Map(this.mailboxes);
    const domains = new Map(this.domains);
    const meta = new Map(this.meta);
    let global = this.global;
    let seq = this.seq;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const p = this.queue[i]!;
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

  /**
   * Folds everything into the snapshot and empties the journal; only with no append running, and
   * only where no transaction can start meanwhile (in open, before the store is handed out, and
   * in close, once it refuses them), so the live maps are written without a copy.
   */
  private async compactNow(): Promise<void> {
    await this.writeSnapshot(this.snapshot(false));
    if (this.journal !== null) {
      await this.journal.truncate(0);
      await this.journal.sync();
      this.journalBytes = 0;
    }
  }

  /** Waits for queued writes; used by shutdown. */
  async drain(): Promise<void> {
    while (this.flushing !== null || this.compacting !== null) await (this.flushing ?? this.compacting);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.drain();
    try {
      await this.cutSuspectTail().catch(() => undefined);
      if ((this.journalBytes > 0 || this.oldJournal) && !this.journalSuspect) await this.compactNow();
    } finally {
      await this.journal?.close();
      this.journal = null;
    }
  }
}

/** The journal is read in pieces of this size at start. */
const JOURNAL_READ_BYTES = 1024 * 1024;

/**
 * Whether the bytes of `handle` from `from` to `size` are all zero (or none): what is left after
 * a crash mid-append on file systems that extend the file before writing it. A newline is not
 * zero, so such a rest holds no further line.
 */
async function zerosFrom(handle: FileHandle, from: number, size: number): Promise<boolean> {
  const buf = Buffer.allocUnsafe(Math.min(JOURNAL_READ_BYTES, Math.max(1, size - from)));
  for (let pos = from; pos < size; ) {
    const n = (await handle.read(buf, 0, Math.min(buf.length, size - pos), pos)).bytesRead;
    if (n === 0) break;
    if (!buf.subarray(0, n).every((b) => b === 0)) return false;
    pos += n;
  }
  return true;
}

function emptySnapshot(): Snapshot {
  return { schemaVersion: CURRENT_SCHEMA, seq: 0, global: {}, domains: {}, mailboxes: {}, meta: {} };
}
