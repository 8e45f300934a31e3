// The file store's side of export and import (ports.ts). Both run offline: the caller holds the
// data directory's lock (daemon/lock.ts), so no daemon has the store open meanwhile. Why not a copy
// taken while a daemon runs: the daemon's state is its memory, made durable line by line in the
// journal, with the audit anchors in the same store; the files read at some instant need not be
// a state the daemon acknowledged together with its audit files.
//
// Export reads the store as a daemon's start does (snapshot, then the journal set aside, then the
// journal), without writing anything: no compaction, no repair of a torn tail. Import gathers the
// state in memory (a file store is held in memory whole by its daemon too), writes the audit
// files, then the snapshot in the layout the daemon writes (schema.ts snapshotJson), then an empty
// journal: a store the daemon opens as its own.
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import { fsyncDir, writeFileAtomic } from '../../files/durable.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStreamName } from '../../protocol/results.js';
import { replayJournal } from '../journal.js';
import { MemoryState } from '../memory.js';
import { CURRENT_SCHEMA, migrate, snapshotJson } from '../schema.js';
import { SnapshotFile } from '../snapshot.js';
import { AuditImport, auditLines, countAuditLines, type AuditConfig } from './audit-files.js';
import { AUDIT_STREAMS, isCarriedMeta, isStartMarker, type StateCounts } from './format.js';
import { holdsState, targetHoldsState, type StateSink, type StateSource, type TargetState } from './ports.js';
import { byteOrder } from './stream.js';

/** The state of the store at `file` read as a start would, or null when there is none. */
async function loadStore(file: string): Promise<MemoryState | null> {
  const memory = new MemoryState();
  const data = await new SnapshotFile(file, () => undefined, (record, version) => memory.reviveMailbox(record, version)).read();
  const snapshot = data === null ? null : migrate(data, file);
  if (snapshot !== null) memory.load(snapshot);
  const schema = snapshot === null ? CURRENT_SCHEMA : typeof (data as { schemaVersion?: unknown }).schemaVersion === 'number' ? (data as { schemaVersion: number }).schemaVersion : 0;
  const old = await replayJournal(file + '.journal.old', memory, schema, false);
  const current = await replayJournal(file + '.journal', memory, schema, false);
  return snapshot === null && !old.exists && !current.exists ? null : memory;
}

type Maps = ReturnType<MemoryState['view']>;
const mapOf = <T>(e: Maps['mailboxes'] | Maps['domains'] | Maps['meta']) => e as ReadonlyMap<string, T>;

export class FileSource implements StateSource {
  readonly backend = 'file' as const;

  private constructor(
    private readonly state: Maps,
    private readonly audits: AuditConfig,
  ) {}

  static async open(storeFile: string, audits: AuditConfig): Promise<FileSource> {
    const memory = await loadStore(storeFile);
    if (memory === null) throw new MemfaError('NOT_FOUND', `there is no store at ${storeFile}: nothing to export`, { data: { file: storeFile }, hint: 'check store.file and dataDir in the configuration (--config)' });
    return new FileSource(memory.view([], false), audits);
  }

  private metaKeys(): string[] {
    return [...mapOf<unknown>(this.state.meta).keys()].filter(isCarriedMeta).sort(byteOrder);
  }

  async counts(): Promise<StateCounts> {
    const audit = { security: 0, logins: 0 };
    for (const s of AUDIT_STREAMS) audit[s] = await countAuditLines(this.audits[s]);
    return { domains: mapOf(this.state.domains).size, meta: this.metaKeys().length, mailboxes: mapOf(this.state.mailboxes).size, audit };
  }

  global(): Promise<LevelSettings> {
    return Promise.resolve(this.state.global);
  }

  async *domains(): AsyncIterable<DomainRecord> {
    const all = mapOf<DomainRecord>(this.state.domains);
    for (const k of [...all.keys()].sort(byteOrder)) yield all.get(k)!;
  }

  async *meta(): AsyncIterable<{ key: string; value: unknown }> {
    const all = mapOf<unknown>(this.state.meta);
    for (const key of this.metaKeys()) yield { key, value: all.get(key) };
  }

  async *mailboxes(): AsyncIterable<MailboxRecord> {
    const all = mapOf<MailboxRecord>(this.state.mailboxes);
    for (const k of [...all.keys()].sort(byteOrder)) yield all.get(k)!;
  }

  async *audit(stream: AuditStreamName): AsyncIterable<string> {
    for await (const line of auditLines(this.audits[stream])) yield line.toString('utf8');
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A compact name for the files an import with --replace sets aside: the time, to the second. */
function stampOf(now: Date): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

export class FileSink implements StateSink {
  readonly backend = 'file' as const;
  private settings: LevelSettings = {};
  private readonly domains = new Map<string, DomainRecord>();
  private readonly metas = new Map<string, unknown>();
  private readonly boxes = new Map<string, MailboxRecord>();
  private readonly audits: Record<AuditStreamName, AuditImport>;
  private readonly snapshotTemp: string;

  private constructor(
    private readonly storeFile: string,
    audits: AuditConfig,
    /** The replaced store's last sequence number: the new snapshot claims it, so that its journals can never replay over it. */
    private readonly seq: number,
    private readonly now: () => Date,
  ) {
    this.audits = { security: new AuditImport(audits.security), logins: new AuditImport(audits.logins) };
    this.snapshotTemp = path.join(path.dirname(storeFile), `.${path.basename(storeFile)}.import-${process.pid}`);
  }

  /** What the store at `storeFile` and the audit files hold now. */
  static async target(storeFile: string, audits: AuditConfig): Promise<{ state: TargetState; seq: number }> {
    const memory = await loadStore(storeFile);
    const view = memory?.view([], false);
    let auditLines = 0;
    for (const s of AUDIT_STREAMS) auditLines += await countAuditLines(audits[s]);
    const meta = view === undefined ? 0 : [...mapOf<unknown>(view.meta).keys()].filter((k) => isCarriedMeta(k) && !isStartMarker(k)).length;
    const state: TargetState = {
      mailboxes: view === undefined ? 0 : mapOf(view.mailboxes).size,
      domains: view === undefined ? 0 : mapOf(view.domains).size,
      meta,
      globalSettings: view !== undefined && Object.keys(view.global).length > 0,
      auditLines,
    };
    return { state, seq: memory?.seq ?? 0 };
  }

  /** A sink into the file store at `storeFile`; CONFLICT when it holds state, unless `replace`. */
  static async open(storeFile: string, audits: AuditConfig, opts: { replace: boolean; now?: () => Date }): Promise<FileSink> {
    const { state, seq } = await FileSink.target(storeFile, audits);
    if (holdsState(state) && !opts.replace) throw targetHoldsState(`the file store ${storeFile} and its audit files`, state);
    return new FileSink(storeFile, audits, seq, opts.now ?? (() => new Date()));
  }

  global(settings: LevelSettings): Promise<void> {
    this.settings = settings;
    return Promise.resolve();
  }

  domain(record: DomainRecord): Promise<void> {
    this.domains.set(record.domain, record);
    return Promise.resolve();
  }

  meta(key: string, value: unknown): Promise<void> {
    this.metas.set(key, value);
    return Promise.resolve();
  }

  mailbox(record: MailboxRecord): Promise<void> {
    this.boxes.set(record.address, record);
    return Promise.resolve();
  }

  audit(stream: AuditStreamName, line: string, seq: number): Promise<void> {
    return this.audits[stream].add(line, seq);
  }

  /**
   * Everything is first written beside the target and made durable (the audit streams' files, the
   * snapshot under a temporary name); only then is the target changed, by renames: the audit files
   * (the replaced ones set aside), then the snapshot, with a sequence number past every entry of
   * the replaced store's journals, then those journals go. A failure before the renames leaves the
   * target as it was; a crash among them leaves the new state or the old one's files beside it.
   */
  async commit(): Promise<void> {
    for (const s of AUDIT_STREAMS) {
      await this.audits[s].prepare();
      const anchor = this.audits[s].anchor();
      if (anchor !== null) this.metas.set(`auditAnchor.${s}`, anchor);
    }
    await writeFileAtomic(
      this.snapshotTemp,
      snapshotJson({ schemaVersion: CURRENT_SCHEMA, seq: this.seq, global: this.settings, domains: this.domains, mailboxes: this.boxes, meta: this.metas }),
    );
    const stamp = stampOf(this.now());
    for (const s of AUDIT_STREAMS) await this.audits[s].install(stamp);
    await rename(this.snapshotTemp, this.storeFile);
    await fsyncDir(path.dirname(this.storeFile));
    for (const j of [this.storeFile + '.journal.old', this.storeFile + '.journal']) await unlink(j).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
    const journal = await open(this.storeFile + '.journal', 'wx', 0o600);
    await journal.sync();
    await journal.close();
    await fsyncDir(path.dirname(this.storeFile));
  }

  async abort(): Promise<void> {
    for (const s of AUDIT_STREAMS) await this.audits[s].abort();
    await unlink(this.snapshotTemp).catch(() => undefined);
  }
}
