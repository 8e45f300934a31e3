// `verify`: the question a login hook asks on every login. The fast path (no factor needed) is
// answered from one read of the state, at once where the backend holds it in memory; everything
// that changes state is ONE operation of the state ports (store-ports.ts), so that check-then-act
// (replay, try counters, lockout, the per-source throttle) is atomic under concurrent logins, on
// one daemon or several.
import type { MemfaConfig } from '../config/types.js';
import { decide, type Decision, type RememberPolicy } from '../core/decide.js';
import { failureKind, kindLockState, lockState, type AttemptOutcome, type FailureKind, type LockoutPolicy, type LockState } from '../core/lockout.js';
import { emptyFailures, newMailbox, type EffectiveSettings, type MailboxRecord } from '../core/model.js';
import { normaliseCode } from '../core/codes.js';
import { graceState, type GraceState } from '../core/grace.js';
import { checkTotp } from '../core/totp.js';
import { normaliseAddress, normaliseIp } from '../core/validate.js';
import type { CountryLookup } from '../geo/country.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import type { VerifyResult } from '../protocol/results.js';
import { secretAad } from '../core/secret-binding.js';
import { sendOrder, settingsFor, type ProviderChoice } from '../core/provider-choice.js';
import type { OneTimeCodes } from './codes.js';
import { lockoutPolicy, rememberPolicy, totpOptions, viewSettings, type Levels } from './context.js';
import { TOTP_PURPOSE, type Enrolment } from './enrol.js';
import { SourceThrottle } from './ip-throttle.js';
import { watchLocks, type Notifier, type StartedLock } from './notify.js';
import type { AuditSink, CallContext, Log, SecretBox } from './ports.js';
import { asRecoveryCode, asScratchCode, type RecoveryCodes } from './recovery.js';
import type { PolicySource, ProviderPolicy } from './policy.js';
import { logMailboxLocked, logSourceBlocked, logVerifyDenied } from './security-log.js';
import type { AttemptToSettle, EnrolStore, FactorStore, FailureEffects, LoginReads, LoginView, MailboxStore, SourceStore, SuccessEffects, UnstoredFailureStore } from './store-ports.js';
import { providerUnusable } from './unusable.js';
import { errorReason, graceAnswer, lockedAnswer, rememberedCopy, type Answer } from './verify-answers.js';

export { errorReason };

/** What verify needs: the login's read, the check-then-acts of a factor and of its throttles. */
export interface VerifyPorts {
  state: LoginReads & FactorStore & UnstoredFailureStore & SourceStore & Pick<EnrolStore, 'countGraceLogin'> & Pick<MailboxStore, 'getMailbox'>;
  config: MemfaConfig;
  clock: () => number;
  country: CountryLookup;
  secrets: Pick<SecretBox, 'open'>;
  audit: Pick<AuditSink, 'append' | 'record' | 'recordAllow'>;
  log: Pick<Log, 'warn' | 'notice'>;
}

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

/** What verify knows of a login before it acts: read once (LoginReads). */
interface Assessment {
  login: Login;
  rec: MailboxRecord;
  /** The mailbox has a stored record (rec is a fresh one otherwise). */
  stored: boolean;
  /** The levels its settings come from, as read with it: for the owner's notices (notify.ts). */
  levels: Levels;
  settings: EffectiveSettings;
  /** The provider that gives the factor (the mailbox's, or its fallback), or why none can. */
  choice: ProviderChoice;
  decision: Decision;
}

/** A given factor: digits (TOTP or a sent code) or a recovery code. */
type Factor = { kind: 'otp'; value: string } | { kind: 'recovery'; value: string };

/** A lock that a failure in a code check started, logged once the operation that counted it is done. */
interface LoggedLock extends StartedLock {
  kind: FailureKind;
  stored: boolean;
}

export class Verifier {
  /** Code checks per client source (see ip-throttle.ts); ip-blocks.ts shows and clears it. */
  readonly throttle: SourceThrottle;
  /** From the configuration, which does not change while the daemon runs. */
  private readonly remember: RememberPolicy;
  private readonly lockout: LockoutPolicy;
  /** The fast path's read (LoginReads loginViewNow), reused: read into and used up at once. */
  private readonly scratch: LoginView = { mailbox: undefined, domain: undefined, global: {} };

  constructor(
    private readonly p: VerifyPorts,
    private readonly enrolment: Enrolment,
    private readonly codes: Pick<OneTimeCodes, 'challenge' | 'hash'>,
    private readonly recovery: RecoveryCodes,
    /** The platform's provider policy, as stored when each request runs. */
    private readonly policies: PolicySource,
    private readonly notifier: Pick<Notifier, 'queueFor'>,
  ) {
    this.remember = rememberPolicy(p.config);
    this.lockout = lockoutPolicy(p.config);
    this.throttle = new SourceThrottle(p.config, p.state);
  }

  /**
   * The lock that applies to a login from `ip` to `address`: the one of its kind (remembered
   * address or not, core/lockout.ts) for a stored mailbox, the one kept for a mailbox without a
   * record (UnstoredFailureStore) for another.
   */
  async lockFor(address: string, ip: string, now: number): Promise<LockState> {
    return this.lockOf(await this.p.state.getMailbox(address), address, ip, now);
  }

  private async lockOf(stored: MailboxRecord | undefined, address: string, ip: string, now: number): Promise<LockState> {
    if (stored === undefined) return lockState((await this.p.state.unstoredFailures(address, now, this.lockout)) ?? emptyFailures(), now);
    return kindLockState(stored.failures, failureKind(stored.ips, ip, now, this.remember), now);
  }

  /**
   * The settings verify acts on: a provider that cannot be used (disabled by the platform, sms or
   * email without a gateway or without the mailbox's destination) is replaced by the mailbox's
   * fallback when that one can be; `choice` says which and why (core/provider-choice.ts).
   */
  usableSettings(eff: EffectiveSettings, rec: MailboxRecord, policy: ProviderPolicy): { settings: EffectiveSettings; choice: ProviderChoice } {
    const choice = policy.choiceFor(eff, rec);
    return { settings: settingsFor(eff, choice), choice };
  }

  /** The pure decision for a login, as `explain` shows it. */
  decision(login: Login, rec: MailboxRecord, eff: EffectiveSettings): Decision {
    return decide(eff, { ips: rec.ips, countries: rec.countries, hasActiveTotp: rec.totp !== null }, { ip: login.ip, country: login.country, now: login.now }, this.remember);
  }

  /**
   * Answers a login. The fast path (no code given, no factor needed) is answered synchronously,
   * without a promise, where the state is in memory (LoginReads loginViewNow): it is most logins.
   * Everything else goes through decideAndAct. Every outcome, errors included, gets an audit line.
   */
  verify(input: VerifyInput, ctx: CallContext): VerifyResult | Promise<VerifyResult> {
    const address = normaliseAddress(input.user, 'user');
    const ip = normaliseIp(input.ip, 'ip');
    const login: Login = { address, ip, country: this.p.country(ip), now: this.p.clock() };

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
        this.p.audit.record(this.entry(ctx, login, 'error', 'invalid-code'));
        throw invalidParams('code: expected the digits of a one-time code, or a recovery code', { param: 'code' });
      }
    }
    const policy = this.policies.now();
    if (!(policy instanceof Promise)) {
      const atHand = this.p.state.loginViewNow?.(address, this.scratch);
      if (atHand !== undefined) return this.answer(atHand, policy, login, code, send, ctx);
    } else {
      // The policy is read (on PostgreSQL, from the read cache while it holds it): the view goes
      // into an object of this request's own, as another request may run before the policy is in.
      const atHand = this.p.state.loginViewNow?.(address, { mailbox: undefined, domain: undefined, global: {} });
      if (atHand !== undefined) return policy.then((current) => this.answer(atHand, current, login, code, send, ctx));
    }
    return this.reread(login, code, send, ctx, policy);
  }

  private reread(login: Login, code: Factor | null, send: boolean, ctx: CallContext, policy: ProviderPolicy | Promise<ProviderPolicy>): Promise<VerifyResult> {
    return Promise.all([this.p.state.loginView(login.address), policy]).then(([view, current]) => {
      // loginView is always whole: a partial one would have this read again for ever.
      if (view.partial === true) throw new MemfaError('INTERNAL', 'the state answered loginView with a partial view');
      return this.answer(view, current, login, code, send, ctx);
    });
  }

  private entry(ctx: CallContext, login: Login, result: string, reason: string) {
    return { actor: ctx.actor, socket: ctx.socket, mailbox: login.address, action: 'verify', result, reason, ip: login.ip, country: login.country };
  }

  /** The answer to a login on what was read of it (`view`, used up before anything is awaited). */
  private answer(view: LoginView, policy: ProviderPolicy, login: Login, given: Factor | null, send: boolean, ctx: CallContext): VerifyResult | Promise<VerifyResult> {
    const { address, ip } = login;
    const stored = view.mailbox !== undefined;
    const rec = view.mailbox ?? newMailbox(address, login.now);
    let code = given;
    // An imported scratch code (recovery.ts) is digits too: it is a recovery code when it is one
    // of the mailbox's (spent by the state ports' consumeRecoveryCode, which checks it again).
    if (code?.kind === 'otp' && rec.recoveryCodeHashes.length > 0 && asScratchCode(code.value) !== null && this.recovery.match(rec.recoveryCodeHashes, code.value) !== -1) {
      code = { kind: 'recovery', value: code.value };
    }
    const { settings, choice } = this.usableSettings(viewSettings(this.p.config, view, view.mailbox), rec, policy);
    const decision = this.decision(login, rec, settings);
    // A cached view decides the fast path only: anything else acts on the whole view, read anew.
    if (view.partial === true && !(code === null && decision.action === 'allow')) return this.reread(login, given, send, ctx, policy);
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
    const levels: Levels = { domain: view.domain, global: view.global };
    return this.decideAndAct({ login, rec, stored, levels, settings, choice, decision }, code, send).then(
      async (result) => {
        await this.p.audit.append(this.entry(ctx, login, result.result, result.reason));
        if (result.result === 'deny') logVerifyDenied(this.p.log, { ip, reason: result.reason, mailbox: address, provider: result.provider });
        return { ...result, user: address, ip, country: login.country };
      },
      async (err: unknown) => {
        await this.p.audit.append(this.entry(ctx, login, 'error', errorReason(err)));
        throw err;
      },
    );
  }

  private async decideAndAct(assessed: Assessment, code: Factor | null, send: boolean): Promise<Answer> {
    const { login, rec, stored, levels, settings: eff, choice, decision } = assessed;
    // A code given is checked even when no factor is needed: a hook that passes one (an OTP
    // passdb) must not let a wrong code in because the login came from a remembered address.
    if (decision.action === 'deny' || (decision.action === 'allow' && code === null)) {
      return { result: decision.action, reason: decision.reason, provider: decision.provider };
    }
    // On what was read: the operations below check the lock again, each atomically. A stored
    // mailbox's lock is on the record read, so it is judged here without waiting on anything.
    const kind = stored ? failureKind(rec.ips, login.ip, login.now, this.remember) : 'elsewhere';
    const lock = stored ? kindLockState(rec.failures, kind, login.now) : await this.lockOf(undefined, login.address, login.ip, login.now);
    if (lock.locked) return lockedAnswer(decision.provider, lock.until, login.now);
    // Never a silent pass: a factor is needed and no provider can give it. Only a recovery code
    // can still get this user in. The platform's deliberate choice (every provider disabled) is a
    // deny; a missing gateway or destination is a configuration error, answered as one (exit
    // 78) so that a hook neither retries nor takes it for the user's failure.
    if (choice.outcome === 'disabled' && code?.kind !== 'recovery') return { result: 'deny', reason: 'provider-disabled', provider: decision.provider };
    if (choice.outcome === 'unusable' && code?.kind !== 'recovery') {
      this.p.log.warn('provider-unusable', { mailbox: login.address, providers: choice.candidates.map((c) => ({ provider: c.provider, source: c.source, problem: c.problem })) });
      throw providerUnusable(login.address, choice.candidates);
    }

    if (code === null) {
      if (!send) return this.withoutSending(decision, rec, eff, stored, login.now);
      if (decision.action === 'enroll') return this.enrolOrGrace(login, rec, eff, stored);
      if (decision.provider === 'totp') return { result: 'challenge', reason: decision.reason, provider: 'totp' };
      const issued = await this.codes.challenge(login.address, sendOrder(choice), login);
      const answer: Answer = { result: 'challenge', reason: decision.reason, provider: issued.provider, destination: issued.destination, expiresAt: issued.expiresAt, sent: issued.sent, resent: issued.resent };
      if (issued.retryAfter !== undefined) answer.retryAfter = issued.retryAfter;
      return answer;
    }

    // The attempt is reserved with the client's source first, atomically, so that the attempts in
    // flight count toward its limits (core/lockout.ts). A source over them is refused before any
    // mailbox is touched, so that one attacker cannot lock out every mailbox; its answer is the
    // same as a locked mailbox's.
    const reserved = await this.throttle.reserve(login.ip, login.address, !stored && decision.action === 'enroll', login.now);
    if (!('source' in reserved)) return lockedAnswer(decision.provider, reserved.until, login.now);
    let outcome: AttemptOutcome = 'none';
    const started: { lock: LoggedLock | null } = { lock: null };
    const attempt = this.throttle.toSettle(reserved, login.now);
    try {
      const answer = stored ? await this.checkStored(rec, kind, levels, login, decision, code, started, attempt) : await this.checkUnstored(levels, login, decision, code, started, attempt);
      if (started.lock !== null) logMailboxLocked(this.p.log, { ip: login.ip, mailbox: login.address, ...started.lock });
      if (answer === 'created') {
        outcome = 'created';
        return { result: 'allow', reason: 'enrolled', provider: 'totp' };
      }
      outcome = answer.result === 'deny' && answer.reason !== 'locked' ? 'failure' : 'none';
      return answer;
    } finally {
      // A success the store wrote with its settlement (SuccessEffects.attempt) is settled already.
      const block = attempt.settled ? null : await this.throttle.settle(reserved, outcome, login.now);
      if (block !== null) logSourceBlocked(this.p.log, { ip: login.ip, reason: block.reason, source: reserved.source, until: block.until, failures: block.failures });
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
   * is counted by the operation that checks the count (EnrolStore countGraceLogin), so concurrent
   * logins cannot overrun it.
   */
  private async enrolOrGrace(login: Login, rec: MailboxRecord, eff: EffectiveSettings, stored: boolean): Promise<Answer> {
    if (!stored) {
      const offer = this.enrolment.offer(login.address, login.now);
      const grace = graceState(eff.enrolmentGrace, 0, false, login.now);
      return grace.active ? graceAnswer(grace, offer) : { result: 'enroll', reason: 'enroll-required', provider: 'totp', ...offer };
    }
    const pending = await this.enrolment.pending(login.address, login.now);
    let grace = this.grace(rec, eff, true, login.now);
    const limit = typeof eff.enrolmentGrace === 'object' ? eff.enrolmentGrace.logins : undefined;
    if (grace.active && limit !== undefined) {
      const counted = await this.p.state.countGraceLogin(login.address, limit, login.now);
      // The state before this login was counted, as every other login read it; null: used up meanwhile.
      grace = graceState(eff.enrolmentGrace, counted === null ? limit : counted - 1, true, login.now);
    }
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

  /**
   * A code given for a stored mailbox, as read: checked here where it needs the key ring (a TOTP
   * secret), and decided by one operation of the state ports, which checks the lock and the
   * record again so that a concurrent verify's change is never overwritten. The owner's notices
   * of the outcome (a new country, a recovery code used, a secret enrolled, a lock started) are
   * queued by that operation, in its own write (notify.ts); a lock it started goes to `started`.
   */
  private async checkStored(rec: MailboxRecord, kind: FailureKind, levels: Levels, login: Login, decision: Decision, factor: Factor, started: { lock: LoggedLock | null }, attempt: AttemptToSettle): Promise<Answer> {
    const notices = watchLocks(this.notifier.queueFor(levels, login.now, { ip: login.ip, country: login.country }), kind, login.now);
    const success: SuccessEffects = { kind, now: login.now, location: { ip: login.ip, country: login.country, policy: this.remember }, notices, basis: rec, attempt };
    const failure: FailureEffects = { kind, now: login.now, policy: this.lockout, notices };
    const at = { success, failure };
    try {
      return await this.checkStoredWith(rec, login, decision, factor, at);
    } finally {
      if (notices.started !== null) started.lock = { kind, ...notices.started, stored: true };
    }
  }

  private async checkStoredWith(rec: MailboxRecord, login: Login, decision: Decision, factor: Factor, at: { success: SuccessEffects; failure: FailureEffects }): Promise<Answer> {
    const { success, failure } = at;
    const fail = async (reason: string, provider: VerifyResult['provider']): Promise<Answer> => {
      const r = await this.p.state.recordFailure(login.address, failure);
      if (r !== null && r.outcome === 'locked') return lockedAnswer(provider, r.until, login.now);
      return { result: 'deny', reason, provider };
    };

    if (factor.kind === 'recovery') {
      const r = await this.p.state.consumeRecoveryCode(login.address, this.recovery.hash(factor.value), at);
      if (r.outcome === 'locked') return lockedAnswer(decision.provider, r.until, login.now);
      if (r.outcome === 'code-invalid') return { result: 'deny', reason: 'code-invalid', provider: decision.provider };
      return { result: 'allow', reason: 'recovery-code-used', provider: decision.provider, recoveryCodesLeft: r.left };
    }
    const code = factor.value;
    if (decision.action === 'enroll') {
      const pending = rec.pendingTotp;
      if (pending === null || pending.expiresAt <= login.now) return fail('no-open-code', 'totp');
      const step = this.enrolment.pendingStep(login.address, pending, code, login.now);
      if (step === undefined || step === null) return fail('code-invalid', 'totp');
      const r = await this.p.state.activatePending(login.address, pending.sealedSecret, step, { success, requireProved: false });
      if (r.outcome === 'locked') return lockedAnswer('totp', r.until, login.now);
      // 'changed': the pending secret was replaced or used meanwhile; the code was for the old one.
      if (r.outcome !== 'activated') return fail('code-invalid', 'totp');
      return { result: 'allow', reason: 'enrolled', provider: 'totp' };
    }
    if (decision.provider === 'totp') {
      // The decision was taken on the record as read; a reset meanwhile leaves no secret.
      const totp = rec.totp;
      if (totp === null) return fail('no-open-code', 'totp');
      const key = this.p.secrets.open(totp.sealedSecret, secretAad(TOTP_PURPOSE, rec.address));
      const check = checkTotp(key, code, login.now, totpOptions(this.p.config), totp.lastAcceptedStep);
      if (!check.ok) return fail(check.reason, 'totp');
      const r = await this.p.state.acceptTotpStep(login.address, totp.sealedSecret, check.step, at);
      if (r.outcome === 'locked') return lockedAnswer('totp', r.until, login.now);
      // 'reused': a concurrent verify took this step (or a later one) first, and it was counted.
      if (r.outcome === 'reused') return { result: 'deny', reason: 'code-reused', provider: 'totp' };
      // 'changed': the secret was reset or replaced meanwhile; the code was for the old one.
      if (r.outcome === 'changed') return fail('code-invalid', 'totp');
      return { result: 'allow', reason: 'code-valid', provider: 'totp' };
    }
    const r = await this.p.state.tryOpenCode(login.address, this.codes.hash(code), { maxTries: this.p.config.codes.maxTries, ...at });
    if (r.outcome === 'locked') return lockedAnswer(decision.provider, r.until, login.now);
    const provider = r.provider ?? rec.openCode?.provider ?? decision.provider;
    if (r.outcome === 'ok') return { result: 'allow', reason: 'code-valid', provider };
    return { result: 'deny', reason: r.outcome, provider };
  }

  /**
   * A mailbox without a stored record: its failures are kept apart (UnstoredFailureStore); a right
   * code for the secret it was offered stores it, enrolled ('created').
   */
  private async checkUnstored(levels: Levels, login: Login, decision: Decision, factor: Factor, started: { lock: LoggedLock | null }, attempt: AttemptToSettle): Promise<Answer | 'created'> {
    const fail = async (reason: string, provider: VerifyResult['provider']): Promise<Answer> => {
      const r = await this.p.state.recordUnstoredFailure(login.address, login.now, this.lockout);
      if (r.outcome === 'locked') return lockedAnswer(provider, r.until, login.now);
      // Not locked before this failure ('locked' otherwise): a lock now is the one it started.
      const lock = lockState(r.state, login.now);
      if (lock.locked) started.lock = { kind: 'elsewhere', lock, failures: r.state.consecutive, stored: false };
      return { result: 'deny', reason, provider };
    };
    // No record: no recovery codes, no open code, no active secret.
    if (factor.kind === 'recovery') return fail('code-invalid', decision.provider);
    if (decision.action !== 'enroll') return fail('no-open-code', decision.provider);
    const totp = this.enrolment.activateOffered(login.address, factor.value, login.now);
    if (totp === null) return fail('code-invalid', 'totp');
    const notices = this.notifier.queueFor(levels, login.now, { ip: login.ip, country: login.country });
    const success: SuccessEffects = { kind: 'elsewhere', now: login.now, location: { ip: login.ip, country: login.country, policy: this.remember }, notices };
    if ((await this.p.state.createEnrolled(login.address, totp, success)) === 'exists') {
      // A record appeared meanwhile (an administrator, or a concurrent login with this code): the
      // code is checked as that mailbox's, against its secret if it has one now.
      const rec = await this.p.state.getMailbox(login.address);
      if (rec !== undefined) return this.checkStored(rec, failureKind(rec.ips, login.ip, login.now, this.remember), levels, login, rec.totp === null ? decision : { ...decision, action: 'challenge', provider: 'totp' }, factor, started, attempt);
    }
    await this.p.state.clearUnstoredFailures(login.address);
    return 'created';
  }
}
