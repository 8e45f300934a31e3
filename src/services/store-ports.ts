// What the services need of the state, as they use it: small asynchronous interfaces, each
// defined here by the use case that consumes it (verify, codes, enrolment, recovery, proof of a
// factor, the throttles, administration), never by how a backend keeps it. A service takes only
// the interfaces it uses; the file store implements them all (store/state-ports.ts), and so does
// the PostgreSQL store (store/postgres/state-ports.ts).
//
// Two rules make several daemons on one database act as one:
// - Every check-then-act is ONE operation: accept a TOTP step, count a failure (and lock), try an
//   open code, consume a recovery code, claim a send slot, reserve an attempt of a source, count a
//   grace login. The file store runs each as one in-memory transaction; PostgreSQL as one
//   statement deciding through RETURNING. A service never reads, decides and then writes what
//   another daemon could have changed in between.
// - Time is an argument (`now`), never read inside a port: the backend compares what it is given.
//
// Reads may be served from memory or a cache (settings, policy, remembered locations: read-mostly,
// invalidated on change); counters, steps, codes and tokens are decided by the operations below,
// never by what a cache last saw.
import type { RememberPolicy } from '../core/decide.js';
import type { AttemptOutcome, FailureKind, IpRefusal, IpSourceBlock, IpSourceState, IpThrottlePolicy, IpThrottleRecord, IpThrottleState, LockoutPolicy } from '../core/lockout.js';
import type { FailureState, MailboxFailures, LevelSettings, MailboxRecord, OpenCode, PendingTotp, TotpState } from '../core/model.js';
import type { MailboxNotices, NoticeEvent } from '../core/notices.js';

import type { AppPasswordUseStore, DomainAdminStore, JobClaims, MailboxPages, MailboxSearch, MailboxStore, MetaStore, SealedSecretSample, SettingsStore } from './admin-store-ports.js';
// The administration's ports live in their own file; every service imports the state's ports from here.
export type * from './admin-store-ports.js';

// ---------------------------------------------------------------------------------------------
// Shared shapes

/**
 * The security notices of an operation (services/notify.ts), queued on the mailbox record in the
 * operation's own write of it, so that a notice is durable exactly when the event it reports is.
 * The backend calls queue() inside the operation, with the record it is about to write and the
 * events of the outcome (below), and writes the record it returns: the same one, or one whose
 * `notices` alone differ. The events of an outcome:
 * - a success with a location: new-country when none of the mailbox's fresh remembered countries
 *   (before the success) is the login's (core/notices.ts isNewCountry);
 * - consumeRecoveryCode ok: recovery-code-used, with the codes left; activatePending activated
 *   and createEnrolled created: totp-enrolled (these first, then new-country);
 * - a failure that started a lock of its kind: mailbox-locked, with until when
 *   (core/notices.ts lockNotice).
 */
export interface NoticeQueue {
  queue(rec: MailboxRecord, events: readonly NoticeEvent[]): MailboxRecord;
  /**
   * True when queue() would neither queue nor record anything for `rec`, whatever the events (no
   * gateway to send through, or the mailbox's notices turned off): a store may then leave it
   * uncalled. Absent: it must be called.
   */
  inert?(rec: MailboxRecord): boolean;
}

/**
 * What passing a second factor does besides its own check: the failures of its kind are reset
 * (core/lockout.ts recordKindSuccess), where given the login's location is remembered
 * (core/decide.ts rememberLocation), and the owner's notices of it queued (NoticeQueue).
 */
export interface SuccessEffects {
  kind: FailureKind;
  now: number;
  location: { ip: string; country: string | null; policy: RememberPolicy } | null;
  notices?: NoticeQueue | undefined;
  /**
   * The record the factor was decided on, as a read of this store returned it. A store may work
   * the effects out from it ahead and write them with the verdict, in one statement, when the
   * record is still the stored version; otherwise (or without it) they are worked out from the
   * record as the verdict finds it. Either way the effects are those of the latest record.
   */
  basis?: MailboxRecord | undefined;
  /**
   * The code check's reserved attempt (SourceStore.reserveAttempt), which a success settles with
   * outcome 'none'. A store that settles it in the verdict's own write sets `settled`; otherwise
   * the service settles it after the verdict, as it does every attempt.
   */
  attempt?: AttemptToSettle | undefined;
}

/** A reserved attempt a store may settle with a success's verdict (SuccessEffects.attempt). */
export interface AttemptToSettle {
  readonly source: string;
  readonly mailbox: string;
  readonly creates: boolean;
  readonly now: number;
  readonly policy: IpThrottlePolicy;
  /** Set by the store that settled it: the service must not settle it again. */
  settled: boolean;
}

/**
 * What a wrong factor does: one more failure of its kind (core/lockout.ts recordKindFailure), and
 * the owner's notice of a lock it started (NoticeQueue).
 */
export interface FailureEffects {
  kind: FailureKind;
  now: number;
  policy: LockoutPolicy;
  notices?: NoticeQueue | undefined;
}

/** The mailbox is locked for the login's kind: nothing was checked or changed. */
export type Locked = { outcome: 'locked'; until: number | null };

// ---------------------------------------------------------------------------------------------
// verify, explain, the views: what a login is decided on

export interface LoginView {
  mailbox: MailboxRecord | undefined;
  domain: LevelSettings | undefined;
  global: LevelSettings;
  /**
   * Set by a loginViewNow answered from a cache: the mailbox's read-mostly part only (settings,
   * destinations, whether a secret is active, remembered locations), its failures, steps, codes,
   * pending secret, recovery codes and app passwords left empty, not read. Enough for verify's
   * fast path; for anything else verify reads loginView.
   */
  partial?: boolean;
}

export interface LoginReads {
  /** The mailbox with its domain's and the global settings, in one read. */
  loginView(address: string): Promise<LoginView>;
  /**
   * The same read answered at once, for verify's fast path (most logins): a backend that holds
   * the state in memory (the file store) fills `into` and returns it, so that such a login awaits
   * nothing and allocates nothing for its read. A backend that must ask elsewhere leaves it out,
   * and verify awaits loginView; one that caches (PostgreSQL) answers what it has at hand, partial,
   * and undefined when it has not. `into` is the caller's and is reused: what it holds is valid
   * until the caller's next read.
   */
  loginViewNow?(address: string, into: LoginView): LoginView | undefined;
}

// ---------------------------------------------------------------------------------------------
// verify, proof (self-service), enrolment: the check-then-acts of a second factor

export interface FactorStore {
  /**
   * Accepts TOTP `step` for the active secret `sealedSecret` if it is later than the last step
   * accepted, applying the success effects. 'reused': that step, or a later one, was accepted
   * before (a failure is counted); 'changed': the mailbox no longer has that secret (reset or
   * re-enrolled meanwhile; nothing counted).
   */
  acceptTotpStep(address: string, sealedSecret: string, step: number, at: { success: SuccessEffects; failure: FailureEffects }): Promise<{ outcome: 'accepted' | 'reused' | 'changed' } | Locked>;
  /**
   * One failure of a stored mailbox (a wrong code the service checked itself): the state after it;
   * 'locked' when the mailbox is locked for the failure's kind at `failure.now` (nothing counted,
   * as every operation here checks the lock first); null when the mailbox is not stored.
   */
  recordFailure(address: string, failure: FailureEffects): Promise<{ outcome: 'counted'; state: FailureState } | Locked | null>;
  /**
   * Tries a sent code, by its keyed hash, against the mailbox's open code: 'ok' uses it up and
   * applies the success effects; a wrong one counts a try (the code is void after `maxTries`) and
   * a failure; an expired one is dropped and counts a failure; with none open, a failure.
   */
  tryOpenCode(
    address: string,
    hash: string,
    at: { maxTries: number; success: SuccessEffects; failure: FailureEffects },
  ): Promise<{ outcome: 'ok' | 'code-invalid' | 'code-expired' | 'no-open-code'; provider: 'sms' | 'email' | null } | Locked>;
  /** Consumes the recovery code of keyed hash `hash` (success effects), or counts a failure. */
  consumeRecoveryCode(address: string, hash: string, at: { success: SuccessEffects; failure: FailureEffects }): Promise<{ outcome: 'ok'; left: number } | { outcome: 'code-invalid' } | Locked>;
  /**
   * Makes the pending secret `sealedSecret` active, its last accepted step `step` (null: forced,
   * no code), if it is still the mailbox's pending secret and not expired at `success.now`.
   * `requireProved`: only a pending secret started with the current factor proved.
   */
  activatePending(address: string, sealedSecret: string, step: number | null, at: { success: SuccessEffects; requireProved: boolean }): Promise<{ outcome: 'activated' | 'changed' | 'unproved' } | Locked>;
  /**
   * Stores a mailbox nobody had configured, enrolled with `totp` (its first right code for the
   * secret it was offered). 'exists': a record appeared meanwhile; nothing was changed.
   */
  createEnrolled(address: string, totp: TotpState, success: SuccessEffects): Promise<'created' | 'exists'>;
}

/** Failures of mailboxes without a stored record: bounded, expiring, never a record of their own. */
export interface UnstoredFailureStore {
  unstoredFailures(address: string, now: number, policy: LockoutPolicy): Promise<FailureState | undefined>;
  /** One failure: the state after it, or 'locked' (nothing counted) while its failures lock it at `now`. */
  recordUnstoredFailure(address: string, now: number, policy: LockoutPolicy): Promise<{ outcome: 'counted'; state: FailureState } | Locked>;
  clearUnstoredFailures(address: string): Promise<FailureState | undefined>;
}

// ---------------------------------------------------------------------------------------------
// codes: one-time codes by SMS or email

export interface CodeStore {
  /**
   * Opens `code` as the mailbox's open code (replacing any other: only the latest code sent is
   * valid); 'missing' when the mailbox is not stored.
   */
  openCode(address: string, code: OpenCode): Promise<'opened' | 'missing'>;
  /** One more send of the open code of hash `hash` (the same code sent again). */
  codeResent(address: string, hash: string, at: number): Promise<'resent' | 'changed'>;
  /** Drops the open code of hash `hash`, if it is still the open one (a send that reached nobody). */
  closeCode(address: string, hash: string): Promise<void>;
  /**
   * Claims a send to each of `keys` (the mailbox, the destination) at `now` within the cooldown
   * and the hourly cap: ok, or the longest wait until a send is possible, which limit said so and
   * of which key (the refusal names it: this mailbox, or its destination).
   */
  claimSend(keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }): Promise<{ ok: true } | { ok: false; retryAfterMs: number; limit: 'cooldown' | 'hourly'; key: string }>;
  /** Gives back a claim whose send failed, so that a failure does not use up the budget. */
  releaseSend(keys: readonly string[], claimedAt: number): Promise<void>;
  /**
   * A challenge's send of the mailbox's code, as ONE operation, so that challenges at once on
   * several daemons act as one: claims a send to each of `keys` at `now` (as claimSend) and, when
   * claimed, makes `fresh` the open code, unless the open one is still valid at `now` for the same
   * provider and destination ('kept': it is to be sent again; `fresh` is not stored). 'refused':
   * the limits said no, with the open code as the claim found it (null: none, or expired), so that
   * a challenge that lost to another one still answers with the code that one stored and sent.
   * 'missing': the mailbox is not stored; nothing was claimed.
   */
  claimAndOpen(address: string, keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }, fresh: OpenCode): Promise<SendAndOpen>;
}

/** What CodeStore claimAndOpen did. */
export type SendAndOpen =
  | { outcome: 'missing' }
  | { outcome: 'opened' | 'kept'; open: OpenCode }
  | { outcome: 'refused'; open: OpenCode | null; retryAfterMs: number; limit: 'cooldown' | 'hourly'; key: string };

// ---------------------------------------------------------------------------------------------
// Throttles

/** The per-source throttle of code checks (core/lockout.ts reserveIpAttempt/settleIpAttempt). */
export interface SourceStore {
  /** Reserves an attempt of `source` on `mailbox`, atomically; the attempts in flight count. */
  reserveAttempt(source: string, mailbox: string, creates: boolean, now: number, policy: IpThrottlePolicy): Promise<{ granted: true } | ({ granted: false } & IpRefusal)>;
  /** Settles a reserved attempt: the block of `source` it started, if it started one (core/lockout.ts sourceBlockStarted). */
  settleAttempt(source: string, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy): Promise<IpSourceBlock | null>;
  /** Every source tracked, with its state (ip-block list picks the blocked ones). */
  listSources(): Promise<{ source: string; state: IpSourceState }[]>;
  /**
   * Forgets the failures, block and enrolment count of `source` (core/lockout.ts clearIpSource:
   * attempts in flight still count until they settle) if it has a block or failures at `now`
   * (ipSourceBlock, ipSourceFailures); its state before, or null when it had neither (nothing
   * cleared: an administrator is told there was nothing to clear).
   */
  clearSource(source: string, now: number, policy: IpThrottlePolicy): Promise<IpSourceState | null>;
}

/** Failure windows by key (core/lockout.ts recordIpFailure): the app-password throttle of login.check. */
export interface WindowCounterStore {
  windowState(scope: string, key: string): Promise<IpThrottleRecord | undefined>;
  /** One failure of `key`: its record after it, and the block it started, if it started one (core/lockout.ts ipBlockStarted). */
  recordWindowFailure(scope: string, key: string, member: string, now: number, policy: IpThrottlePolicy): Promise<{ record: IpThrottleRecord; started: Extract<IpThrottleState, { locked: true }> | null }>;
}

// ---------------------------------------------------------------------------------------------
// Enrolment

export interface EnrolStore {
  /**
   * The mailbox's open pending secret, or `fresh` stored as its pending secret (creating the
   * record if there is none); the same pending secret is returned until it expires, unless
   * `restart`, or unless `needProved` and the open one was started without the factor proved.
   */
  pendingOrNew(address: string, fresh: PendingTotp, now: number, opts: { restart: boolean; needProved: boolean }): Promise<PendingTotp>;
  /**
   * Counts a login let in by an enrolment grace of at most `maxLogins` logins: the count after it,
   * or null when the grace is used up (nothing counted).
   */
  countGraceLogin(address: string, maxLogins: number, now: number): Promise<number | null>;
}

// ---------------------------------------------------------------------------------------------
// Security notices: the sender's view of the queues (services/notify.ts)

export interface NoticeStore {
  /**
   * Every stored mailbox with notices (waiting, or recent ones kept for the rate bound), for the
   * sender's start. The sender changes them with MailboxStore updateMailbox.
   */
  mailboxNotices(): Promise<{ address: string; notices: MailboxNotices }[]>;
}

// ---------------------------------------------------------------------------------------------
// Metrics: the census of locks (services/lock-census.ts)

/**
 * What the metrics' census of locks counts, asked for synchronously by a scrape (at most once per
 * census interval), so that the census reads no store of its own: a backend that keeps these in
 * memory (the file store) gives them here; one that does not leaves them out, and the census
 * counts none of them.
 */
export interface CensusReads {
  /** The failures of every stored mailbox (a record that never failed shares the empty state). */
  storedFailures?(): Iterable<{ failures: MailboxFailures }>;
  /** Every failure state kept for a mailbox without a record (expired ones too; bounded). */
  unstoredFailureStates?(): Iterable<FailureState>;
  /** Every source state the per-source throttle keeps (bounded). */
  sourceStates?(): Iterable<IpSourceState>;
  /**
   * For a backend that keeps none of the above in memory (PostgreSQL): the counts themselves, as
   * it last counted them (undefined: not yet), a count older than `maxAgeMs` started anew in the
   * background; given, the census reports these instead of scanning.
   */
  lockCounts?(now: number, maxAgeMs: number, sources: IpThrottlePolicy): BackendLockCounts | undefined;
}

/** What CensusReads lockCounts answers: the census's counts (services/lock-census.ts LockCounts). */
export interface BackendLockCounts {
  lockout: number;
  hardLock: number;
  blockedSources: number;
  /** Epoch ms of the count. */
  countedAt: number;
}

// ---------------------------------------------------------------------------------------------
// What the daemon says of its store (status, the ready line, the metrics)

export type StoreBackend = 'file' | 'postgres';

/** Which store this is and where, and what only it can tell of itself. */
export interface StoreFacts {
  readonly backend: StoreBackend;
  /** The store's file; or the database as postgres://user@host:port/database (never a password). */
  readonly location: string;
  /**
   * The sizes of the file store's snapshot and journal, which only mean something for the file
   * store (compaction); absent for a database, whose files are the server's business.
   */
  fileSizes?(): { snapshotBytes: number; journalBytes: number };
}

/** Everything the services need of the state: what a backend implements. */
export type StatePorts = LoginReads &
  FactorStore &
  UnstoredFailureStore &
  CodeStore &
  SourceStore &
  WindowCounterStore &
  EnrolStore &
  MailboxStore &
  SettingsStore &
  MetaStore &
  CensusReads &
  NoticeStore &
  MailboxSearch &
  MailboxPages &
  AppPasswordUseStore &
  DomainAdminStore &
  SealedSecretSample &
  JobClaims;
