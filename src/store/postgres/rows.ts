// A mailbox record (core/model.ts MailboxRecord) as rows: the mailbox's row with its lists, read
// in one statement and written whole by the administration's read-modify-write. Every field of
// the record is mapped here; STORED below fails to compile when the model gains a field this file
// does not store, so that a new field cannot be dropped silently.
import type { AppPassword, FailureState, MailboxRecord, OpenCode, PendingTotp, RememberedCountry, RememberedIp, TotpState } from '../../core/model.js';
import type { MailboxNotices } from '../../core/notices.js';
import type { Queryable } from './pool.js';
import { Params } from './sql.js';

/** The mailbox columns and its lists as JSON, for `FROM mailboxes m`. */
export const MAILBOX_SELECT = `m.xmin::text AS row_version, m.address, m.settings, m.user_settings, m.phone, m.alt_email,
  m.totp_sealed, m.totp_activated_at, m.totp_last_step,
  m.pending_sealed, m.pending_created_at, m.pending_expires_at, m.pending_proved,
  m.code_hash, m.code_sealed, m.code_provider, m.code_destination, m.code_created_at, m.code_expires_at, m.code_failed_tries, m.code_sends, m.code_last_sent_at,
  m.known_consecutive, m.known_locked_until, m.known_hard_locked, m.known_last_failure_at,
  m.elsewhere_consecutive, m.elsewhere_locked_until, m.elsewhere_hard_locked, m.elsewhere_last_failure_at,
  m.grace_logins, m.notices, m.created_at, m.updated_at,
  COALESCE((SELECT json_agg(json_build_array(r.ip, r.first_seen, r.last_seen) ORDER BY r.ord)
    FROM remembered_ips r WHERE r.address = m.address), '[]') AS ips,
  COALESCE((SELECT json_agg(json_build_array(r.country, r.first_seen, r.last_seen) ORDER BY r.ord)
    FROM remembered_countries r WHERE r.address = m.address), '[]') AS countries,
  COALESCE((SELECT json_agg(r.hash ORDER BY r.ord) FROM recovery_codes r WHERE r.address = m.address), '[]') AS recovery,
  COALESCE((SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'hash', a.hash, 'protocols', a.protocols, 'networks', a.networks,
      'createdAt', a.created_at, 'expiresAt', a.expires_at, 'lastUsedAt', a.last_used_at, 'lastUsedIp', a.last_used_ip,
      'lastUsedCountry', a.last_used_country, 'uses', a.uses) ORDER BY a.ord)
    FROM app_passwords a WHERE a.address = m.address), '[]') AS app_passwords`;

type Row = Record<string, unknown>;

const n = (v: unknown): number => v as number;
const nOrNull = (v: unknown): number | null => (v === null ? null : (v as number));

function failureOf(row: Row, kind: 'known' | 'elsewhere'): FailureState | null {
  if (row[`${kind}_consecutive`] === null) return null;
  return {
    consecutive: n(row[`${kind}_consecutive`]),
    lockedUntil: nOrNull(row[`${kind}_locked_until`]),
    hardLocked: row[`${kind}_hard_locked`] === true,
    lastFailureAt: nOrNull(row[`${kind}_last_failure_at`]),
  };
}

function totpOf(row: Row): TotpState | null {
  if (row['totp_sealed'] === null) return null;
  return { sealedSecret: row['totp_sealed'] as string, activatedAt: n(row['totp_activated_at']), lastAcceptedStep: nOrNull(row['totp_last_step']) };
}

export function pendingOf(row: Row): PendingTotp | null {
  if (row['pending_sealed'] === null) return null;
  const p: PendingTotp = { sealedSecret: row['pending_sealed'] as string, createdAt: n(row['pending_created_at']), expiresAt: n(row['pending_expires_at']) };
  if (row['pending_proved'] === true) p.factorProved = true;
  return p;
}

export function codeOf(row: Row): OpenCode | null {
  if (row['code_hash'] === null) return null;
  return {
    hash: row['code_hash'] as string,
    ...(row['code_sealed'] === null ? {} : { sealedCode: row['code_sealed'] as string }),
    provider: row['code_provider'] as OpenCode['provider'],
    destination: row['code_destination'] as string,
    createdAt: n(row['code_created_at']),
    expiresAt: n(row['code_expires_at']),
    failedTries: n(row['code_failed_tries']),
    sends: n(row['code_sends']),
    lastSentAt: n(row['code_last_sent_at']),
  };
}

/** An app password as the row's JSON holds it: its last use flattened into three fields. */
type AppPasswordJson = Omit<AppPassword, 'lastUsed'> & { lastUsedAt: number | null; lastUsedIp: string | null; lastUsedCountry: string | null };

/**
 * The version of the mailbox's row each record was read from (its xmin): a factor's statement
 * takes the effects worked out from such a record as current when the row it locks is still that
 * version (factors.ts). That covers the remembered lists, kept in tables of their own, because
 * every change of them is made in a transaction that also updates the mailbox's row (the
 * verdicts that succeed, writeMailbox, an import into an empty store).
 */
const rowVersions = new WeakMap<MailboxRecord, string>();

/** The version of the row `rec` was read from by this module; undefined for a record made elsewhere. */
export function rowVersionOf(rec: MailboxRecord): string | undefined {
  return rowVersions.get(rec);
}

/** A mailbox row selected with MAILBOX_SELECT, as the record the services know. */
export function recordOf(row: Row): MailboxRecord {
  const rec: MailboxRecord = {
    address: row['address'] as string,
    settings: row['settings'] as MailboxRecord['settings'],
    userSettings: row['user_settings'] as MailboxRecord['userSettings'],
    phone: row['phone'] as string | null,
    altEmail: row['alt_email'] as string | null,
    totp: totpOf(row),
    pendingTotp: pendingOf(row),
    openCode: codeOf(row),
    ips: (row['ips'] as [string, number, number][]).map(([ip, firstSeen, lastSeen]) => ({ ip, firstSeen, lastSeen })),
    countries: (row['countries'] as [string, number, number][]).map(([country, firstSeen, lastSeen]) => ({ country, firstSeen, lastSeen })),
    failures: { known: failureOf(row, 'known'), elsewhere: failureOf(row, 'elsewhere') },
    recoveryCodeHashes: row['recovery'] as string[],
    appPasswords: (row['app_passwords'] as AppPasswordJson[]).map((a) => ({
      id: a.id,
      name: a.name,
      hash: a.hash,
      protocols: a.protocols,
      networks: a.networks,
      createdAt: a.createdAt,
      expiresAt: a.expiresAt,
      lastUsed: a.lastUsedAt === null ? null : { at: a.lastUsedAt, ip: a.lastUsedIp as string, country: a.lastUsedCountry },
      uses: a.uses,
    })),
    createdAt: n(row['created_at']),
    updatedAt: n(row['updated_at']),
  };
  if (row['grace_logins'] !== null) rec.enrolmentGraceLogins = n(row['grace_logins']);
  if (row['notices'] !== null && row['notices'] !== undefined) rec.notices = row['notices'] as MailboxNotices;
  if (typeof row['row_version'] === 'string') rowVersions.set(rec, row['row_version']);
  return rec;
}

/** True only when T has no key beyond K: the checks below stop compiling when the model grows. */
type Covers<T, K extends keyof T> = [Exclude<keyof T, K>] extends [never] ? true : never;
const STORED: [
  Covers<MailboxRecord, 'address' | 'settings' | 'userSettings' | 'phone' | 'altEmail' | 'totp' | 'pendingTotp' | 'openCode' | 'ips' | 'countries' | 'failures' | 'recoveryCodeHashes' | 'enrolmentGraceLogins' | 'appPasswords' | 'notices' | 'createdAt' | 'updatedAt'>,
  Covers<TotpState, 'sealedSecret' | 'activatedAt' | 'lastAcceptedStep'>,
  Covers<PendingTotp, 'sealedSecret' | 'createdAt' | 'expiresAt' | 'factorProved'>,
  Covers<OpenCode, 'hash' | 'sealedCode' | 'provider' | 'destination' | 'createdAt' | 'expiresAt' | 'failedTries' | 'sends' | 'lastSentAt'>,
  Covers<FailureState, 'consecutive' | 'lockedUntil' | 'hardLocked' | 'lastFailureAt'>,
  Covers<AppPassword, 'id' | 'name' | 'hash' | 'protocols' | 'networks' | 'createdAt' | 'expiresAt' | 'lastUsed' | 'uses'>,
  Covers<RememberedIp, 'ip' | 'firstSeen' | 'lastSeen'>,
  Covers<RememberedCountry, 'country' | 'firstSeen' | 'lastSeen'>,
] = [true, true, true, true, true, true, true, true];
void STORED;

const failureValues = (f: FailureState | null) => (f === null ? [null, null, null, null] : [f.consecutive, f.lockedUntil, f.hardLocked, f.lastFailureAt]);

/** The scalar columns of a record, in the order of SCALAR_COLUMNS (json columns as their text). */
export function scalarValues(rec: MailboxRecord): unknown[] {
  const { totp: t, pendingTotp: p, openCode: o } = rec;
  return [
    rec.address,
    JSON.stringify(rec.settings),
    JSON.stringify(rec.userSettings),
    rec.phone,
    rec.altEmail,
    ...(t === null ? [null, null, null] : [t.sealedSecret, t.activatedAt, t.lastAcceptedStep]),
    ...(p === null ? [null, null, null, null] : [p.sealedSecret, p.createdAt, p.expiresAt, p.factorProved === true ? true : null]),
    ...(o === null ? [null, null, null, null, null, null, null, null, null] : [o.hash, o.sealedCode ?? null, o.provider, o.destination, o.createdAt, o.expiresAt, o.failedTries, o.sends, o.lastSentAt]),
    ...failureValues(rec.failures.known),
    ...failureValues(rec.failures.elsewhere),
    rec.enrolmentGraceLogins ?? null,
    rec.notices === undefined ? null : JSON.stringify(rec.notices),
    rec.createdAt,
    rec.updatedAt,
  ];
}

export const SCALAR_COLUMNS = [
  'address', 'settings', 'user_settings', 'phone', 'alt_email',
  'totp_sealed', 'totp_activated_at', 'totp_last_step',
  'pending_sealed', 'pending_created_at', 'pending_expires_at', 'pending_proved',
  'code_hash', 'code_sealed', 'code_provider', 'code_destination', 'code_created_at', 'code_expires_at', 'code_failed_tries', 'code_sends', 'code_last_sent_at',
  'known_consecutive', 'known_locked_until', 'known_hard_locked', 'known_last_failure_at',
  'elsewhere_consecutive', 'elsewhere_locked_until', 'elsewhere_hard_locked', 'elsewhere_last_failure_at',
  'grace_logins', 'notices', 'created_at', 'updated_at',
];

/** The json columns of SCALAR_COLUMNS. */
const JSON_COLUMNS = new Set(['settings', 'user_settings', 'notices']);

const UPDATE_MAILBOX = `UPDATE mailboxes SET (${SCALAR_COLUMNS.slice(1).join(', ')}) = (${SCALAR_COLUMNS.slice(1)
  .map((c, i) => `$${i + 2}${JSON_COLUMNS.has(c) ? '::json' : ''}`)
  .join(', ')}) WHERE address = $1`;

export function appPasswordRow(a: AppPassword): unknown[] {
  return [a.id, a.name, a.hash, a.protocols, a.networks, a.createdAt, a.expiresAt, a.lastUsed?.at ?? null, a.lastUsed?.ip ?? null, a.lastUsed?.country ?? null, a.uses];
}

const ips = (list: RememberedIp[]) => [list.map((e) => e.ip), list.map((e) => e.firstSeen), list.map((e) => e.lastSeen)];
const countries = (list: RememberedCountry[]) => [list.map((e) => e.country), list.map((e) => e.firstSeen), list.map((e) => e.lastSeen)];

/** A mailbox's remembered lists (core/decide.ts rememberLocation's history). */
export type Places = { ips: RememberedIp[]; countries: RememberedCountry[] };

/**
 * The parts of a statement (CTEs) that replace the remembered lists of `address` with `places`
 * (the caller holds the mailbox's row lock): the entries no longer listed go, the listed ones are
 * inserted or updated (disjoint rows, so the parts cannot meet). With `when` (a condition on a
 * CTE named `v` earlier in the same WITH list), each only when it holds.
 */
export function placesParts(p: Params, address: string, places: Places, when: string | null): string {
  const a = p.add(address, 'text');
  const [ip, ipFirst, ipLast] = ips(places.ips).map((list, i) => p.add(list, i === 0 ? 'text[]' : 'bigint[]'));
  const [cc, ccFirst, ccLast] = countries(places.countries).map((list, i) => p.add(list, i === 0 ? 'text[]' : 'bigint[]'));
  const only = when === null ? '' : ` AND EXISTS (SELECT 1 FROM v WHERE ${when})`;
  const onlyRows = when === null ? '' : ` WHERE EXISTS (SELECT 1 FROM v WHERE ${when})`;
  return `di AS (DELETE FROM remembered_ips WHERE address = ${a} AND ip <> ALL (${ip})${only}),
  dc AS (DELETE FROM remembered_countries WHERE address = ${a} AND country <> ALL (${cc})${only}),
  ui AS (INSERT INTO remembered_ips SELECT ${a}, o::integer, ip, f, l FROM unnest(${ip}, ${ipFirst}, ${ipLast}) WITH ORDINALITY AS u(ip, f, l, o)${onlyRows}
    ON CONFLICT (address, ip) DO UPDATE SET ord = EXCLUDED.ord, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen),
  uc AS (INSERT INTO remembered_countries SELECT ${a}, o::integer, cc, f, l FROM unnest(${cc}, ${ccFirst}, ${ccLast}) WITH ORDINALITY AS u(cc, f, l, o)${onlyRows}
    ON CONFLICT (address, country) DO UPDATE SET ord = EXCLUDED.ord, first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen)`;
}

const WRITE_NOTICES = 'UPDATE mailboxes SET notices = $2::json WHERE address = $1';

/** The mailbox of `address` as stored (the caller holds its row lock), or undefined. */
export async function readMailboxRow(c: Queryable, address: string): Promise<MailboxRecord | undefined> {
  const { rows } = await c.query(`SELECT ${MAILBOX_SELECT} FROM mailboxes m WHERE m.address = $1`, [address]);
  return rows[0] === undefined ? undefined : recordOf(rows[0]);
}

/**
 * What an operation changed of a mailbox besides its own statement: the remembered lists, the
 * notices (present: stored, even as none; absent: left as they are).
 */
export interface RecordEffects {
  places?: Places;
  notices?: MailboxNotices | undefined;
}

/** Stores `effects` on the mailbox of `address` (the caller holds its row lock), in one statement or none. */
export async function writeEffects(c: Queryable, address: string, effects: RecordEffects): Promise<void> {
  const notices = 'notices' in effects ? (effects.notices === undefined ? null : JSON.stringify(effects.notices)) : undefined;
  if (effects.places !== undefined) {
    const p = new Params();
    const parts = [placesParts(p, address, effects.places, null)];
    // The notices are on the mailbox's row: another table's, which no other part writes.
    if (notices !== undefined) parts.push(`n AS (UPDATE mailboxes SET notices = ${p.add(notices)}::json WHERE address = ${p.add(address, 'text')})`);
    await c.query(`WITH ${parts.join(',\n  ')}\nSELECT 1`, p.values);
  } else if (notices !== undefined) await c.query(WRITE_NOTICES, [address, notices]);
}

/**
 * Stores `rec` over the mailbox's row (which the caller holds locked, inserted if need be) and
 * replaces its lists.
 */
export async function writeMailbox(c: Queryable, rec: MailboxRecord): Promise<void> {
  await c.query(UPDATE_MAILBOX, scalarValues(rec));
  await c.query('WITH c AS (DELETE FROM recovery_codes WHERE address = $1) DELETE FROM app_passwords WHERE address = $1', [rec.address]);
  // The remembered lists in place rather than deleted and inserted again: a change that leaves
  // them as they were touches none of their rows, and announces no change of them (migration 005).
  await writeEffects(c, rec.address, { places: rec });
  if (rec.recoveryCodeHashes.length > 0) {
    await c.query('INSERT INTO recovery_codes SELECT $1, o::integer, h FROM unnest($2::text[]) WITH ORDINALITY AS u(h, o)', [rec.address, rec.recoveryCodeHashes]);
  }
  for (const [i, a] of rec.appPasswords.entries()) {
    await c.query('INSERT INTO app_passwords VALUES ($1, $2, $3, $4, $5, $6::text[], $7::text[], $8, $9, $10, $11, $12, $13)', [rec.address, i + 1, ...appPasswordRow(a)]);
  }
}
