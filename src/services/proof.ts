// Proof of a mailbox's current second factor, asked before a change that replaces or removes it:
// whoever holds only the password, or only a webmail session, must not be able to swap the
// factor for one of their own. One step for every such change (self-service enrolment and
// settings; app passwords and recovery codes made by the user reuse it).
//
// The proof is checked as verify checks a code, and decided by ONE operation of the state ports:
// a TOTP code moves the last accepted step (no replay), a sent code or a recovery code is spent,
// a wrong one counts a failure in the mailbox's lockout, and a locked mailbox is refused before
// anything is checked. The change it allows is another operation, after it: the caller validates
// the change fully BEFORE proving, so that a change refused for its own reasons never spends a
// recovery code or a sent code.
import type { MemfaConfig } from '../config/types.js';
import { normaliseCode } from '../core/codes.js';
import { kindLockState } from '../core/lockout.js';
import type { CodeProvider, EffectiveSettings, MailboxRecord, ProviderName } from '../core/model.js';
import { checkTotp } from '../core/totp.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import { secretAad } from '../core/secret-binding.js';
import type { OneTimeCodes } from './codes.js';
import { lockoutPolicy, totpOptions } from './context.js';
import { TOTP_PURPOSE } from './enrol.js';
import { watchLocks, type Notifier, type StartedLock } from './notify.js';
import type { Log, SecretBox } from './ports.js';
import { asRecoveryCode, type RecoveryCodes } from './recovery.js';
import { logMailboxLocked } from './security-log.js';
import type { FactorStore, FailureEffects, NoticeQueue, SuccessEffects } from './store-ports.js';

/** What a proof needs: the check-then-acts of a factor, the key ring to open a TOTP secret, the security log. */
export interface ProofPorts {
  state: Pick<FactorStore, 'acceptTotpStep' | 'tryOpenCode' | 'consumeRecoveryCode' | 'recordFailure'>;
  config: MemfaConfig;
  secrets: Pick<SecretBox, 'open'>;
  log: Pick<Log, 'notice'>;
}

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

/** A failed proof; `started`: the lock its failure started, logged by refusal(). */
export type ProofOutcome = { ok: true; factor: ActiveFactor | 'recovery' } | { ok: false; reason: ProofFailure; lockedUntil: number | null; started?: StartedLock };

export class FactorProof {
  constructor(
    private readonly p: ProofPorts,
    private readonly codes: Pick<OneTimeCodes, 'hash'>,
    private readonly recovery: Pick<RecoveryCodes, 'hash'>,
    private readonly notifier: Pick<Notifier, 'queueOf'>,
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
   * Checks `proof` against the current factor of `rec` (the mailbox as the caller read it) and
   * records the outcome in one operation of the state ports; on failure the caller throws
   * refusal(). Self-service carries no client address: a proof counts on the elsewhere side
   * (core/lockout.ts) and remembers no location.
   */
  async prove(rec: MailboxRecord, proof: Proof, now: number): Promise<ProofOutcome> {
    const address = rec.address;
    const lock = kindLockState(rec.failures, 'elsewhere', now);
    if (lock.locked) return { ok: false, reason: 'locked', lockedUntil: lock.until };
    // The owner hears of a recovery code used and of a lock a failure started, in the operation's own write.
    const notices = watchLocks(await this.notifier.queueOf(address, now), 'elsewhere', now);
    const outcome = await this.check(rec, proof, now, notices);
    if (!outcome.ok && notices.started !== null) outcome.started = notices.started;
    return outcome;
  }

  private async check(rec: MailboxRecord, proof: Proof, now: number, notices: NoticeQueue): Promise<ProofOutcome> {
    const address = rec.address;
    const success: SuccessEffects = { kind: 'elsewhere', now, location: null, notices };
    const failure: FailureEffects = { kind: 'elsewhere', now, policy: lockoutPolicy(this.p.config), notices };
    const locked = (until: number | null): ProofOutcome => ({ ok: false, reason: 'locked', lockedUntil: until });
    const fail = async (reason: Exclude<ProofFailure, 'locked'>): Promise<ProofOutcome> => {
      const r = await this.p.state.recordFailure(address, failure);
      return r?.outcome === 'locked' ? locked(r.until) : { ok: false, reason, lockedUntil: null };
    };

    if (proof.kind === 'recovery') {
      const r = await this.p.state.consumeRecoveryCode(address, this.recovery.hash(proof.value), { success, failure });
      if (r.outcome === 'locked') return locked(r.until);
      return r.outcome === 'ok' ? { ok: true, factor: 'recovery' } : { ok: false, reason: 'code-invalid', lockedUntil: null };
    }
    // With a TOTP secret its reason tells more (a replayed code); otherwise the sent code's.
    let totpReason: 'code-invalid' | 'code-reused' | null = null;
    if (rec.totp !== null) {
      const key = this.p.secrets.open(rec.totp.sealedSecret, secretAad(TOTP_PURPOSE, address));
      const check = checkTotp(key, proof.value, now, totpOptions(this.p.config), rec.totp.lastAcceptedStep);
      if (check.ok) {
        const r = await this.p.state.acceptTotpStep(address, rec.totp.sealedSecret, check.step, { success, failure });
        if (r.outcome === 'locked') return locked(r.until);
        if (r.outcome === 'accepted') return { ok: true, factor: 'totp' };
        // 'reused': taken meanwhile, and counted; 'changed': the secret went meanwhile.
        if (r.outcome === 'reused') return { ok: false, reason: 'code-reused', lockedUntil: null };
        totpReason = 'code-invalid';
      } else totpReason = check.reason;
    }
    if (rec.openCode !== null) {
      const r = await this.p.state.tryOpenCode(address, this.codes.hash(proof.value), { maxTries: this.p.config.codes.maxTries, success, failure });
      if (r.outcome === 'locked') return locked(r.until);
      if (r.outcome === 'ok') return { ok: true, factor: r.provider ?? rec.openCode.provider };
      return { ok: false, reason: totpReason ?? r.outcome, lockedUntil: null };
    }
    return fail(totpReason ?? 'no-open-code');
  }

  /**
   * The error for a failed proof, thrown once the operation that counted it is done; the lock
   * that failure started, if any, is logged here, now that it is stored.
   */
  refusal(address: string, outcome: Extract<ProofOutcome, { ok: false }>, now: number): MemfaError {
    if (outcome.started !== undefined) logMailboxLocked(this.p.log, { ip: null, mailbox: address, kind: 'elsewhere', ...outcome.started });
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
