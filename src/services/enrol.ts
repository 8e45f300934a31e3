// TOTP enrolment: a pending secret is created, shown once, and activated only by a valid code
// from the user's app (or at once, for scripted provisioning).
//
// A mailbox with no stored record (nobody configured it) that verify asks to enrol gets a secret
// derived from a key and the time instead (see offer): verify stores nothing for it until the
// first right code, so made-up addresses cannot grow the store.
import { createHmac } from 'node:crypto';
import type { MemfaConfig } from '../config/types.js';
import { checkTotp, generateTotpSecret, groupSecret, otpauthUri, toBase32 } from '../core/totp.js';
import { kindLockState } from '../core/lockout.js';
import type { MailboxRecord, PendingTotp, TotpState } from '../core/model.js';
import { normaliseCode } from '../core/codes.js';
import { normaliseAddress } from '../core/validate.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { EnrolConfirmResult, EnrolResult } from '../protocol/results.js';
import { secretAad } from '../core/secret-binding.js';
import { lockoutPolicy, totpOptions } from './context.js';
import { watchLocks, type Notifier } from './notify.js';
import type { AuditSink, CallContext, Log, Random, SecretBox } from './ports.js';
import { assertMailbox } from './scope.js';
import { logMailboxLocked } from './security-log.js';
import type { EnrolStore, FactorStore, Locked, LoginReads, LoginView, NoticeQueue } from './store-ports.js';

/** What enrolment needs: the pending secret's reads and check-then-acts, sealing, randomness, time. */
export interface EnrolPorts {
  state: LoginReads & Pick<EnrolStore, 'pendingOrNew'> & Pick<FactorStore, 'recordFailure' | 'activatePending'>;
  config: MemfaConfig;
  clock: () => number;
  random: Pick<Random, 'bytes'>;
  secrets: Pick<SecretBox, 'seal' | 'open' | 'macKey'>;
  audit: Pick<AuditSink, 'append'>;
  log: Pick<Log, 'notice'>;
}

/**
 * A caller's own rule for confirm (self-service): run on the mailbox as read, it may refuse
 * (throw) before anything is checked, and says whether only a pending secret started with the
 * current factor proved may be activated.
 */
export type ConfirmGuard = (rec: MailboxRecord, view: LoginView) => { requireProved: boolean };

function lockedError(address: string, until: number | null, now: number): MemfaError {
  const retryAfter = until === null ? undefined : Math.max(1, Math.ceil((until - now) / 1000));
  return new MemfaError('RATE_LIMITED', `${address} is locked after too many failures${retryAfter === undefined ? ' until an administrator unlocks it' : `; retry in ${retryAfter} s`}`, {
    data: { reason: 'locked', ...(retryAfter === undefined ? {} : { retryAfter }) },
  });
}

function noPending(address: string): MemfaError {
  return new MemfaError('CONFLICT', `no pending TOTP enrolment for ${address}`, { hint: `start one with: memfa enroll ${address}` });
}

export const TOTP_PURPOSE = 'totp';
/** The key purpose of the secrets offered to mailboxes without a record. */
export const OFFER_PURPOSE = 'totp-offer';
/** Bytes of a TOTP secret (160 bits, as RFC 4226 recommends). */
const SECRET_BYTES = 20;

export class Enrolment {
  constructor(
    private readonly p: EnrolPorts,
    private readonly notifier: Pick<Notifier, 'queueFor'>,
  ) {}

  uriFor(address: string, pending: PendingTotp): string {
    return this.describe(address, pending).otpauthUri;
  }

  /** The pending secret as shown to the user: the secret itself, grouped, and as a URI. */
  describe(address: string, pending: PendingTotp): EnrolResult {
    return this.describeKey(address, this.p.secrets.open(pending.sealedSecret, secretAad(TOTP_PURPOSE, address)), pending.expiresAt);
  }

  private describeKey(address: string, key: Buffer, expiresAt: number): EnrolResult {
    const secret = toBase32(key);
    const o = totpOptions(this.p.config);
    return {
      address,
      secret,
      secretGrouped: groupSecret(secret),
      otpauthUri: otpauthUri({ issuer: this.p.config.issuer, account: address, secretBase32: secret, algorithm: o.algorithm, digits: o.digits, period: o.period }),
      expiresAt,
      algorithm: o.algorithm,
      digits: o.digits,
      period: o.period,
    };
  }

  private get offerMs(): number {
    return this.p.config.totp.enrolmentTtlSeconds * 1000;
  }

  /**
   * The secret offered to a mailbox without a record in time bucket `bucket` (enrolmentTtlSeconds
   * long): a keyed hash of the address and the bucket, so that everyone who asks within a bucket
   * gets the same QR code and nothing needs storing. The key is the key ring's stable key for this
   * purpose, unknown outside the daemon.
   */
  private offeredSecret(address: string, bucket: number): Buffer {
    return createHmac('sha256', this.p.secrets.macKey(OFFER_PURPOSE)).update(address, 'utf8').update('\0').update(String(bucket)).digest().subarray(0, SECRET_BYTES);
  }

  /**
   * What verify shows a mailbox without a record that must enrol. A secret is offered for the
   * current bucket and accepted in the next one too, so a code scanned from it is accepted for at
   * least enrolmentTtlSeconds (expiresAt says until when); a reload in the next bucket shows the
   * next secret.
   */
  offer(address: string, now: number): { otpauthUri: string; expiresAt: number } {
    const bucket = Math.floor(now / this.offerMs);
    return { otpauthUri: this.describeKey(address, this.offeredSecret(address, bucket), (bucket + 2) * this.offerMs).otpauthUri, expiresAt: (bucket + 2) * this.offerMs };
  }

  /**
   * The TOTP state to store for a mailbox without a record, if `code` is valid now for a secret it
   * was offered (this bucket's or the last one's); null otherwise. The step the code matched is
   * recorded, so the same code cannot then log in.
   */
  activateOffered(address: string, code: string, now: number): TotpState | null {
    const bucket = Math.floor(now / this.offerMs);
    for (const b of [bucket, bucket - 1]) {
      const key = this.offeredSecret(address, b);
      const check = checkTotp(key, code, now, totpOptions(this.p.config), null);
      if (check.ok) return { sealedSecret: this.p.secrets.seal(key, secretAad(TOTP_PURPOSE, address)), activatedAt: now, lastAcceptedStep: check.step };
    }
    return null;
  }

  /**
   * A new pending secret for `address`, sealed, not stored: EnrolStore.pendingOrNew stores it only
   * when the mailbox has no open one to reuse. `proved`: started with the mailbox's current
   * factor proved (services/proof.ts).
   */
  freshPending(address: string, now: number, proved = false): PendingTotp {
    const secret = generateTotpSecret((n) => this.p.random.bytes(n), SECRET_BYTES);
    return {
      sealedSecret: this.p.secrets.seal(secret, secretAad(TOTP_PURPOSE, address)),
      createdAt: now,
      expiresAt: now + this.p.config.totp.enrolmentTtlSeconds * 1000,
      ...(proved ? { factorProved: true as const } : {}),
    };
  }

  /**
   * The open pending secret of the mailbox, or a new one. The same pending secret is returned
   * until it expires, so a user who reloads the login page scans one QR code. `proved`: the caller
   * proved the mailbox's current factor; only a pending secret started that way is reused, and a
   * new one is marked so.
   */
  pending(address: string, now: number, restart = false, proved = false): Promise<PendingTotp> {
    return this.p.state.pendingOrNew(address, this.freshPending(address, now, proved), now, { restart, needProved: proved });
  }

  /**
   * The time step `code` (null: none, a forced activation) matches for the pending secret now,
   * which activating it records as the last accepted step, so the code that confirmed the secret
   * cannot then log in; undefined when the code does not match.
   */
  pendingStep(address: string, pending: PendingTotp, code: string | null, now: number): number | null | undefined {
    if (code === null) return null;
    const key = this.p.secrets.open(pending.sealedSecret, secretAad(TOTP_PURPOSE, address));
    const check = checkTotp(key, code, now, totpOptions(this.p.config), null);
    return check.ok ? check.step : undefined;
  }

  async start(params: { address: string; restart?: boolean | undefined }, ctx: CallContext): Promise<EnrolResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const now = this.p.clock();
    const pending = await this.pending(address, now, params.restart ?? false);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.start', result: 'pending' });
    return this.describe(address, pending);
  }

  /**
   * Activates the pending secret. With a code, only if the code is valid now (the step it matched
   * is recorded, so the same code cannot then log in); with force, without one. The code is
   * checked here, then ONE operation activates the very pending secret it was checked against
   * (or counts the failure), so that a pending secret replaced meanwhile is never activated.
   * `guard` (self-service) may refuse before anything is checked.
   */
  async confirm(params: { address: string; code?: string | undefined; force?: boolean | undefined }, ctx: CallContext, guard?: ConfirmGuard): Promise<EnrolConfirmResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    if (params.code === undefined && params.force !== true) throw invalidParams('give the code from the app, or force activation', { param: 'code' });
    const code = params.code === undefined ? null : normaliseCode(params.code);
    if (params.code !== undefined && code === null) throw invalidParams('code: expected digits', { param: 'code' });
    const now = this.p.clock();
    const view = await this.p.state.loginView(address);
    const rec = view.mailbox;
    const pending = rec?.pendingTotp ?? null;
    if (rec === undefined || pending === null || pending.expiresAt <= now) throw noPending(address);
    const { requireProved } = guard?.(rec, view) ?? { requireProved: false };
    // The owner hears of the secret enrolled, or of a lock a wrong code started, in the operation's own write.
    const notices = watchLocks(this.notifier.queueFor(view, now), 'elsewhere', now);
    const outcome = await this.activate(rec, pending, code, now, requireProved, notices);
    if (notices.started !== null) logMailboxLocked(this.p.log, { ip: null, mailbox: address, kind: 'elsewhere', ...notices.started });
    if (outcome === 'changed') throw noPending(address);
    if (outcome === 'unproved') {
      // The guard refuses this pending secret now (it was replaced by one started without proof).
      const again = await this.p.state.loginView(address);
      if (again.mailbox !== undefined) guard?.(again.mailbox, again);
      throw noPending(address);
    }
    const ok = outcome === 'activated';
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.confirm', result: ok ? 'enrolled' : 'rejected', reason: ok ? 'enrolled' : outcome === 'code-invalid' ? 'code-invalid' : 'locked' });
    if (outcome !== 'activated' && outcome !== 'code-invalid') throw lockedError(address, outcome.until, now);
    if (outcome === 'code-invalid') throw new MemfaError('CONFLICT', 'the code does not match the pending secret; nothing was activated', { data: { reason: 'code-invalid' }, hint: 'check the phone clock and try the next code' });
    return { address, activated: true, activatedAt: now };
  }

  /**
   * Checks `code` against `pending` and activates it, or counts the failure. Guessing the pending
   * secret's code counts like any wrong factor (the self-service variant of confirm is on the
   * self socket); the call carries no client address, so it counts on the elsewhere side
   * (core/lockout.ts), and a locked mailbox is refused before the code is checked. A forced
   * activation (no code) is an administrator's and checks no lock.
   */
  private async activate(rec: MailboxRecord, pending: PendingTotp, code: string | null, now: number, requireProved: boolean, notices: NoticeQueue): Promise<'activated' | 'changed' | 'unproved' | 'code-invalid' | Locked> {
    if (code !== null) {
      const lock = kindLockState(rec.failures, 'elsewhere', now);
      if (lock.locked) return { outcome: 'locked', until: lock.until };
    }
    const step = this.pendingStep(rec.address, pending, code, now);
    if (step === undefined) {
      const failed = await this.p.state.recordFailure(rec.address, { kind: 'elsewhere', now, policy: lockoutPolicy(this.p.config), notices });
      return failed?.outcome === 'locked' ? failed : 'code-invalid';
    }
    const r = await this.p.state.activatePending(rec.address, pending.sealedSecret, step, { success: { kind: 'elsewhere', now, location: null, notices }, requireProved });
    return r.outcome === 'locked' ? r : r.outcome;
  }
}
