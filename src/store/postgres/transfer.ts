// The PostgreSQL store's side of `memfa store export` / `import` (store/transfer/ports.ts).
//
// Export reads ONE snapshot, REPEATABLE READ and READ ONLY, while daemons go on serving: every
// row it gives is of the same moment, whatever they write meanwhile. Mailboxes and audit lines
// come through cursors, a page at a time, so that 100,000 or 1,000,000 mailboxes never sit in
// memory together.
//
// Import is ONE transaction: the tables are locked against writes first (daemons may read), the
// target must hold no state (or is emptied, with `replace`), rows go in as multi-row INSERTs of a
// page each (the page as one JSON parameter), and nothing is visible until the commit, which the
// importer makes only once the whole stream has been checked.
import type pg from 'pg';
import { GENESIS_PREV } from '../../audit/entry.js';
import type { DomainRecord, LevelSettings, MailboxRecord } from '../../core/model.js';
import { MemfaError } from '../../protocol/errors.js';
import type { AuditStreamName } from '../../protocol/results.js';
import { AUDIT_STREAMS, isCarriedMeta, isStartMarker, type StateCounts } from '../transfer/format.js';
import { holdsState, targetHoldsState, type StateSink, type StateSource, type TargetState } from '../transfer/ports.js';
import { byteOrder } from '../transfer/stream.js';
import { importAuditLines } from './audit-import.js';
import { loadMigrations } from './migrate.js';
import { storeFailed, type Db } from './pool.js';
import { appPasswordRow, MAILBOX_SELECT, recordOf, SCALAR_COLUMNS, scalarValues } from './rows.js';

/** Rows fetched or inserted per statement. */
const PAGE = 500;
/**
 * How long the transaction may wait on the other end of the stream (a slow pipe, a disk) between
 * two statements; the pool's own limit is a statement's.
 */
const IDLE_IN_TRANSACTION = '15min';

async function run<R extends pg.QueryResultRow = pg.QueryResultRow>(c: pg.PoolClient, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await c.query<R>(text, values);
  } catch (err) {
    throw storeFailed(err);
  }
}

async function begin(db: Db, mode: string): Promise<pg.PoolClient> {
  let c: pg.PoolClient;
  try {
    c = await db.pool.connect();
  } catch (err) {
    throw storeFailed(err);
  }
  try {
    await run(c, `BEGIN ${mode}`);
    await run(c, `SET LOCAL idle_in_transaction_session_timeout = '${IDLE_IN_TRANSACTION}'`);
    return c;
  } catch (err) {
    c.release(true);
    throw err;
  }
}

/** The database's schema must be exactly this memfa's: an export of another one would not be what the stream says. */
async function assertSchema(c: pg.PoolClient): Promise<void> {
  const mine = loadMigrations().length;
  const { rows } = await run<{ v: number | null }>(c, `SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN NULL ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END AS v`);
  const v = rows[0]?.v ?? null;
  if (v === null || v === 0) throw new MemfaError('NOT_FOUND', 'the database holds no memfa schema: nothing to export', { hint: 'check store.postgres in the configuration (--config)' });
  if (v !== mine) {
    throw new MemfaError('CONFLICT', `the database's schema is at migration ${v}, this memfa's at ${mine}`, { hint: v < mine ? 'start a daemon of this memfa once (it migrates the schema), then export' : 'export with the newer memfa that set up this database' });
  }
}

const streamWord = (s: AuditStreamName) => {
  if (!AUDIT_STREAMS.includes(s)) throw new Error(`not an audit stream: ${String(s)}`);
  return s;
};

export class PgSource implements StateSource {
  readonly backend = 'postgres' as const;
  private cursor = 0;

  private constructor(private readonly c: pg.PoolClient) {}

  static async open(db: Db): Promise<PgSource> {
    const c = await begin(db, 'ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      await assertSchema(c);
    } catch (err) {
      await run(c, 'ROLLBACK').catch(() => undefined);
      c.release();
      throw err;
    }
    return new PgSource(c);
  }

  private async metaKeys(): Promise<string[]> {
    const { rows } = await run<{ key: string }>(this.c, 'SELECT key FROM meta');
    return rows.map((r) => r.key).filter(isCarriedMeta).sort(byteOrder);
  }

  async counts(): Promise<StateCounts> {
    const { rows } = await run<{ mailboxes: number; domains: number; security: number; logins: number }>(
      this.c,
      `SELECT (SELECT count(*) FROM mailboxes) AS mailboxes, (SELECT count(*) FROM domains) AS domains,
         (SELECT count(*) FROM audit_lines WHERE stream = 'security') AS security, (SELECT count(*) FROM audit_lines WHERE stream = 'logins') AS logins`,
    );
    const r = rows[0]!;
    return { mailboxes: r.mailboxes, domains: r.domains, meta: (await this.metaKeys()).length, audit: { security: r.security, logins: r.logins } };
  }

  async global(): Promise<LevelSettings> {
    const { rows } = await run<{ settings: LevelSettings }>(this.c, 'SELECT settings FROM global_settings');
    return rows[0]?.settings ?? {};
  }

  async *domains(): AsyncIterable<DomainRecord> {
    const { rows } = await run<{ domain: string; settings: LevelSettings; updated_at: number }>(this.c, 'SELECT domain, settings, updated_at FROM domains ORDER BY domain');
    for (const r of rows) yield { domain: r.domain, settings: r.settings, updatedAt: r.updated_at };
  }

  async *meta(): AsyncIterable<{ key: string; value: unknown }> {
    const keys = await this.metaKeys();
    const { rows } = await run<{ key: string; value: unknown }>(this.c, 'SELECT key, value FROM meta WHERE key = ANY($1::text[])', [keys]);
    const values = new Map(rows.map((r) => [r.key, r.value]));
    for (const key of keys) yield { key, value: values.get(key) };
  }

  /** The rows of `query`, a page at a time, through a cursor of this snapshot. */
  private async *paged(query: string): AsyncGenerator<Record<string, unknown>> {
    const name = `export_${++this.cursor}`;
    await run(this.c, `DECLARE ${name} NO SCROLL CURSOR FOR ${query}`);
    try {
      for (;;) {
        const { rows } = await run(this.c, `FETCH ${PAGE} FROM ${name}`);
        yield* rows;
        if (rows.length < PAGE) return;
      }
    } finally {
      await run(this.c, `CLOSE ${name}`).catch(() => undefined);
    }
  }

  async *mailboxes(): AsyncIterable<MailboxRecord> {
    for await (const row of this.paged(`SELECT ${MAILBOX_SELECT} FROM mailboxes m ORDER BY m.address`)) yield recordOf(row);
  }

  async *audit(stream: AuditStreamName): AsyncIterable<string> {
    for await (const row of this.paged(`SELECT line FROM audit_lines WHERE stream = '${streamWord(stream)}' ORDER BY seq`)) yield row['line'] as string;
  }

  async close(): Promise<void> {
    await run(this.c, 'COMMIT').catch(() => undefined);
    this.c.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Import

/** The SQL type of each scalar column of mailboxes, for the values read out of a page's JSON. */
const COLUMN_TYPES: Record<string, string> = {
  address: 'text', settings: 'json', user_settings: 'json', phone: 'text', alt_email: 'text',
  totp_sealed: 'text', totp_activated_at: 'bigint', totp_last_step: 'bigint',
  pending_sealed: 'text', pending_created_at: 'bigint', pending_expires_at: 'bigint', pending_proved: 'boolean',
  code_hash: 'text', code_sealed: 'text', code_provider: 'text', code_destination: 'text', code_created_at: 'bigint', code_expires_at: 'bigint',
  code_failed_tries: 'integer', code_sends: 'integer', code_last_sent_at: 'bigint',
  known_consecutive: 'integer', known_locked_until: 'bigint', known_hard_locked: 'boolean', known_last_failure_at: 'bigint',
  elsewhere_consecutive: 'integer', elsewhere_locked_until: 'bigint', elsewhere_hard_locked: 'boolean', elsewhere_last_failure_at: 'bigint',
  grace_logins: 'integer', notices: 'json', created_at: 'bigint', updated_at: 'bigint',
};
for (const c of SCALAR_COLUMNS) if (COLUMN_TYPES[c] === undefined) throw new Error(`postgres/transfer.ts: no type for mailboxes.${c}`);

/**
 * `INSERT INTO table (columns) SELECT (r->>0)::type, … FROM jsonb_array_elements($1)`: a page of
 * rows as one parameter. jsonb, not json: each `->>` of a json row would parse its text again (at
 * 100,000 mailboxes the import took a third longer). json columns travel as their text.
 */
function pageInsert(table: string, columns: readonly string[], types: readonly string[]): string {
  const values = columns.map((_, i) => (types[i] === 'text[]' ? `ARRAY(SELECT jsonb_array_elements_text(r->${i}))` : `(r->>${i})::${types[i]}`));
  return `INSERT INTO ${table} (${columns.join(', ')}) SELECT ${values.join(', ')} FROM jsonb_array_elements($1::jsonb) AS e(r)`;
}

const INSERT_MAILBOXES = pageInsert('mailboxes', SCALAR_COLUMNS, SCALAR_COLUMNS.map((c) => COLUMN_TYPES[c]!));
const PLACE_TYPES = ['text', 'integer', 'text', 'bigint', 'bigint'];
const INSERT_IPS = pageInsert('remembered_ips', ['address', 'ord', 'ip', 'first_seen', 'last_seen'], PLACE_TYPES);
const INSERT_COUNTRIES = pageInsert('remembered_countries', ['address', 'ord', 'country', 'first_seen', 'last_seen'], PLACE_TYPES);
const INSERT_RECOVERY = pageInsert('recovery_codes', ['address', 'ord', 'hash'], ['text', 'integer', 'text']);
const INSERT_APP_PASSWORDS = pageInsert(
  'app_passwords',
  ['address', 'ord', 'id', 'name', 'hash', 'protocols', 'networks', 'created_at', 'expires_at', 'last_used_at', 'last_used_ip', 'last_used_country', 'uses'],
  ['text', 'integer', 'text', 'text', 'text', 'text[]', 'text[]', 'bigint', 'bigint', 'bigint', 'text', 'text', 'bigint'],
);
const INSERT_DOMAINS = pageInsert('domains', ['domain', 'settings', 'updated_at'], ['text', 'json', 'bigint']);
const INSERT_META = pageInsert('meta', ['key', 'value'], ['text', 'json']);

/** The node name of imported audit lines (audit_lines.node: not part of a line's text). */
export const IMPORT_NODE = 'store.import';

const STATE_TABLES = ['mailboxes', 'remembered_ips', 'remembered_countries', 'recovery_codes', 'app_passwords', 'domains', 'meta', 'global_settings', 'audit_heads', 'audit_lines'];
/** What a replaced database loses besides its state: the throttles of the store it was. */
const TRANSIENT_TABLES = ['unstored_failures', 'ip_sources', 'send_limits', 'window_counters'];

export class PgSink implements StateSink {
  readonly backend = 'postgres' as const;
  private boxes: MailboxRecord[] = [];
  private domains: DomainRecord[] = [];
  private metas: [string, string][] = [];
  private lines: { stream: AuditStreamName; lines: string[] } | null = null;
  private done = false;

  private constructor(private readonly c: pg.PoolClient) {}

  static async target(c: pg.PoolClient): Promise<TargetState> {
    const { rows } = await run<{ mailboxes: number; domains: number; audit: number; global: string }>(
      c,
      `SELECT (SELECT count(*) FROM mailboxes) AS mailboxes, (SELECT count(*) FROM domains) AS domains,
         (SELECT count(*) FROM audit_lines) AS audit, (SELECT settings::text FROM global_settings) AS global`,
    );
    const keys = (await run<{ key: string }>(c, 'SELECT key FROM meta')).rows.map((r) => r.key);
    const r = rows[0]!;
    const global = r.global === null ? {} : (JSON.parse(r.global) as object);
    return { mailboxes: r.mailboxes, domains: r.domains, meta: keys.filter((k) => isCarriedMeta(k) && !isStartMarker(k)).length, globalSettings: Object.keys(global).length > 0, auditLines: r.audit };
  }

  /** `db` must be migrated (migrate.ts) to this memfa's schema. CONFLICT when it holds state, unless `replace`. */
  static async open(db: Db, opts: { replace: boolean }): Promise<PgSink> {
    const c = await begin(db, 'ISOLATION LEVEL READ COMMITTED');
    try {
      // Daemons running meanwhile may read, not write: what is checked below stays true until the commit.
      await run(c, `LOCK TABLE ${STATE_TABLES.join(', ')} IN EXCLUSIVE MODE`);
      const state = await PgSink.target(c);
      if (holdsState(state)) {
        if (!opts.replace) throw targetHoldsState(`the database ${db.pool.options.database ?? ''}`.trim(), state);
        await run(c, `TRUNCATE ${[...STATE_TABLES.filter((t) => t !== 'global_settings' && t !== 'audit_heads'), ...TRANSIENT_TABLES].join(', ')}`);
      } else {
        // What daemons started on the empty database left (start markers, their anchors, the key
        // ring's record of their key file) gives way to the stream's: its documents are the state.
        await run(c, 'DELETE FROM meta');
      }
      await run(c, `UPDATE audit_heads SET seq = 0, hash = $1, floor = 1`, [GENESIS_PREV]);
      return new PgSink(c);
    } catch (err) {
      await run(c, 'ROLLBACK').catch(() => undefined);
      c.release();
      throw err;
    }
  }

  async global(settings: LevelSettings): Promise<void> {
    await run(this.c, 'UPDATE global_settings SET settings = $1::json', [JSON.stringify(settings)]);
  }

  async domain(record: DomainRecord): Promise<void> {
    this.domains.push(record);
    if (this.domains.length >= PAGE) await this.flushDomains();
  }

  async meta(key: string, value: unknown): Promise<void> {
    await this.flushDomains();
    this.metas.push([key, JSON.stringify(value)]);
    if (this.metas.length >= PAGE) await this.flushMeta();
  }

  async mailbox(record: MailboxRecord): Promise<void> {
    await this.flushMeta();
    this.boxes.push(record);
    if (this.boxes.length >= PAGE) await this.flushMailboxes();
  }

  async audit(stream: AuditStreamName, line: string): Promise<void> {
    await this.flushMailboxes();
    if (this.lines !== null && this.lines.stream !== stream) await this.flushAudit();
    this.lines ??= { stream, lines: [] };
    this.lines.lines.push(line);
    if (this.lines.lines.length >= PAGE) await this.flushAudit();
  }

  private async flushDomains(): Promise<void> {
    if (this.domains.length === 0) return;
    await run(this.c, INSERT_DOMAINS, [JSON.stringify(this.domains.map((d) => [d.domain, JSON.stringify(d.settings), d.updatedAt]))]);
    this.domains = [];
  }

  private async flushMeta(): Promise<void> {
    await this.flushDomains();
    if (this.metas.length === 0) return;
    await run(this.c, INSERT_META, [JSON.stringify(this.metas)]);
    this.metas = [];
  }

  private async flushMailboxes(): Promise<void> {
    await this.flushMeta();
    if (this.boxes.length === 0) return;
    const page = this.boxes;
    this.boxes = [];
    const ips: unknown[][] = [];
    const countries: unknown[][] = [];
    const recovery: unknown[][] = [];
    const apps: unknown[][] = [];
    for (const m of page) {
      m.ips.forEach((e, i) => ips.push([m.address, i + 1, e.ip, e.firstSeen, e.lastSeen]));
      m.countries.forEach((e, i) => countries.push([m.address, i + 1, e.country, e.firstSeen, e.lastSeen]));
      m.recoveryCodeHashes.forEach((h, i) => recovery.push([m.address, i + 1, h]));
      m.appPasswords.forEach((a, i) => apps.push([m.address, i + 1, ...appPasswordRow(a)]));
    }
    await run(this.c, INSERT_MAILBOXES, [JSON.stringify(page.map(scalarValues))]);
    for (const [sql, rows] of [[INSERT_IPS, ips], [INSERT_COUNTRIES, countries], [INSERT_RECOVERY, recovery], [INSERT_APP_PASSWORDS, apps]] as const) {
      if (rows.length > 0) await run(this.c, sql, [JSON.stringify(rows)]);
    }
  }

  /** The lines gathered go on the stream's chain, which moves its head (and, for the first, its floor). */
  private async flushAudit(): Promise<void> {
    await this.flushMailboxes();
    if (this.lines === null) return;
    const { stream, lines } = this.lines;
    this.lines = null;
    try {
      await importAuditLines(this.c, stream, IMPORT_NODE, lines);
    } catch (err) {
      throw storeFailed(err);
    }
  }

  async commit(): Promise<void> {
    await this.flushAudit();
    await run(this.c, 'COMMIT');
    this.done = true;
    this.c.release();
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await run(this.c, 'ROLLBACK').catch(() => undefined);
    this.c.release();
  }
}
