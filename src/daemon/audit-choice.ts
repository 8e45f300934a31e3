// The daemon's audit trail, chosen in one place. On the file store each stream is a file of this
// daemon's (audit/trail.ts) whose head is anchored in the store through the meta port, so that cut
// or removed audit files are found after a restart too (audit/anchor.ts). On PostgreSQL every
// daemon of the database writes into one hash chain per stream kept in the database itself
// (store/postgres/audit.ts): the head row is the anchor, and `memfa audit verify` on any node
// checks the lines of every node.
import type { Anchor, AnchorStore } from '../audit/anchor.js';
import { AuditTrail } from '../audit/trail.js';
import type { MemfaConfig } from '../config/types.js';
import { MemfaError } from '../protocol/errors.js';
import type { AuditStreamName } from '../protocol/results.js';
import type { AuditReader, AuditSink } from '../services/ports.js';
import type { MetaStore, StoreBackend } from '../services/store-ports.js';

import type { Db } from '../store/postgres/pool.js';
import type { Logger } from './logger.js';

/** What the daemon needs of an audit trail: the services' ports, and closing it before the store. */
export type DaemonAudit = AuditSink & AuditReader & { close(): Promise<void> };

export interface AuditChoice {
  config: MemfaConfig;
  backend: StoreBackend;
  /** This node, among the daemons of one database (daemon/node-id.ts): named in each line it writes there. */
  node: string;
  state: MetaStore;
  /** The database of store.backend postgres; null for the file store. */
  db: Db | null;
  /**
   * This node's clock corrected to the database's, as the daemon keeps measuring it (without the
   * test clock: audit times are real): the few times the farm's trail makes itself.
   */
  now: () => number;
  log: Logger;
}

/** The meta key of a stream's anchor in the file store. */
export function anchorKey(stream: AuditStreamName): string {
  return `auditAnchor.${stream}`;
}

/** The anchor of `stream`, read now (the trail reads it once, at open, synchronously). */
async function anchorIn(c: AuditChoice, stream: AuditStreamName): Promise<AnchorStore> {
  const key = anchorKey(stream);
  const stored = await c.state.getMeta<unknown>(key);
  return {
    load: () => stored,
    save: (anchor: Anchor) => c.state.updateMeta(key, () => ({ next: anchor, result: undefined })),
  };
}

export async function openAudit(c: AuditChoice): Promise<DaemonAudit> {
  const { config, log } = c;
  const onEvent = (level: 'info' | 'warn' | 'error', event: string, fields: Record<string, unknown>) => log[level](event, fields);
  const aggregateMs = config.audit.aggregateSeconds * 1000;
  if (c.backend === 'postgres') {
    if (c.db === null) throw new MemfaError('INTERNAL', 'store.backend postgres opened without its database');
    const { PgAuditTrail } = await import('../store/postgres/audit.js');
    return PgAuditTrail.open(c.db, { node: c.node, aggregateMs, onEvent, clock: c.now });
  }
  return AuditTrail.open({
    streams: {
      security: { ...config.audit.security, anchor: await anchorIn(c, 'security') },
      logins: { file: config.audit.file, maxBytes: config.audit.maxBytes, keep: config.audit.keep, anchor: await anchorIn(c, 'logins') },
    },
    aggregateMs,
    onEvent,
  });
}
