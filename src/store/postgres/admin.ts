// Reads, and the read-modify-writes of administration (services/store-ports.ts MailboxStore,
// SettingsStore, MetaStore, LoginReads) on the shared database. A read-modify-write runs the
// service's `change` in one transaction on the object's row, locked; an object that does not exist
// yet is guarded by a transaction-scoped advisory lock on its name, so that two daemons creating
// it take turns instead of one failing. Nothing here is a login's check-then-act: those are in
// factors.ts and throttles.ts.
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import type { MailboxNotices } from '../../core/notices.js';
import { domainOf } from '../../core/validate.js';
import type { LoginView } from '../../services/store-ports.js';
import type { Db, Queryable } from './pool.js';
import { MAILBOX_SELECT, recordOf, writeMailbox } from './rows.js';

/** The advisory lock namespaces of the objects' names (first key of pg_advisory_xact_lock(int, int)). */
const LOCK = { mailbox: 0x6d660001, domain: 0x6d660002, meta: 0x6d660003, global: 0x6d660004 } as const;

/** An object appeared between this transaction's read and its insert: run the change again. */
class Raced extends Error {}

const RACE_TRIES = 5;

async function serialised<T>(db: Db, kind: keyof typeof LOCK, name: string, work: (c: Queryable) => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await db.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK[kind], name]);
        return work(c);
      });
    } catch (err) {
      if (!(err instanceof Raced) || i >= RACE_TRIES) throw err;
    }
  }
}

async function readMailbox(c: Queryable, address: string): Promise<MailboxRecord | undefined> {
  const { rows } = await c.query(`SELECT ${MAILBOX_SELECT} FROM mailboxes m WHERE m.address = $1`, [address]);
  return rows[0] === undefined ? undefined : recordOf(rows[0]);
}

export async function loginView(db: Db, address: string): Promise<LoginView> {
  // One statement: the mailbox, its domain's and the global settings as of the same moment.
  const { rows } = await db.query(
    `SELECT g.settings AS global_settings, d.settings AS domain_settings, mb.*
     FROM global_settings g LEFT JOIN domains d ON d.domain = $2
     LEFT JOIN LATERAL (SELECT ${MAILBOX_SELECT} FROM mailboxes m WHERE m.address = $1) mb ON true`,
    [address, domainOf(address)],
  );
  const row = rows[0]!;
  return {
    mailbox: row['address'] === null ? undefined : recordOf(row),
    domain: (row['domain_settings'] ?? undefined) as LevelSettings | undefined,
    global: row['global_settings'] as LevelSettings,
  };
}

export function getMailbox(db: Db, address: string): Promise<MailboxRecord | undefined> {
  return readMailbox({ query: db.query.bind(db) } as Queryable, address);
}

export function updateMailbox<T>(db: Db, address: string, change: (current: MailboxRecord | undefined) => { next?: MailboxRecord | null; result: T }): Promise<T> {
  return serialised(db, 'mailbox', address, async (c) => {
    // The row lock first, then the read: a statement started after the lock sees the latest version.
    await c.query('SELECT 1 FROM mailboxes WHERE address = $1 FOR UPDATE', [address]);
    const current = await readMailbox(c, address);
    const { next, result } = change(current);
    if (next === null) {
      if (current !== undefined) await c.query('DELETE FROM mailboxes WHERE address = $1', [address]);
    } else if (next !== undefined) {
      if (current === undefined) {
        const made = await c.query('INSERT INTO mailboxes (address, created_at, updated_at) VALUES ($1, $2, $3) ON CONFLICT (address) DO NOTHING RETURNING 1', [address, next.createdAt, next.updatedAt]);
        // A login made the record meanwhile (an enrolment): the change must see it.
        if (made.rows.length === 0) throw new Raced();
      }
      await writeMailbox(c, { ...next, address });
    }
    return result;
  });
}

/** Records read per page while a caller's filter picks them. */
const PAGE = 500;

export async function listMailboxes(
  db: Db,
  options: { domain?: string | undefined; after?: string | undefined; limit?: number | undefined; where?: ((r: MailboxRecord) => boolean) | undefined },
): Promise<MailboxRecord[]> {
  const out: MailboxRecord[] = [];
  let after = options.after ?? null;
  for (;;) {
    const want = options.limit === undefined ? PAGE : Math.min(PAGE, options.limit - out.length);
    if (want <= 0) return out;
    const { rows } = await db.query(
      `SELECT ${MAILBOX_SELECT} FROM mailboxes m WHERE ($1::text IS NULL OR m.domain = $1) AND ($2::text IS NULL OR m.address > $2) ORDER BY m.address LIMIT $3`,
      [options.domain ?? null, after, options.where === undefined ? want : PAGE],
    );
    for (const row of rows) {
      const rec = recordOf(row);
      after = rec.address;
      if (options.where !== undefined && !options.where(rec)) continue;
      out.push(rec);
      if (options.limit !== undefined && out.length >= options.limit) return out;
    }
    if (rows.length < (options.where === undefined ? want : PAGE)) return out;
  }
}

export async function countMailboxes(db: Db, domain?: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM mailboxes WHERE $1::text IS NULL OR domain = $1', [domain ?? null]);
  return rows[0]!.n;
}

// ---------------------------------------------------------------------------------------------
// Settings

export async function getGlobal(db: Db): Promise<LevelSettings> {
  const { rows } = await db.query<{ settings: LevelSettings }>('SELECT settings FROM global_settings');
  return rows[0]!.settings;
}

interface DomainRow {
  domain: string;
  settings: LevelSettings;
  updated_at: number;
}

const domainOfRow = (r: DomainRow): DomainRecord => ({ domain: r.domain, settings: r.settings, updatedAt: r.updated_at });

export async function getDomain(db: Db, domain: string): Promise<DomainRecord | undefined> {
  const { rows } = await db.query<DomainRow>('SELECT * FROM domains WHERE domain = $1', [domain]);
  return rows[0] === undefined ? undefined : domainOfRow(rows[0]);
}

export async function listDomains(db: Db): Promise<DomainRecord[]> {
  const { rows } = await db.query<DomainRow>('SELECT * FROM domains ORDER BY domain');
  return rows.map(domainOfRow);
}

export function updateGlobal(db: Db, change: (current: LevelSettings) => LevelSettings): Promise<LevelSettings> {
  return db.tx(async (c) => {
    const { rows } = await c.query<{ settings: LevelSettings }>('SELECT settings FROM global_settings FOR UPDATE');
    const next = change(rows[0]!.settings);
    await c.query('UPDATE global_settings SET settings = $1::json', [JSON.stringify(next)]);
    return next;
  });
}

export function updateDomain<T>(db: Db, domain: string, change: (current: DomainRecord | undefined) => { next?: DomainRecord | null; result: T }): Promise<T> {
  return serialised(db, 'domain', domain, async (c) => {
    const { rows } = await c.query<DomainRow>('SELECT * FROM domains WHERE domain = $1 FOR UPDATE', [domain]);
    const { next, result } = change(rows[0] === undefined ? undefined : domainOfRow(rows[0]));
    if (next === null) await c.query('DELETE FROM domains WHERE domain = $1', [domain]);
    else if (next !== undefined) {
      await c.query(
        `INSERT INTO domains (domain, settings, updated_at) VALUES ($1, $2::json, $3)
         ON CONFLICT (domain) DO UPDATE SET settings = EXCLUDED.settings, updated_at = EXCLUDED.updated_at`,
        [domain, JSON.stringify(next.settings), next.updatedAt],
      );
    }
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// Small named documents

export async function getMeta<T>(db: Db, key: string): Promise<T | undefined> {
  const { rows } = await db.query<{ value: T }>('SELECT value FROM meta WHERE key = $1', [key]);
  return rows[0]?.value;
}

export function updateMeta<T, R>(db: Db, key: string, change: (current: T | undefined) => { next?: T | null; result: R }): Promise<R> {
  return serialised(db, 'meta', key, async (c) => {
    const { rows } = await c.query<{ value: T }>('SELECT value FROM meta WHERE key = $1 FOR UPDATE', [key]);
    const { next, result } = change(rows[0]?.value);
    if (next === null) await c.query('DELETE FROM meta WHERE key = $1', [key]);
    else if (next !== undefined) {
      await c.query('INSERT INTO meta (key, value) VALUES ($1, $2::json) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, JSON.stringify(next)]);
    }
    return result;
  });
}

// ---------------------------------------------------------------------------------------------
// Security notices

export async function mailboxNotices(db: Db): Promise<{ address: string; notices: MailboxNotices }[]> {
  const { rows } = await db.query<{ address: string; notices: MailboxNotices }>('SELECT address, notices FROM mailboxes WHERE notices IS NOT NULL ORDER BY address');
  return rows;
}
