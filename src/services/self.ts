// End-user self-service for webmail back ends: one mailbox, already authenticated by the webmail.
// A user may make their own MFA stricter than what the administrators set, never weaker, and may
// choose only the providers the platform allows end users. Their choices are kept apart from the
// administrators' (MailboxRecord.userSettings), so that neither undoes the other.
import { applySettingsPatch, atLeastAsStrict, CHALLENGE_STRICTNESS } from '../core/settings.js';
import { kindLockState } from '../core/lockout.js';
import { CHALLENGE_MODES, newMailbox, PROVIDERS, type EffectiveSettings, type MailboxRecord, type PendingTotp } from '../core/model.js';
import { domainOf, normaliseAddress, normaliseAltEmail, normaliseIp } from '../core/validate.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { ParamsOf } from '../protocol/methods.js';
import { Problems } from '../protocol/problems.js';
import type { EnrolConfirmResult, EnrolResult, ForgetLocationsResult, SelfCodeSent, SelfView } from '../protocol/results.js';
import { APP_PASSWORD_POLICY } from '../protocol/vocabulary.js';
import type { CodeProvider, OneTimeCodes } from './codes.js';
import type { MemfaConfig } from '../config/types.js';
import type { CountryLookup } from '../geo/country.js';
import { floorOf, mailboxViewOf, viewSettings, type Levels } from './context.js';
import type { ConfirmGuard, Enrolment } from './enrol.js';
import { activeFactors, PROOF_PARAM, type ActiveFactor, type FactorProof, type ProofOutcome } from './proof.js';
import type { MailboxOps } from './mailbox-ops.js';
import { phoneRules } from './phone-rules.js';
import type { PolicySource } from './policy.js';
import type { AuditSink, CallContext, Clock } from './ports.js';
import { assertReachable, contactChange } from './settings-admin.js';
import type { LoginReads, LoginView, MailboxStore } from './store-ports.js';

type ProofRefused = Extract<ProofOutcome, { ok: false }>;

/** Who set the mode a user may not go under, for the refusal's message. */
function whoRequires(floor: EffectiveSettings): string {
  const min = floor.minChallenge;
  if (min?.raised) return min.source === 'domain' ? "the platform's minimum for your domain" : "the platform's minimum";
  switch (floor.sources.challenge) {
    case 'mailbox':
      return 'your administrator set for this mailbox';
    case 'domain':
      return 'your domain requires';
    case 'global':
      return 'the platform requires';
    default:
      return 'the default requires';
  }
}

export interface SelfServicePorts {
  config: MemfaConfig;
  clock: Clock;
  country: CountryLookup;
  state: LoginReads & Pick<MailboxStore, 'getMailbox' | 'updateMailbox'>;
  audit: Pick<AuditSink, 'append'>;
}

export class SelfService {
  constructor(
    private readonly p: SelfServicePorts,
    private readonly enrolment: Enrolment,
    private readonly ops: MailboxOps,
    private readonly policies: PolicySource,
    private readonly codes: OneTimeCodes,
    private readonly proof: FactorProof,
  ) {}

  private mayConfigure(read: LoginView): boolean {
    return viewSettings(this.p.config, read).usersMayConfigure;
  }

  async show(params: { user: string }): Promise<SelfView> {
    const address = normaliseAddress(params.user, 'user');
    const now = this.p.clock();
    const [read, policy] = await Promise.all([this.p.state.loginView(address), this.policies.current()]);
    const rec = read.mailbox ?? newMailbox(address, now);
    const view = mailboxViewOf(this.p.config, read, address, now);
    const floor = floorOf(this.p.config, read, rec);
    // A user who may not configure chooses nothing; nor the provider, when an administrator set
    // this mailbox's.
    const mayConfigure = this.mayConfigure(read);
    const adminProvider = rec.settings.provider !== undefined;
    return {
      address,
      challenge: view.effective.challenge.value,
      provider: view.effective.provider.value,
      sources: { challenge: view.effective.challenge.source, provider: view.effective.provider.source },
      userSettings: { ...rec.userSettings },
      phone: view.phone,
      altEmail: view.altEmail,
      totp: view.totp,
      ips: view.ips,
      countries: view.countries,
      recoveryCodesLeft: view.recoveryCodesLeft,
      // Changing these (provider, phone, alternate address, a new TOTP secret) needs currentCode.
      activeFactors: activeFactors(rec, viewSettings(this.p.config, read, rec)),
      mayConfigure,
      allowedChallenges: !mayConfigure ? [] : CHALLENGE_MODES.filter((m) => atLeastAsStrict(m, floor.challenge)).sort((a, b) => CHALLENGE_STRICTNESS[a] - CHALLENGE_STRICTNESS[b]),
      allowedProviders: !mayConfigure || adminProvider
        ? []
        : PROVIDERS.filter((p) => {
            const r = policy.rights(p);
            return r.enabled && r.endUsers;
          }),
      appPasswords: { mayCreate: policy.rights(APP_PASSWORD_POLICY).enabled && policy.rights(APP_PASSWORD_POLICY).endUsers, count: rec.appPasswords.length },
    };
  }

  private assertMayConfigure(address: string, read: LoginView): void {
    if (!this.mayConfigure(read)) {
      throw new MemfaError('FORBIDDEN', `users of ${domainOf(address)} may not change their MFA settings`, { data: { right: 'usersMayConfigure' }, hint: 'the domain or platform administrator decides this' });
    }
  }

  /**
   * The user's own choices. challenge: at least as strict as what the mailbox has without it
   * ('inherit' drops the choice); provider: among those allowed to end users, and only while no
   * administrator set this mailbox's provider.
   */
  async set(params: ParamsOf<'self.set'>, ctx: CallContext): Promise<SelfView> {
    const address = normaliseAddress(params.user, 'user');
    // Nothing to change would store an empty record.
    if (params.challenge === undefined && params.provider === undefined && params.phone === undefined && params.altEmail === undefined) {
      throw invalidParams('nothing to change: give challenge, provider, phone or altEmail', { param: 'params' });
    }
    // The mailbox with its levels, read once: the record is read again where the change is stored.
    const read = await this.p.state.loginView(address);
    this.assertMayConfigure(address, read);
    const patch: Record<string, unknown> = {};
    if (params.challenge !== undefined) patch['challenge'] = params.challenge;
    if (params.provider !== undefined) {
      if (params.provider !== 'inherit') (await this.policies.current()).assertAssignable(params.provider, 'end-user');
      patch['provider'] = params.provider;
    }
    const problems = new Problems();
    // Loaded only when there is a number to check (contactChange calls it for no other value).
    const rules = typeof params.phone === 'string' ? await phoneRules() : undefined;
    const phone = problems.check(() => contactChange(params.phone, (v) => rules!.normalisePhone(v)));
    const altEmail = problems.check(() => contactChange(params.altEmail, (v) => normaliseAltEmail(v, address)));
    problems.throwIfAny();
    const now = this.p.clock();
    /** The change on `rec`, refused (thrown) where it goes under the floor or takes an administrator's choice. */
    const changed = (rec: MailboxRecord): MailboxRecord => {
      if (params.challenge !== undefined && params.challenge !== 'inherit') {
        const floor = floorOf(this.p.config, read, rec);
        if (!atLeastAsStrict(params.challenge, floor.challenge)) {
          throw new MemfaError('FORBIDDEN', `challenge mode ${params.challenge} is weaker than ${floor.challenge}, which ${whoRequires(floor)}`, {
            data: { right: 'challenge', minimum: floor.challenge, source: floor.sources.challenge },
          });
        }
      }
      if (params.provider !== undefined && params.provider !== 'inherit' && rec.settings.provider !== undefined) {
        throw new MemfaError('FORBIDDEN', `an administrator set the provider of this mailbox (${rec.settings.provider}); only an administrator can change it`, {
          data: { right: 'provider', provider: rec.settings.provider },
          hint: 'ask your administrator',
        });
      }
      const next: MailboxRecord = {
        ...rec,
        userSettings: applySettingsPatch(rec.userSettings, patch, 'user'),
        phone: phone === undefined ? rec.phone : phone,
        altEmail: altEmail === undefined ? rec.altEmail : altEmail,
        updatedAt: now,
      };
      assertReachable(next);
      return next;
    };
    // Validated in full before the proof, so that a change refused for its own reasons spends no
    // code; then proved (one operation), then stored on the record as it is then (another), checked
    // again there, so that an administrator's change made meanwhile is not undone.
    const before = read.mailbox ?? newMailbox(address, now);
    const touched = this.factorsTouched(read, before, changed(before), ctx);
    let outcome: { ok: true } | ProofRefused = { ok: true };
    if (touched.length > 0) outcome = await this.proof.prove(before, this.proof.parse(address, params.currentCode, touched), now);
    if (outcome.ok) {
      await this.p.state.updateMailbox(address, (current) => {
        const base = current ?? newMailbox(address, now);
        const next = changed(base);
        if (touched.length === 0 && this.factorsTouched(read, base, next, ctx).length > 0) {
          throw new MemfaError('CONFLICT', `the second factor of ${address} changed meanwhile; nothing was changed`, { hint: 'try again' });
        }
        return { next, result: undefined };
      });
    }
    const details = { settings: patch, phone: phone === undefined ? undefined : phone !== null, altEmail: altEmail === undefined ? undefined : altEmail !== null };
    if (!outcome.ok) {
      await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'self.set', result: 'rejected', reason: outcome.reason, details });
      throw this.proof.refusal(address, outcome, now);
    }
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'self.set', result: 'ok', details });
    return this.show({ user: address });
  }

  /**
   * The active factors a change from `before` to `after` replaces or redirects (its provider, or
   * a phone or alternate address), which it must then prove; none for an administrator.
   */
  private factorsTouched(levels: Levels, before: MailboxRecord, after: MailboxRecord, ctx: CallContext): ActiveFactor[] {
    // Administrators are not asked: support resets a lost phone.
    if (ctx.socket === 'admin') return [];
    const was = viewSettings(this.p.config, levels, before);
    const factors = activeFactors(before, was);
    if (factors.length === 0) return [];
    const will = viewSettings(this.p.config, levels, after);
    const touched = will.provider !== was.provider || after.phone !== before.phone || after.altEmail !== before.altEmail;
    return touched ? factors : [];
  }

  /**
   * Starts the user's own TOTP enrolment. A first one (no active factor) needs nothing; once the
   * mailbox has a factor, the pending secret is created, and shown, only after `currentCode`
   * proved it, since confirming it would replace that factor.
   */
  async enrollStart(params: { user: string; restart?: boolean | undefined; currentCode?: string | undefined }, ctx: CallContext): Promise<EnrolResult> {
    const address = normaliseAddress(params.user, 'user');
    // Replacing an active secret is a change of settings; a first enrolment is always allowed.
    const read = await this.p.state.loginView(address);
    if (read.mailbox?.totp) this.assertMayConfigure(address, read);
    const restart = params.restart === true;
    const now = this.p.clock();
    const rec = read.mailbox ?? newMailbox(address, now);
    const factors = ctx.socket === 'admin' ? [] : activeFactors(rec, viewSettings(this.p.config, read, rec));
    let outcome: { ok: true; pending: PendingTotp; proved: boolean } | ProofRefused;
    if (factors.length === 0) outcome = { ok: true, pending: await this.enrolment.pending(address, now, restart), proved: false };
    else {
      const proved = await this.proof.prove(rec, this.proof.parse(address, params.currentCode, factors), now);
      outcome = proved.ok ? { ok: true, pending: await this.enrolment.pending(address, now, restart, true), proved: true } : proved;
    }
    if (!outcome.ok) {
      await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.start', result: 'rejected', reason: outcome.reason });
      throw this.proof.refusal(address, outcome, now);
    }
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'enroll.start', result: 'pending', details: { factorProved: outcome.proved } });
    return this.enrolment.describe(address, outcome.pending);
  }

  /**
   * Activates the pending secret with a code from the new app. Once the mailbox has a factor,
   * only a pending secret started with proof of it can be activated here: one started before
   * (while it had none) would otherwise replace the factor without that proof.
   */
  enrollConfirm(params: { user: string; code: string }, ctx: CallContext): Promise<EnrolConfirmResult> {
    const guard: ConfirmGuard | undefined =
      ctx.socket === 'admin'
        ? undefined
        : (rec, view) => {
            const factors = activeFactors(rec, viewSettings(this.p.config, view, rec));
            if (factors.length > 0 && rec.pendingTotp?.factorProved !== true) {
              throw new MemfaError('FORBIDDEN', `${PROOF_PARAM}: ${rec.address} has a second factor now (${factors.join(', ')}) and this enrolment was started without proving it; start it again with ${PROOF_PARAM}`, {
                data: { right: PROOF_PARAM, param: PROOF_PARAM, factors },
              });
            }
            // Activated only if the pending secret is still one started with that proof.
            return { requireProved: factors.length > 0 };
          };
    return this.enrolment.confirm({ address: params.user, code: params.code }, ctx, guard);
  }

  /**
   * Sends a one-time code to the mailbox's sms or email factor, for the webmail to ask back as
   * `currentCode` (verify sends one only when a login needs it). The same send limits apply as to
   * verify's challenge; a locked mailbox gets none.
   */
  async codeSend(params: { user: string; ip?: string | undefined }, ctx: CallContext): Promise<SelfCodeSent> {
    const address = normaliseAddress(params.user, 'user');
    const ip = params.ip === undefined ? '' : normaliseIp(params.ip, 'ip');
    const now = this.p.clock();
    const read = await this.p.state.loginView(address);
    const rec = read.mailbox;
    const eff = viewSettings(this.p.config, read, rec);
    const sendable = rec === undefined ? [] : activeFactors(rec, eff).filter((f): f is CodeProvider => f !== 'totp');
    if (rec === undefined || sendable.length === 0) {
      throw new MemfaError('CONFLICT', `${address} has no second factor that a code is sent to${rec?.totp ? '; prove its TOTP factor with a code from the app' : ''} (a recovery code also proves it)`, {
        data: { reason: 'no-code-to-send' },
      });
    }
    const lock = kindLockState(rec.failures, 'elsewhere', now);
    if (lock.locked) throw this.proof.refusal(address, { ok: false, reason: 'locked', lockedUntil: lock.until }, now);
    // The provider first, then the fallback, as verify's challenge tries them.
    const providers = [eff.provider, eff.fallbackProvider].filter((p, i, all): p is CodeProvider => sendable.includes(p as CodeProvider) && all.indexOf(p) === i);
    const entry = (result: string, reason: string | null, details?: Record<string, unknown>) =>
      ({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'self.code.send', result, reason, ...(ip === '' ? {} : { ip }), ...(details ? { details } : {}) });
    let issued;
    try {
      issued = await this.codes.challenge(address, providers, { ip, country: ip === '' ? null : this.p.country(ip) });
    } catch (err) {
      const reason = err instanceof MemfaError ? err.code.toLowerCase().replaceAll('_', '-') : 'internal';
      await this.p.audit.append(entry('error', reason));
      throw err;
    }
    // Inside the send limits an open code answers without a send: recorded as such.
    await this.p.audit.append(issued.sent ? entry('sent', null, { provider: issued.provider }) : entry('not-sent', 'code-open', { provider: issued.provider }));
    const answer: SelfCodeSent = {
      address,
      provider: issued.provider,
      destination: issued.destination,
      expiresAt: issued.expiresAt,
      sent: issued.sent,
      resent: issued.resent,
    };
    if (issued.retryAfter !== undefined) answer.retryAfter = issued.retryAfter;
    return answer;
  }

  async forgetLocations(params: { user: string }, ctx: CallContext): Promise<ForgetLocationsResult> {
    const address = normaliseAddress(params.user, 'user');
    if ((await this.p.state.getMailbox(address)) === undefined) return { address, locations: true };
    return this.ops.reset({ address, locations: true }, ctx);
  }
}
