// The platform's provider policy: which providers exist, and who may assign them. Starts from the
// configuration; `memfa providers` changes are stored (MetaStore, POLICY_KEY) and override it.
// Nothing of it is kept here: each request reads the stored overrides (PlatformPolicy.current),
// so that a change made through any daemon holds for all.
import type { MemfaConfig } from '../config/types.js';
import type { AuditSink, CallContext, Clock } from './ports.js';
import type { CodeProvider, EffectiveSettings, MailboxRecord, ProviderName } from '../core/model.js';
import { chooseProvider, settingsFor, type ProviderChoice } from '../core/provider-choice.js';
import { APP_PASSWORD_POLICY, POLICY_NAMES, type PolicyName } from '../protocol/vocabulary.js';
import { agree, count } from '../core/wording.js';
import { MemfaError } from '../protocol/errors.js';
import type { MailboxSearch, MetaStore } from './store-ports.js';
import type { ProvidersListResult, ProvidersSetResult } from '../protocol/results.js';

export interface ProviderRights {
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
}

// app-password: not a provider, but who may create app passwords (and whether they work at all)
// is the same kind of right, kept in the same place.
export type PolicyOverrides = Partial<Record<PolicyName, Partial<ProviderRights>>>;
/** Where the overrides are stored. */
export const POLICY_KEY = 'providerPolicy';

export type Role = 'platform' | 'domain-admin' | 'end-user';

/** Where a service gets the policy for one request (PlatformPolicy). */
export type PolicySource = Pick<PlatformPolicy, 'now' | 'current'>;

/** The platform's policy as one request sees it: the configuration, the stored overrides, the gateways. */
export interface ProviderPolicy {
  rights(provider: PolicyName): ProviderRights;
  /**
   * The provider that can give `rec` its second factor under these settings, the platform's
   * policy and the configured gateways: the one verify uses, and explain and mailbox show name.
   */
  choiceFor(eff: EffectiveSettings, rec: MailboxRecord): ProviderChoice;
  /** Throws FORBIDDEN / PROVIDER_DISABLED when `role` may not assign `provider`. */
  assertAssignable(provider: ProviderName, role: Role): void;
}

/** The policy of `overrides` (read each time it is asked: a caller may pass a live reader). */
export function providerPolicy(config: MemfaConfig, hasGateway: (provider: CodeProvider) => boolean, overrides: () => PolicyOverrides): ProviderPolicy {
  const rights = (provider: PolicyName): ProviderRights => {
    const base = provider === APP_PASSWORD_POLICY ? config.appPasswords : config.providers[provider];
    const over = overrides()[provider] ?? {};
    return {
      enabled: over.enabled ?? base.enabled,
      domainAdmins: over.domainAdmins ?? base.domainAdmins,
      endUsers: over.endUsers ?? base.endUsers,
    };
  };
  return {
    rights,
    choiceFor: (eff, rec) => chooseProvider(eff, rec, { enabled: (p) => rights(p).enabled, hasGateway }),
    assertAssignable(provider, role) {
      if (role === 'platform') return;
      const r = rights(provider);
      if (!r.enabled) throw new MemfaError('PROVIDER_DISABLED', `provider ${provider} is disabled on this platform`, { data: { provider } });
      if (role === 'domain-admin' && !r.domainAdmins) throw new MemfaError('FORBIDDEN', `domain administrators may not assign provider ${provider} (platform policy)`, { data: { provider, right: 'domainAdmins' } });
      if (role === 'end-user' && !r.endUsers) throw new MemfaError('FORBIDDEN', `end users may not choose provider ${provider} (platform policy)`, { data: { provider, right: 'endUsers' } });
    },
  };
}

/**
 * The settings a login acts on: a provider that cannot be used (disabled by the platform, sms or
 * email without a gateway or without the mailbox's destination) is replaced by the mailbox's
 * fallback when that one can be; `choice` says which and why (core/provider-choice.ts).
 */
export function usableSettings(policy: ProviderPolicy, eff: EffectiveSettings, rec: MailboxRecord): { settings: EffectiveSettings; choice: ProviderChoice } {
  const choice = policy.choiceFor(eff, rec);
  return { settings: settingsFor(eff, choice), choice };
}

export interface PlatformPolicyPorts {
  config: MemfaConfig;
  clock: Clock;
  state: MetaStore & MailboxSearch;
  audit: Pick<AuditSink, 'append'>;
  /** Whether a code provider has a configured gateway. */
  hasGateway: (provider: CodeProvider) => boolean;
}

const NO_OVERRIDES: PolicyOverrides = Object.freeze({});

/** The provider policy as a service: read for a request, listed and changed by the platform administrator. */
export class PlatformPolicy {
  /**
   * Where the state answers meta reads at once (MetaStore getMetaNow: the file store), one policy
   * that reads the stored overrides live at every question, shared by every request: the fast path
   * awaits and allocates nothing for it. Null where the state must be asked (PostgreSQL).
   */
  private readonly live: ProviderPolicy | null;

  constructor(private readonly p: PlatformPolicyPorts) {
    const readNow = p.state.getMetaNow;
    this.live = readNow === undefined ? null : providerPolicy(p.config, p.hasGateway, () => readNow.call(p.state, POLICY_KEY) ?? NO_OVERRIDES);
  }

  /**
   * The policy as stored now, for one request: at once where the state answers at once, otherwise
   * once read (a change made through any daemon holds for the next request of every daemon).
   */
  now(): ProviderPolicy | Promise<ProviderPolicy> {
    if (this.live !== null) return this.live;
    // A cache that its writers invalidate answers at once too (PostgreSQL's), so that a login on
    // the fast path awaits nothing while it holds the overrides.
    const held = this.p.state.getMetaIfHeld?.<PolicyOverrides>(POLICY_KEY);
    if (held !== undefined) {
      const overrides = held.value ?? NO_OVERRIDES;
      return providerPolicy(this.p.config, this.p.hasGateway, () => overrides);
    }
    return this.read();
  }

  /** The policy now, for one request. */
  async current(): Promise<ProviderPolicy> {
    return this.now();
  }

  private async read(): Promise<ProviderPolicy> {
    const overrides = (await this.p.state.getMeta<PolicyOverrides>(POLICY_KEY)) ?? NO_OVERRIDES;
    return providerPolicy(this.p.config, this.p.hasGateway, () => overrides);
  }

  /** Stored mailboxes whose effective provider is `provider` (for app-password: that have app passwords). */
  async mailboxesUsing(provider: PolicyName): Promise<number> {
    const criteria = provider === APP_PASSWORD_POLICY ? { appPasswords: true } : { provider };
    return (await this.p.state.findMailboxes({ criteria, limit: 0, defaults: this.p.config.defaults, now: this.p.clock() })).total;
  }

  async list(): Promise<ProvidersListResult> {
    const policy = await this.current();
    const providers = await Promise.all(
      POLICY_NAMES.map(async (name) => {
        const transport = name === 'totp' || name === APP_PASSWORD_POLICY ? 'none' : this.p.config.providers[name].transport;
        return {
          name,
          ...policy.rights(name),
          transport,
          gatewayConfigured: name === 'totp' || name === APP_PASSWORD_POLICY || this.p.hasGateway(name),
          mailboxes: await this.mailboxesUsing(name),
        };
      }),
    );
    return { providers };
  }

  async change(params: { provider: PolicyName; enabled?: boolean | undefined; domainAdmins?: boolean | undefined; endUsers?: boolean | undefined }, ctx: CallContext): Promise<ProvidersSetResult> {
    const provider = params.provider;
    const change: Partial<ProviderRights> = {};
    if (params.enabled !== undefined) change.enabled = params.enabled;
    if (params.domainAdmins !== undefined) change.domainAdmins = params.domainAdmins;
    if (params.endUsers !== undefined) change.endUsers = params.endUsers;
    if (change.enabled === true && provider !== 'totp' && provider !== APP_PASSWORD_POLICY && !this.p.hasGateway(provider)) {
      throw new MemfaError('CONFLICT', `provider ${provider} has no gateway configured; configure ${provider === 'sms' ? 'smpp' : 'smtp'} first`);
    }
    const stored = await this.p.state.updateMeta<PolicyOverrides, PolicyOverrides>(POLICY_KEY, (current) => {
      const next = { ...(current ?? {}), [provider]: { ...(current?.[provider] ?? {}), ...change } };
      return { next, result: next };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'providers.set', result: 'ok', details: { provider, ...change } });
    const affected = await this.mailboxesUsing(provider);
    const rights = providerPolicy(this.p.config, this.p.hasGateway, () => stored).rights(provider);
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
