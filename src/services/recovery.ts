// Recovery codes: ten single-use codes a user keeps on paper, accepted by verify in place of any
// second factor. Stored only as keyed hashes; shown once when generated.
import { newMailbox } from '../core/model.js';
import { normaliseAddress } from '../core/validate.js';
import type { RecoveryCodesResult } from '../protocol/results.js';
import type { Notifier } from './notify.js';
import type { AuditSink, CallContext, KeyedHashes, Random } from './ports.js';
import { assertMailbox } from './scope.js';
import type { MailboxStore } from './store-ports.js';

/** What recovery codes need: the keyed hash's key, randomness, and where a new set is stored. */
export interface RecoveryPorts {
  state: Pick<MailboxStore, 'updateMailbox'>;
  /** Hashes of purpose RECOVERY_PURPOSE: the key never reaches the service. */
  hashes: KeyedHashes;
  random: Pick<Random, 'int'>;
  clock: () => number;
  audit: Pick<AuditSink, 'append'>;
}

export const RECOVERY_PURPOSE = 'recovery-code';
export const RECOVERY_CODE_COUNT = 10;
// Letters only, none that read like another (no i, l, o): a recovery code can never be mistaken
// for a numeric one-time code, and is easy to copy from paper. 10 of 23 letters: about 45 bits.
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz';
const LENGTH = 10;
const PATTERN = /^[a-z]{5}-?[a-z]{5}$/;

/** The canonical form of something that looks like a recovery code, or null. */
export function asRecoveryCode(input: string): string | null {
  const s = input.trim().toLowerCase().replace(/\s+/g, '');
  if (!PATTERN.test(s)) return null;
  const plain = s.replace('-', '');
  return [...plain].every((ch) => ALPHABET.includes(ch)) ? plain : null;
}

/**
 * The canonical form of an 8-digit scratch code (libpam-google-authenticator's emergency codes,
 * 10000000 to 99999999), or null. memfa import keeps them as recovery codes, so the codes users
 * already have on paper keep working; verify tries them before the digits are read as an OTP.
 */
export function asScratchCode(input: string): string | null {
  const s = input.trim();
  return /^[1-9][0-9]{7}$/.test(s) ? s : null;
}

export class RecoveryCodes {
  constructor(
    private readonly p: RecoveryPorts,
    private readonly notifier: Pick<Notifier, 'queueOf'>,
  ) {}

  private generateOne(): string {
    let s = '';
    for (let i = 0; i < LENGTH; i++) s += ALPHABET[this.p.random.int(0, ALPHABET.length)];
    return s;
  }

  /** A new set: the codes to show once, grouped for reading, and the hashes to store. */
  newSet(): { codes: string[]; hashes: string[] } {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => this.generateOne());
    return { codes: codes.map((c) => `${c.slice(0, 5)}-${c.slice(5)}`), hashes: this.hashAll(codes) };
  }

  async generate(params: { address: string }, ctx: CallContext): Promise<RecoveryCodesResult> {
    const address = normaliseAddress(params.address, 'address');
    assertMailbox(ctx, address);
    const { codes, hashes } = this.newSet();
    const now = this.p.clock();
    const notices = await this.notifier.queueOf(address, now);
    // A new set voids the old one; its owner hears of it, in the same write.
    await this.p.state.updateMailbox(address, (rec) => ({
      next: notices.queue({ ...(rec ?? newMailbox(address, now)), recoveryCodeHashes: hashes, updatedAt: now }, [{ kind: 'recovery-codes-generated' }]),
      result: undefined,
    }));
    await this.p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: address, action: 'recovery-codes.generate', result: 'ok', details: { count: codes.length } });
    return { address, codes };
  }

  /** The stored form of canonical codes (asRecoveryCode, asScratchCode). */
  hashAll(codes: readonly string[]): string[] {
    return codes.map((c) => this.p.hashes.hash(RECOVERY_PURPOSE, c));
  }

  /**
   * The keyed hash of a canonical code, as the state ports consume it (FactorStore
   * consumeRecoveryCode): the store compares hashes, and never sees the code.
   */
  hash(code: string): string {
    return this.p.hashes.hash(RECOVERY_PURPOSE, code);
  }

  /** Index of the stored hash `code` matches, or -1. Every hash is compared (no early exit). */
  match(hashes: readonly string[], code: string): number {
    return this.p.hashes.indexOf(RECOVERY_PURPOSE, code, hashes);
  }
}
