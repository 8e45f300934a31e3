// Standing credentials an end user makes for their own mailbox through self-service: app
// passwords (self.app-password.*) and a new set of recovery codes (self.recovery.generate). Both
// are ways in that outlast the webmail session, so making one needs proof of the mailbox's current
// second factor (services/proof.ts), checked (one operation of the state ports) right before the
// credential is stored, as a mail provider asks again before it shows an app password. What would
// refuse the credential itself (a taken name, a full list) is checked before the proof is spent. A mailbox without a second
// factor gets neither: whoever holds only its password must not be able to mint a way in that
// survives the switch to MFA. Listing and revoking need no proof: they give nothing away.
import { newMailbox } from '../core/model.js';
import { normaliseAddress } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import type { AppPasswordAdded, AppPasswordList, AppPasswordRevoked, RecoveryCodesResult } from '../protocol/results.js';
import type { AppPasswordInput, AppPasswords, RevokeInput } from './app-passwords.js';
import type { MemfaConfig } from '../config/types.js';
import { viewSettings } from './context.js';
import { activeFactors, type FactorProof, type ProofOutcome } from './proof.js';
import type { AuditSink, CallContext, Clock } from './ports.js';
import type { Notifier } from './notify.js';
import type { RecoveryCodes } from './recovery.js';
import { roleOf } from './scope.js';
import type { LoginReads, MailboxStore } from './store-ports.js';

type ProofRefused = Extract<ProofOutcome, { ok: false }>;

export interface SelfCredentialsPorts {
  config: MemfaConfig;
  clock: Clock;
  state: LoginReads & Pick<MailboxStore, 'getMailbox' | 'updateMailbox'>;
  audit: Pick<AuditSink, 'append'>;
}

export class SelfCredentials {
  constructor(
    private readonly p: SelfCredentialsPorts,
    private readonly appPasswords: AppPasswords,
    private readonly recovery: RecoveryCodes,
    private readonly proof: FactorProof,
    private readonly notifier: Pick<Notifier, 'queueOf'>,
  ) {}

  /**
   * Proves the mailbox's current factor with `currentCode`: null when proved, or the refusal. On
   * the admin socket nothing is asked (support acts for the user).
   */
  private async proved(address: string, currentCode: string | undefined, what: string, ctx: CallContext, now: number): Promise<ProofRefused | null> {
    if (ctx.socket === 'admin') return null;
    const view = await this.p.state.loginView(address);
    const rec = view.mailbox;
    const factors = rec === undefined ? [] : activeFactors(rec, viewSettings(this.p.config, view, rec));
    if (rec === undefined || factors.length === 0) {
      throw new MemfaError('CONFLICT', `${address} has no second factor yet; enrol one (self.enroll.start) before making ${what}`, {
        data: { reason: 'no-factor' },
        hint: `${what} can be made only with proof of a second factor`,
      });
    }
    const outcome = await this.proof.prove(rec, this.proof.parse(address, currentCode, factors), now);
    return outcome.ok ? null : outcome;
  }

  private async refuse(address: string, action: string, outcome: ProofRefused, ctx: CallContext, now: number): Promise<never> {
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action, result: 'rejected', reason: outcome.reason });
    throw this.proof.refusal(address, outcome, now);
  }

  async addAppPassword(params: AppPasswordInput & { user: string; currentCode?: string | undefined }, ctx: CallContext): Promise<AppPasswordAdded> {
    const address = normaliseAddress(params.user, 'user');
    await this.appPasswords.assertMayCreate(roleOf(ctx));
    const now = this.p.clock();
    const prepared = this.appPasswords.prepare(params, now);
    // A taken name or a full list is refused before the proof is spent on it.
    const before = await this.p.state.getMailbox(address);
    if (before !== undefined) this.appPasswords.added(before, prepared, now);
    const refused = await this.proved(address, params.currentCode, 'an app password', ctx, now);
    if (refused !== null) return this.refuse(address, 'app-password.add', refused, ctx, now);
    const notices = await this.notifier.queueOf(address, now);
    const outcome = await this.p.state.updateMailbox(address, (current) => {
      const done = this.appPasswords.created(notices, current ?? newMailbox(address, now), prepared, now);
      return { next: done.record, result: done.entry };
    });
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'app-password.add', result: 'ok', details: this.appPasswords.auditDetails(outcome) });
    return this.appPasswords.addedView(address, outcome, prepared.password, now);
  }

  async listAppPasswords(params: { user: string }): Promise<AppPasswordList> {
    const address = normaliseAddress(params.user, 'user');
    return this.appPasswords.listOf(address, await this.p.state.getMailbox(address), this.p.clock());
  }

  revokeAppPassword(params: RevokeInput & { user: string }, ctx: CallContext): Promise<AppPasswordRevoked> {
    const address = normaliseAddress(params.user, 'user');
    return this.appPasswords.revokeFor(address, params, ctx, 'app-password.revoke');
  }

  /** A new set of recovery codes (the old set stops working), shown once. */
  async generateRecoveryCodes(params: { user: string; currentCode?: string | undefined }, ctx: CallContext): Promise<RecoveryCodesResult> {
    const address = normaliseAddress(params.user, 'user');
    const now = this.p.clock();
    const { codes, hashes } = this.recovery.newSet();
    const refused = await this.proved(address, params.currentCode, 'recovery codes', ctx, now);
    if (refused !== null) return this.refuse(address, 'recovery-codes.generate', refused, ctx, now);
    const notices = await this.notifier.queueOf(address, now);
    // A new set voids the old one; its owner hears of it, in the same write.
    await this.p.state.updateMailbox(address, (current) => ({
      next: notices.queue({ ...(current ?? newMailbox(address, now)), recoveryCodeHashes: hashes, updatedAt: now }, [{ kind: 'recovery-codes-generated' }]),
      result: undefined,
    }));
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'recovery-codes.generate', result: 'ok', details: { count: codes.length } });
    return { address, codes };
  }
}
