// The state ports of administration (see store-ports.ts, which names them all in StatePorts):
// read-mostly data and read-modify-write of one object, the selections a database answers without
// the daemon reading every mailbox, jobs over every mailbox, domain administrators, and the claims
// that keep a job from running twice across the daemons of one store. Like the login's ports,
// each is asynchronous, takes the time as an argument and is defined by the use that consumes it.
import type { AppPasswordUses } from '../core/app-passwords.js';
import type { MailboxCriteria } from '../core/mailbox-row.js';
import type { SettingsDefaults } from '../core/settings.js';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../core/model.js';

// ---------------------------------------------------------------------------------------------
// Read-mostly data and read-modify-write of one object

export interface MailboxStore {
  getMailbox(address: string): Promise<MailboxRecord | undefined>;
  /**
   * Runs `change` on the current record (undefined: none stored) and stores its `next` (a record;
   * null removes it; undefined leaves it as it is), in one transaction; resolves with its result.
   * For administrators' and users' changes, not for the check-then-acts above.
   */
  updateMailbox<T>(address: string, change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T>;
  /** By address, after `after`, at most `limit`: a page (of one domain). Selections go through findMailboxes. */
  listMailboxes(options: { domain?: string | undefined; after?: string | undefined; limit?: number | undefined }): Promise<MailboxRecord[]>;
  countMailboxes(domain?: string): Promise<number>;
}

export interface SettingsStore {
  getGlobal(): Promise<LevelSettings>;
  getDomain(domain: string): Promise<DomainRecord | undefined>;
  listDomains(): Promise<DomainRecord[]>;
  updateGlobal(change: (current: LevelSettings) => LevelSettings): Promise<LevelSettings>;
  /** As updateMailbox, for a domain's record. */
  updateDomain<T>(domain: string, change: (current: DomainRecord | undefined) => { next?: DomainRecord | null; result: T }): Promise<T>;
}

/** Small named documents: the provider policy, the domain administrators, the audit anchors, claims. */
export interface MetaStore {
  getMeta<T>(key: string): Promise<T | undefined>;
  /**
   * The same read answered at once, for what a request reads on verify's fast path (the provider
   * policy): a backend that holds the state in memory (the file store) gives it, so that such a
   * request awaits nothing; one that must ask elsewhere leaves it out, and the caller awaits
   * getMeta. The value is the stored one: never to be changed by the caller.
   */
  getMetaNow?<T>(key: string): T | undefined;
  /**
   * A read answered at once where a backend holds `key` in a cache that its writers invalidate
   * (PostgreSQL's read cache: the provider policy): `{ value }` while it holds it, undefined when
   * it must be asked (getMeta). For a backend without getMetaNow.
   */
  getMetaIfHeld?<T>(key: string): { value: T | undefined } | undefined;
  updateMeta<T, R>(key: string, change: (current: T | undefined) => { next?: T | null; result: R }): Promise<R>;
}

// ---------------------------------------------------------------------------------------------
// What a database answers without the daemon reading every mailbox

export interface MailboxQuery {
  domain?: string | undefined;
  after?: string | undefined;
  /** At most this many records; 0 for the total alone. */
  limit?: number | undefined;
  criteria: MailboxCriteria;
  /** What the criteria are judged by: the configuration's defaults (effective settings) and the time (locks, pending secrets). */
  defaults: SettingsDefaults;
  now: number;
}

export interface MailboxSearch {
  /**
   * The stored mailboxes (of `domain`, if given) that meet every criterion (core/mailbox-row.ts
   * meetsCriteria on their row), by address after `after`, at most `limit`; and how many meet
   * them in all, whatever `after` and `limit`.
   */
  findMailboxes(query: MailboxQuery): Promise<{ total: number; mailboxes: MailboxRecord[] }>;
}

/** Jobs over every mailbox, a page at a time (key rotation re-seals every secret). */
export interface MailboxPages {
  /** As updateMailbox for each of `addresses`, all in one transaction; the results in their order. */
  updateMailboxes<T>(addresses: readonly string[], change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T[]>;
}

/** The uses of app passwords, written a batch at a time (services/app-password-usage.ts). */
export interface AppPasswordUseStore {
  /**
   * Adds each entry's uses to the app password `id` of `address` (core/app-passwords.ts
   * withUses), all in one operation that changes nothing else of the mailboxes; an app password
   * or mailbox that no longer exists is skipped. Each app password is named at most once.
   */
  recordAppPasswordUses(uses: readonly ({ address: string; id: string } & AppPasswordUses)[]): Promise<void>;
}

/** A domain administrator: a name, the domains of their token, and the token's keyed hash. */
export interface DomainAdminRecord {
  name: string;
  /** Named by the token, so that checking a token reads one record. */
  id: string;
  domains: string[];
  tokenHash: string;
  createdAt: number;
}

export interface DomainAdminStore {
  getDomainAdmin(id: string): Promise<DomainAdminRecord | undefined>;
  /** Every domain administrator, by name. */
  listDomainAdmins(): Promise<DomainAdminRecord[]>;
  /** Stores `record`, unless an administrator of its name exists ('exists': nothing stored). */
  addDomainAdmin(record: DomainAdminRecord): Promise<'added' | 'exists'>;
  /** Removes the administrator named `name`: their record, or undefined when there was none. */
  removeDomainAdmin(name: string): Promise<DomainAdminRecord | undefined>;
}

/** The start check of the key file: can it open what the store holds? */
export interface SealedSecretSample {
  /**
   * For each key id that seals a TOTP secret (active or pending) of a stored mailbox, one such
   * secret and its mailbox. The key id is the second field of a sealed value (security/seal.ts).
   */
  sealedSecretPerKey(): Promise<{ kid: string; address: string; sealedSecret: string }[]>;
}

/**
 * Jobs that must not run twice at once across every daemon of the store (a key rotation): a claim
 * by name, held by one daemon (`holder`) until it is released or its time runs out, so that a
 * daemon that died holding it does not hold it for ever. The claim is the flag; nothing of it is
 * kept in the service.
 */
export interface JobClaims {
  /**
   * Claims `job` for `holder` until `now + ttlMs`, if nobody else holds it at `now` (a holder that
   * claims again extends its claim): 'claimed', or who holds it and until when.
   */
  claimJob(job: string, holder: string, now: number, ttlMs: number): Promise<{ claimed: true } | { claimed: false; holder: string; until: number }>;
  /** Ends `holder`'s claim of `job` (another holder's claim is left alone). */
  releaseJob(job: string, holder: string): Promise<void>;
  /** Who holds `job` at `now`, or undefined. */
  jobClaim(job: string, now: number): Promise<{ holder: string; until: number } | undefined>;
}
