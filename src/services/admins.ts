// Domain administrators: scoped credentials issued by the platform administrator. A token is shown
// once and stored only as a keyed hash; it names its record, so that checking it reads one record
// and costs one hash.
import { normaliseDomain } from '../core/validate.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { AdminAddResult, AdminListResult, AdminRemoveResult } from '../protocol/results.js';
import type { AuditSink, CallContext, Clock, KeyedHashes, Random } from './ports.js';
import type { DomainAdminRecord, DomainAdminStore } from './store-ports.js';

export interface Scope {
  admin: string;
  domains: string[];
}

export interface DomainAdminsPorts {
  clock: Clock;
  random: Random;
  state: DomainAdminStore;
  hashes: KeyedHashes;
  audit: Pick<AuditSink, 'append'>;
}

const PURPOSE = 'admin-token';
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const TOKEN = /^memfa_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;
/** Bytes of a token's secret part: 43 characters of base64url. */
const SECRET_BYTES = 32;

export class DomainAdmins {
  constructor(private readonly p: DomainAdminsPorts) {}

  async add(params: { name: string; domains: string[] }, ctx: CallContext): Promise<AdminAddResult> {
    const name = params.name.toLowerCase();
    if (!NAME.test(name)) throw invalidParams('name: 1-64 of a-z, 0-9, ".", "_", "-", starting with a letter or digit', { param: 'name' });
    if (params.domains.length === 0) throw invalidParams('give at least one --domain', { param: 'domains' });
    const domains = [...new Set(params.domains.map((d) => normaliseDomain(d)))].sort();
    const id = this.p.random.bytes(8).toString('hex');
    const secret = this.p.random.bytes(SECRET_BYTES).toString('base64url');
    const token = `memfa_${id}_${secret}`;
    const record: DomainAdminRecord = { name, id, domains, tokenHash: this.p.hashes.hash(PURPOSE, secret), createdAt: this.p.clock() };
    if ((await this.p.state.addDomainAdmin(record)) === 'exists') throw new MemfaError('CONFLICT', `an administrator named ${name} exists; remove it first to issue a new token`);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'admin.add', result: 'ok', details: { name, domains } });
    return { name, domains, token };
  }

  async list(): Promise<AdminListResult> {
    return { admins: (await this.p.state.listDomainAdmins()).map(({ name, domains, createdAt }) => ({ name, domains, createdAt })).sort((a, b) => a.name.localeCompare(b.name)) };
  }

  async remove(params: { name: string }, ctx: CallContext): Promise<AdminRemoveResult> {
    const name = params.name.toLowerCase();
    if ((await this.p.state.removeDomainAdmin(name)) === undefined) throw new MemfaError('NOT_FOUND', `no administrator named ${name}`);
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'admin.remove', result: 'ok', details: { name } });
    return { name, removed: true };
  }

  /** The scope a token grants; rejects with UNAUTHENTICATED for a malformed, unknown or revoked token. */
  async authenticate(token: string): Promise<Scope> {
    const m = TOKEN.exec(token);
    const record = m ? await this.p.state.getDomainAdmin(m[1]!) : undefined;
    // Hash even when the record is missing, so that timing does not tell ids apart.
    const ok = this.p.hashes.verify(PURPOSE, m?.[2] ?? '-', record?.tokenHash ?? 'h1:AAAA');
    if (!m || record === undefined || !ok) {
      throw new MemfaError('UNAUTHENTICATED', 'the administrator token is unknown or was revoked', { hint: 'ask the platform administrator for a token (memfa admin add)' });
    }
    return { admin: record.name, domains: record.domains };
  }
}
