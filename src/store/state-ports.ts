// The file store's implementation of the services' state ports (services/store-ports.ts). Each
// operation is one transaction of the store (store/types.ts transact: synchronous in memory, then
// durable in the journal), so every check-then-act is atomic in the one daemon; the rules
// themselves are the pure core's (core/lockout.ts, core/decide.ts).
//
// What the store keeps only in memory, bounded, is memory-limits.ts's (FileStatePorts extends it).
import { withUses, type AppPasswordUses } from '../core/app-passwords.js';
import { rememberLocation } from '../core/decide.js';
import { kindLockState, recordKindFailure, recordKindSuccess } from '../core/lockout.js';
import { newMailbox, type DomainRecord, type FailureState, type MailboxFailures, type LevelSettings, type MailboxRecord, type OpenCode, type PendingTotp, type TotpState } from '../core/model.js';
import { isNewCountry, lockNotice, type MailboxNotices, type NoticeEvent } from '../core/notices.js';
import { domainOf } from '../core/validate.js';
import { sameHash } from '../security/hash.js';
import type { DomainAdminRecord, FailureEffects, Locked, LoginView, MailboxQuery, SendAndOpen, StatePorts, SuccessEffects } from '../services/store-ports.js';
import { FileAdminState } from './admin-state.js';
import { MemoryLimits } from './memory-limits.js';
import type { Store, StoreTx } from './types.js';

export { MAX_SEND_KEYS, MAX_SOURCES, MAX_UNSTORED_FAILURES, MAX_WINDOW_KEYS } from './memory-limits.js';

/**
 * `rec` with `change` after a success: its effects applied, and the owner's notices of it queued
 * (`events`: the operation's own, e.g. totp-enrolled; new-country is judged here, on `rec` before
 * the success). `change` never touches the locations or failures. One copy of the record per
 * operation: the store then makes its own (records.ts), so an intermediate copy is pure cost on
 * every code check.
 */
function succeeded(rec: MailboxRecord, change: Partial<MailboxRecord>, e: SuccessEffects, events: NoticeEvent[] = []): MailboxRecord {
  const places = e.location === null ? null : rememberLocation(rec, e.location.ip, e.location.country, e.now, e.location.policy);
  const failures = recordKindSuccess(rec.failures, e.kind);
  const next: MailboxRecord = places === null ? { ...rec, ...change, failures, updatedAt: e.now } : { ...rec, ...change, ips: places.ips, countries: places.countries, failures, updatedAt: e.now };
  if (e.notices === undefined) return next;
  if (e.location !== null && isNewCountry(rec.countries, e.location.country, e.now, e.location.policy)) events.push({ kind: 'new-country' });
  return events.length === 0 ? next : e.notices.queue(next, events);
}

/** `rec` with `change` after a failure: one more of its kind, and the owner's notice of a lock it started. */
function failed(rec: MailboxRecord, f: FailureEffects, change?: Partial<MailboxRecord>): MailboxRecord {
  const failures = recordKindFailure(rec.failures, f.kind, f.now, f.policy);
  const next: MailboxRecord = change === undefined ? { ...rec, failures, updatedAt: f.now } : { ...rec, ...change, failures, updatedAt: f.now };
  const notice = f.notices === undefined ? null : lockNotice(rec.failures, next.failures, f.kind, f.now);
  return notice === null ? next : f.notices!.queue(next, [notice]);
}

function lockedFor(rec: MailboxRecord, kind: SuccessEffects['kind'], now: number): Locked | null {
  const lock = kindLockState(rec.failures, kind, now);
  return lock.locked ? { outcome: 'locked', until: lock.until } : null;
}

/**
 * The state ports of the file store: the limits it keeps in memory only (MemoryLimits), the
 * check-then-acts of a login on the records below, and the administration's operations beyond one
 * record (FileAdminState, store/admin-state.ts), to which it hands those on.
 */
export class FileStatePorts extends MemoryLimits implements StatePorts {
  private readonly admin: FileAdminState;

  /** `bounds`: smaller bounds than memory-limits.ts's, for tests of what a bound drops. */
  constructor(
    private readonly store: Store,
    bounds: { unstoredFailures?: number } = {},
  ) {
    super(bounds);
    this.admin = new FileAdminState(store);
  }

  private tx<T>(change: (tx: StoreTx) => T): Promise<T> {
    return this.store.transact(change);
  }

  // -------------------------------------------------------------------------------------------
  // Reads

  loginView(address: string): Promise<LoginView> {
    return Promise.resolve(this.loginViewNow(address, { mailbox: undefined, domain: undefined, global: {} }));
  }

  loginViewNow(address: string, into: LoginView): LoginView {
    into.mailbox = this.store.getMailbox(address);
    into.domain = this.store.getDomain(domainOf(address))?.settings;
    into.global = this.store.getGlobal();
    return into;
  }

  // -------------------------------------------------------------------------------------------
  // Second factors

  acceptTotpStep(address: string, sealedSecret: string, step: number, at: { success: SuccessEffects; failure: FailureEffects }) {
    return this.tx((tx): { outcome: 'accepted' | 'reused' | 'changed' } | Locked => {
      const rec = tx.getMailbox(address);
      if (rec === undefined || rec.totp === null || rec.totp.sealedSecret !== sealedSecret) return { outcome: 'changed' };
      const locked = lockedFor(rec, at.success.kind, at.success.now);
      if (locked !== null) return locked;
      const last = rec.totp.lastAcceptedStep;
      if (last !== null && step <= last) {
        tx.putMailbox(failed(rec, at.failure));
        return { outcome: 'reused' };
      }
      tx.putMailbox(succeeded(rec, { totp: { ...rec.totp, lastAcceptedStep: step } }, at.success));
      return { outcome: 'accepted' };
    });
  }

  recordFailure(address: string, failure: FailureEffects) {
    return this.tx((tx): { outcome: 'counted'; state: FailureState } | Locked | null => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return null;
      const locked = lockedFor(rec, failure.kind, failure.now);
      if (locked !== null) return locked;
      const next = failed(rec, failure);
      tx.putMailbox(next);
      return { outcome: 'counted', state: next.failures[failure.kind]! };
    });
  }

  tryOpenCode(address: string, hash: string, at: { maxTries: number; success: SuccessEffects; failure: FailureEffects }) {
    type Outcome = { outcome: 'ok' | 'code-invalid' | 'code-expired' | 'no-open-code'; provider: 'sms' | 'email' | null } | Locked;
    return this.tx((tx): Outcome => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return { outcome: 'no-open-code', provider: null };
      const locked = lockedFor(rec, at.success.kind, at.success.now);
      if (locked !== null) return locked;
      const open = rec.openCode;
      if (open === null) {
        tx.putMailbox(failed(rec, at.failure));
        return { outcome: 'no-open-code', provider: null };
      }
      if (open.expiresAt <= at.success.now) {
        tx.putMailbox(failed(rec, at.failure, { openCode: null }));
        return { outcome: 'code-expired', provider: open.provider };
      }
      if (sameHash(open.hash, hash)) {
        tx.putMailbox(succeeded(rec, { openCode: null }, at.success));
        return { outcome: 'ok', provider: open.provider };
      }
      const tries = open.failedTries + 1;
      const openCode: OpenCode | null = tries >= at.maxTries ? null : { ...open, failedTries: tries };
      tx.putMailbox(failed(rec, at.failure, { openCode }));
      return { outcome: 'code-invalid', provider: open.provider };
    });
  }

  consumeRecoveryCode(address: string, hash: string, at: { success: SuccessEffects; failure: FailureEffects }) {
    return this.tx((tx): { outcome: 'ok'; left: number } | { outcome: 'code-invalid' } | Locked => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return { outcome: 'code-invalid' };
      const locked = lockedFor(rec, at.success.kind, at.success.now);
      if (locked !== null) return locked;
      // Every stored hash is compared, so that the time does not tell which one matched.
      let found = -1;
      rec.recoveryCodeHashes.forEach((h, i) => {
        if (sameHash(h, hash) && found === -1) found = i;
      });
      if (found === -1) {
        tx.putMailbox(failed(rec, at.failure));
        return { outcome: 'code-invalid' };
      }
      const left = rec.recoveryCodeHashes.filter((_, i) => i !== found);
      tx.putMailbox(succeeded(rec, { recoveryCodeHashes: left }, at.success, [{ kind: 'recovery-code-used', left: left.length }]));
      return { outcome: 'ok', left: left.length };
    });
  }

  activatePending(address: string, sealedSecret: string, step: number | null, at: { success: SuccessEffects; requireProved: boolean }) {
    return this.tx((tx): { outcome: 'activated' | 'changed' | 'unproved' } | Locked => {
      const rec = tx.getMailbox(address);
      const pending = rec?.pendingTotp ?? null;
      if (rec === undefined || pending === null || pending.sealedSecret !== sealedSecret || pending.expiresAt <= at.success.now) return { outcome: 'changed' };
      // A forced activation (no code) is an administrator's; a code is checked like any factor.
      if (step !== null) {
        const locked = lockedFor(rec, at.success.kind, at.success.now);
        if (locked !== null) return locked;
      }
      if (at.requireProved && pending.factorProved !== true) return { outcome: 'unproved' };
      const totp: TotpState = { sealedSecret, activatedAt: at.success.now, lastAcceptedStep: step };
      tx.putMailbox(succeeded(rec, { totp, pendingTotp: null }, at.success, [{ kind: 'totp-enrolled' }]));
      return { outcome: 'activated' };
    });
  }

  createEnrolled(address: string, totp: TotpState, success: SuccessEffects): Promise<'created' | 'exists'> {
    return this.tx((tx) => {
      if (tx.getMailbox(address) !== undefined) return 'exists';
      tx.putMailbox(succeeded(newMailbox(address, success.now), { totp }, success, [{ kind: 'totp-enrolled' }]));
      return 'created';
    });
  }

  // -------------------------------------------------------------------------------------------
  // One-time codes

  openCode(address: string, code: OpenCode): Promise<'opened' | 'missing'> {
    return this.tx((tx) => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return 'missing';
      tx.putMailbox({ ...rec, openCode: code, updatedAt: code.lastSentAt });
      return 'opened';
    });
  }

  claimAndOpen(address: string, keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }, fresh: OpenCode): Promise<SendAndOpen> {
    // One transaction of the store: the claim (in memory) and the code decided together.
    return this.tx((tx): SendAndOpen => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return { outcome: 'missing' };
      const open = rec.openCode !== null && rec.openCode.expiresAt > now ? rec.openCode : null;
      const claim = this.claimSendNow(keys, now, limits);
      if (!claim.ok) return { outcome: 'refused', open, retryAfterMs: claim.retryAfterMs, limit: claim.limit, key: claim.key };
      if (open !== null && open.provider === fresh.provider && open.destination === fresh.destination) return { outcome: 'kept', open };
      tx.putMailbox({ ...rec, openCode: fresh, updatedAt: fresh.lastSentAt });
      return { outcome: 'opened', open: fresh };
    });
  }

  codeResent(address: string, hash: string, at: number): Promise<'resent' | 'changed'> {
    return this.tx((tx) => {
      const rec = tx.getMailbox(address);
      const open = rec?.openCode ?? null;
      if (rec === undefined || open === null || open.hash !== hash) return 'changed';
      tx.putMailbox({ ...rec, openCode: { ...open, sends: open.sends + 1, lastSentAt: at }, updatedAt: at });
      return 'resent';
    });
  }

  closeCode(address: string, hash: string): Promise<void> {
    return this.tx((tx) => {
      const rec = tx.getMailbox(address);
      if (rec !== undefined && rec.openCode !== null && rec.openCode.hash === hash) tx.putMailbox({ ...rec, openCode: null });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Enrolment

  pendingOrNew(address: string, fresh: PendingTotp, now: number, opts: { restart: boolean; needProved: boolean }): Promise<PendingTotp> {
    return this.tx((tx) => {
      const rec = tx.getMailbox(address) ?? newMailbox(address, now);
      const open = rec.pendingTotp;
      if (!opts.restart && open !== null && open.expiresAt > now && (!opts.needProved || open.factorProved === true)) return open;
      tx.putMailbox({ ...rec, pendingTotp: fresh, updatedAt: now });
      return fresh;
    });
  }

  countGraceLogin(address: string, maxLogins: number, now: number): Promise<number | null> {
    return this.tx((tx) => {
      const rec = tx.getMailbox(address);
      if (rec === undefined) return null;
      const used = rec.enrolmentGraceLogins ?? 0;
      if (used >= maxLogins) return null;
      tx.putMailbox({ ...rec, enrolmentGraceLogins: used + 1, updatedAt: now });
      return used + 1;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Administration

  getMailbox(address: string): Promise<MailboxRecord | undefined> {
    return Promise.resolve(this.store.getMailbox(address));
  }

  updateMailbox<T>(address: string, change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T> {
    return this.tx((tx) => {
      const { next, result } = change(tx.getMailbox(address));
      if (next === null) tx.deleteMailbox(address);
      else if (next !== undefined) tx.putMailbox(next);
      return result;
    });
  }

  storedFailures(): Iterable<{ failures: MailboxFailures }> {
    return this.store.allMailboxes();
  }

  mailboxNotices(): Promise<{ address: string; notices: MailboxNotices }[]> {
    const found: { address: string; notices: MailboxNotices }[] = [];
    for (const rec of this.store.allMailboxes()) if (rec.notices !== undefined) found.push({ address: rec.address, notices: rec.notices });
    return Promise.resolve(found);
  }

  listMailboxes(options: { domain?: string | undefined; after?: string | undefined; limit?: number | undefined }): Promise<MailboxRecord[]> {
    return Promise.resolve(this.store.listMailboxes({ domain: options.domain, after: options.after, limit: options.limit }));
  }

  countMailboxes(domain?: string): Promise<number> {
    return Promise.resolve(this.store.countMailboxes(domain));
  }

  getGlobal(): Promise<LevelSettings> {
    return Promise.resolve(this.store.getGlobal());
  }

  getDomain(domain: string): Promise<DomainRecord | undefined> {
    return Promise.resolve(this.store.getDomain(domain));
  }

  listDomains(): Promise<DomainRecord[]> {
    return Promise.resolve(this.store.listDomains());
  }

  updateGlobal(change: (current: LevelSettings) => LevelSettings): Promise<LevelSettings> {
    return this.tx((tx) => {
      const next = change(tx.getGlobal());
      tx.putGlobal(next);
      return next;
    });
  }

  updateDomain<T>(domain: string, change: (current: DomainRecord | undefined) => { next?: DomainRecord | null; result: T }): Promise<T> {
    return this.tx((tx) => {
      const { next, result } = change(tx.getDomain(domain));
      if (next === null) tx.deleteDomain(domain);
      else if (next !== undefined) tx.putDomain(next);
      return result;
    });
  }

  getMetaNow<T>(key: string): T | undefined {
    return this.store.getMeta<T>(key);
  }

  getMeta<T>(key: string): Promise<T | undefined> {
    return Promise.resolve(this.store.getMeta<T>(key));
  }

  updateMeta<T, R>(key: string, change: (current: T | undefined) => { next?: T | null; result: R }): Promise<R> {
    return this.tx((tx) => {
      const { next, result } = change(tx.getMeta<T>(key));
      if (next === null) tx.putMeta(key, null);
      else if (next !== undefined) tx.putMeta(key, next);
      return result;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Administration beyond one record: FileAdminState's

  findMailboxes(query: MailboxQuery): Promise<{ total: number; mailboxes: MailboxRecord[] }> {
    return this.admin.findMailboxes(query);
  }

  updateMailboxes<T>(addresses: readonly string[], change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T[]> {
    return this.admin.updateMailboxes(addresses, change);
  }

  recordAppPasswordUses(uses: readonly ({ address: string; id: string } & AppPasswordUses)[]): Promise<void> {
    return this.tx((tx) => {
      const byAddress = new Map<string, Map<string, AppPasswordUses>>();
      for (const u of uses) {
        const ids = byAddress.get(u.address) ?? new Map<string, AppPasswordUses>();
        byAddress.set(u.address, ids.set(u.id, u));
      }
      for (const [address, ids] of byAddress) {
        const rec = tx.getMailbox(address);
        if (rec === undefined || !rec.appPasswords.some((ap) => ids.has(ap.id))) continue;
        // updatedAt stays: a login is not a change of the mailbox's settings.
        tx.putMailbox({ ...rec, appPasswords: rec.appPasswords.map((ap) => (ids.has(ap.id) ? withUses(ap, ids.get(ap.id)!) : ap)) });
      }
    });
  }

  getDomainAdmin(id: string): Promise<DomainAdminRecord | undefined> {
    return this.admin.getDomainAdmin(id);
  }

  listDomainAdmins(): Promise<DomainAdminRecord[]> {
    return this.admin.listDomainAdmins();
  }

  addDomainAdmin(record: DomainAdminRecord): Promise<'added' | 'exists'> {
    return this.admin.addDomainAdmin(record);
  }

  removeDomainAdmin(name: string): Promise<DomainAdminRecord | undefined> {
    return this.admin.removeDomainAdmin(name);
  }

  sealedSecretPerKey(): Promise<{ kid: string; address: string; sealedSecret: string }[]> {
    return this.admin.sealedSecretPerKey();
  }

  claimJob(job: string, holder: string, now: number, ttlMs: number): Promise<{ claimed: true } | { claimed: false; holder: string; until: number }> {
    return this.admin.claimJob(job, holder, now, ttlMs);
  }

  releaseJob(job: string, holder: string): Promise<void> {
    return this.admin.releaseJob(job, holder);
  }

  jobClaim(job: string, now: number): Promise<{ holder: string; until: number } | undefined> {
    return this.admin.jobClaim(job, now);
  }
}
