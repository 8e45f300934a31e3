// mailbox.import: a TOTP secret (and recovery codes) brought over from another MFA tool, made the
// mailbox's active secret at once. The secret is sealed as an enrolment seals it and recovery
// codes are stored as keyed hashes, as generated ones are. A dry run checks exactly what a real
// import would and writes nothing, not even an audit line.
//
// Every error names its parameter and never repeats a value: the values are secrets, and a phone
// column that holds a secret (columns swapped) must not be echoed either.
import type { MailboxRecord } from '../core/model.js';
import { newMailbox } from '../core/model.js';
import { fromBase32 } from '../core/totp.js';
import { normaliseAddress, normaliseAltEmail } from '../core/validate.js';
import { phoneRules } from './phone-rules.js';
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { ImportResult } from '../protocol/results.js';
import { secretAad } from '../core/secret-binding.js';
import type { MemfaConfig } from '../config/types.js';
import { TOTP_PURPOSE } from './enrol.js';
import type { AuditSink, CallContext, Clock, SecretBox } from './ports.js';
import { asRecoveryCode, asScratchCode, RECOVERY_CODE_COUNT, type RecoveryCodes } from './recovery.js';
import { assertMailbox } from './scope.js';
import type { MailboxStore } from './store-ports.js';

/**
 * The shortest secret accepted: 80 bits, what libpam-google-authenticator wrote for years (memfa's
 * own are 160). Anything shorter is guessable offline from a few observed codes.
 */
export const MIN_IMPORTED_SECRET_BYTES = 10;
export const MAX_IMPORTED_SECRET_BYTES = 128;
/** More than a set of memfa's own, as many as google-authenticator writes at most. */
export const MAX_IMPORTED_RECOVERY_CODES = 2 * RECOVERY_CODE_COUNT;

export interface ImportParams {
  address: string;
  secret: string;
  recoveryCodes?: string[] | undefined;
  phone?: string | undefined;
  altEmail?: string | undefined;
  /** What the source tool used; each must match the configuration (totp.*), or the app's codes would not. */
  period?: number | undefined;
  digits?: number | undefined;
  algorithm?: string | undefined;
  replace?: boolean | undefined;
  dryRun?: boolean | undefined;
}

interface Prepared {
  address: string;
  key: Buffer;
  recoveryCodes: string[] | undefined;
  phone: string | undefined;
  altEmail: string | undefined;
}

/** Runs a normaliser, replacing its message (which quotes the value) with `message`. */
function quietly<T>(param: string, message: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof MemfaError && err.code === 'INVALID_PARAMS') throw invalidParams(`${param}: ${message}`, { param });
    throw err;
  }
}

export interface MailboxImportPorts {
  config: MemfaConfig;
  clock: Clock;
  state: Pick<MailboxStore, 'getMailbox' | 'updateMailbox'>;
  secrets: Pick<SecretBox, 'seal'>;
  /** The stored form of recovery codes, as generated ones have it. */
  recovery: Pick<RecoveryCodes, 'hashAll'>;
  audit: Pick<AuditSink, 'append'>;
}

export class MailboxImport {
  constructor(private readonly p: MailboxImportPorts) {}

  private async prepare(params: ImportParams): Promise<Prepared> {
    const address = quietly('address', 'not a valid mailbox address (local@domain)', () => normaliseAddress(params.address, 'address'));
    const t = this.p.config.totp;
    if (params.period !== undefined && params.period !== t.period) {
      throw invalidParams(`period: the secret's codes change every ${params.period} s, memfa's every ${t.period} s (totp.period); the user must enrol again`, { param: 'period' });
    }
    if (params.digits !== undefined && params.digits !== t.digits) {
      throw invalidParams(`digits: the secret's codes have ${params.digits} digits, memfa's ${t.digits} (totp.digits); the user must enrol again`, { param: 'digits' });
    }
    if (params.algorithm !== undefined && params.algorithm !== t.algorithm) {
      throw invalidParams(`algorithm: the secret's codes use ${params.algorithm}, memfa's ${t.algorithm} (totp.algorithm); the user must enrol again`, { param: 'algorithm' });
    }
    const key = quietly('secret', 'not a valid base32 string', () => fromBase32(params.secret));
    if (key.length < MIN_IMPORTED_SECRET_BYTES || key.length > MAX_IMPORTED_SECRET_BYTES) {
      throw invalidParams(`secret: must be ${MIN_IMPORTED_SECRET_BYTES * 8} to ${MAX_IMPORTED_SECRET_BYTES * 8} bits (it has ${key.length * 8})`, { param: 'secret' });
    }
    let recoveryCodes: string[] | undefined;
    if (params.recoveryCodes !== undefined) {
      if (params.recoveryCodes.length > MAX_IMPORTED_RECOVERY_CODES) throw invalidParams(`recoveryCodes: at most ${MAX_IMPORTED_RECOVERY_CODES}`, { param: 'recoveryCodes' });
      recoveryCodes = params.recoveryCodes.map((c, i) => {
        const canonical = asRecoveryCode(c) ?? asScratchCode(c);
        if (canonical === null) throw invalidParams(`recoveryCodes[${i}]: neither a memfa recovery code nor an 8-digit scratch code`, { param: `recoveryCodes[${i}]` });
        return canonical;
      });
      recoveryCodes = [...new Set(recoveryCodes)];
    }
    // The phone rules are loaded only when a number is imported (see phone-rules.ts).
    const rules = params.phone === undefined || params.phone === '' ? undefined : await phoneRules();
    const phone = rules === undefined ? undefined : quietly('phone', "not an E.164 number that can receive SMS ('+', the country code, the number)", () => rules.normalisePhone(params.phone));
    const altEmail =
      params.altEmail === undefined || params.altEmail === ''
        ? undefined
        : quietly('altEmail', 'not a valid address, or the mailbox itself', () => normaliseAltEmail(params.altEmail, address));
    return { address, key, recoveryCodes, phone, altEmail };
  }

  /** The record after the import, or CONFLICT if it would replace an active secret unasked. */
  private next(current: MailboxRecord | undefined, prep: Prepared, replace: boolean, now: number): { record: MailboxRecord; stored: boolean; replaced: boolean } {
    const replaced = current?.totp != null;
    if (replaced && !replace) {
      throw new MemfaError('CONFLICT', `${prep.address} already has an active TOTP secret; nothing was imported`, {
        data: { reason: 'secret-exists' },
        hint: 'give --replace to overwrite it (the user\'s current app entry stops working)',
      });
    }
    const rec = current ?? newMailbox(prep.address, now);
    const record: MailboxRecord = {
      ...rec,
      totp: { sealedSecret: this.p.secrets.seal(prep.key, secretAad(TOTP_PURPOSE, prep.address)), activatedAt: now, lastAcceptedStep: null },
      pendingTotp: null,
      recoveryCodeHashes: prep.recoveryCodes === undefined ? rec.recoveryCodeHashes : this.p.recovery.hashAll(prep.recoveryCodes),
      phone: prep.phone ?? rec.phone,
      altEmail: prep.altEmail ?? rec.altEmail,
      updatedAt: now,
    };
    return { record, stored: current !== undefined, replaced };
  }

  async import(params: ImportParams, ctx: CallContext): Promise<ImportResult> {
    const prep = await this.prepare(params);
    assertMailbox(ctx, prep.address);
    const now = this.p.clock();
    const replace = params.replace === true;
    const result = (o: { stored: boolean; replaced: boolean }, dryRun: boolean): ImportResult => ({
      address: prep.address,
      dryRun,
      created: !o.stored,
      replaced: o.replaced,
      recoveryCodes: prep.recoveryCodes?.length ?? null,
    });
    if (params.dryRun === true) return result(this.next(await this.p.state.getMailbox(prep.address), prep, replace, now), true);
    const outcome = await this.p.state.updateMailbox(prep.address, (current) => {
      const n = this.next(current, prep, replace, now);
      return { next: n.record, result: n };
    });
    await this.p.audit.append({
      actor: ctx.actor,
      socket: ctx.socket,
      mailbox: prep.address,
      action: 'mailbox.import',
      result: 'ok',
      // Not 'recoveryCodes': the audit log drops every key that names a code (audit/redact.ts).
      details: { replaced: outcome.replaced, created: !outcome.stored, recoveryCount: prep.recoveryCodes?.length ?? null, phone: prep.phone !== undefined, altEmail: prep.altEmail !== undefined },
    });
    return result(outcome, false);
  }
}
