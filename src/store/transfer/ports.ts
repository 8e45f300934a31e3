// What `memfa store export` and `memfa store import` need of a backend: the state read whole from
// one consistent point, and written whole into a target that held none. Each backend implements
// them over its own storage (transfer/file.ts, postgres/transfer.ts); the stream and its checks
// (stream.ts) know nothing of either.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStreamName } from '../../protocol/results.js';
import type { Backend, StateCounts } from './format.js';

/** The state as of one moment, each kind in the stream's order (format.ts). */
export interface StateSource {
  readonly backend: Backend;
  /** What the iterations below give. */
  counts(): Promise<StateCounts>;
  global(): Promise<LevelSettings>;
  /** By domain name (byte order). */
  domains(): AsyncIterable<DomainRecord>;
  /** By key (byte order), only the carried ones (format.ts isCarriedMeta). */
  meta(): AsyncIterable<{ key: string; value: unknown }>;
  /** By address (byte order), a page at a time where the backend can. */
  mailboxes(): AsyncIterable<MailboxRecord>;
  /** The stream's lines as stored, oldest first, newline excluded. */
  audit(stream: AuditStreamName): AsyncIterable<string>;
  close(): Promise<void>;
}

/**
 * A target being filled. Nothing is visible (to a daemon) until commit(); abort() leaves the
 * target as it was. The importer calls the methods in the stream's order.
 */
export interface StateSink {
  readonly backend: Backend;
  global(settings: LevelSettings): Promise<void>;
  domain(record: DomainRecord): Promise<void>;
  meta(key: string, value: unknown): Promise<void>;
  mailbox(record: MailboxRecord): Promise<void>;
  /** `seq`: the line's, as the reader checked it. */
  audit(stream: AuditStreamName, line: string, seq: number): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** What a target holds before an import: enough to refuse it, and to say why. */
export interface TargetState {
  mailboxes: number;
  domains: number;
  /** Meta documents other than the start markers (format.ts isStartMarker) and what is not carried. */
  meta: number;
  globalSettings: boolean;
  auditLines: number;
}

export function holdsState(t: TargetState): boolean {
  return t.mailboxes > 0 || t.domains > 0 || t.meta > 0 || t.globalSettings || t.auditLines > 0;
}

/** The refusal of an import into `what` (which holds `t`): it never merges. */
export function targetHoldsState(what: string, t: TargetState): MemfaError {
  const held = [
    t.mailboxes > 0 ? `${t.mailboxes} mailboxes` : '',
    t.domains > 0 ? `${t.domains} domains` : '',
    t.globalSettings ? 'global settings' : '',
    t.meta > 0 ? `${t.meta} documents (policy, administrators, ...)` : '',
    t.auditLines > 0 ? `${t.auditLines} audit lines` : '',
  ].filter((s) => s !== '');
  return new MemfaError('CONFLICT', `${what} already hold state (${held.join(', ')}): an import never merges into it`, {
    data: { target: t },
    hint: 'import into an empty store, or give --replace to replace it whole (back it up first)',
  });
}
