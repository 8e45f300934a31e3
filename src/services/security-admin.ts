// Administration of the security state: unlocking mailboxes, rotating the key, reading the audit log.
import { adminUnlockAll, failureCount, failuresOf } from '../core/lockout.js';
import type { MailboxRecord } from '../core/model.js';
import { secretAad } from '../core/secret-binding.js';
import { normaliseAddress } from '../core/validate.js';
import { invalidParams, MemfaError } from '../protocol/errors.js';
import type { AuditQueryResult, AuditVerifyResult, KeyAddResult, KeyRotateResult, UnlockResult } from '../protocol/results.js';
import { TOTP_PURPOSE } from './enrol.js';
import type { AuditReader, AuditSink, CallContext, Clock, KeyAdmin } from './ports.js';
import { assertMailbox } from './scope.js';
import type { JobClaims, MailboxPages, MailboxStore, UnstoredFailureStore } from './store-ports.js';

const RESEAL_BATCH = 500;
/** The job claim of a key rotation (JobClaims), shared by every daemon of the store. */
export const KEY_ROTATION_JOB = 'key-rotation';
/**
 * How long a rotation's claim holds without being renewed; it is renewed before every batch, so
 * only a daemon that stopped midway lets it run out (running rotate again then finishes the job).
 */
export const KEY_ROTATION_CLAIM_MS = 10 * 60_000;

export interface SecurityAdminPorts {
  clock: Clock;
  /** Unlock clears the failures of a mailbox without a record (verify's) too. */
  state: Pick<MailboxStore, 'updateMailbox' | 'listMailboxes'> & MailboxPages & JobClaims & Pick<UnstoredFailureStore, 'clearUnstoredFailures'>;
  keys: KeyAdmin;
  audit: Pick<AuditSink, 'append'> & AuditReader;
  /** This daemon, as the holder of a job claim: unique among the daemons of the store. */
  holder: string;
}

function parseTime(value: string | undefined, param: string): Date | undefined {
  if (value === undefined) return undefined;
  // Relative: 15m, 2h, 7d; absolute: anything Date parses (ISO 8601 recommended).
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw invalidParams(`${param}: expected an ISO 8601 time or a duration such as 15m, 2h, 7d`, { param });
  return new Date(t);
}

export class SecurityAdmin {
  constructor(private readonly p: SecurityAdminPorts) {}

  /** Clears both kinds of a mailbox's failures (core/lockout.ts), or those kept for one without a record. */
  async unlock(params: { address: string }, ctx: CallContext): Promise<UnlockResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const now = this.p.clock();
    const was = await this.p.state.updateMailbox(address, (rec) => (rec === undefined ? { result: null } : { next: { ...rec, failures: adminUnlockAll(), updatedAt: now }, result: rec.failures }));
    const unstored = await this.p.state.clearUnstoredFailures(address);
    const failures = was === null ? { known: null, elsewhere: unstored ?? null } : was;
    if (was === null && unstored === undefined) throw new MemfaError('NOT_FOUND', `no stored mailbox ${address}, and no failures kept for it`);
    const known = failuresOf(failures, 'known');
    const elsewhere = failuresOf(failures, 'elsewhere');
    await this.p.audit.append({
      actor: ctx.actor,
      socket: ctx.socket,
      mailbox: address,
      action: 'unlock',
      result: 'ok',
      details: { failures: failureCount(failures), knownFailures: known.consecutive, elsewhereFailures: elsewhere.consecutive, hardLocked: known.hardLocked || elsewhere.hardLocked },
    });
    return { address, unlocked: true, failuresCleared: failureCount(failures) };
  }

  private resealed(rec: MailboxRecord): MailboxRecord | null {
    const aad = secretAad(TOTP_PURPOSE, rec.address);
    const totp = rec.totp !== null && this.p.keys.needsReseal(rec.totp.sealedSecret) ? { ...rec.totp, sealedSecret: this.p.keys.reseal(rec.totp.sealedSecret, aad) } : rec.totp;
    const pending = rec.pendingTotp !== null && this.p.keys.needsReseal(rec.pendingTotp.sealedSecret) ? { ...rec.pendingTotp, sealedSecret: this.p.keys.reseal(rec.pendingTotp.sealedSecret, aad) } : rec.pendingTotp;
    return totp === rec.totp && pending === rec.pendingTotp ? null : { ...rec, totp, pendingTotp: pending };
  }

  /**
   * Adds a key to the key file without making it current, so that the file can be installed
   * wherever it is needed before anything is sealed with it; `rotateKey` then makes it current.
   * Refused during a rotation, which retires every key but its own at the end.
   */
  async addKey(ctx: CallContext): Promise<KeyAddResult> {
    if ((await this.p.state.jobClaim(KEY_ROTATION_JOB, this.p.clock())) !== undefined) throw new MemfaError('CONFLICT', 'a key rotation is running; add the key after it');
    const kid = await this.p.keys.add();
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'key.add', result: 'ok', details: { kid } });
    return { kid, current: this.p.keys.currentKid };
  }

  /**
   * The added key (or a fresh one) becomes current; every secret is re-sealed under it in batches
   * (logins go on meanwhile); then every other key is retired. A crash midway leaves the old keys
   * in the key file, still able to open what was not re-sealed; running rotate again finishes the
   * job. One rotation at a time across the daemons of the store (the KEY_ROTATION_JOB claim);
   * security/rotation.ts has the plan for the key file of several.
   */
  async rotateKey(ctx: CallContext): Promise<KeyRotateResult> {
    const claim = () => this.p.state.claimJob(KEY_ROTATION_JOB, this.p.holder, this.p.clock(), KEY_ROTATION_CLAIM_MS);
    if (!(await claim()).claimed) throw new MemfaError('CONFLICT', 'a key rotation is already running');
    try {
      const kid = await this.p.keys.rotate();
      let resealed = 0;
      let after: string | undefined;
      for (;;) {
        const batch = await this.p.state.listMailboxes({ after, limit: RESEAL_BATCH });
        if (batch.length === 0) break;
        after = batch[batch.length - 1]!.address;
        // Renewed before each batch: a claim that ran out meanwhile may be another daemon's now.
        if (!(await claim()).claimed) throw new MemfaError('CONFLICT', 'the key rotation was taken over by another daemon (its claim ran out); that one finishes it');
        const changed = await this.p.state.updateMailboxes(
          batch.map((r) => r.address),
          (current) => {
            const next = current && this.resealed(current);
            return next ? { next, result: 1 } : { result: 0 };
          },
        );
        resealed += changed.reduce((a, b) => a + b, 0);
      }
      const retired = this.p.keys.kids().filter((k) => k !== kid);
      for (const k of retired) await this.p.keys.retire(k);
      await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'key.rotate', result: 'ok', details: { kid, resealed, retired: retired.length } });
      return { kid, resealed, retired };
    } finally {
      await this.p.state.releaseJob(KEY_ROTATION_JOB, this.p.holder);
    }
  }

  /**
   * For a domain administrator, only the entries whose mailbox is in their domains: entries of no
   * mailbox (platform-wide changes, other domains' settings, key rotation) are the platform's.
   */
  async auditQuery(
    params: { mailbox?: string | undefined; since?: string | undefined; until?: string | undefined; result?: string | undefined; action?: string | undefined; limit?: number | undefined },
    ctx: CallContext,
  ): Promise<AuditQueryResult> {
    const filter: Parameters<AuditReader['query']>[0] = {};
    if (params.mailbox !== undefined) {
      filter.mailbox = normaliseAddress(params.mailbox, 'mailbox');
      assertMailbox(ctx, filter.mailbox);
    }
    if (ctx.scope) filter.domains = ctx.scope.domains;
    const since = parseTime(params.since, 'since');
    const until = parseTime(params.until, 'until');
    if (since) filter.since = since;
    if (until) filter.until = until;
    if (params.result !== undefined) filter.result = params.result;
    if (params.action !== undefined) filter.action = params.action;
    filter.limit = params.limit ?? 1000;
    return { entries: await this.p.audit.query(filter) };
  }

  auditVerify(): Promise<AuditVerifyResult> {
    return this.p.audit.verify();
  }
}
