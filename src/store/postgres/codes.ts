// One-time codes and enrolment on the shared database (services/store-ports.ts CodeStore's codes,
// EnrolStore): each a single statement on the mailbox's row that decides in its WHERE (or in its
// ON CONFLICT) and tells through RETURNING what it did.
import type { OpenCode, PendingTotp } from '../../core/model.js';
import type { SendAndOpen } from '../../services/store-ports.js';
import type { Db, Queryable } from './pool.js';
import { codeOf, pendingOf } from './rows.js';
import { claimSend } from './throttles.js';

export function openCode(db: Db, address: string, code: OpenCode): Promise<'opened' | 'missing'> {
  return openCodeOn(db.statements, address, code);
}

async function openCodeOn(c: Queryable, address: string, code: OpenCode): Promise<'opened' | 'missing'> {
  const { rows } = await c.query(
    `UPDATE mailboxes SET code_hash = $2, code_sealed = $3, code_provider = $4, code_destination = $5, code_created_at = $6, code_expires_at = $7,
       code_failed_tries = $8, code_sends = $9, code_last_sent_at = $10, updated_at = $10 WHERE address = $1 RETURNING 1`,
    [address, code.hash, code.sealedCode ?? null, code.provider, code.destination, code.createdAt, code.expiresAt, code.failedTries, code.sends, code.lastSentAt],
  );
  return rows.length === 0 ? 'missing' : 'opened';
}

/**
 * CodeStore claimAndOpen: the mailbox's row locked first, so that a second challenge (on any
 * daemon) waits for the first one's claim and code and then finds both; the claim within the same
 * transaction (throttles.ts claimSend), and the code stored with it.
 */
export function claimAndOpen(db: Db, address: string, keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }, fresh: OpenCode): Promise<SendAndOpen> {
  return db.tx(async (c): Promise<SendAndOpen> => {
    const { rows } = await c.query(
      `SELECT code_hash, code_sealed, code_provider, code_destination, code_created_at, code_expires_at, code_failed_tries, code_sends, code_last_sent_at
       FROM mailboxes WHERE address = $1 FOR UPDATE`,
      [address],
    );
    if (rows[0] === undefined) return { outcome: 'missing' };
    const current = codeOf(rows[0]);
    const open = current !== null && current.expiresAt > now ? current : null;
    const claim = await claimSend(c, keys, now, limits);
    if (!claim.ok) return { outcome: 'refused', open, retryAfterMs: claim.retryAfterMs, limit: claim.limit, key: claim.key };
    if (open !== null && open.provider === fresh.provider && open.destination === fresh.destination) return { outcome: 'kept', open };
    await openCodeOn(c, address, fresh);
    return { outcome: 'opened', open: fresh };
  });
}

export async function codeResent(db: Db, address: string, hash: string, at: number): Promise<'resent' | 'changed'> {
  const { rows } = await db.query('UPDATE mailboxes SET code_sends = code_sends + 1, code_last_sent_at = $3, updated_at = $3 WHERE address = $1 AND code_hash = $2 RETURNING 1', [address, hash, at]);
  return rows.length === 0 ? 'changed' : 'resent';
}

export async function closeCode(db: Db, address: string, hash: string): Promise<void> {
  await db.query(
    `UPDATE mailboxes SET code_hash = NULL, code_sealed = NULL, code_provider = NULL, code_destination = NULL, code_created_at = NULL, code_expires_at = NULL,
       code_failed_tries = NULL, code_sends = NULL, code_last_sent_at = NULL WHERE address = $1 AND code_hash = $2`,
    [address, hash],
  );
}

export async function pendingOrNew(db: Db, address: string, fresh: PendingTotp, now: number, opts: { restart: boolean; needProved: boolean }): Promise<PendingTotp> {
  return db.tx(async (c) => {
    // The conflict path locks the mailbox's row and keeps its open pending secret unless it has
    // to go (restart, expired, or started without the factor proved when that is needed).
    const { rows } = await c.query(
      `INSERT INTO mailboxes AS m (address, pending_sealed, pending_created_at, pending_expires_at, pending_proved, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT (address) DO UPDATE SET pending_sealed = EXCLUDED.pending_sealed, pending_created_at = EXCLUDED.pending_created_at,
         pending_expires_at = EXCLUDED.pending_expires_at, pending_proved = EXCLUDED.pending_proved, updated_at = EXCLUDED.updated_at
       WHERE $7::boolean OR m.pending_sealed IS NULL OR m.pending_expires_at <= $6 OR ($8::boolean AND m.pending_proved IS NOT TRUE)
       RETURNING 1`,
      [address, fresh.sealedSecret, fresh.createdAt, fresh.expiresAt, fresh.factorProved === true ? true : null, now, opts.restart, opts.needProved],
    );
    if (rows.length > 0) return fresh;
    // Kept: the row is this transaction's (ON CONFLICT locked it), so this reads what decided.
    const kept = await c.query('SELECT pending_sealed, pending_created_at, pending_expires_at, pending_proved FROM mailboxes WHERE address = $1', [address]);
    return pendingOf(kept.rows[0]!)!;
  });
}

export async function countGraceLogin(db: Db, address: string, maxLogins: number, now: number): Promise<number | null> {
  const { rows } = await db.query<{ n: number }>(
    'UPDATE mailboxes SET grace_logins = COALESCE(grace_logins, 0) + 1, updated_at = $3 WHERE address = $1 AND COALESCE(grace_logins, 0) < $2 RETURNING grace_logins AS n',
    [address, maxLogins, now],
  );
  return rows[0]?.n ?? null;
}
