// App passwords of a mailbox: created (shown once), listed and revoked by the platform
// administrator and, within their domains, by domain administrators; self-service.ts offers the
// same to end users with proof of their current factor. Stored only as a keyed hash of the
// canonical password (core/app-passwords.ts), bound to the mailbox's address.
import {
  APP_PROTOCOLS,
  canonicalAppPassword,
  generateAppPassword,
  generateAppPasswordId,
  normaliseAppPasswordName,
  parseAppNetworks,
  parseAppProtocols,
  parseExpiry,
} from '../core/app-passwords.js';
import type { AppPassword, MailboxRecord } from '../core/model.js';
import { normaliseAddress } from '../core/validate.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import type { AppPasswordAdded, AppPasswordList, AppPasswordRevoked, AppPasswordView } from '../protocol/results.js';
import { newMailbox } from '../core/model.js';
import type { MemfaConfig } from '../config/types.js';
import { APP_PASSWORD_POLICY } from '../protocol/vocabulary.js';
import type { AppPasswordUsage } from './app-password-usage.js';
import type { Notifier } from './notify.js';
import type { PolicySource, Role } from './policy.js';
import type { AuditSink, CallContext, Clock, KeyedHashes, Random } from './ports.js';
import { assertMailbox, roleOf } from './scope.js';
import type { MailboxStore, NoticeQueue } from './store-ports.js';

export const APP_PASSWORD_PURPOSE = 'app-password';

export interface AppPasswordInput {
  name: string;
  protocols?: string[] | undefined;
  networks?: string[] | undefined;
  expires?: string | null | undefined;
}

/** What revoke removes: one app password by its id or name, or every one. */
export interface RevokeInput {
  idOrName?: string | undefined;
  all?: boolean | undefined;
}

/** A new app password, validated, before it is added to a record. */
export interface Prepared {
  password: string;
  entry: Omit<AppPassword, 'id' | 'hash'>;
}

export interface AppPasswordsPorts {
  config: MemfaConfig;
  clock: Clock;
  random: Pick<Random, 'int'>;
  /** Hashes of purpose APP_PASSWORD_PURPOSE, scoped to the mailbox's address. */
  hashes: KeyedHashes;
  state: Pick<MailboxStore, 'getMailbox' | 'updateMailbox'>;
  audit: Pick<AuditSink, 'append'>;
  /** The platform's policy as stored when each call runs (a change holds at once). */
  policy: PolicySource;
}

export class AppPasswords {
  private readonly policy: PolicySource;

  constructor(
    private readonly p: AppPasswordsPorts,
    readonly usage: AppPasswordUsage,
    private readonly notifier: Pick<Notifier, 'queueOf'>,
  ) {
    this.policy = p.policy;
  }

  /**
   * The index of the app password of `rec` that `canonical` is, or -1: one HMAC for the whole
   * list. Scoped to the address: a hash copied into another mailbox's record matches nothing there.
   */
  match(rec: MailboxRecord, canonical: string): number {
    if (rec.appPasswords.length === 0) return -1;
    return this.p.hashes.indexOf(APP_PASSWORD_PURPOSE, canonical, rec.appPasswords.map((a) => a.hash), rec.address);
  }

  /** Whether app passwords are accepted at all (the platform may switch them off). */
  async enabled(): Promise<boolean> {
    return (await this.policy.current()).rights(APP_PASSWORD_POLICY).enabled;
  }

  /** FORBIDDEN or PROVIDER_DISABLED when `role` may not create app passwords (memfa providers set app-password). */
  async assertMayCreate(role: Role): Promise<void> {
    const r = (await this.policy.current()).rights(APP_PASSWORD_POLICY);
    if (!r.enabled) throw new MemfaError('PROVIDER_DISABLED', 'app passwords are disabled on this platform', { data: { provider: APP_PASSWORD_POLICY } });
    if (role === 'domain-admin' && !r.domainAdmins) {
      throw new MemfaError('FORBIDDEN', 'domain administrators may not create app passwords (platform policy)', { data: { provider: APP_PASSWORD_POLICY, right: 'domainAdmins' } });
    }
    if (role === 'end-user' && !r.endUsers) {
      throw new MemfaError('FORBIDDEN', 'end users may not create app passwords (platform policy)', { data: { provider: APP_PASSWORD_POLICY, right: 'endUsers' }, hint: 'ask your administrator' });
    }
  }

  /** Checks the input and makes the password (not yet stored). Every bad field is an INVALID_PARAMS naming it. */
  prepare(input: AppPasswordInput, now: number): Prepared {
    const name = normaliseAppPasswordName(input.name);
    const protocols = input.protocols === undefined ? [...APP_PROTOCOLS] : parseAppProtocols(input.protocols);
    const networks = input.networks === undefined ? [] : parseAppNetworks(input.networks);
    const expiresAt = parseExpiry(input.expires, now);
    const password = generateAppPassword((min, max) => this.p.random.int(min, max));
    return { password, entry: { name, protocols, networks, createdAt: now, expiresAt, lastUsed: null, uses: 0 } };
  }

  /**
   * Inside the write that stores it: `rec` with the prepared app password added and the owner's
   * notice of it queued (`notices`, services/notify.ts queueOf); CONFLICT as for added().
   */
  created(notices: NoticeQueue, rec: MailboxRecord, prepared: Prepared, now: number): { record: MailboxRecord; entry: AppPassword } {
    const done = this.added(rec, prepared, now);
    return { record: notices.queue(done.record, [{ kind: 'app-password-created' }]), entry: done.entry };
  }

  /** `rec` with the prepared app password added; CONFLICT for a name in use or a full list. */
  added(rec: MailboxRecord, prepared: Prepared, now: number): { record: MailboxRecord; entry: AppPassword } {
    const { entry, password } = prepared;
    const taken = rec.appPasswords.find((a) => a.name.toLowerCase() === entry.name.toLowerCase());
    if (taken !== undefined) {
      throw new MemfaError('CONFLICT', `name: ${rec.address} already has an app password named '${taken.name}' (id ${taken.id}); choose another name or revoke it`, { data: { param: 'name' } });
    }
    const max = this.p.config.appPasswords.maxPerMailbox;
    if (rec.appPasswords.length >= max) {
      throw new MemfaError('CONFLICT', `${rec.address} has ${rec.appPasswords.length} app passwords, the most it may have (appPasswords.maxPerMailbox); revoke one first`, { data: { max } });
    }
    let id = generateAppPasswordId((min, m) => this.p.random.int(min, m));
    while (rec.appPasswords.some((a) => a.id === id)) id = generateAppPasswordId((min, m) => this.p.random.int(min, m));
    const canonical = canonicalAppPassword(password);
    if (canonical === null) throw new Error('a generated app password is not in canonical form');
    const full: AppPassword = { id, hash: this.p.hashes.hash(APP_PASSWORD_PURPOSE, canonical, rec.address), ...entry };
    return { record: { ...rec, appPasswords: [...rec.appPasswords, full], updatedAt: now }, entry: full };
  }

  /** `rec` without the app passwords `which` names; NOT_FOUND when it names none. */
  revoked(rec: MailboxRecord | undefined, address: string, which: RevokeInput, now: number): { record: MailboxRecord | null; gone: AppPassword[] } {
    if ((which.all === true) === (which.idOrName !== undefined)) throw invalidParams('give the id or name of one app password, or all', { param: 'idOrName' });
    const list = rec?.appPasswords ?? [];
    let gone: AppPassword[];
    if (which.all === true) gone = [...list];
    else {
      // An id first, then a name (case-insensitive, as names are unique that way).
      const ref = which.idOrName!;
      const one = list.find((a) => a.id === ref) ?? list.find((a) => a.name.toLowerCase() === ref.trim().toLowerCase());
      if (one === undefined) throw new MemfaError('NOT_FOUND', `${address} has no app password with id or name '${ref.slice(0, 64)}'`, { data: { param: 'idOrName' } });
      gone = [one];
    }
    if (rec === undefined || gone.length === 0) return { record: null, gone: [] };
    const ids = new Set(gone.map((a) => a.id));
    return { record: { ...rec, appPasswords: rec.appPasswords.filter((a) => !ids.has(a.id)), updatedAt: now }, gone };
  }

  view(address: string, ap: AppPassword, now: number): AppPasswordView {
    return {
      id: ap.id,
      name: ap.name,
      protocols: [...ap.protocols],
      networks: [...ap.networks],
      createdAt: ap.createdAt,
      expiresAt: ap.expiresAt,
      expired: ap.expiresAt !== null && now >= ap.expiresAt,
      ...this.usage.view(address, ap),
    };
  }

  listOf(address: string, rec: MailboxRecord | undefined, now: number): AppPasswordList {
    return { address, max: this.p.config.appPasswords.maxPerMailbox, appPasswords: (rec?.appPasswords ?? []).map((a) => this.view(address, a, now)) };
  }

  addedView(address: string, entry: AppPassword, password: string, now: number): AppPasswordAdded {
    return { ...this.view(address, entry, now), address, password };
  }

  auditDetails(entry: AppPassword): Record<string, unknown> {
    return { id: entry.id, name: entry.name, protocols: entry.protocols, networks: entry.networks, expiresAt: entry.expiresAt === null ? null : new Date(entry.expiresAt).toISOString() };
  }

  // -------------------------------------------------------------------------------------------
  // The administrators' methods (app-password.add, .list, .revoke): the platform administrator on
  // the admin socket, a domain administrator with a token for the domains of the token.

  async add(params: AppPasswordInput & { address: string }, ctx: CallContext): Promise<AppPasswordAdded> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    await this.assertMayCreate(roleOf(ctx));
    const now = this.p.clock();
    const prepared = this.prepare(params, now);
    const notices = await this.notifier.queueOf(address, now);
    const entry = await this.p.state.updateMailbox(address, (current) => {
      const done = this.created(notices, current ?? newMailbox(address, now), prepared, now);
      return { next: done.record, result: done.entry };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'app-password.add', result: 'ok', details: this.auditDetails(entry) });
    return this.addedView(address, entry, prepared.password, now);
  }

  async list(params: { address: string }, ctx: CallContext): Promise<AppPasswordList> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    return this.listOf(address, await this.p.state.getMailbox(address), this.p.clock());
  }

  async revoke(params: RevokeInput & { address: string }, ctx: CallContext): Promise<AppPasswordRevoked> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    return this.revokeFor(address, params, ctx, 'app-password.revoke');
  }

  /** Revokes in one transaction and audits it; shared with self-service. */
  async revokeFor(address: string, which: RevokeInput, ctx: CallContext, action: string): Promise<AppPasswordRevoked> {
    const now = this.p.clock();
    const { gone, left } = await this.p.state.updateMailbox(address, (current) => {
      const r = this.revoked(current, address, which, now);
      return { next: r.record ?? undefined, result: { gone: r.gone, left: r.record?.appPasswords.length ?? 0 } };
    });
    this.usage.forget(address, gone.map((a) => a.id));
    const revoked = gone.map((a) => ({ id: a.id, name: a.name }));
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action, result: 'ok', details: { revoked, all: which.all === true } });
    return { address, revoked, left };
  }
}
