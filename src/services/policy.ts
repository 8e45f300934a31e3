// The platform's provider policy: which providers exist, and who may assign them. Starts from the
// configuration; `memfa providers` changes are stored and override it.
import type { EffectiveSettings, MailboxRecord, ProviderName } from '../core/model.js';
import { chooseProvider, type ProviderChoice } from '../core/provider-choice.js';
import { APP_PASSWORD_POLICY, POLICY_NAMES, type PolicyName } from '../protocol/vocabulary.js';
import { agree, count } from '../core/wording.js';
import { effectiveSettings } from './context.js';
import type { CallContext, Ports } from './ports.js';
import { MemfaError } from '../protocol/errors.js';
import type { ProvidersListResult, ProvidersSetResult } from '../protocol/results.js';

export interface ProviderRights {
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
}

// app-password: not a provider, but who may create app passwords (and whether they work at all)
// is the same kind of right, kept in the same place.
export type PolicyOverrides = Partial<Record<PolicyName, Partial<ProviderRights>>>;
const META_KEY = 'providerPolicy';

export type Role = 'platform' | 'domain-admin' | 'end-user';

export class ProviderPolicy {
  constructor(private readonly p: Ports) {}

  rights(provider: PolicyName): ProviderRights {
    const base = provider === APP_PASSWORD_POLICY ? this.p.config.appPasswords : this.p.config.providers[provider];
    const over = this.p.store.getMeta<PolicyOverrides>(META_KEY)?.[provider] ?? {};
    return {
      enabled: over.enabled ?? base.enabled,
      domainAdmins: over.domainAdmins ?? base.domainAdmins,
      endUsers: over.endUsers ?? base.endUsers,
    };
  }

  /**
   * The provider that can give `rec` its second factor under these settings, the platform's
   * policy and the configured gateways: the one verify uses, and explain and mailbox show name.
   */
  choiceFor(eff: EffectiveSettings, rec: MailboxRecord): ProviderChoice {
    return chooseProvider(eff, rec, { enabled: (p) => this.rights(p).enabled, hasGateway: (p) => this.p.senders[p] !== undefined });
  }

  /** Throws FORBIDDEN / PROVIDER_DISABLED when `role` may not assign `provider`. */
  assertAssignable(provider: ProviderName, role: Role): void {
    if (role === 'platform') return;
    const r = this.rights(provider);
    if (!r.enabled) throw new MemfaError('PROVIDER_DISABLED', `provider ${provider} is disabled on this platform`, { data: { provider } });
    if (role === 'domain-admin' && !r.domainAdmins) throw new MemfaError('FORBIDDEN', `domain administrators may not assign provider ${provider} (platform policy)`, { data: { provider, right: 'domainAdmins' } });
    if (role === 'end-user' && !r.endUsers) throw new MemfaError('FORBIDDEN', `end users may not choose provider ${provider} (platform policy)`, { data: { provider, right: 'endUsers' } });
  }

  /** Stored mailboxes whose effective provider is `provider` (for app-password: that have app passwords). */
  mailboxesUsing(provider: PolicyName): number {
    let n = 0;
    if (provider === APP_PASSWORD_POLICY) {
      for (const rec of this.p.store.allMailboxes()) if (rec.appPasswords.length > 0) n++;
      return n;
    }
    for (const rec of this.p.store.allMailboxes()) if (effectiveSettings(this.p.config, this.p.store, rec.address, rec).provider === provider) n++;
    return n;
  }

  list(): ProvidersListResult {
    return {
      providers: POLICY_NAMES.map((name) => {
        const r = this.rights(name);
        const transport = name === 'totp' || name === APP_PASSWORD_POLICY ? 'none' : this.p.config.providers[name].transport;
        return {
          name,
          ...r,
          transport,
          gatewayConfigured: name === 'totp' || name === APP_PASSWORD_POLICY || this.p.senders[name] !== undefined,
          mailboxes: this.mailboxesUsing(name),
        };
      }),
    };
  }

  async change(params: { provider: PolicyName; enabled?: boolean | undefined; domainAdmins?: boolean | undefined; endUsers?: boolean | undefined }, ctx: CallContext): Promise<ProvidersSetResult> {
    const provider = params.provider;
    const change: Partial<ProviderRights> = {};
    if (params.enabled !== undefined) change.enabled = params.enabled;
    if (params.domainAdmins !== undefined) change.domainAdmins = params.domainAdmins;
    if (params.endUsers !== undefined) change.endUsers = params.endUsers;
    if (change.enabled === true && provider !== 'totp' && provider !== APP_PASSWORD_POLICY && this.p.senders[provider] === undefined) {
      throw new MemfaError('CONFLICT', `provider ${provider} has no gateway configured; configure ${provider === 'sms' ? 'smpp' : 'smtp'} first`);
    }
    await this.p.store.transact((tx) => {
      const current = tx.getMeta<PolicyOverrides>(META_KEY) ?? {};
      tx.putMeta(META_KEY, { ...current, [provider]: { ...(current[provider] ?? {}), ...change } });
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'providers.set', result: 'ok', details: { provider, ...change } });
    const affected = this.mailboxesUsing(provider);
    const rights = this.rights(provider);
    if (provider === APP_PASSWORD_POLICY) return { provider, ...rights, mailboxes: affected, effect: appPasswordEffect(rights, affected) };
    return {
      provider,
      ...rights,
      mailboxes: affected,
      // Never a silent pass: what verify does for the mailboxes that use a disabled provider.
      effect: rights.enabled
        ? `${count(affected, 'mailbox uses', 'mailboxes use')} ${provider}`
        : `${count(affected, 'mailbox uses', 'mailboxes use')} ${provider}: verify now tries ${agree(affected, 'its', 'their')} fallback provider if one is enabled, and otherwise denies ${agree(affected, 'its', 'their')} logins with reason provider-disabled (recovery codes still work); a fallback that cannot send (no gateway, phone number or alternate address) is answered PROVIDER_UNUSABLE (exit 78)`,
    };
  }
}

/** What a change of the app-password policy means, for people. */
function appPasswordEffect(r: ProviderRights, mailboxes: number): string {
  const have = `${count(mailboxes, 'mailbox has', 'mailboxes have')} app passwords`;
  if (!r.enabled) return `${have}: login.check now ignores every app password, and none can be created`;
  const who = [r.domainAdmins ? 'domain administrators' : null, r.endUsers ? 'end users (with their current second factor)' : null].filter((w) => w !== null);
  return `${have}; app passwords are accepted, and created by platform administrators${who.length === 0 ? ' only' : `, ${who.join(' and ')}`}`;
}
