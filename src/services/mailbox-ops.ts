// Support operations on one mailbox: reset (lost phone), explain (dry run).
import { describeGrace, type GraceState } from '../core/grace.js';
import { newMailbox, type EffectiveSettings, type MailboxRecord } from '../core/model.js';
import { describeChoice } from '../core/provider-choice.js';
import { normaliseAddress, normaliseIp } from '../core/validate.js';
import { count } from '../core/wording.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import type { ExplainResult, ResetResult } from '../protocol/results.js';
import type { MemfaConfig } from '../config/types.js';
import type { CountryLookup } from '../geo/country.js';
import { lockoutPolicy, mailboxViewOf, viewSettings } from './context.js';
import type { AuditSink, CallContext, Clock } from './ports.js';
import { assertMailbox } from './scope.js';
import type { LoginReads, MailboxStore, UnstoredFailureStore } from './store-ports.js';
import type { Verifier } from './verify.js';
import type { PolicySource } from './policy.js';
import type { Notifier } from './notify.js';
import { providerUnusable } from './unusable.js';

/** What the enrolment grace does for a login that must enrol. */
function graceStep(grace: GraceState, eff: EffectiveSettings, used: number): string {
  const setting = `enrolment grace: ${describeGrace(eff.enrolmentGrace)} (from ${eff.sources.enrolmentGrace})`;
  if (grace.active) {
    const limited = typeof eff.enrolmentGrace === 'object' && eff.enrolmentGrace.logins !== undefined;
    const left = [
      grace.loginsLeft !== null ? `${count(grace.loginsLeft, 'more login', 'more logins')} after this one` : limited ? 'logins not counted without a stored record' : null,
      grace.until === null ? null : `until ${new Date(grace.until).toISOString()}`,
    ];
    return `${setting}: lets this login in without a second factor and offers the enrolment (${left.filter((x) => x !== null).join(', ')})`;
  }
  const why = { none: 'the mailbox must enrol now', ended: 'its date is past: the mailbox must enrol now', used: `its logins are used (${used}): the mailbox must enrol now`, unstored: 'logins are not counted for a mailbox without a stored record, and no date is set: the mailbox must enrol now' }[grace.why];
  return `${setting}: ${why}`;
}

export interface MailboxOpsPorts {
  config: MemfaConfig;
  clock: Clock;
  country: CountryLookup;
  state: LoginReads & Pick<MailboxStore, 'updateMailbox'> & Pick<UnstoredFailureStore, 'unstoredFailures'>;
  audit: Pick<AuditSink, 'append'>;
}

export class MailboxOps {
  constructor(
    private readonly p: MailboxOpsPorts,
    /** What verify would decide: explain runs its decision without acting on it. */
    private readonly verifier: Pick<Verifier, 'usableSettings' | 'decision' | 'lockFor' | 'grace'>,
    private readonly policies: PolicySource,
    private readonly notifier: Pick<Notifier, 'queueOf'>,
  ) {}

  async reset(params: { address: string; secret?: boolean | undefined; locations?: boolean | undefined }, ctx: CallContext): Promise<ResetResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const secret = params.secret === true;
    const locations = params.locations === true;
    if (!secret && !locations) throw invalidParams('say what to reset: secret, locations, or both', { param: 'secret' });
    const now = this.p.clock();
    const notices = await this.notifier.queueOf(address, now);
    const changed = await this.p.state.updateMailbox(address, (rec) => {
      if (rec === undefined) return { result: false };
      const next: MailboxRecord = {
        ...rec,
        ...(secret ? { totp: null, pendingTotp: null, openCode: null } : {}),
        ...(locations ? { ips: [], countries: [] } : {}),
        updatedAt: now,
      };
      // The owner hears of an active secret removed, not of a pending one or of forgotten places.
      return { next: secret && rec.totp !== null ? notices.queue(next, [{ kind: 'totp-reset' }]) : next, result: true };
    });
    if (!changed) throw new MemfaError('NOT_FOUND', `no stored mailbox ${address}; nothing to reset`);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'reset', result: 'ok', details: { secret, locations } });
    return { address, secret, locations };
  }

  async explain(params: { address: string; ip: string }, ctx: CallContext): Promise<ExplainResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const ip = normaliseIp(params.ip, 'ip');
    const now = this.p.clock();
    const country = this.p.country(ip);
    const [view, policy] = await Promise.all([this.p.state.loginView(address), this.policies.current()]);
    const rec = view.mailbox ?? newMailbox(address, now);
    const { settings: eff, choice } = this.verifier.usableSettings(viewSettings(this.p.config, view, rec), rec, policy);
    const decision = this.verifier.decision({ address, ip, country, now }, rec, eff);
    const steps: string[] = [];
    steps.push(`country of ${ip}: ${country ?? 'unknown'}`);
    steps.push(eff.countryRules.length === 0 ? 'country rules: none' : `country rules: ${eff.countryRules.map((r) => `${r.level} ${r.rule.mode} ${r.rule.countries.join(',')}`).join('; ')}`);
    steps.push(`trusted networks: ${eff.trustedNetworks.length === 0 ? 'none' : eff.trustedNetworks.join(', ')}`);
    const min = eff.minChallenge;
    const from = min?.raised ? `the ${min.source} minimum, stricter than the settings` : min === null ? eff.sources.challenge : `${eff.sources.challenge}; ${min.source} minimum ${min.value}`;
    steps.push(`challenge mode: ${eff.challenge} (from ${from}); provider: ${describeChoice(choice)}`);
    let result: ExplainResult['decision'] = { result: decision.action, reason: decision.reason, provider: decision.provider };
    if (decision.matched !== undefined) result.matched = decision.matched;
    if (decision.rule !== undefined) result.rule = decision.rule;
    const lock = await this.verifier.lockFor(address, ip, now);
    const needsFactor = decision.action === 'challenge' || decision.action === 'enroll';
    // In verify's order: the lock first, then whether any provider can give the factor.
    let answer = `${result.result} (${result.reason})`;
    if (needsFactor && lock.locked) {
      steps.push(`decision would be ${decision.action} (${decision.reason}), but the mailbox is locked`);
      result = { result: 'deny', reason: 'locked', provider: decision.provider };
      answer = 'deny (locked)';
    } else if (needsFactor && choice.outcome === 'disabled') {
      steps.push(`decision would be ${decision.action} (${decision.reason}), but the platform disabled the provider and every fallback (a recovery code is still accepted)`);
      result = { result: 'deny', reason: 'provider-disabled', provider: decision.provider };
      answer = 'deny (provider-disabled)';
    } else if (needsFactor && choice.outcome === 'unusable') {
      const err = providerUnusable(address, choice.candidates);
      steps.push(`decision would be ${decision.action} (${decision.reason}), but ${err.message}`);
      if (err.hint !== undefined) steps.push(`to fix: ${err.hint}`);
      result = { result: 'error', reason: 'provider-unusable', provider: decision.provider, error: 'PROVIDER_UNUSABLE' };
      answer = `error PROVIDER_UNUSABLE (provider-unusable), exit ${err.exitCode}; nothing is sent`;
    } else if (decision.action === 'enroll') {
      const grace = this.verifier.grace(rec, eff, view.mailbox !== undefined, now);
      steps.push(graceStep(grace, eff, rec.enrolmentGraceLogins ?? 0));
      if (grace.active) {
        result = { result: 'allow', reason: 'enrolment-grace', provider: 'totp' };
        answer = 'allow (enrolment-grace)';
      }
    }
    steps.push(`verify would answer: ${answer}`);
    const unstored = view.mailbox === undefined ? await this.p.state.unstoredFailures(address, now, lockoutPolicy(this.p.config)) : undefined;
    const mailbox = mailboxViewOf(this.p.config, view, address, now, unstored, (e, r) => this.verifier.usableSettings(e, r, policy).choice);
    return { address, ip, country, mailbox, decision: result, steps };
  }
}
