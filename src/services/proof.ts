// Proof of a mailbox's current second factor, asked before a change that replaces or removes it:
// whoever holds only the password, or only a webmail session, must not be able to swap the
// factor for one of their own. One step for every such change (self-service enrolment and
// settings; app passwords and recovery codes made by the user reuse it).
//
// The proof is checked and its outcome recorded in the caller's store transaction, exactly as
// verify records a code: a TOTP code moves the last accepted step (no replay), a sent code or a
// recovery code is spent, a wrong one counts a failure in the mailbox's lockout, and a locked
// mailbox is refused before anything is checked.
import { normaliseCode } from '../core/codes.js';
import { kindLockState, recordKindFailure, recordKindSuccess } from '../core/lockout.js';
import type { CodeProvider, EffectiveSettings, MailboxRecord, ProviderName } from '../core/model.js';
import { checkTotp } from '../core/totp.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import { secretAad } from '../security/keyring.js';
import type { StoreTx } from '../store/types.js';
import type { OneTimeCodes } from './codes.js';
import { lockoutPolicy, mailboxOrNew, totpOptions } from './context.js';
import { TOTP_PURPOSE } from './enrol.js';
import type { Ports } from './ports.js';
import { asRecoveryCode, type RecoveryCodes } from './recovery.js';

/** The parameter that carries the proof, wherever a method asks for one. */
export const PROOF_PARAM = 'currentCode';

export type ActiveFactor = ProviderName;

/**
 * The second factors a mailbox has now: an active TOTP secret, and a phone or alternate address
 * that its provider or fallback sends codes to. Recovery codes alone do not count: they stand in
 * for a factor, they are not one a user enrolled.
 */
export function activeFactors(rec: MailboxRecord, eff: EffectiveSettings): ActiveFactor[] {
  const out: ActiveFactor[] = [];
  if (rec.totp !== null) out.push('totp');
  const uses = (p: CodeProvider) => eff.provider === p || eff.fallbackProvider === p;
  if (rec.phone !== null && uses('sms')) out.push('sms');
  if (rec.altEmail !== null && uses('email')) out.push('email');
  return out;
}

/** A submitted proof: digits (a TOTP code or a sent code) or a recovery code. */
export type Proof = { kind: 'otp'; value: string } | { kind: 'recovery'; value: string };

export type ProofFailure = 'code-invalid' | 'code-reused' | 'code-expired' | 'no-open-code' | 'locked';

export type ProofOutcome =
  | { ok: true; record: MailboxRecord; factor: ActiveFactor | 'recovery' }
  | { ok: false; reason: ProofFailure; lockedUntil: number | null };

export class FactorProof {
  constructor(
    private readonly p: Ports,
    private readonly codes: OneTimeCodes,
    private readonly recovery: RecoveryCodes,
  ) {}

  /**
   * The proof given as `currentCode`, or FORBIDDEN when it is missing (the change needs it) and
   * INVALID_PARAMS when it is neither digits nor a recovery code.
   */
  parse(address: string, input: string | undefined, factors: readonly ActiveFactor[]): Proof {
    if (input === undefined) {
      const ways = [
        factors.includes('totp') ? 'a code from the TOTP app' : null,
        factors.includes('sms') || factors.includes('email') ? 'a code sent by self.code.send' : null,
        'a recovery code',
      ].filter((w) => w !== null);
      throw new MemfaError('FORBIDDEN', `${PROOF_PARAM}: this change replaces the second factor of ${address} (${factors.join(', ')}) and needs the current one: give ${ways.join(', or ')}`, {
        data: { right: PROOF_PARAM, param: PROOF_PARAM, factors: [...factors] },
        hint: 'a user who lost the factor asks an administrator, who can reset it',
      });
    }
    const recovery = asRecoveryCode(input);
    if (recovery !== null) return { kind: 'recovery', value: recovery };
    const digits = normaliseCode(input);
    if (digits !== null) return { kind: 'otp', value: digits };
    throw invalidParams(`${PROOF_PARAM}: expected the digits of a one-time code, or a recovery code`, { param: PROOF_PARAM });
  }

  /**
   * Inside a transaction: checks `proof` against the mailbox's current factor and stores the
   * outcome. On success the caller goes on from `record` (already stored in `tx`); on failure it
   * lets the transaction commit (the failure is counted) and then throws refusal().
   */
  checkIn(tx: StoreTx, address: string, proof: Proof, now: number): ProofOutcome {
    const rec = mailboxOrNew(tx, address, now);
    // Self-service carries no client address: a proof counts on the elsewhere side (core/lockout.ts).
    const lock = kindLockState(rec.failures, 'elsewhere', now);
    if (lock.locked) return { ok: false, reason: 'locked', lockedUntil: lock.until };
    const succeed = (next: MailboxRecord, factor: ActiveFactor | 'recovery'): ProofOutcome => {
      const record = { ...next, failures: recordKindSuccess(next.failures, 'elsewhere'), updatedAt: now };
      tx.putMailbox(record);
      return { ok: true, record, factor };
    };
    const fail = (next: MailboxRecord, reason: Exclude<ProofFailure, 'locked'>): ProofOutcome => {
      tx.putMailbox({ ...next, failures: recordKindFailure(next.failures, 'elsewhere', now, lockoutPolicy(this.p.config)), updatedAt: now });
      return { ok: false, reason, lockedUntil: null };
    };

    if (proof.kind === 'recovery') {
      const i = this.recovery.match(rec.recoveryCodeHashes, proof.value);
      if (i === -1) return fail(rec, 'code-invalid');
      return succeed({ ...rec, recoveryCodeHashes: rec.recoveryCodeHashes.filter((_, j) => j !== i) }, 'recovery');
    }
    let reason: Exclude<ProofFailure, 'locked'> = 'no-open-code';
    if (rec.totp !== null) {
      const key = this.p.secrets.open(rec.totp.sealedSecret, secretAad(TOTP_PURPOSE, address));
      const check = checkTotp(key, proof.value, now, totpOptions(this.p.config), rec.totp.lastAcceptedStep);
      if (check.ok) return succeed({ ...rec, totp: { ...rec.totp, lastAcceptedStep: check.step } }, 'totp');
      reason = check.reason;
    }
    if (rec.openCode !== null) {
      const provider = rec.openCode.provider;
      const { result, openCode } = this.codes.check(rec, proof.value, now);
      if (result.ok) return succeed({ ...rec, openCode }, provider);
      // With a TOTP secret its reason tells more (a replayed code); otherwise the sent code's.
      return fail({ ...rec, openCode }, rec.totp !== null ? reason : result.reason);
    }
    return fail(rec, rec.totp !== null ? reason : 'no-open-code');
  }

  /** The error for a failed proof, thrown once the transaction that counted it has committed. */
  refusal(address: string, outcome: Extract<ProofOutcome, { ok: false }>, now: number): MemfaError {
    if (outcome.reason === 'locked') {
      const retryAfter = outcome.lockedUntil === null ? undefined : Math.max(1, Math.ceil((outcome.lockedUntil - now) / 1000));
      return new MemfaError('RATE_LIMITED', `${address} is locked after too many failures${retryAfter === undefined ? ' until an administrator unlocks it' : `; retry in ${retryAfter} s`}`, {
        data: { reason: 'locked', right: PROOF_PARAM, ...(retryAfter === undefined ? {} : { retryAfter }) },
      });
    }
    return new MemfaError('FORBIDDEN', `${PROOF_PARAM}: the code does not prove the current second factor of ${address} (${outcome.reason}); nothing was changed`, {
      data: { right: PROOF_PARAM, param: PROOF_PARAM, reason: outcome.reason },
    });
  }
}
