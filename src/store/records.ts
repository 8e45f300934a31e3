// The form in which the store holds a mailbox record in memory: frozen, compact, and owned by the
// store alone.
//
// At 100,000 mailboxes the records are most of the daemon's heap, so their form matters:
// - Records arrive from the services as spreads of frozen records ({ ...rec, updatedAt }). V8
//   gives such a copy a map of its own, and freezing it then allocates another map and descriptor
//   array per record (measured: ~1.6 KB kept per write instead of ~1.1 KB). Rebuilding the record
//   as one object literal gives every record the same few maps, all fields in-object.
// - Values most mailboxes share are held once: an empty list, the failure state of a mailbox that
//   never failed, the per-mailbox settings and users' own choices (a deployment has few distinct
//   ones). They are frozen,
//   so sharing them is invisible to readers.
// The store keeps its own copy, never the caller's object: whatever the caller does with its
// object afterwards cannot change the state behind the store's back. The JSON of the stored form
// is the JSON of the record given (same fields, same values), so the files are unchanged.
import type { AppPassword, FailureState, LevelSettings, MailboxFailures, MailboxRecord, RememberedCountry, RememberedIp, TotpState } from '../core/model.js';

const MAILBOX_KEYS = ['address', 'settings', 'userSettings', 'phone', 'altEmail', 'totp', 'pendingTotp', 'openCode', 'ips', 'countries', 'failures', 'recoveryCodeHashes', 'appPasswords', 'createdAt', 'updatedAt'];
const MAILBOX_KEY_SET = new Set(MAILBOX_KEYS);
const EMPTY_LIST: readonly never[] = Object.freeze([]);
const NO_FAILURES: MailboxFailures = Object.freeze({ known: null, elsewhere: null });
/** Distinct settings objects shared at most; beyond that each record holds its own copy. */
const MAX_SHARED_SETTINGS = 1024;

/** Freezes a JSON-like value and everything in it, in place. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

/** A frozen deep copy of a JSON-like value (the shapes the store does not know field by field). */
function frozenCopy<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return Object.freeze(value.map((v: unknown) => frozenCopy(v))) as T;
  // fromEntries defines own properties: a "__proto__" key stays a key.
  return Object.freeze(Object.fromEntries(Object.entries(value).map(([k, v]) => [k, frozenCopy(v)]))) as T;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function hasKeys(o: Record<string, unknown>, n: number, a: string, b: string, c?: string, d?: string): boolean {
  let count = 0;
  for (const k in o) {
    if (k !== a && k !== b && k !== c && k !== d) return false;
    count++;
  }
  return count === n;
}

// A frozen entry of the right shape is kept as it is: it is one the store handed out, shared by
// rememberLocation with the record it came from, and copying it on every write would undo that.
function storedIp(e: unknown): RememberedIp | undefined {
  if (!isPlainObject(e) || !hasKeys(e, 3, 'ip', 'firstSeen', 'lastSeen')) return undefined;
  if (Object.isFrozen(e)) return e as unknown as RememberedIp;
  return Object.freeze({ ip: e['ip'] as string, firstSeen: e['firstSeen'] as number, lastSeen: e['lastSeen'] as number });
}

function storedCountry(e: unknown): RememberedCountry | undefined {
  if (!isPlainObject(e) || !hasKeys(e, 3, 'country', 'firstSeen', 'lastSeen')) return undefined;
  if (Object.isFrozen(e)) return e as unknown as RememberedCountry;
  return Object.freeze({ country: e['country'] as string, firstSeen: e['firstSeen'] as number, lastSeen: e['lastSeen'] as number });
}

function storedList<T>(list: unknown, item: (e: unknown) => T | undefined): readonly T[] | undefined {
  if (!Array.isArray(list)) return undefined;
  if (list.length === 0) return EMPTY_LIST;
  const out: T[] = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) {
    const e = item(list[i]);
    if (e === undefined) return undefined;
    out[i] = e;
  }
  return Object.freeze(out);
}

function storedTotp(t: unknown): TotpState | null | undefined {
  if (t === null) return null;
  if (!isPlainObject(t) || !hasKeys(t, 3, 'sealedSecret', 'activatedAt', 'lastAcceptedStep')) return undefined;
  return Object.freeze({ sealedSecret: t['sealedSecret'] as string, activatedAt: t['activatedAt'] as number, lastAcceptedStep: t['lastAcceptedStep'] as number | null });
}

function isNoFailures(f: Record<string, unknown>): boolean {
  return hasKeys(f, 2, 'known', 'elsewhere') && f['known'] === null && f['elsewhere'] === null;
}

function storedFailureState(f: unknown): FailureState | null | undefined {
  if (f === null) return null;
  if (!isPlainObject(f) || !hasKeys(f, 4, 'consecutive', 'lockedUntil', 'hardLocked', 'lastFailureAt')) return undefined;
  return Object.freeze({ consecutive: f['consecutive'] as number, lockedUntil: f['lockedUntil'] as number | null, hardLocked: f['hardLocked'] as boolean, lastFailureAt: f['lastFailureAt'] as number | null });
}

function storedFailures(f: unknown): MailboxFailures | undefined {
  if (!isPlainObject(f) || !hasKeys(f, 2, 'known', 'elsewhere')) return undefined;
  if (isNoFailures(f)) return NO_FAILURES;
  // A pair handed out by the store and passed on unchanged (recordKindSuccess returns it as it is).
  if (Object.isFrozen(f) && (f['known'] === null || Object.isFrozen(f['known'])) && (f['elsewhere'] === null || Object.isFrozen(f['elsewhere']))) return f as unknown as MailboxFailures;
  const known = storedFailureState(f['known']);
  const elsewhere = storedFailureState(f['elsewhere']);
  if (known === undefined || elsewhere === undefined) return undefined;
  return Object.freeze({ known, elsewhere });
}

/** Holds the values records share; one per store. */
export class RecordPool {
  private readonly settings = new Map<string, LevelSettings>();
  /** The shared objects themselves: a record copied from a stored one carries one of them. */
  private readonly sharedSet = new Set<LevelSettings>();

  /**
   * The shared object for settings made only of strings, numbers, booleans and null (their JSON
   * then says everything about them); undefined for others (a country rule, a network list).
   * `s` itself becomes the shared one, frozen, when its value is new.
   */
  private sharedSettings(s: Record<string, unknown>): LevelSettings | undefined {
    // Most writes pass on the settings of the record they replace: already the shared object.
    if (this.sharedSet.has(s as LevelSettings)) return s as LevelSettings;
    for (const k in s) {
      const v = s[k];
      if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return undefined;
    }
    const key = JSON.stringify(s);
    const shared = this.settings.get(key);
    if (shared !== undefined) return shared;
    if (this.settings.size >= MAX_SHARED_SETTINGS) return undefined;
    const own = Object.isFrozen(s) ? (s as LevelSettings) : frozenCopy(s as LevelSettings);
    this.settings.set(key, own);
    this.sharedSet.add(own);
    return own;
  }

  /**
   * The stored form of a record given to the store: a frozen copy built field by field. A record
   * that is already frozen is taken as it is (it was handed out by the store, or frozen by its
   * maker, as before); one with fields or values the model does not have is deep-copied as it is,
   * so nothing is ever lost.
   */
  mailbox(r: MailboxRecord): MailboxRecord {
    if (Object.isFrozen(r)) return r;
    const o = r as unknown as Record<string, unknown>;
    let count = 0;
    for (const k in o) {
      if (!MAILBOX_KEY_SET.has(k)) return frozenCopy(r);
      count++;
    }
    if (count !== MAILBOX_KEYS.length || !isPlainObject(o['settings']) || !isPlainObject(o['userSettings'])) return frozenCopy(r);
    const settings = this.sharedSettings(o['settings']) ?? frozenCopy(r.settings);
    const userSettings = this.sharedSettings(o['userSettings']) ?? frozenCopy(r.userSettings);
    const totp = storedTotp(r.totp);
    const ips = storedList(r.ips, storedIp);
    const countries = storedList(r.countries, storedCountry);
    const failures = storedFailures(r.failures);
    const hashes: unknown = r.recoveryCodeHashes;
    const appPasswords: unknown = r.appPasswords;
    if (totp === undefined || ips === undefined || countries === undefined || failures === undefined || !Array.isArray(hashes) || !Array.isArray(appPasswords)) return frozenCopy(r);
    return Object.freeze({
      address: r.address,
      settings,
      userSettings,
      phone: r.phone,
      altEmail: r.altEmail,
      totp,
      pendingTotp: frozenCopy(r.pendingTotp),
      openCode: frozenCopy(r.openCode),
      ips: ips as RememberedIp[],
      countries: countries as RememberedCountry[],
      failures,
      recoveryCodeHashes: (hashes.length === 0 ? EMPTY_LIST : Object.freeze([...(hashes as string[])])) as string[],
      appPasswords: (appPasswords.length === 0 ? EMPTY_LIST : frozenCopy(appPasswords)) as AppPassword[],
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
    });
  }

  /**
   * The stored form of a record the store itself parsed from its files (nobody else holds it):
   * shared values are put in place and the record is frozen, without a copy. JSON.parse already
   * gives records of one shape the same maps, and a copy would double the memory of a start.
   */
  parsedMailbox(r: MailboxRecord): MailboxRecord {
    if (Object.isFrozen(r)) return r;
    const o = r as unknown as Record<string, unknown>;
    for (const k of ['settings', 'userSettings']) {
      const s = o[k];
      if (!isPlainObject(s)) continue;
      const shared = this.sharedSettings(s);
      if (shared !== undefined) o[k] = shared;
    }
    const f = o['failures'];
    if (isPlainObject(f) && isNoFailures(f)) o['failures'] = NO_FAILURES;
    for (const k of ['ips', 'countries', 'recoveryCodeHashes', 'appPasswords']) {
      const list = o[k];
      if (Array.isArray(list) && list.length === 0) o[k] = EMPTY_LIST;
    }
    return deepFreeze(r);
  }
}
