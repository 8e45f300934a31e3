// `verify`: the question a login hook asks on every login. The fast path (no factor needed)
// reads memory only; everything that changes state is one store transaction, so check-then-act
// (replay, try counters, lockout) is atomic even under concurrent logins.
import { decide, rememberLocation, type Decision, type RememberPolicy } from '../core/decide.js';
import { failureKind, kindLockState, lockState, recordKindFailure, recordKindSuccess, type AttemptOutcome, type FailureKind, type LockState } from '../core/lockout.js';
import { emptyFailures, newMailbox, type EffectiveSettings, type MailboxRecord, type RememberedIp } from '../core/model.js';
import { normaliseCode } from '../core/codes.js';
import { graceState, type GraceState } from '../core/grace.js';
import { checkTotp } from '../core/totp.js';
import { normaliseAddress, normaliseIp } from '../core/validate.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import type { VerifyResult } from '../protocol/results.js';
import { secretAad } from '../security/keyring.js';
import type { StoreTx } from '../store/types.js';
import { sendOrder, settingsFor, type ProviderChoice } from '../core/provider-choice.js';
import { OneTimeCodes } from './codes.js';
import { effectiveSettings, lockoutPolicy, rememberPolicy, totpOptions } from './context.js';
import { Enrolment, TOTP_PURPOSE } from './enrol.js';
import { SourceThrottle } from './ip-throttle.js';
import type { CallContext, Ports } from './ports.js';
import { asRecoveryCode, asScratchCode, type RecoveryCodes } from './recovery.js';
import type { ProviderPolicy } from './policy.js';
import type { UnstoredFailures } from './unstored-failures.js';
import { providerUnusable } from './unusable.js';

export interface VerifyInput {
  user: string;
  ip: string;
  code?: string | undefined;
  /** false: decide without sending a code, creating a pending enrolment or counting anything. */
  send?: boolean | undefined;
}

interface Login {
  address: string;
  ip: string;
  country: string | null;
  now: number;
}

/** What verify knows of a login before it acts: read once, from memory. */
interface Assessment {
  login: Login;
  rec: MailboxRecord;
  settings: EffectiveSettings;
  /** The provider that gives the factor (the mailbox's, or its fallback), or why none can. */
  choice: ProviderChoice;
  decision: Decision;
}

/** A given factor: digits (TOTP or a sent code) or a recovery code. */
type Factor = { kind: 'otp'; value: string } | { kind: 'recovery'; value: string };

type Answer = Omit<VerifyResult, 'user' | 'ip' | 'country'>;

/** allow 'enrolment-grace': in by the grace, with the secret to enrol and what is left of the grace. */
function graceAnswer(grace: Extract<GraceState, { active: true }>, offer: { otpauthUri: string; expiresAt: number }): Answer {
  const answer: Answer = { result: 'allow', reason: 'enrolment-grace', provider: 'totp', ...offer };
  if (grace.loginsLeft !== null) answer.graceLoginsLeft = grace.loginsLeft;
  if (grace.until !== null) answer.graceUntil = grace.until;
  return answer;
}

/** The record's own copy of `ip` when it remembers that address, else `ip` itself. */
function rememberedCopy(ips: readonly RememberedIp[], ip: string): string {
  // Indexed: for-of allocates an iterator where V8 does not inline this.
  for (let i = 0; i < ips.length; i++) if (ips[i]!.ip === ip) return ips[i]!.ip;
  return ip;
}

/** The audit reason of an error answer, where it has a name of its own. */
const ERROR_REASONS: Partial<Record<MemfaError['code'], string>> = { DELIVERY_FAILED: 'delivery-failed', RATE_LIMITED: 'rate-limited', PROVIDER_UNUSABLE: 'provider-unusable' };

export class Verifier {
  /** Code checks per client source, in memory (see ip-throttle.ts); ip-blocks.ts shows and clears it. */
  readonly throttle: SourceThrottle;
  /** From the configuration, which does not change while the daemon runs. */
  private readonly remember: RememberPolicy;

  constructor(
    private readonly p: Ports,
    private readonly enrolment: Enrolment,
    private readonly codes: OneTimeCodes,
    private readonly recovery: RecoveryCodes,
    private readonly policy: ProviderPolicy,
    /** Failures of mailboxes without a stored record: verify stores none for them. */
    readonly unstored: UnstoredFailures,
  ) {
    this.remember = rememberPolicy(p.config);
    this.throttle = new SourceThrottle(p.config);
  }

  /**
   * The lock that applies to a login from `ip` to `address`: the one of its kind (remembered
   * address or not, core/lockout.ts) for a stored mailbox, the one kept in memory for another.
   */
  lockFor(address: string, ip: string, now: number): LockState {
    const stored = this.p.store.getMailbox(address);
    if (stored === undefined) return lockState(this.unstored.get(address, now) ?? emptyFailures(), now);
    return kindLockState(stored.failures, failureKind(stored.ips, ip, now, this.remember), now);
  }

  /**
   * The settings verify acts on: a provider that cannot be used (disabled by the platform, sms or
   * email without a gateway or without the mailbox's destination) is replaced by the mailbox's
   * fallback when that one can be; `choice` says which and why (core/provider-choice.ts).
   */
  usableSettings(eff: EffectiveSettings, rec: MailboxRecord): { settings: EffectiveSettings; choice: ProviderChoice } {
    const choice = this.policy.choiceFor(eff, rec);
    return { settings: settingsFor(eff, choice), choice };
  }

  /** The pure decision for a login, as `explain` shows it. */
  decision(login: Login, rec: MailboxRecord, eff: EffectiveSettings): Decision {
    return decide(eff, { ips: rec.ips, countries: rec.countries, hasActiveTotp: rec.totp !== null }, { ip: login.ip, country: login.country, now: login.now }, this.remember);
  }

  /**
   * Answers a login. The fast path (no code given, no factor needed) is answered synchronously
   * from memory, without a promise: it is most logins. Everything else goes through
   * decideAndAct. Every outcome, errors included, gets an audit line.
   */
  verify(input: VerifyInput, ctx: CallContext): VerifyResult | Promise<VerifyResult> {
    const address = normaliseAddress(input.user, 'user');
    const ip = normaliseIp(input.ip, 'ip');
    const login: Login = { address, ip, country: this.p.country(ip), now: this.p.clock() };
    const entry = (result: string, reason: string) => ({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'verify', result, reason, ip, country: login.country });

    const send = input.send !== false;
    if (!send && input.code !== undefined) throw invalidParams('send: false decides without checking anything; give it without a code', { param: 'send' });
    let code: Factor | null = null;
    if (input.code !== undefined) {
      const recovery = asRecoveryCode(input.code);
      const digits = recovery === null ? normaliseCode(input.code) : null;
      if (recovery !== null) code = { kind: 'recovery', value: recovery };
      else if (digits !== null) code = { kind: 'otp', value: digits };
      else {
        // Not awaited: the bad parameter is answered at once, and the line is written after it.
        this.p.audit.record(entry('error', 'invalid-code'));
        throw invalidParams('code: expected the digits of a one-time code, or a recovery code', { param: 'code' });
      }
    }
    const rec = this.p.store.getMailbox(address) ?? newMailbox(address, login.now);
    // An imported scratch code (recovery.ts) is digits too: it is a recovery code when it is one
    // of the mailbox's (checked again, and spent, inside the transaction).
    if (code?.kind === 'otp' && rec.recoveryCodeHashes.length > 0 && asScratchCode(code.value) !== null && this.recovery.match(rec.recoveryCodeHashes, code.value) !== -1) {
      code = { kind: 'recovery', value: code.value };
    }
    const { settings, choice } = this.usableSettings(effectiveSettings(this.p.config, this.p.store, address, rec), rec);
    const decision = this.decision(login, rec, settings);
    if (code === null && decision.action === 'allow') {
      // The answer does not wait for this audit line: allows like it are counted per minute. The
      // counter keeps the mailbox and address of each one until its minute ends: the stored
      // record's own copies of those strings, which live on anyway, rather than the request's,
      // which would be promoted to the old generation with it (audit/aggregate.ts).
      const mailbox = rec.address === address ? rec.address : address;
      const from = decision.reason === 'known-ip' ? rememberedCopy(rec.ips, ip) : ip;
      this.p.audit.recordAllow({ actor: ctx.actor, socket: ctx.socket, mailbox, action: 'verify', result: 'allow', reason: decision.reason, ip: from, country: login.country });
      return { result: 'allow', reason: decision.reason, provider: decision.provider, user: address, ip, country: login.country };
    }
    return this.decideAndAct({ login, rec, settings, choice, decision }, code, send).then(
      async (result) => {
        await this.p.audit.append(entry(result.result, result.reason));
        return { ...result, user: address, ip, country: login.country };
      },
      async (err: unknown) => {
        const reason = err instanceof MemfaError ? ERROR_REASONS[err.code] ?? err.code.toLowerCase().replaceAll('_', '-') : 'internal';
        await this.p.audit.append(entry('error', reason));
        throw err;
      },
    );
  }

  private async decideAndAct(assessed: Assessment, code: Factor | null, send: boolean): Promise<Answer> {
    const { login, rec, settings: eff, choice, decision } = assessed;
    // A code given is checked even when no factor is needed: a hook that passes one (an OTP
    // passdb) must not let a wrong code in because the login came from a remembered address.
    if (decision.action === 'deny' || (decision.action === 'allow' && code === null)) {
      return { result: decision.action, reason: decision.reason, provider: decision.provider };
    }
    const lock = this.lockFor(login.address, login.ip, login.now);
    if (lock.locked) return this.lockedAnswer(decision.provider, lock.until, login.now);
    // Never a silent pass: a factor is needed and no provider can give it. Only a recovery code
    // can still get this user in. The platform's deliberate choice (every provider disabled) is a
    // deny; a missing gateway or destination is a configuration error, answered as one (exit
    // 78) so that a hook neither retries nor takes it for the user's failure.
    if (choice.outcome === 'disabled' && code?.kind !== 'recovery') return { result: 'deny', reason: 'provider-disabled', provider: decision.provider };
    if (choice.outcome === 'unusable' && code?.kind !== 'recovery') {
      this.p.log.warn('provider-unusable', { mailbox: login.address, providers: choice.candidates.map((c) => ({ provider: c.provider, source: c.source, problem: c.problem })) });
      throw providerUnusable(login.address, choice.candidates);
    }
    const stored = this.p.store.getMailbox(login.address) !== undefined;

    if (code === null) {
      if (!send) return this.withoutSending(decision, rec, eff, stored, login.now);
      if (decision.action === 'enroll') return this.enrolOrGrace(login, eff, stored);
      if (decision.provider === 'totp') return { result: 'challenge', reason: decision.reason, provider: 'totp' };
      const issued = await this.codes.challenge(login.address, sendOrder(choice), login);
      const answer: Answer = { result: 'challenge', reason: decision.reason, provider: issued.provider, destination: issued.destination, expiresAt: issued.expiresAt, sent: issued.sent, resent: issued.resent };
      if (issued.retryAfter !== undefined) answer.retryAfter = issued.retryAfter;
      return answer;
    }

    // The attempt is reserved with the client's source before anything is awaited, so that the
    // attempts in flight count toward its limits (core/lockout.ts). A source over them is refused
    // before any mailbox is touched, so that one attacker cannot lock out every mailbox; its
    // answer is the same as a locked mailbox's.
    const reserved = this.throttle.reserve(login.ip, login.address, !stored && decision.action === 'enroll', login.now);
    if (!('source' in reserved)) return this.lockedAnswer(decision.provider, reserved.until, login.now);
    let outcome: AttemptOutcome = 'none';
    try {
      // A code was given: check it and record the outcome in one transaction.
      const checked = await this.p.store.transact((tx) => this.checkCode(tx, login, decision, code));
      outcome = checked.outcome;
      return checked.answer;
    } finally {
      this.throttle.settle(reserved, outcome, login.now);
    }
  }

  /** Where a mailbox that must enrol stands with its enrolment grace (core/grace.ts). */
  grace(rec: MailboxRecord, eff: EffectiveSettings, stored: boolean, now: number): GraceState {
    return graceState(eff.enrolmentGrace, rec.enrolmentGraceLogins ?? 0, stored, now);
  }

  /**
   * A login that must enrol and gave no code: the secret to enrol, and either enroll or, within
   * the mailbox's enrolment grace, allow. A mailbox nobody configured is offered a secret that
   * needs no storing (enrol.ts) and its grace is bounded by the date alone: counting its logins
   * would store a record for every address verify is asked about. A stored mailbox's grace login
   * is counted in the same transaction that checks the count, so concurrent logins cannot
   * overrun it.
   */
  private async enrolOrGrace(login: Login, eff: EffectiveSettings, stored: boolean): Promise<Answer> {
    if (!stored) {
      const offer = this.enrolment.offer(login.address, login.now);
      const grace = graceState(eff.enrolmentGrace, 0, false, login.now);
      return grace.active ? graceAnswer(grace, offer) : { result: 'enroll', reason: 'enroll-required', provider: 'totp', ...offer };
    }
    const counted = typeof eff.enrolmentGrace === 'object' && eff.enrolmentGrace.logins !== undefined;
    const { pending, grace } = await this.p.store.transact((tx) => {
      const pending = this.enrolment.pendingIn(tx, login.address, login.now);
      const rec = tx.getMailbox(login.address)!;
      const grace = this.grace(rec, eff, true, login.now);
      if (grace.active && counted) tx.putMailbox({ ...rec, enrolmentGraceLogins: (rec.enrolmentGraceLogins ?? 0) + 1, updatedAt: login.now });
      return { pending, grace };
    });
    const offer = { otpauthUri: this.enrolment.uriFor(login.address, pending), expiresAt: pending.expiresAt };
    return grace.active ? graceAnswer(grace, offer) : { result: 'enroll', reason: 'enroll-required', provider: 'totp', ...offer };
  }

  /**
   * The answer of a verify that must not send, create or count anything (send: false, for hooks
   * that cannot answer a challenge): challenge or enroll as decided, or, within an enrolment grace,
   * allow, without counting the login or offering a secret to store.
   */
  private withoutSending(decision: Decision, rec: MailboxRecord, eff: EffectiveSettings, stored: boolean, now: number): Answer {
    if (decision.action !== 'enroll') return { result: 'challenge', reason: decision.reason, provider: decision.provider };
    const grace = this.grace(rec, eff, stored, now);
    if (!grace.active) return { result: 'enroll', reason: decision.reason, provider: decision.provider };
    const answer: Answer = { result: 'allow', reason: 'enrolment-grace', provider: 'totp' };
    if (grace.loginsLeft !== null) answer.graceLoginsLeft = grace.loginsLeft;
    if (grace.until !== null) answer.graceUntil = grace.until;
    return answer;
  }

  private lockedAnswer(provider: VerifyResult['provider'], until: number | null, now: number): Answer {
    const answer: Answer = { result: 'deny', reason: 'locked', provider };
    if (until !== null) answer.retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
    return answer;
  }

  /** Inside the transaction: the answer, and what it means for the client's source. */
  private checkCode(tx: StoreTx, login: Login, decision: Decision, factor: Factor): { answer: Answer; outcome: AttemptOutcome } {
    // Re-read inside the transaction: a concurrent verify may have changed the record since.
    const rec = tx.getMailbox(login.address);
    const answer = rec === undefined ? this.checkUnstored(tx, login, decision, factor) : this.checkStored(tx, rec, login, decision, factor);
    if (answer === 'created') return { answer: { result: 'allow', reason: 'enrolled', provider: 'totp' }, outcome: 'created' };
    return { answer, outcome: answer.result === 'deny' && answer.reason !== 'locked' ? 'failure' : 'none' };
  }

  private checkStored(tx: StoreTx, rec: MailboxRecord, login: Login, decision: Decision, factor: Factor): Answer {
    const policy = this.remember;
    const kind: FailureKind = failureKind(rec.ips, login.ip, login.now, policy);
    const lock = kindLockState(rec.failures, kind, login.now);
    if (lock.locked) return this.lockedAnswer(decision.provider, lock.until, login.now);
    const succeed = (next: MailboxRecord, reason: string, provider: VerifyResult['provider']) => {
      const places = rememberLocation(next, login.ip, login.country, login.now, policy);
      tx.putMailbox({ ...next, ...places, failures: recordKindSuccess(next.failures, kind), updatedAt: login.now });
      return { result: 'allow' as const, reason, provider };
    };
    const fail = (next: MailboxRecord, reason: string, provider: VerifyResult['provider']) => {
      const failures = recordKindFailure(next.failures, kind, login.now, lockoutPolicy(this.p.config));
      tx.putMailbox({ ...next, failures, updatedAt: login.now });
      return { result: 'deny' as const, reason, provider };
    };

    if (factor.kind === 'recovery') {
      const i = this.recovery.match(rec.recoveryCodeHashes, factor.value);
      if (i === -1) return fail(rec, 'code-invalid', decision.provider);
      const left = rec.recoveryCodeHashes.filter((_, j) => j !== i);
      return { ...succeed({ ...rec, recoveryCodeHashes: left }, 'recovery-code-used', decision.provider), recoveryCodesLeft: left.length };
    }
    const code = factor.value;
    if (decision.action === 'enroll') {
      if (rec.pendingTotp === null || rec.pendingTotp.expiresAt <= login.now) return fail(rec, 'no-open-code', 'totp');
      const activated = this.enrolment.activated(rec, code, login.now);
      if (activated === null) return fail(rec, 'code-invalid', 'totp');
      return succeed(activated, 'enrolled', 'totp');
    }
    if (decision.provider === 'totp') {
      // The decision was taken on the record read before the transaction; a reset meanwhile
      // leaves no secret to check against.
      const totp = rec.totp;
      if (totp === null) return fail(rec, 'no-open-code', 'totp');
      const key = this.p.secrets.open(totp.sealedSecret, secretAad(TOTP_PURPOSE, rec.address));
      const check = checkTotp(key, code, login.now, totpOptions(this.p.config), totp.lastAcceptedStep);
      if (!check.ok) return fail(rec, check.reason, 'totp');
      return succeed({ ...rec, totp: { ...totp, lastAcceptedStep: check.step } }, 'code-valid', 'totp');
    }
    const { result, openCode } = this.codes.check(rec, code, login.now);
    const provider = rec.openCode?.provider ?? decision.provider;
    if (result.ok) return succeed({ ...rec, openCode }, 'code-valid', provider);
    return fail({ ...rec, openCode }, result.reason, provider);
  }

  /**
   * A mailbox without a stored record: its failures stay in memory (unstored-failures.ts); a right
   * code for the secret it was offered stores it, enrolled ('created').
   */
  private checkUnstored(tx: StoreTx, login: Login, decision: Decision, factor: Factor): Answer | 'created' {
    const lock = lockState(this.unstored.get(login.address, login.now) ?? emptyFailures(), login.now);
    if (lock.locked) return this.lockedAnswer(decision.provider, lock.until, login.now);
    const fail = (reason: string, provider: VerifyResult['provider']): Answer => {
      this.unstored.fail(login.address, login.now);
      return { result: 'deny', reason, provider };
    };
    // No record: no recovery codes, no open code, no active secret.
    if (factor.kind === 'recovery') return fail('code-invalid', decision.provider);
    if (decision.action !== 'enroll') return fail('no-open-code', decision.provider);
    const totp = this.enrolment.activateOffered(login.address, factor.value, login.now);
    if (totp === null) return fail('code-invalid', 'totp');
    const fresh = newMailbox(login.address, login.now);
    tx.putMailbox({ ...fresh, ...rememberLocation(fresh, login.ip, login.country, login.now, this.remember), totp });
    this.unstored.clear(login.address);
    return 'created';
  }
}

