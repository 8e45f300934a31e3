// End-user self-service for webmail back ends: one mailbox, already authenticated by the webmail.
// A user may make their own MFA stricter than what the domain sets, never weaker, and may choose
// only the providers the platform allows end users.
import { resolveSettings } from '../core/settings.js';
import { PROVIDERS, type ChallengeMode } from '../core/model.js';
import { domainOf, normaliseAddress } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import { effectiveSettings, mailboxView } from './context.js';
import type { Enrolment } from './enrol.js';
import type { MailboxOps } from './mailbox-ops.js';
import type { ProviderPolicy } from './policy.js';
import type { CallContext, Ports } from './ports.js';
import type { SettingsAdmin } from './settings-admin.js';

const STRICTNESS: Record<ChallengeMode, number> = { never: 0, 'new-country': 1, 'new-ip': 2, always: 3 };

export class SelfService {
  constructor(
    private readonly p: Ports,
    private readonly settings: SettingsAdmin,
    private readonly enrolment: Enrolment,
    private readonly ops: MailboxOps,
    private readonly policy: ProviderPolicy,
  ) {}

  /** The mode the mailbox would have without its own setting: the floor a user may not go under. */
  private floor(address: string): ChallengeMode {
    return resolveSettings(this.p.config.defaults, this.p.store.getGlobal(), this.p.store.getDomain(domainOf(address))?.settings, undefined).challenge;
  }

  private mayConfigure(address: string): boolean {
    return effectiveSettings(this.p.config, this.p.store, address).usersMayConfigure;
  }

  show(params: { user: string }) {
    const address = normaliseAddress(params.user, 'user');
    const view = mailboxView(this.p.config, this.p.store, address, this.p.clock());
    const floor = this.floor(address);
    return {
      address,
      challenge: view.effective.challenge.value,
      provider: view.effective.provider.value,
      phone: view.phone,
      altEmail: view.altEmail,
      totp: view.totp,
      ips: view.ips,
      countries: view.countries,
      recoveryCodesLeft: view.recoveryCodesLeft,
      mayConfigure: this.mayConfigure(address),
      allowedChallenges: (Object.keys(STRICTNESS) as ChallengeMode[]).filter((m) => STRICTNESS[m] >= STRICTNESS[floor]),
      allowedProviders: PROVIDERS.filter((p) => {
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

  async set(params: { user: string; challenge?: string | undefined; provider?: string | undefined; phone?: string | null | undefined; altEmail?: string | null | undefined }, ctx: CallContext) {
    const address = normaliseAddress(params.user, 'user');
    this.assertMayConfigure(address);
    const patch: Record<string, unknown> = {};
    if (params.challenge !== undefined) {
      if (params.challenge !== 'inherit') {
        const floor = this.floor(address);
        if (STRICTNESS[params.challenge as ChallengeMode] < STRICTNESS[floor]) {
          throw new MemfaError('FORBIDDEN', `challenge mode ${params.challenge} is weaker than ${floor}, which your domain requires`, { data: { right: 'challenge' } });
        }
      }
      patch['challenge'] = params.challenge;
    }
    if (params.provider !== undefined) patch['provider'] = params.provider;
    const request: Parameters<SettingsAdmin['setMailbox']>[0] = { address, settings: patch };
    if (params.phone !== undefined) request.phone = params.phone;
    if (params.altEmail !== undefined) request.altEmail = params.altEmail;
    await this.settings.setMailbox(request, ctx);
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
