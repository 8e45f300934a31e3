// The PostgreSQL store's implementation of the services' state ports (services/store-ports.ts),
// for several daemons on one database. Every operation is a statement or a transaction of its own
// on the shared tables, so what one daemon decides every other sees at once. The operations are in
// admin.ts (reads, administration), factors.ts (the check-then-acts of a second factor), codes.ts
// (codes and enrolment) and throttles.ts; the census of locks in census.ts.
//
// What this process keeps is the read cache, where one is given (cache.ts, cached-reads.ts: the
// settings, the provider policy, mailboxes' read-mostly parts), invalidated by the writing
// transactions' announcements; an operation of this daemon that may change a cached part drops it
// here too as soon as it is done, so that the next read on this daemon sees the change without
// waiting for the announcement.
import type { AppPasswordUses } from '../../core/app-passwords.js';
import type { AttemptOutcome, IpThrottlePolicy, LockoutPolicy } from '../../core/lockout.js';
import type { DomainRecord, LevelSettings, MailboxRecord, OpenCode, PendingTotp, TotpState } from '../../core/model.js';
import type { DomainAdminRecord, FailureEffects, LoginView, MailboxQuery, StatePorts, SuccessEffects } from '../../services/store-ports.js';
import * as admin from './admin.js';
import * as adminState from './admin-state.js';
import type { ReadCache } from './cache.js';
import { CachedReads, domainKey, GLOBAL_KEY, mailboxKey, metaKey } from './cached-reads.js';
import { PgLockCensus } from './census.js';
import * as codes from './codes.js';
import * as factors from './factors.js';
import type { Db } from './pool.js';
import * as throttles from './throttles.js';

export class PgStatePorts implements StatePorts {
  /** The cached reads; null: every read goes to the database. */
  readonly reads: CachedReads | null;
  readonly census: PgLockCensus;
  readonly #sourceSweeps = new throttles.SourceSweepPacer();
  /** A success's verdict settles its attempt with the same pacing of sweeps as settleAttempt. */
  readonly #settleWith: factors.SettleWith = { sweepDue: (now) => this.#sourceSweeps.due(now) };

  constructor(
    readonly db: Db,
    options: { cache?: ReadCache | undefined } = {},
  ) {
    this.reads = options.cache === undefined ? null : new CachedReads(db, options.cache);
    this.census = new PgLockCensus(db);
  }

  /** Runs `op`, then drops `keys` from the cache, whatever its outcome (a failure may have committed). */
  private changing<T>(keys: string[], op: Promise<T>): Promise<T> {
    const cache = this.reads?.cache;
    if (cache === undefined) return op;
    return op.finally(() => {
      for (const k of keys) cache.invalidate(k);
    });
  }

  loginView(address: string): Promise<LoginView> {
    return this.reads === null ? admin.loginView(this.db, address) : this.reads.loginView(address);
  }

  /** Verify's fast path from the cache alone (LoginReads loginViewNow): partial, or undefined on a miss. */
  loginViewNow(address: string, into: LoginView): LoginView | undefined {
    return this.reads?.loginViewNow(address, into);
  }

  lockCounts(now: number, maxAgeMs: number, sources: IpThrottlePolicy) {
    return this.census.lockCounts(now, maxAgeMs, sources);
  }

  acceptTotpStep(address: string, sealedSecret: string, step: number, at: { success: SuccessEffects; failure: FailureEffects }) {
    return this.changing([mailboxKey(address)], factors.acceptTotpStep(this.db, address, sealedSecret, step, at, this.#settleWith));
  }

  recordFailure(address: string, failure: FailureEffects) {
    return factors.recordFailure(this.db, address, failure);
  }

  tryOpenCode(address: string, hash: string, at: { maxTries: number; success: SuccessEffects; failure: FailureEffects }) {
    return this.changing([mailboxKey(address)], factors.tryOpenCode(this.db, address, hash, at, this.#settleWith));
  }

  consumeRecoveryCode(address: string, hash: string, at: { success: SuccessEffects; failure: FailureEffects }) {
    return this.changing([mailboxKey(address)], factors.consumeRecoveryCode(this.db, address, hash, at));
  }

  activatePending(address: string, sealedSecret: string, step: number | null, at: { success: SuccessEffects; requireProved: boolean }) {
    return this.changing([mailboxKey(address)], factors.activatePending(this.db, address, sealedSecret, step, at));
  }

  createEnrolled(address: string, totp: TotpState, success: SuccessEffects) {
    return this.changing([mailboxKey(address)], factors.createEnrolled(this.db, address, totp, success));
  }

  unstoredFailures(address: string, now: number, policy: LockoutPolicy) {
    return throttles.unstoredFailures(this.db, address, now, policy);
  }

  recordUnstoredFailure(address: string, now: number, policy: LockoutPolicy) {
    return throttles.recordUnstoredFailure(this.db, address, now, policy);
  }

  clearUnstoredFailures(address: string) {
    return throttles.clearUnstoredFailures(this.db, address);
  }

  openCode(address: string, code: OpenCode) {
    return codes.openCode(this.db, address, code);
  }

  codeResent(address: string, hash: string, at: number) {
    return codes.codeResent(this.db, address, hash, at);
  }

  closeCode(address: string, hash: string) {
    return codes.closeCode(this.db, address, hash);
  }

  claimSend(keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }) {
    return throttles.claimSend(this.db.statements, keys, now, limits);
  }

  claimAndOpen(address: string, keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }, fresh: OpenCode) {
    return codes.claimAndOpen(this.db, address, keys, now, limits, fresh);
  }

  releaseSend(keys: readonly string[], claimedAt: number) {
    return throttles.releaseSend(this.db, keys, claimedAt);
  }

  reserveAttempt(source: string, mailbox: string, creates: boolean, now: number, policy: IpThrottlePolicy) {
    return throttles.reserveAttempt(this.db, source, mailbox, creates, now, policy);
  }

  settleAttempt(source: string, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy) {
    return throttles.settleAttempt(this.db, source, mailbox, creates, outcome, now, policy, this.#sourceSweeps.due(now));
  }

  listSources() {
    return throttles.listSources(this.db);
  }

  clearSource(source: string, now: number, policy: IpThrottlePolicy) {
    return throttles.clearSource(this.db, source, now, policy);
  }

  windowState(scope: string, key: string) {
    return throttles.windowState(this.db, scope, key);
  }

  recordWindowFailure(scope: string, key: string, member: string, now: number, policy: IpThrottlePolicy) {
    return throttles.recordWindowFailure(this.db, scope, key, member, now, policy);
  }

  pendingOrNew(address: string, fresh: PendingTotp, now: number, opts: { restart: boolean; needProved: boolean }) {
    return this.changing([mailboxKey(address)], codes.pendingOrNew(this.db, address, fresh, now, opts));
  }

  countGraceLogin(address: string, maxLogins: number, now: number) {
    return codes.countGraceLogin(this.db, address, maxLogins, now);
  }

  getMailbox(address: string) {
    return admin.getMailbox(this.db, address);
  }

  updateMailbox<T>(address: string, change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }) {
    return this.changing([mailboxKey(address)], admin.updateMailbox(this.db, address, change));
  }

  listMailboxes(options: { domain?: string | undefined; after?: string | undefined; limit?: number | undefined; where?: ((r: MailboxRecord) => boolean) | undefined }) {
    return admin.listMailboxes(this.db, options);
  }

  countMailboxes(domain?: string) {
    return admin.countMailboxes(this.db, domain);
  }

  mailboxNotices() {
    return admin.mailboxNotices(this.db);
  }

  getGlobal() {
    return admin.getGlobal(this.db);
  }

  getDomain(domain: string) {
    return admin.getDomain(this.db, domain);
  }

  listDomains() {
    return admin.listDomains(this.db);
  }

  updateGlobal(change: (current: LevelSettings) => LevelSettings) {
    return this.changing([GLOBAL_KEY], admin.updateGlobal(this.db, change));
  }

  updateDomain<T>(domain: string, change: (current: DomainRecord | undefined) => { next?: DomainRecord | null; result: T }) {
    return this.changing([domainKey(domain)], admin.updateDomain(this.db, domain, change));
  }

  getMetaIfHeld<T>(key: string): { value: T | undefined } | undefined {
    return this.reads?.metaIfHeld<T>(key);
  }

  getMeta<T>(key: string) {
    return this.reads === null ? admin.getMeta<T>(this.db, key) : this.reads.getMeta<T>(key);
  }

  updateMeta<T, R>(key: string, change: (current: T | undefined) => { next?: T | null; result: R }) {
    return this.changing([metaKey(key)], admin.updateMeta(this.db, key, change));
  }

  findMailboxes(query: MailboxQuery) {
    return adminState.findMailboxes(this.db, query);
  }

  updateMailboxes<T>(addresses: readonly string[], change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }) {
    return this.changing(addresses.map(mailboxKey), adminState.updateMailboxes(this.db, addresses, change));
  }

  recordAppPasswordUses(uses: readonly ({ address: string; id: string } & AppPasswordUses)[]) {
    // Nothing cached changes: an app password's use is read where it is shown.
    return adminState.recordAppPasswordUses(this.db, uses);
  }

  getDomainAdmin(id: string) {
    return adminState.getDomainAdmin(this.db, id);
  }

  listDomainAdmins() {
    return adminState.listDomainAdmins(this.db);
  }

  addDomainAdmin(record: DomainAdminRecord) {
    return adminState.addDomainAdmin(this.db, record);
  }

  removeDomainAdmin(name: string) {
    return adminState.removeDomainAdmin(this.db, name);
  }

  sealedSecretPerKey() {
    return adminState.sealedSecretPerKey(this.db);
  }

  claimJob(job: string, holder: string, now: number, ttlMs: number) {
    return adminState.claimJob(this.db, job, holder, now, ttlMs);
  }

  releaseJob(job: string, holder: string) {
    return adminState.releaseJob(this.db, job, holder);
  }

  jobClaim(job: string, now: number) {
    return adminState.jobClaim(this.db, job, now);
  }
}
