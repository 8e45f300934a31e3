// TOTP enrolment: a pending secret is created, shown once, and activated only by a valid code
// from the user's app (or at once, for scripted provisioning).
//
// A mailbox with no stored record (nobody configured it) that verify asks to enrol gets a secret
// derived from a key and the time instead (see offer): verify stores nothing for it until the
// first right code, so made-up addresses cannot grow the store.
import { createHmac } from 'node:crypto';
import { checkTotp, generateTotpSecret, groupSecret, otpauthUri, toBase32 } from '../core/totp.js';
import type { MailboxRecord, PendingTotp, TotpState } from '../core/model.js';
import { normaliseCode } from '../core/codes.js';
import { normaliseAddress } from '../core/validate.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { EnrolConfirmResult, EnrolResult } from '../protocol/results.js';
import { secretAad } from '../security/keyring.js';
import type { StoreTx } from '../store/types.js';
import { lockoutPolicy, mailboxOrNew, totpOptions } from './context.js';
import { kindLockState, recordKindFailure, recordKindSuccess } from '../core/lockout.js';
import type { CallContext, Ports } from './ports.js';
import { assertMailbox } from './scope.js';

export const TOTP_PURPOSE = 'totp';
/** The key purpose of the secrets offered to mailboxes without a record. */
export const OFFER_PURPOSE = 'totp-offer';
/** Bytes of a TOTP secret (160 bits, as RFC 4226 recommends). */
const SECRET_BYTES = 20;

export class Enrolment {
  constructor(private readonly p: Ports) {}

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
   * Inside a transaction: the open pending secret of the mailbox, or a new one. The same pending
   * secret is returned until it expires, so a user who reloads the login page scans one QR code.
   * `proved`: the caller proved the mailbox's current factor; only a pending secret started that
   * way is reused, and a new one is marked so.
   */
  pendingIn(tx: StoreTx, address: string, now: number, restart = false, proved = false): PendingTotp {
    const rec = mailboxOrNew(tx, address, now);
    const open = rec.pendingTotp;
    if (!restart && open !== null && open.expiresAt > now && (!proved || open.factorProved === true)) return open;
    const secret = generateTotpSecret((n) => this.p.random.bytes(n), SECRET_BYTES);
    const pending: PendingTotp = {
      sealedSecret: this.p.secrets.seal(secret, secretAad(TOTP_PURPOSE, address)),
      createdAt: now,
      expiresAt: now + this.p.config.totp.enrolmentTtlSeconds * 1000,
      ...(proved ? { factorProved: true as const } : {}),
    };
    tx.putMailbox({ ...rec, pendingTotp: pending, updatedAt: now });
    return pending;
  }

  async start(params: { address: string; restart?: boolean | undefined }, ctx: CallContext): Promise<EnrolResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const now = this.p.clock();
    const pending = await this.p.store.transact((tx) => this.pendingIn(tx, address, now, params.restart ?? false));
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.start', result: 'pending' });
    return this.describe(address, pending);
  }

  /**
   * Activates the pending secret. With a code, only if the code is valid now (the step it matched
   * is recorded, so the same code cannot then log in); with force, without one. `assertMay`, run
   * on the record inside the transaction, may refuse (throw) before anything is checked.
   */
  async confirm(
    params: { address: string; code?: string | undefined; force?: boolean | undefined },
    ctx: CallContext,
    assertMay?: (rec: MailboxRecord, tx: StoreTx) => void,
  ): Promise<EnrolConfirmResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    if (params.code === undefined && params.force !== true) throw invalidParams('give the code from the app, or force activation', { param: 'code' });
    const code = params.code === undefined ? null : normaliseCode(params.code);
    if (params.code !== undefined && code === null) throw invalidParams('code: expected digits', { param: 'code' });
    const now = this.p.clock();
    const outcome = await this.p.store.transact((tx): { ok: true } | { ok: false; lockedUntil?: number | null } => {
      const rec = tx.getMailbox(address);
      if (rec === undefined || rec.pendingTotp === null || rec.pendingTotp.expiresAt <= now) {
        throw new MemfaError('CONFLICT', `no pending TOTP enrolment for ${address}`, { hint: `start one with: memfa enroll ${address}` });
      }
      assertMay?.(rec, tx);
      // Guessing the pending secret's code counts like any wrong factor (the self-service variant
      // of this method is on the self socket). The call carries no client address, so it counts
      // on the elsewhere side (core/lockout.ts).
      const lock = kindLockState(rec.failures, 'elsewhere', now);
      if (code !== null && lock.locked) return { ok: false, lockedUntil: lock.until };
      const record = this.activated(rec, code, now);
      if (record === null) {
        tx.putMailbox({ ...rec, failures: recordKindFailure(rec.failures, 'elsewhere', now, lockoutPolicy(this.p.config)), updatedAt: now });
        return { ok: false };
      }
      tx.putMailbox({ ...record, failures: recordKindSuccess(record.failures, 'elsewhere') });
      return { ok: true };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.confirm', result: outcome.ok ? 'enrolled' : 'rejected', reason: outcome.ok ? 'enrolled' : 'lockedUntil' in outcome ? 'locked' : 'code-invalid' });
    if (!outcome.ok && 'lockedUntil' in outcome) {
      const retryAfter = outcome.lockedUntil == null ? undefined : Math.max(1, Math.ceil((outcome.lockedUntil - now) / 1000));
      throw new MemfaError('RATE_LIMITED', `${address} is locked after too many failures${retryAfter === undefined ? ' until an administrator unlocks it' : `; retry in ${retryAfter} s`}`, {
        data: { reason: 'locked', ...(retryAfter === undefined ? {} : { retryAfter }) },
      });
    }
    if (!outcome.ok) throw new MemfaError('CONFLICT', 'the code does not match the pending secret; nothing was activated', { data: { reason: 'code-invalid' }, hint: 'check the phone clock and try the next code' });
    return { address, activated: true, activatedAt: now };
  }

  /**
   * The record with its pending secret made active, if `code` (null = forced) is valid for it now;
   * null otherwise. The caller stores it.
   */
  activated(rec: MailboxRecord, code: string | null, now: number): MailboxRecord | null {
    const pending = rec.pendingTotp!;
    let lastAcceptedStep: number | null = null;
    if (code !== null) {
      const key = this.p.secrets.open(pending.sealedSecret, secretAad(TOTP_PURPOSE, rec.address));
      const check = checkTotp(key, code, now, totpOptions(this.p.config), null);
      if (!check.ok) return null;
      // The code that confirmed the secret cannot then log in.
      lastAcceptedStep = check.step;
    }
    return { ...rec, totp: { sealedSecret: pending.sealedSecret, activatedAt: now, lastAcceptedStep }, pendingTotp: null, updatedAt: now };
  }
}
