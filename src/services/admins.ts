// Domain administrators: scoped credentials issued by the platform administrator. A token is shown
// once and stored only as a keyed hash; it names its record so that checking it costs one hash.
import { normaliseDomain } from '../core/validate.js';
import { keyedHash, randomToken, verifyKeyedHash } from '../security/hash.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { AdminAddResult, AdminListResult, AdminRemoveResult } from '../protocol/results.js';
import type { CallContext, Ports } from './ports.js';

export interface AdminRecord {
  name: string;
  id: string;
  domains: string[];
  tokenHash: string;
  createdAt: number;
}

export interface Scope {
  admin: string;
  domains: string[];
}

const META_KEY = 'domainAdmins';
const PURPOSE = 'admin-token';
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TOKEN = /^memfa_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;

export class DomainAdmins {
  constructor(private readonly p: Ports) {}

  private all(): Record<string, AdminRecord> {
    return this.p.store.getMeta<Record<string, AdminRecord>>(META_KEY) ?? {};
  }

  async add(params: { name: string; domains: string[] }, ctx: CallContext): Promise<AdminAddResult> {
    const name = params.name.toLowerCase();
    if (!NAME.test(name)) throw invalidParams('name: 1-64 of a-z, 0-9, ".", "_", "-", starting with a letter or digit', { param: 'name' });
    if (params.domains.length === 0) throw invalidParams('give at least one --domain', { param: 'domains' });
    const domains = [...new Set(params.domains.map((d) => normaliseDomain(d)))].sort();
    const id = this.p.random.bytes(8).toString('hex');
    const secret = randomToken(32);
    const token = `memfa_${id}_${secret}`;
    const record: AdminRecord = { name, id, domains, tokenHash: keyedHash(this.p.secrets.macKey(PURPOSE), PURPOSE, secret), createdAt: this.p.clock() };
    await this.p.store.transact((tx) => {
      const all = tx.getMeta<Record<string, AdminRecord>>(META_KEY) ?? {};
      if (Object.values(all).some((a) => a.name === name)) throw new MemfaError('CONFLICT', `an administrator named ${name} exists; remove it first to issue a new token`);
      tx.putMeta(META_KEY, { ...all, [id]: record });
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'admin.add', result: 'ok', details: { name, domains } });
    return { name, domains, token };
  }

  list(): AdminListResult {
    return { admins: Object.values(this.all()).map(({ name, domains, createdAt }) => ({ name, domains, createdAt })).sort((a, b) => a.name.localeCompare(b.name)) };
  }

  async remove(params: { name: string }, ctx: CallContext): Promise<AdminRemoveResult> {
    const name = params.name.toLowerCase();
    const removed = await this.p.store.transact((tx) => {
      const all = { ...(tx.getMeta<Record<string, AdminRecord>>(META_KEY) ?? {}) };
      const entry = Object.values(all).find((a) => a.name === name);
      if (entry === undefined) return false;
      delete all[entry.id];
      tx.putMeta(META_KEY, all);
      return true;
    });
    if (!removed) throw new MemfaError('NOT_FOUND', `no administrator named ${name}`);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'admin.remove', result: 'ok', details: { name } });
    return { name, removed: true };
  }

  /** The scope a token grants; throws UNAUTHENTICATED for a malformed, unknown or revoked token. */
  authenticate(token: string): Scope {
    const m = TOKEN.exec(token);
    const record = m ? this.all()[m[1]!] : undefined;
    // Hash even when the record is missing, so that timing does not tell ids apart.
    const ok = verifyKeyedHash(this.p.secrets.macKey(PURPOSE), PURPOSE, m?.[2] ?? '-', record?.tokenHash ?? 'h1:AAAA');
    if (!m || record === undefined || !ok) {
      throw new MemfaError('UNAUTHENTICATED', 'the administrator token is unknown or was revoked', { hint: 'ask the platform administrator for a token (memfa admin add)' });
    }
    return { admin: record.name, domains: record.domains };
  }
}
