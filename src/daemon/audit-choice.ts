// The daemon's audit trail, chosen in one place. For now every daemon keeps its own file-based
// trail (audit/trail.ts), each stream's head anchored in the store through the meta port, so that
// cut or removed audit files are found after a restart too (audit/anchor.ts): in the store file,
// or in the database. With several daemons on one database, each anchors its own files under its
// node's id. A trail shared by every daemon of a database plugs in here, behind the same methods.
import type { Anchor, AnchorStore } from '../audit/anchor.js';
import { AuditTrail } from '../audit/trail.js';
import type { MemfaConfig } from '../config/types.js';
import type { AuditStreamName } from '../protocol/results.js';
import type { AuditReader, AuditSink } from '../services/ports.js';
import type { MetaStore, StoreBackend } from '../services/store-ports.js';
import type { Logger } from './logger.js';

/** What the daemon needs of an audit trail: the services' ports, and closing it before the store. */
export type DaemonAudit = AuditSink & AuditReader & { close(): Promise<void> };

export interface AuditChoice {
  config: MemfaConfig;
  backend: StoreBackend;
  /** This node, among the daemons of one database (daemon/node-id.ts). */
  node: string;
  state: MetaStore;
  log: Logger;
}

/** The meta key of a stream's anchor: the file store's own, or this node's in a shared database. */
export function anchorKey(backend: StoreBackend, node: string, stream: AuditStreamName): string {
  return backend === 'file' ? `auditAnchor.${stream}` : `auditAnchor.${node}.${stream}`;
}

/** The anchor of `stream`, read now (the trail reads it once, at open, synchronously). */
async function anchorIn(c: AuditChoice, stream: AuditStreamName): Promise<AnchorStore> {
  const key = anchorKey(c.backend, c.node, stream);
  const stored = await c.state.getMeta<unknown>(key);
  return {
    load: () => stored,
    save: (anchor: Anchor) => c.state.updateMeta(key, () => ({ next: anchor, result: undefined })),
  };
}

export async function openAudit(c: AuditChoice): Promise<DaemonAudit> {
  const { config, log } = c;
  return AuditTrail.open({
    streams: {
      security: { ...config.audit.security, anchor: await anchorIn(c, 'security') },
      logins: { file: config.audit.file, maxBytes: config.audit.maxBytes, keep: config.audit.keep, anchor: await anchorIn(c, 'logins') },
    },
    aggregateMs: config.audit.aggregateSeconds * 1000,
    onEvent: (level, event, fields) => log[level](event, fields),
  });
}
