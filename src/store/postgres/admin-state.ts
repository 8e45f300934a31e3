// What administration asks of the shared database beyond one record (services/store-ports.ts:
// MailboxSearch, MailboxPages, DomainAdminStore, SealedSecretSample, JobClaims). The domain
// administrators and the job claims are small named documents (meta), changed under its row lock,
// so that every daemon sees one list and one holder of a job. The selection of mailboxes by
// criteria is decided by the core's own rules (core/mailbox-row.ts) on the records, read a page
// at a time: the same answers as the file store's.
import type { AppPasswordUses } from '../../core/app-passwords.js';
import { hasCriteria, mailboxRow, meetsCriteria } from '../../core/mailbox-row.js';
import type { MailboxRecord } from '../../core/model.js';
import { domainOf } from '../../core/validate.js';
import type { DomainAdminRecord, MailboxQuery } from '../../services/store-ports.js';
import { DOMAIN_ADMINS_KEY } from '../admin-state.js';
import * as admin from './admin.js';
import type { Db } from './pool.js';
import { readMailboxRow, writeMailbox } from './rows.js';

/** The job claims' document: holder and end of each job's claim. */
export const JOB_CLAIMS_KEY = 'jobClaims';

type Claims = Record<string, { holder: string; until: number }>;
type Admins = Record<string, DomainAdminRecord>;

export async function findMailboxes(db: Db, q: MailboxQuery): Promise<{ total: number; mailboxes: MailboxRecord[] }> {
  const limit = q.limit ?? Infinity;
  if (!hasCriteria(q.criteria)) {
    const total = await admin.countMailboxes(db, q.domain);
    return { total, mailboxes: limit === 0 ? [] : await admin.listMailboxes(db, { domain: q.domain, after: q.after, limit: q.limit }) };
  }
  const global = await admin.getGlobal(db);
  const domains = new Map((await admin.listDomains(db)).map((d) => [d.domain, d.settings]));
  const meets = (r: MailboxRecord) => meetsCriteria(q.criteria, mailboxRow(q.defaults, global, domains.get(domainOf(r.address)), r, q.now), r);
  const all = await admin.listMailboxes(db, { domain: q.domain, where: meets });
  const after = q.after;
  const page = limit === 0 ? [] : all.filter((r) => after === undefined || r.address > after).slice(0, limit);
  return { total: all.length, mailboxes: page };
}

export function updateMailboxes<T>(db: Db, addresses: readonly string[], change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T[]> {
  return db.tx(async (c) => {
    // The rows locked in one order, whatever the caller's: two pages never wait for each other.
    await c.query('SELECT 1 FROM mailboxes WHERE address = ANY($1::text[]) ORDER BY address FOR UPDATE', [[...addresses]]);
    const results: T[] = [];
    for (const address of addresses) {
      const current = await readMailboxRow(c, address);
      const { next, result } = change(current);
      if (next === null) {
        if (current !== undefined) await c.query('DELETE FROM mailboxes WHERE address = $1', [address]);
      } else if (next !== undefined) {
        if (current === undefined) await c.query('INSERT INTO mailboxes (address, created_at, updated_at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING', [address, next.createdAt, next.updatedAt]);
        await writeMailbox(c, { ...next, address });
      }
      results.push(result);
    }
    return results;
  });
}

/**
 * The uses of app passwords in one transaction: the mailboxes' rows locked first (in address
 * order, as updateMailboxes does), so that a record being rewritten is counted on once it is
 * written; then one statement that adds the uses as core/app-passwords.ts withUses does.
 */
export function recordAppPasswordUses(db: Db, uses: readonly ({ address: string; id: string } & AppPasswordUses)[]): Promise<void> {
  if (uses.length === 0) return Promise.resolve();
  return db.tx(async (c) => {
    await c.query('SELECT 1 FROM mailboxes WHERE address = ANY($1::text[]) ORDER BY address FOR UPDATE', [[...new Set(uses.map((u) => u.address))]]);
    await c.query(
      `UPDATE app_passwords a SET uses = a.uses + u.n,
         last_used_at = CASE WHEN a.last_used_at > u.at THEN a.last_used_at ELSE u.at END,
         last_used_ip = CASE WHEN a.last_used_at > u.at THEN a.last_used_ip ELSE u.ip END,
         last_used_country = CASE WHEN a.last_used_at > u.at THEN a.last_used_country ELSE u.country END
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[]) AS u(address, id, n, at, ip, country)
       WHERE a.address = u.address AND a.id = u.id`,
      [uses.map((u) => u.address), uses.map((u) => u.id), uses.map((u) => u.count), uses.map((u) => u.at), uses.map((u) => u.ip), uses.map((u) => u.country)],
    );
  });
}

export async function getDomainAdmin(db: Db, id: string): Promise<DomainAdminRecord | undefined> {
  const all = (await admin.getMeta<Admins>(db, DOMAIN_ADMINS_KEY)) ?? {};
  return Object.hasOwn(all, id) ? all[id] : undefined;
}

export async function listDomainAdmins(db: Db): Promise<DomainAdminRecord[]> {
  return Object.values((await admin.getMeta<Admins>(db, DOMAIN_ADMINS_KEY)) ?? {}).sort((a, b) => a.name.localeCompare(b.name));
}

export function addDomainAdmin(db: Db, record: DomainAdminRecord): Promise<'added' | 'exists'> {
  return admin.updateMeta<Admins, 'added' | 'exists'>(db, DOMAIN_ADMINS_KEY, (current) => {
    const all = current ?? {};
    if (Object.values(all).some((a) => a.name === record.name)) return { result: 'exists' };
    return { next: { ...all, [record.id]: record }, result: 'added' };
  });
}

export function removeDomainAdmin(db: Db, name: string): Promise<DomainAdminRecord | undefined> {
  return admin.updateMeta<Admins, DomainAdminRecord | undefined>(db, DOMAIN_ADMINS_KEY, (current) => {
    const all = { ...(current ?? {}) };
    const entry = Object.values(all).find((a) => a.name === name);
    if (entry === undefined) return { result: undefined };
    delete all[entry.id];
    return { next: all, result: entry };
  });
}

/**
 * The first sealed secret of each key id in `column`, by address: a walk from one key id to the
 * next over the index of migration 006 (a loose index scan), so its cost follows the number of key
 * ids, not of mailboxes.
 */
function firstPerKey(column: 'totp_sealed' | 'pending_sealed'): string {
  const kid = `split_part(${column}, '.', 2)`;
  return `WITH RECURSIVE k AS (
      (SELECT ${kid} AS kid, address, ${column} AS sealed FROM mailboxes WHERE ${column} IS NOT NULL ORDER BY ${kid}, address LIMIT 1)
      UNION ALL
      SELECT n.kid, n.address, n.sealed FROM k, LATERAL (
        SELECT ${kid} AS kid, address, ${column} AS sealed FROM mailboxes WHERE ${column} IS NOT NULL AND ${kid} > k.kid ORDER BY ${kid}, address LIMIT 1) n)
    SELECT kid, address, sealed FROM k`;
}

const TOTP_PER_KEY = firstPerKey('totp_sealed');
const PENDING_PER_KEY = firstPerKey('pending_sealed');

export async function sealedSecretPerKey(db: Db): Promise<{ kid: string; address: string; sealedSecret: string }[]> {
  // A malformed value is sampled too (kid ''), and fails to open. Of an active and a pending
  // secret under one key id, the one of the first address is taken, as either would do.
  const [active, pending] = await Promise.all([
    db.query<{ kid: string; address: string; sealed: string }>(TOTP_PER_KEY),
    db.query<{ kid: string; address: string; sealed: string }>(PENDING_PER_KEY),
  ]);
  const first = new Map<string, { kid: string; address: string; sealedSecret: string }>();
  for (const r of [...active.rows, ...pending.rows]) {
    const seen = first.get(r.kid);
    if (seen === undefined || r.address < seen.address) first.set(r.kid, { kid: r.kid, address: r.address, sealedSecret: r.sealed });
  }
  return [...first.values()].sort((a, b) => (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
}

export function claimJob(db: Db, job: string, holder: string, now: number, ttlMs: number): Promise<{ claimed: true } | { claimed: false; holder: string; until: number }> {
  return admin.updateMeta<Claims, { claimed: true } | { claimed: false; holder: string; until: number }>(db, JOB_CLAIMS_KEY, (current) => {
    const held = current?.[job];
    if (held !== undefined && held.until > now && held.holder !== holder) return { result: { claimed: false, ...held } };
    return { next: { ...(current ?? {}), [job]: { holder, until: now + ttlMs } }, result: { claimed: true } };
  });
}

export function releaseJob(db: Db, job: string, holder: string): Promise<void> {
  return admin.updateMeta<Claims, undefined>(db, JOB_CLAIMS_KEY, (current) => {
    if (current?.[job]?.holder !== holder) return { result: undefined };
    const { [job]: _gone, ...rest } = current;
    return { next: rest, result: undefined };
  });
}

export async function jobClaim(db: Db, job: string, now: number): Promise<{ holder: string; until: number } | undefined> {
  const held = (await admin.getMeta<Claims>(db, JOB_CLAIMS_KEY))?.[job];
  return held !== undefined && held.until > now ? { ...held } : undefined;
}
