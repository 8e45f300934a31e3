// The snapshot's schema version and the migrations that bring an older file up to date.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';
import { emptyFailures } from '../core/model.js';
import { MemfaError } from '../protocol/errors.js';

export const CURRENT_SCHEMA = 4;

export interface Snapshot {
  schemaVersion: number;
  /** The last journal sequence number folded into this snapshot. */
  seq: number;
  global: LevelSettings;
  domains: Record<string, DomainRecord>;
  mailboxes: Record<string, MailboxRecord> | Map<string, MailboxRecord>;
  meta: Record<string, unknown>;
}

/** What the store writes: maps are accepted so that a snapshot needs no copy into plain objects. */
export type Entries<T> = Record<string, T> | ReadonlyMap<string, T>;

export interface SnapshotOut {
  schemaVersion: number;
  seq: number;
  global: LevelSettings;
  domains: Entries<DomainRecord>;
  mailboxes: Entries<MailboxRecord>;
  meta: Entries<unknown>;
}

function entriesOf<T>(e: Entries<T>): Iterable<[string, T]> {
  return e instanceof Map ? e.entries() : Object.entries(e as Record<string, T>);
}

/**
 * The snapshot as JSON, in pieces of a few dozen records: the same document JSON.stringify would
 * give, except that each mailbox stands on a line of its own (mailboxes last). It stays one valid
 * JSON document, and it can be read back a record at a time (see readSnapshotLines). Pieces stay
 * well under V8's large-object size (128 KB), so that those alive when a GC runs are not kept
 * until the next full one.
 */
export function* snapshotJson(d: SnapshotOut, recordsPerPiece = 64): Generator<string> {
  const plain = (e: Entries<unknown>) => JSON.stringify(e instanceof Map ? Object.fromEntries(e) : e);
  yield `${SNAPSHOT_HEAD}${d.schemaVersion},"seq":${d.seq},"global":${JSON.stringify(d.global)},"domains":${plain(d.domains)},"meta":${plain(d.meta)},"mailboxes":{`;
  let piece: string[] = [];
  let first = true;
  for (const [k, v] of entriesOf(d.mailboxes)) {
    piece.push(`${first ? '' : ','}\n${JSON.stringify(k)}:${JSON.stringify(v)}`);
    first = false;
    if (piece.length >= recordsPerPiece) {
      yield piece.join('');
      piece = [];
    }
  }
  yield piece.join('') + '\n}}\n';
}

const SNAPSHOT_HEAD = '{"schemaVersion":';

/**
 * Turns a mailbox record just parsed from a snapshot of `schemaVersion` (the header's value, as
 * the file says it) into the form the store keeps; it may return the record as it is.
 */
export type ReviveMailbox = (record: unknown, schemaVersion: unknown) => unknown;

/**
 * Reads a snapshot written by snapshotJson one line at a time, so that loading a large store never
 * holds the whole file as one string. Returns null when the file has another layout (written by
 * hand or by an older memfa); the caller then parses it whole.
 *
 * `revive` is applied to each record as soon as its line is parsed. Whatever it drops then (the
 * copies of values records share, see records.ts) dies young, instead of staying alive with every
 * other record until the whole file is read: at 100,000 mailboxes that was tens of MB alive at the
 * last full GC of a start, and V8 sizes the heap from what that GC finds alive.
 */
export async function readSnapshotLines(lines: AsyncIterable<string>, revive?: ReviveMailbox): Promise<Record<string, unknown> | null> {
  let header: Record<string, unknown> | null = null;
  const mailboxes = new Map<string, unknown>();
  let closed = false;
  for await (const raw of lines) {
    if (header === null) {
      if (!raw.startsWith(SNAPSHOT_HEAD) || !raw.endsWith('"mailboxes":{')) return null;
      header = JSON.parse(raw + '}}') as Record<string, unknown>;
      continue;
    }
    if (closed) {
      if (raw.trim() !== '') throw new Error('content after the end of the document');
      continue;
    }
    if (raw === '}}') {
      closed = true;
      continue;
    }
    const entry = JSON.parse(`{${raw.endsWith(',') ? raw.slice(0, -1) : raw}}`) as Record<string, unknown>;
    for (const [k, v] of Object.entries(entry)) {
      const record = revive === undefined ? v : revive(v, header['schemaVersion']);
      // The key and the record's address are the same text: keep one of the two strings.
      const own = isObject(record) ? record['address'] : undefined;
      mailboxes.set(own === k ? own : k, record);
    }
  }
  if (header === null) return null;
  if (!closed) throw new Error('the document ends early (truncated file)');
  header['mailboxes'] = mailboxes;
  return header;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Version 0 is a store written by hand or by an import script: no schemaVersion, mailboxes that
 * carry only some fields. The step fills every field a version 1 record has.
 */
function migrate0to1(data: Record<string, unknown>): Record<string, unknown> {
  const mailboxes: Record<string, unknown> = {};
  const source = data['mailboxes'] instanceof Map ? Object.fromEntries(data['mailboxes'] as Map<string, unknown>) : isObject(data['mailboxes']) ? data['mailboxes'] : {};
  for (const [address, raw] of Object.entries(source)) {
    const r = isObject(raw) ? raw : {};
    const now = Date.now();
    mailboxes[address] = {
      address,
      settings: isObject(r['settings']) ? r['settings'] : {},
      phone: r['phone'] ?? null,
      altEmail: r['altEmail'] ?? null,
      totp: r['totp'] ?? null,
      pendingTotp: r['pendingTotp'] ?? null,
      openCode: r['openCode'] ?? null,
      ips: Array.isArray(r['ips']) ? r['ips'] : [],
      countries: Array.isArray(r['countries']) ? r['countries'] : [],
      failures: isObject(r['failures']) ? r['failures'] : emptyFailures(),
      recoveryCodeHashes: Array.isArray(r['recoveryCodeHashes']) ? r['recoveryCodeHashes'] : [],
      createdAt: typeof r['createdAt'] === 'number' ? r['createdAt'] : now,
      updatedAt: typeof r['updatedAt'] === 'number' ? r['updatedAt'] : now,
    };
  }
  return {
    schemaVersion: 1,
    seq: 0,
    global: isObject(data['global']) ? data['global'] : {},
    domains: isObject(data['domains']) ? data['domains'] : {},
    mailboxes,
    meta: isObject(data['meta']) ? data['meta'] : {},
  };
}

/**
 * Version 2 changed two things in a mailbox record:
 * - userSettings keeps what a user chose through self-service apart from what an administrator set
 *   for the mailbox (settings). A version 1 record held both in settings and cannot tell them
 *   apart, so they stay administrator settings: the stricter reading (the user cannot undo them;
 *   an administrator can, with "inherit").
 * - failures are counted apart for the mailbox's remembered addresses and for all others (see
 *   core/lockout.ts). An old count is put on both sides, so that a mailbox locked before the
 *   upgrade stays locked for every login after it; one without failures gets none.
 * Records already in the new shape are returned as they are, so the step can also be applied to
 * journal entries.
 */
export function upgradeMailboxTo2(raw: unknown): unknown {
  if (!isObject(raw)) return raw;
  let r = raw;
  if (!isObject(r['userSettings'])) r = { ...r, userSettings: {} };
  const old = r['failures'];
  if (isObject(old) && 'consecutive' in old) {
    const clean = old['consecutive'] === 0 && old['hardLocked'] !== true && (old['lockedUntil'] ?? null) === null;
    r = { ...r, failures: clean ? { known: null, elsewhere: null } : { known: { ...old }, elsewhere: { ...old } } };
  }
  return r;
}

function migrate1to2(data: Record<string, unknown>): Record<string, unknown> {
  const source = data['mailboxes'];
  // A store of the wrong shape is left as it is, for migrate() to refuse.
  if (!(source instanceof Map) && !isObject(source)) return { ...data, schemaVersion: 2 };
  const mailboxes = new Map<string, unknown>();
  for (const [address, raw] of source instanceof Map ? (source as Map<string, unknown>).entries() : Object.entries(source)) {
    mailboxes.set(address, upgradeMailboxTo2(raw));
  }
  return { ...data, schemaVersion: 2, mailboxes };
}

/** Version 3 added app passwords (MailboxRecord.appPasswords): an older record has none. */
export function upgradeMailboxTo3(raw: unknown): unknown {
  if (!isObject(raw) || Array.isArray(raw['appPasswords'])) return raw;
  return { ...raw, appPasswords: [] };
}

/** Applies a record step to every mailbox of a snapshot. */
function eachMailbox(data: Record<string, unknown>, version: number, step: (r: unknown) => unknown): Record<string, unknown> {
  const source = data['mailboxes'];
  // A store of the wrong shape is left as it is, for migrate() to refuse.
  if (!(source instanceof Map) && !isObject(source)) return { ...data, schemaVersion: version };
  const mailboxes = new Map<string, unknown>();
  for (const [address, raw] of source instanceof Map ? (source as Map<string, unknown>).entries() : Object.entries(source)) mailboxes.set(address, step(raw));
  return { ...data, schemaVersion: version, mailboxes };
}

/**
 * Version 4 keeps an open code sealed beside its hash (OpenCode.sealedCode), so that any daemon
 * can send the same code again. An older open code has none and stays as it is: it is still
 * checked by its hash, and a repeated challenge sends a new code instead of it.
 */
function migrate3to4(data: Record<string, unknown>): Record<string, unknown> {
  return { ...data, schemaVersion: 4 };
}

const MIGRATIONS: Record<number, (d: Record<string, unknown>) => Record<string, unknown>> = {
  0: migrate0to1,
  1: migrate1to2,
  2: (d) => eachMailbox(d, 3, upgradeMailboxTo3),
  3: migrate3to4,
};

/**
 * The steps a mailbox record of `version` needs, for records read from a journal: a journal holds
 * whole records as the memfa that wrote it shaped them, and a crash can leave one beside a
 * snapshot of the same older version.
 */
const RECORD_MIGRATIONS: Record<number, (r: unknown) => unknown> = { 1: upgradeMailboxTo2, 2: upgradeMailboxTo3 }; // 3 → 4 changes no record

export function migrateJournalMailbox(record: unknown, version: number): unknown {
  let r = record;
  for (let v = Math.max(version, 1); v < CURRENT_SCHEMA; v++) {
    const step = RECORD_MIGRATIONS[v];
    if (step !== undefined) r = step(r);
  }
  return r;
}

export function migrate(data: unknown, file: string): Snapshot {
  if (!isObject(data)) throw new MemfaError('STORE_CORRUPT', `store file ${file} does not hold a JSON object; refusing to start, the file was left untouched`, { data: { file } });
  let current = data;
  const declared = current['schemaVersion'] === undefined ? 0 : current['schemaVersion'];
  if (typeof declared !== 'number' || !Number.isInteger(declared) || declared < 0) {
    throw new MemfaError('STORE_CORRUPT', `store file ${file} has an invalid schemaVersion; refusing to start`, { data: { file } });
  }
  let version = declared;
  if (version > CURRENT_SCHEMA) {
    throw new MemfaError('STORE_CORRUPT', `store file ${file} has schema version ${version}, newer than this memfa understands (${CURRENT_SCHEMA}); upgrade memfa`, { data: { file } });
  }
  while (version < CURRENT_SCHEMA) {
    const step = MIGRATIONS[version];
    if (step === undefined) throw new MemfaError('STORE_CORRUPT', `no migration from store schema ${version} (${file})`, { data: { file } });
    current = step(current);
    version = current['schemaVersion'] as number;
  }
  for (const key of ['domains', 'mailboxes', 'meta']) {
    if (!isObject(current[key]) && !(current[key] instanceof Map)) throw new MemfaError('STORE_CORRUPT', `store file ${file}: "${key}" is not an object; refusing to start, the file was left untouched`, { data: { file } });
  }
  if (typeof current['seq'] !== 'number') current['seq'] = 0;
  return current as unknown as Snapshot;
}
