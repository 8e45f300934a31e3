// Administration of settings at the three levels: global, domain, mailbox.
import { applySettingsPatch, checkSettingsPatch, DOMAIN_ADMIN_KEYS, resolveSettings, SETTING_LEVELS } from '../core/settings.js';
import { newMailbox, type DomainRecord, type LevelSettings, type MailboxRecord } from '../core/model.js';
import { normaliseAddress, normaliseAltEmail, normaliseDomain } from '../core/validate.js';
import type { MemfaConfig } from '../config/types.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import { Problems } from '../protocol/problems.js';
import type { DomainListResult, DomainRemoveResult, DomainView, GlobalView, MailboxRemoveResult, MailboxView, SetWarnings } from '../protocol/results.js';
import { effectiveView, lockoutPolicy, mailboxViewOf } from './context.js';
import type { AuditSink, CallContext, Clock } from './ports.js';
import type { PlatformPolicy, ProviderPolicy } from './policy.js';
import { phoneRules } from './phone-rules.js';
import { assertDomain, assertMailbox, roleOf } from './scope.js';
import type { LoginReads, MailboxStore, SettingsStore, UnstoredFailureStore } from './store-ports.js';

/** A provider set for this very mailbox (by an administrator, else by the user) must be able to reach it. */
export function assertReachable(rec: MailboxRecord): void {
  const own = rec.settings.provider ?? rec.userSettings.provider;
  if (own === 'sms' && rec.phone === null) throw invalidParams('provider sms needs a phone number: add --phone +E164', { param: 'phone' });
  if (own === 'email' && rec.altEmail === null) throw invalidParams('provider email needs an alternate address: add --alt-email ADDRESS', { param: 'altEmail' });
}

/** A contact change: undefined leaves it as it is, null or '' removes it, anything else is normalised. */
export function contactChange<T>(value: string | null | undefined, normalise: (v: string) => T): T | null | undefined {
  if (value === undefined) return undefined;
  if (value === null || value === '') return null;
  return normalise(value);
}

/** The setting keys a level takes, for the refusal of an empty change. */
function keysOf(level: 'global' | 'domain' | 'mailbox'): string {
  return Object.keys(SETTING_LEVELS).filter((k) => SETTING_LEVELS[k as keyof typeof SETTING_LEVELS].includes(level)).join(', ');
}

function asPatch(settings: unknown): Record<string, unknown> {
  if (settings === undefined) return {};
  if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) throw invalidParams('settings: expected an object of setting keys', { param: 'settings' });
  return settings as Record<string, unknown>;
}

export interface SettingsAdminPorts {
  config: MemfaConfig;
  clock: Clock;
  /** The failures of a mailbox without a record (verify's) are shown with such a mailbox. */
  state: LoginReads & MailboxStore & SettingsStore & Pick<UnstoredFailureStore, 'unstoredFailures'>;
  audit: Pick<AuditSink, 'append'>;
  policy: Pick<PlatformPolicy, 'current'>;
}

export class SettingsAdmin {
  constructor(private readonly p: SettingsAdminPorts) {}

  /**
   * A domain administrator sets only the keys of DOMAIN_ADMIN_KEYS, at the domain and the mailbox
   * level; the others are the platform administrator's (unknown keys are left to the patch's own
   * validation).
   */
  private assertDomainAdminKeys(patch: Record<string, unknown>, ctx: CallContext): void {
    if (!ctx.scope) return;
    const platformOnly = Object.keys(patch).filter((k) => Object.prototype.hasOwnProperty.call(SETTING_LEVELS, k) && !(DOMAIN_ADMIN_KEYS as readonly string[]).includes(k));
    if (platformOnly.length === 0) return;
    throw new MemfaError('FORBIDDEN', `${platformOnly.join(', ')}: set by the platform administrator only; domain administrators may set ${DOMAIN_ADMIN_KEYS.join(', ')}`, {
      data: { right: platformOnly[0], rights: platformOnly },
    });
  }

  /** A provider a domain administrator assigns must be one the platform lets them assign. */
  private assertProviders(policy: ProviderPolicy, patch: Record<string, unknown>, ctx: CallContext): void {
    for (const key of ['provider', 'fallbackProvider']) {
      const v = patch[key];
      if (v === 'totp' || v === 'sms' || v === 'email') policy.assertAssignable(v, roleOf(ctx));
    }
  }

  /**
   * The platform administrator may assign a provider the platform has disabled (to prepare for
   * enabling it, say), but is told what it does meanwhile; domain administrators are refused it
   * (assertProviders).
   */
  private disabledProviderWarnings(policy: ProviderPolicy, patch: Record<string, unknown>, ctx: CallContext): string[] {
    if (roleOf(ctx) !== 'platform') return [];
    const warnings: string[] = [];
    for (const key of ['provider', 'fallbackProvider'] as const) {
      const v = patch[key];
      if ((v !== 'totp' && v !== 'sms' && v !== 'email') || policy.rights(v).enabled) continue;
      warnings.push(
        key === 'provider'
          ? `provider ${v} is disabled on this platform: until it is enabled (memfa providers enable ${v}), logins that need a second factor use the fallback provider if it is enabled, and are otherwise denied (provider-disabled)`
          : `fallback ${v} is disabled on this platform: it is not used until it is enabled (memfa providers enable ${v})`,
      );
    }
    return warnings;
  }

  /** The mailbox as administrators see it, with the provider verify would use. */
  private async view(address: string, now: number, policy: ProviderPolicy, withUnstored: boolean): Promise<MailboxView> {
    const view = await this.p.state.loginView(address);
    const elsewhere = withUnstored && view.mailbox === undefined ? await this.p.state.unstoredFailures(address, now, lockoutPolicy(this.p.config)) : undefined;
    return mailboxViewOf(this.p.config, view, address, now, elsewhere, (e, r) => policy.choiceFor(e, r));
  }

  async setMailbox(
    params: { address: string; settings?: unknown; phone?: string | null | undefined; altEmail?: string | null | undefined },
    ctx: CallContext,
  ): Promise<MailboxView & SetWarnings> {
    // Every problem of the request at once: the address, the phone, the alternate address and each
    // setting of the patch.
    const problems = new Problems();
    const address = problems.check(() => normaliseAddress(params.address, 'address'));
    if (address !== undefined) assertMailbox(ctx, address);
    const given = problems.check(() => asPatch(params.settings));
    if (given !== undefined) problems.check(() => checkSettingsPatch(given, 'mailbox'));
    // Nothing to change would store an empty record.
    if (given !== undefined && Object.keys(given).length === 0 && params.phone === undefined && params.altEmail === undefined) {
      problems.add('settings', `nothing to change: give settings (${keysOf('mailbox')}), phone or altEmail`);
    }
    // Loaded only when there is a number to check (contactChange calls it for no other value).
    const rules = typeof params.phone === 'string' ? await phoneRules() : undefined;
    const phone = problems.check(() => contactChange(params.phone, (v) => rules!.normalisePhone(v)));
    const altEmail = problems.check(() => contactChange(params.altEmail, (v) => (address === undefined ? normaliseAddress(v, 'altEmail') : normaliseAltEmail(v, address))));
    problems.throwIfAny();
    // Valid: an invalid address or patch was reported just above.
    const mailbox = address!;
    const patch = given!;
    this.assertDomainAdminKeys(patch, ctx);
    const policy = await this.p.policy.current();
    this.assertProviders(policy, patch, ctx);
    const now = this.p.clock();
    await this.p.state.updateMailbox(mailbox, (stored) => {
      const current = stored ?? newMailbox(mailbox, now);
      const settings = applySettingsPatch(current.settings, patch, 'mailbox');
      const next = {
        ...current,
        settings,
        phone: phone === undefined ? current.phone : phone,
        altEmail: altEmail === undefined ? current.altEmail : altEmail,
        updatedAt: now,
      };
      assertReachable(next);
      return { next, result: undefined };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox, action: 'mailbox.set', result: 'ok', details: { settings: patch, phone: phone === undefined ? undefined : phone !== null, altEmail: altEmail === undefined ? undefined : altEmail !== null } });
    return { ...(await this.view(mailbox, now, policy, false)), warnings: this.disabledProviderWarnings(policy, patch, ctx) };
  }

  async showMailbox(params: { address: string }, ctx: CallContext): Promise<MailboxView> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    return this.view(address, this.p.clock(), await this.p.policy.current(), true);
  }

  async removeMailbox(params: { address: string }, ctx: CallContext): Promise<MailboxRemoveResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const removed = await this.p.state.updateMailbox(address, (current) => (current === undefined ? { result: false } : { next: null, result: true }));
    if (!removed) throw new MemfaError('NOT_FOUND', `no stored mailbox ${address}`, { hint: 'memfa mailbox list shows the stored mailboxes' });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'mailbox.remove', result: 'ok' });
    return { address, removed: true };
  }

  private async domainView(domain: string): Promise<DomainView> {
    const [rec, global, mailboxes] = await Promise.all([this.p.state.getDomain(domain), this.p.state.getGlobal(), this.p.state.countMailboxes(domain)]);
    return {
      domain,
      stored: rec !== undefined,
      settings: { ...(rec?.settings ?? {}) },
      // What a mailbox of this domain with no settings of its own gets.
      effective: effectiveView(resolveSettings(this.p.config.defaults, global, rec?.settings, undefined)),
      mailboxes,
    };
  }

  async setDomain(params: { domain: string; settings?: unknown }, ctx: CallContext): Promise<DomainView & SetWarnings> {
    const problems = new Problems();
    const named = problems.check(() => normaliseDomain(params.domain));
    if (named !== undefined) assertDomain(ctx, named);
    const given = problems.check(() => asPatch(params.settings));
    if (given !== undefined) problems.check(() => checkSettingsPatch(given, 'domain'));
    if (given !== undefined && Object.keys(given).length === 0) problems.add('settings', `settings: nothing to change: give at least one of ${keysOf('domain')}`);
    problems.throwIfAny();
    // Valid: an invalid domain or patch was reported just above.
    const domain = named!;
    const patch = given!;
    this.assertDomainAdminKeys(patch, ctx);
    const policy = await this.p.policy.current();
    this.assertProviders(policy, patch, ctx);
    const now = this.p.clock();
    await this.p.state.updateDomain(domain, (stored) => {
      const current: DomainRecord = stored ?? { domain, settings: {}, updatedAt: now };
      return { next: { ...current, settings: applySettingsPatch(current.settings, patch, 'domain'), updatedAt: now }, result: undefined };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'domain.set', result: 'ok', details: { domain, settings: patch } });
    return { ...(await this.domainView(domain)), warnings: this.disabledProviderWarnings(policy, patch, ctx) };
  }

  async showDomain(params: { domain: string }, ctx: CallContext): Promise<DomainView> {
    const domain = normaliseDomain(params.domain);
    assertDomain(ctx, domain);
    return this.domainView(domain);
  }

  async listDomains(ctx: CallContext): Promise<DomainListResult> {
    const visible = (d: string) => ctx.scope === undefined || ctx.scope.domains.includes(d);
    const domains = (await this.p.state.listDomains()).filter((d) => visible(d.domain));
    return { domains: await Promise.all(domains.map(async (d) => ({ domain: d.domain, settings: { ...d.settings }, mailboxes: await this.p.state.countMailboxes(d.domain) }))) };
  }

  /**
   * Removes a domain's settings. A domain administrator removes only what they may set
   * (DOMAIN_ADMIN_KEYS): the platform administrator's settings stay, and so does the record while
   * any remain. `kept` lists them.
   */
  async removeDomain(params: { domain: string }, ctx: CallContext): Promise<DomainRemoveResult> {
    const domain = normaliseDomain(params.domain);
    assertDomain(ctx, domain);
    const now = this.p.clock();
    const kept = await this.p.state.updateDomain(domain, (current): { next?: DomainRecord | null; result: string[] | null } => {
      if (current === undefined) return { result: null };
      const rest: LevelSettings = ctx.scope ? { ...current.settings } : {};
      for (const key of DOMAIN_ADMIN_KEYS) delete rest[key];
      const next = Object.keys(rest).length === 0 ? null : { ...current, settings: rest, updatedAt: now };
      return { next, result: Object.keys(rest) };
    });
    if (kept === null) throw new MemfaError('NOT_FOUND', `no stored settings for domain ${domain}`);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'domain.remove', result: 'ok', details: { domain, kept } });
    return { domain, removed: true, kept };
  }

  async setGlobal(params: { settings?: unknown }, ctx: CallContext): Promise<GlobalView & SetWarnings> {
    const patch = asPatch(params.settings);
    if (Object.keys(patch).length === 0) throw invalidParams(`settings: nothing to change: give at least one of ${keysOf('global')}`, { param: 'settings' });
    const settings = await this.p.state.updateGlobal((current) => applySettingsPatch(current, patch, 'global'));
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'global.set', result: 'ok', details: { settings: patch } });
    return { ...this.globalView(settings), warnings: this.disabledProviderWarnings(await this.p.policy.current(), patch, ctx) };
  }

  async showGlobal(): Promise<GlobalView> {
    return this.globalView(await this.p.state.getGlobal());
  }

  private globalView(settings: LevelSettings): GlobalView {
    return { settings: { ...settings }, defaults: { ...this.p.config.defaults }, effective: effectiveView(resolveSettings(this.p.config.defaults, settings, undefined, undefined)) };
  }
}
