// One-time codes delivered by SMS or email: issue (or re-send) on a challenge; verify and the
// proof of a factor check them by their keyed hash (FactorStore tryOpenCode).
//
// Nothing is kept in this service's memory, so that several daemons act as one: a send is
// claimed within the limits and the open code stored in ONE operation of the state ports
// (CodeStore claimAndOpen), before it is sent, its hash to check it by and the code itself sealed
// by the key ring, so that a repeated challenge on any daemon sends the same code again (a slow
// SMS does not make the user's code stale). A send slot is claimed once per cooldown whichever
// daemon asks: two challenges at once cannot send two different codes, and the one refused
// answers with the code the other stored.
import type { MemfaConfig } from '../config/types.js';
import { generateNumericCode } from '../core/codes.js';
import type { MailboxRecord, OpenCode } from '../core/model.js';
import { destinationOf, problemText } from '../core/provider-choice.js';
import { maskRecipient } from '../core/mask.js';
import type { Sender } from '../delivery/types.js';
import { MemfaError } from '../protocol/errors.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import { secretAad } from '../core/secret-binding.js';
import type { KeyedHashes, Log, Random, SecretBox } from './ports.js';
import type { CodeStore, LoginReads } from './store-ports.js';
import { providerUnusable, type UnusableCandidate } from './unusable.js';

export type { CodeProvider };
export const CODE_PURPOSE = 'otp-code';

/** What one-time codes need: the mailbox, the open code and the send limits, senders, sealing. */
export interface CodePorts {
  state: LoginReads & CodeStore;
  config: MemfaConfig;
  clock: () => number;
  random: Pick<Random, 'int'>;
  secrets: Pick<SecretBox, 'seal' | 'open'>;
  /** Hashes of purpose CODE_PURPOSE: the key never reaches the service. */
  hashes: Pick<KeyedHashes, 'hash'>;
  log: Pick<Log, 'warn'>;
  /** Configured code senders; a provider without one cannot deliver. */
  senders: Partial<Record<CodeProvider, Sender>>;
}

export interface IssuedCode {
  provider: CodeProvider;
  destination: string; // masked
  expiresAt: number;
  /** A message went out in this call. */
  sent: boolean;
  /** The code open before this call was sent again (the same code, the same expiry). */
  resent: boolean;
  /** Not sent (an open code answers instead): seconds until another send is allowed. */
  retryAfter?: number;
}

/** A send claim the limits refused: the wait, which limit, and whose (CodeStore claimSend). */
type Refusal = { retryAfterMs: number; limit: 'cooldown' | 'hourly'; key: string };

const mailboxKey = (address: string) => `m:${address}`;
const destinationKey = (to: string) => `d:${to}`;

export class OneTimeCodes {
  constructor(
    private readonly p: CodePorts,
    private readonly isEnabled: (provider: CodeProvider) => boolean | Promise<boolean>,
  ) {}

  /** The keyed hash a sent code is stored and checked by. */
  hash(code: string): string {
    return this.p.hashes.hash(CODE_PURPOSE, code);
  }

  private aad(address: string): string {
    return secretAad(CODE_PURPOSE, address);
  }

  /** The code of an open code, if it was sealed (an older store's was not) and still opens. */
  private sealedCodeOf(address: string, open: OpenCode): string | null {
    if (open.sealedCode === undefined) return null;
    try {
      return this.p.secrets.open(open.sealedCode, this.aad(address)).toString('utf8');
    } catch {
      // Sealed under a key retired since: a new code is sent instead.
      return null;
    }
  }

  private rateLimited(r: Refusal): MemfaError {
    const { cooldownSeconds, hourlyLimit } = this.p.config.codes;
    const wait = Math.ceil(r.retryAfterMs / 1000);
    const whom = r.key.startsWith('m:') ? 'this mailbox' : 'its destination';
    const message =
      r.limit === 'hourly'
        ? `the hourly limit of ${hourlyLimit} codes to ${whom} was reached (codes.hourlyLimit); the next code can be sent in ${wait} s`
        : `a code was sent to ${whom} less than ${cooldownSeconds} s ago (codes.cooldownSeconds); the next can be sent in ${wait} s`;
    return new MemfaError('RATE_LIMITED', message, { data: { retryAfter: wait, reason: 'rate-limited', limit: r.limit } });
  }

  /**
   * The open code that a challenge through `providers` may answer with instead of sending: still
   * valid, sent by one of them, to the destination the mailbox has now for it. Not sent again.
   */
  heldCode(rec: MailboxRecord | undefined, providers: readonly CodeProvider[], now: number): IssuedCode | null {
    const open = rec?.openCode ?? null;
    if (rec === undefined || open === null || open.expiresAt <= now) return null;
    const provider = open.provider as CodeProvider;
    if (!providers.includes(provider) || destinationOf(rec, provider) !== open.destination) return null;
    return { provider, destination: maskRecipient(provider, open.destination), expiresAt: open.expiresAt, sent: false, resent: false };
  }

  /** A new code for `provider` and `to`, as it is stored before it is sent. */
  private newCode(address: string, provider: CodeProvider, to: string, now: number): { open: OpenCode; code: string } {
    const code = generateNumericCode((min, max) => this.p.random.int(min, max), this.p.config.codes.digits);
    const open: OpenCode = {
      hash: this.hash(code),
      sealedCode: this.p.secrets.seal(Buffer.from(code, 'utf8'), this.aad(address)),
      provider,
      destination: to,
      createdAt: now,
      expiresAt: now + this.p.config.codes.ttlSeconds * 1000,
      failedTries: 0,
      sends: 1,
      lastSentAt: now,
    };
    return { open, code };
  }

  private async mailbox(address: string): Promise<MailboxRecord | undefined> {
    return (await this.p.state.loginView(address)).mailbox;
  }

  /**
   * Sends a code through `providers` in order (the mailbox's provider, then its fallback). A send
   * is claimed within the limits first, and a new code stored as the open one before it goes out
   * (a send that fails gives both back); while the limits forbid a send, an open code still valid
   * answers instead (sent: false). Throws RATE_LIMITED (limits reached, no code open),
   * PROVIDER_UNUSABLE (no provider could even be tried: disabled, no gateway or no destination)
   * or DELIVERY_FAILED; on failure no code is left open.
   */
  async challenge(address: string, providers: CodeProvider[], login: { ip: string; country: string | null }): Promise<IssuedCode> {
    const failures: string[] = [];
    const skipped: UnusableCandidate[] = [];
    const rec = await this.mailbox(address);
    const before = rec?.openCode ?? null;
    const limits = { cooldownMs: this.p.config.codes.cooldownSeconds * 1000, hourlyLimit: this.p.config.codes.hourlyLimit };
    for (const provider of providers) {
      const now = this.p.clock();
      const to = rec === undefined ? null : destinationOf(rec, provider);
      const sender = this.p.senders[provider];
      if (!(await this.isEnabled(provider))) {
        skipped.push({ provider, problem: 'disabled' });
        continue;
      }
      if (sender === undefined) {
        skipped.push({ provider, problem: 'no-gateway' });
        continue;
      }
      if (rec === undefined || to === null) {
        skipped.push({ provider, problem: 'no-destination' });
        continue;
      }
      const keys = [mailboxKey(address), destinationKey(to)];
      const fresh = this.newCode(address, provider, to, now);
      const claimed = await this.p.state.claimAndOpen(address, keys, now, limits, fresh.open);
      if (claimed.outcome === 'missing') {
        // Removed meanwhile: nothing to send a code to.
        skipped.push({ provider, problem: 'no-destination' });
        continue;
      }
      if (claimed.outcome === 'refused') {
        // Whoever holds the slot (another challenge, perhaps on another daemon) stored its code
        // in the same operation as its claim: that code answers this challenge too.
        const held = this.heldCode({ ...rec, openCode: claimed.open }, providers, now);
        if (held !== null) return { ...held, retryAfter: Math.ceil(claimed.retryAfterMs / 1000) };
        throw this.rateLimited(claimed);
      }
      // The open code is sent again while it is valid for this provider and destination, if its
      // code can be opened; otherwise a new one replaces it (the claim is this challenge's).
      const again = claimed.outcome === 'kept' ? this.sealedCodeOf(address, claimed.open) : null;
      const { open, code } = again !== null ? { open: claimed.open, code: again } : fresh;
      if (claimed.outcome === 'kept' && again === null && (await this.p.state.openCode(address, open)) === 'missing') {
        await this.p.state.releaseSend(keys, now);
        skipped.push({ provider, problem: 'no-destination' });
        continue;
      }
      const resend = again !== null;
      try {
        await sender.send({ kind: 'code', to, code, mailbox: address, ip: login.ip, country: login.country, expiresAt: open.expiresAt });
      } catch (err) {
        const e = err instanceof MemfaError ? err : new MemfaError('DELIVERY_FAILED', (err as Error).message);
        this.p.log.warn('delivery-failed', { mailbox: address, provider, to: maskRecipient(provider, to), error: e.message });
        failures.push(`${provider}: ${e.message}`);
        // A failed send uses up no budget, and leaves no code open that nobody received.
        await this.p.state.releaseSend(keys, now);
        if (!resend) await this.p.state.closeCode(address, open.hash);
        continue;
      }
      if (resend) await this.p.state.codeResent(address, open.hash, this.p.clock());
      return { provider, destination: maskRecipient(provider, to), expiresAt: open.expiresAt, sent: true, resent: resend };
    }
    // Nothing reached the user: make sure no code stays open that they never received.
    if (before !== null) await this.p.state.closeCode(address, before.hash);
    // Not one provider could be tried: a configuration error, which retrying does not mend.
    if (failures.length === 0) throw providerUnusable(address, skipped);
    const unusable = skipped.map((c) => `${c.provider} ${problemText(c)}`);
    throw new MemfaError('DELIVERY_FAILED', `the code could not be delivered: ${[...failures, ...unusable].join('; ')}`, { data: { reason: 'delivery-failed' }, hint: 'memfa provider test sms|email checks the gateway' });
  }
}
