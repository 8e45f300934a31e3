// End-user self-service for webmail back ends: one mailbox, already authenticated by the webmail.
// A user may make their own MFA stricter than what the administrators set, never weaker, and may
// choose only the providers the platform allows end users. Their choices are kept apart from the
// administrators' (MailboxRecord.userSettings), so that neither undoes the other.
import { applySettingsPatch, atLeastAsStrict, CHALLENGE_STRICTNESS } from '../core/settings.js';
import { CHALLENGE_MODES, newMailbox, PROVIDERS, type ChallengeMode, type EffectiveSettings, type ProviderName } from '../core/model.js';
import { domainOf, normaliseAddress, normaliseAltEmail, normalisePhone } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import { effectiveSettings, mailboxView, settingsWithoutUser } from './context.js';
import type { Enrolment } from './enrol.js';
import type { MailboxOps } from './mailbox-ops.js';
import type { ProviderPolicy } from './policy.js';
import type { CallContext, Ports } from './ports.js';
import { assertReachable } from './settings-admin.js';

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

export class SelfService {
  constructor(
    private readonly p: Ports,
    private readonly enrolment: Enrolment,
    private readonly ops: MailboxOps,
    private readonly policy: ProviderPolicy,
  ) {}

  private mayConfigure(address: string): boolean {
    return effectiveSettings(this.p.config, this.p.store, address).usersMayConfigure;
  }

  show(params: { user: string }) {
    const address = normaliseAddress(params.user, 'user');
    const now = this.p.clock();
    const rec = this.p.store.getMailbox(address) ?? newMailbox(address, now);
    const view = mailboxView(this.p.config, this.p.store, address, now);
    const floor = settingsWithoutUser(this.p.config, this.p.store, address, rec);
    // An administrator who set this mailbox's provider decided it: the user chooses none.
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
      mayConfigure: this.mayConfigure(address),
      allowedChallenges: CHALLENGE_MODES.filter((m) => atLeastAsStrict(m, floor.challenge)).sort((a, b) => CHALLENGE_STRICTNESS[a] - CHALLENGE_STRICTNESS[b]),
      allowedProviders: adminProvider
        ? []
        : PROVIDERS.filter((p) => {
            const r = this.policy.rights(p);
            return r.enabled && r.endUsers;
          }),
    };
  }

  private assertMayConfigure(address: string): void {
    if (!this.mayConfigure(address)) {
      throw new MemfaError('FORBIDDEN', `users of ${domainOf(address)} may not change their MFA settings`, { data: { right: 'usersMayConfigure' }, hint: 'the domain or platform administrator decides this' });
    }
  }

  /**
   * The user's own choices. challenge: at least as strict as what the mailbox has without it
   * ('inherit' drops the choice); provider: among those allowed to end users, and only while no
   * administrator set this mailbox's provider.
   */
  async set(params: { user: string; challenge?: string | undefined; provider?: string | undefined; phone?: string | null | undefined; altEmail?: string | null | undefined }, ctx: CallContext) {
    const address = normaliseAddress(params.user, 'user');
    this.assertMayConfigure(address);
    const patch: Record<string, unknown> = {};
    if (params.challenge !== undefined) patch['challenge'] = params.challenge;
    if (params.provider !== undefined) {
      if (params.provider !== 'inherit') this.policy.assertAssignable(params.provider as ProviderName, 'end-user');
      patch['provider'] = params.provider;
    }
    const phone = params.phone === undefined ? undefined : params.phone === null || params.phone === '' ? null : normalisePhone(params.phone);
    const altEmail = params.altEmail === undefined ? undefined : params.altEmail === null || params.altEmail === '' ? null : normaliseAltEmail(params.altEmail, address);
    const now = this.p.clock();
    await this.p.store.transact((tx) => {
      const rec = tx.getMailbox(address) ?? newMailbox(address, now);
      // Checked on the record this transaction writes, so that an administrator's change made
      // meanwhile is not undone.
      if (params.challenge !== undefined && params.challenge !== 'inherit') {
        const floor = settingsWithoutUser(this.p.config, tx, address, rec);
        if (!atLeastAsStrict(params.challenge as ChallengeMode, floor.challenge)) {
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
      const next = {
        ...rec,
        userSettings: applySettingsPatch(rec.userSettings, patch, 'user'),
        phone: phone === undefined ? rec.phone : phone,
        altEmail: altEmail === undefined ? rec.altEmail : altEmail,
        updatedAt: now,
      };
      assertReachable(next);
      tx.putMailbox(next);
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'self.set', result: 'ok', details: { settings: patch, phone: phone === undefined ? undefined : phone !== null, altEmail: altEmail === undefined ? undefined : altEmail !== null } });
    return this.show({ user: address });
  }

  async enrollStart(params: { user: string; restart?: boolean | undefined }, ctx: CallContext) {
    const address = normaliseAddress(params.user, 'user');
    // Replacing an active secret is a change of settings; a first enrolment is always allowed.
    if (this.p.store.getMailbox(address)?.totp) this.assertMayConfigure(address);
    return this.enrolment.start({ address, restart: params.restart }, ctx);
  }

  enrollConfirm(params: { user: string; code: string }, ctx: CallContext) {
    return this.enrolment.confirm({ address: params.user, code: params.code }, ctx);
  }

  async forgetLocations(params: { user: string }, ctx: CallContext) {
    const address = normaliseAddress(params.user, 'user');
    if (this.p.store.getMailbox(address) === undefined) return { address, locations: true };
    return this.ops.reset({ address, locations: true }, ctx);
  }
}
