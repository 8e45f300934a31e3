// The reads the read cache (cache.ts) answers: verify's login view and the provider policy. A
// read that misses goes to the database and fills the cache with what it found, under a ticket
// taken before it was sent (an announcement that arrives meanwhile wins). What a cached login view
// holds of a mailbox is its read-mostly part only (settings, destinations, whether a secret is
// active, remembered locations: what the fast path decides on), as a record whose other
// fields are left empty and the view marked `partial`: verify decides its fast path on it and
// reads the whole view from the database for anything else (a code to check, a challenge to send,
// a lock to honour), so a counter, a step, a code or a token is never taken from the cache.
import type { LevelSettings, MailboxRecord, TotpState } from '../../core/model.js';
import { domainOf } from '../../core/validate.js';
import type { LoginView } from '../../services/store-ports.js';
import * as admin from './admin.js';
import { RecordPool } from '../records.js';
import { CACHED_META, MISS, type ReadCache } from './cache.js';
import type { Db } from './pool.js';

/** The active secret of a partial view: there is one; what it is, and its last step, were not read. */
const NOT_READ: TotpState = Object.freeze({ sealedSecret: '', activatedAt: 0, lastAcceptedStep: null });
export const mailboxKey = (address: string) => `m:${address}`;
export const domainKey = (domain: string) => `d:${domain}`;
export const metaKey = (key: string) => `k:${key}`;
export const GLOBAL_KEY = 'g';

/**
 * The read-mostly part of `rec`, as the record a partial view holds (one per entry, shared by its
 * hits): what the fast path decides on, and for the rest the empty values of a new mailbox. It
 * takes its stored form from `pool` as the file store's records do (settings equal to another
 * entry's shared, the empty lists and failures shared, all frozen): a cache sized for a hosting
 * provider's working set holds 100,000 of them.
 */
function partOf(rec: MailboxRecord, pool: RecordPool): MailboxRecord {
  return pool.parsedMailbox({
    address: rec.address,
    settings: rec.settings,
    userSettings: rec.userSettings,
    phone: rec.phone,
    altEmail: rec.altEmail,
    totp: rec.totp === null ? null : NOT_READ,
    pendingTotp: null,
    openCode: null,
    ips: rec.ips,
    countries: rec.countries,
    failures: { known: null, elsewhere: null },
    recoveryCodeHashes: [],
    appPasswords: [],
    createdAt: rec.createdAt,
    updatedAt: rec.updatedAt,
  });
}

export class CachedReads {
  private readonly records = new RecordPool();

  constructor(
    private readonly db: Db,
    readonly cache: ReadCache,
  ) {}

  /** The login view from the cache alone (partial), or undefined when any part of it is not there. */
  loginViewNow(address: string, into: LoginView): LoginView | undefined {
    const global = this.cache.get(GLOBAL_KEY);
    if (global === MISS) return undefined;
    const domain = this.cache.get(domainKey(domainOf(address)));
    if (domain === MISS) return undefined;
    const mailbox = this.cache.get(mailboxKey(address));
    if (mailbox === MISS) return undefined;
    into.global = global as LevelSettings;
    into.domain = (domain ?? undefined) as LevelSettings | undefined;
    into.mailbox = (mailbox ?? undefined) as MailboxRecord | undefined;
    into.partial = true;
    return into;
  }

  /** The whole view from the database (never partial), its read-mostly parts kept for the next logins. */
  async loginView(address: string): Promise<LoginView> {
    const ticket = this.cache.ticket();
    const view = await admin.loginView(this.db, address);
    this.cache.fill(GLOBAL_KEY, ticket, view.global);
    this.cache.fill(domainKey(domainOf(address)), ticket, view.domain ?? null);
    this.cache.fill(mailboxKey(view.mailbox?.address ?? address), ticket, view.mailbox === undefined ? null : partOf(view.mailbox, this.records));
    return view;
  }

  /** A cached meta document at once: `{ value }` while the cache holds it, undefined otherwise. */
  metaIfHeld<T>(key: string): { value: T | undefined } | undefined {
    if (!CACHED_META.has(key)) return undefined;
    const hit = this.cache.get(metaKey(key));
    return hit === MISS ? undefined : { value: (hit ?? undefined) as T | undefined };
  }

  async getMeta<T>(key: string): Promise<T | undefined> {
    if (!CACHED_META.has(key)) return admin.getMeta<T>(this.db, key);
    const hit = this.cache.get(metaKey(key));
    if (hit !== MISS) return (hit ?? undefined) as T | undefined;
    const ticket = this.cache.ticket();
    const value = await admin.getMeta<T>(this.db, key);
    this.cache.fill(metaKey(key), ticket, value ?? null);
    return value;
  }
}
