// Compaction: folding the journal into the snapshot, so that the journal stays short and a start
// replays little. The snapshot goes through lowdb: a Low over the durable SnapshotFile adapter.
//
// Compaction must not stall logins: at 100,000 mailboxes the snapshot is ~70 MB. So the journal is
// first set aside as <store>.journal.old (appends go on into a fresh journal at once), the
// snapshot of the durable state is written in the background, paced, and only once it is durable
// is the old journal deleted. At every instant the files on disk replay to the state that was
// acknowledged: snapshot, then the old journal, then the journal, skipping entries whose sequence
// number the snapshot already holds.
import { Low } from 'lowdb';
import type { Journal } from './journal.js';
import type { MemoryState } from './memory.js';
import { CURRENT_SCHEMA, type Snapshot, type SnapshotOut } from './schema.js';
import { SnapshotFile } from './snapshot.js';

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

/**
 * The share of the event loop a background compaction may take to serialise the snapshot.
 * Serialising every record is most of a compaction's cost, and done flat out it took most of the
 * event loop for half a second at 60,000 mailboxes, which is where the slowest writes of a busy
 * daemon came from. Paced, it takes at most this share of the time, for a compaction that lasts
 * longer.
 */
const COMPACTION_CPU_SHARE = 0.25;

export function emptySnapshot(): Snapshot {
  return { schemaVersion: CURRENT_SCHEMA, seq: 0, global: {}, domains: {}, mailboxes: {}, meta: {} };
}

export interface CompactorOptions {
  /** The journal size that starts a compaction (unless the snapshot is larger). */
  journalBytes: number;
  onEvent?: ((event: string, fields: Record<string, unknown>) => void) | undefined;
}

export class Compactor {
  private readonly snapshot: SnapshotFile;
  private readonly db: Low<SnapshotOut>;
  /** The store serves requests: snapshots are written paced, in the background. */
  private serving = false;
  /** The background snapshot write, while one runs. */
  private compacting: Promise<void> | null = null;

  constructor(
    readonly file: string,
    private readonly memory: MemoryState,
    private readonly options: CompactorOptions,
  ) {
    this.snapshot = new SnapshotFile(file, () => (this.serving ? COMPACTION_CPU_SHARE : undefined));
    this.db = new Low<SnapshotOut>(this.snapshot, emptySnapshot());
  }

  /** The snapshot file's size as last written or read. */
  get snapshotBytes(): number {
    return this.snapshot.bytes;
  }

  /** The snapshot as the file holds it (checked and migrated by the caller), or null if there is none. */
  async read(): Promise<unknown> {
    const none = this.db.data;
    await this.db.read();
    const data = this.db.data === none ? null : this.db.data;
    // The store holds its own copies of the records once loaded; let the parsed file go.
    this.db.data = emptySnapshot();
    return data;
  }

  /** From now on snapshots are written in the background, paced: the store serves requests. */
  serve(): void {
    this.serving = true;
  }

  /**
   * Called after each batch of journal appends is durable, with none in flight: compacting costs the size of
   * the snapshot, so waiting until the journal is at least that large keeps the cost per write
   * constant however large the store grows.
   */
  async afterWrite(journal: Journal): Promise<void> {
    if (this.compacting !== null || journal.bytes < Math.max(this.options.journalBytes, this.snapshot.bytes)) return;
    await this.start(journal).catch((err: Error) => this.options.onEvent?.('store-compact-failed', { error: err.message }));
  }

  /** Sets the journal aside and writes the snapshot of the durable state in the background. */
  private async start(journal: Journal): Promise<void> {
    const view = this.memory.view(journal.queued);
    // If a snapshot failed before, the old journal is still there: this one covers it too.
    if (!journal.oldExists) await journal.setAside();
    this.compacting = this.write(view, journal)
      .catch((err: Error) => this.options.onEvent?.('store-compact-failed', { error: err.message }))
      .finally(() => (this.compacting = null));
  }

  private async write(view: SnapshotOut, journal: Journal): Promise<void> {
    this.db.data = view;
    try {
      await this.db.write();
    } finally {
      // A background view holds copies of the maps: let them go.
      if (this.db.data === view) this.db.data = emptySnapshot();
    }
    await journal.dropOld();
    this.options.onEvent?.('store-compacted', { file: this.file, mailboxes: view.mailboxes instanceof Map ? view.mailboxes.size : Object.keys(view.mailboxes).length });
  }

  /**
   * Folds everything into the snapshot and empties the journal; only with no append running, and
   * only where no transaction can start meanwhile (in open, before the store is handed out, and
   * in close, once it refuses them), so the live maps are written without a copy.
   */
  async compactNow(journal: Journal): Promise<void> {
    this.serving = false; // nothing waits on the event loop now: written flat out
    await this.write(this.memory.view(journal.queued, false), journal);
    await journal.empty();
  }

  /** Waits for a background compaction. */
  async idle(): Promise<void> {
    while (this.compacting !== null) await this.compacting;
  }
}
