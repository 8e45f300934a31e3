// One-time codes delivered by SMS or email: issue (or re-send) on a challenge, check on verify.
//
// The store keeps only a keyed hash of a code. To re-send the same code while it is open (so a slow
// SMS does not make the user's code stale) the daemon keeps the plain code in memory only, until it
// expires or is used; after a restart a re-challenge issues a new code instead.
import { generateNumericCode } from '../core/codes.js';
import type { MailboxRecord, OpenCode } from '../core/model.js';
import { destinationOf, problemText } from '../core/provider-choice.js';
import { maskRecipient } from '../delivery/mask.js';
import { MemfaError } from '../protocol/errors.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import { keyedHash, verifyKeyedHash } from '../security/hash.js';
import type { Ports } from './ports.js';
import { providerUnusable, type UnusableCandidate } from './unusable.js';

export type { CodeProvider };
export const CODE_PURPOSE = 'otp-code';

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

export type CodeCheck = { ok: true } | { ok: false; reason: 'code-invalid' | 'code-expired' | 'no-open-code'; record: OpenCode | null };

interface Remembered {
  code: string;
  hash: string;
  expiresAt: number;
}

/** What stops a send now: the cooldown after the last one, or the hourly cap. */
interface SendLimit {
  wait: number;
  limit: 'cooldown' | 'hourly';
  scope: 'mailbox' | 'destination';
}

/**
 * What a challenge does through one provider, decided in one place: send (a new code, or the open
 * one again), answer with the open code without sending (`hold`: the limits forbid a send, but
 * the code the user has is still valid), or refuse (the limits forbid a send and no code is open).
 */
type SendPlan = { kind: 'send'; again: { open: OpenCode; code: string } | null } | { kind: 'hold'; issued: IssuedCode } | { kind: 'refuse'; error: MemfaError };

const HOUR_MS = 3_600_000;

export class OneTimeCodes {
  private readonly plain = new Map<string, Remembered>();
  /** Send times per mailbox and per destination, for the cooldown and the hourly cap. */
  private readonly sends = new Map<string, number[]>();
  /** Serialises challenges per mailbox so two at once cannot send two different codes. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly p: Ports,
    private readonly isEnabled: (provider: CodeProvider) => boolean,
  ) {}

  private hash(code: string): string {
    return keyedHash(this.p.secrets.macKey(CODE_PURPOSE), CODE_PURPOSE, code);
  }

  /** The limit that forbids a send to (mailbox, destination) now, with the longest wait, or null. */
  private sendLimit(address: string, to: string, now: number): SendLimit | null {
    const { cooldownSeconds, hourlyLimit } = this.p.config.codes;
    let found: SendLimit | null = null;
    const consider = (wait: number, limit: SendLimit['limit'], scope: SendLimit['scope']) => {
      if (wait > 0 && (found === null || wait > found.wait)) found = { wait, limit, scope };
    };
    for (const [key, scope] of [[`m:${address}`, 'mailbox'], [`d:${to}`, 'destination']] as const) {
      const times = (this.sends.get(key) ?? []).filter((t) => now - t < HOUR_MS);
      if (times.length === 0) this.sends.delete(key);
      else this.sends.set(key, times);
      const last = times[times.length - 1];
      if (last !== undefined && now - last < cooldownSeconds * 1000) consider(Math.ceil((last + cooldownSeconds * 1000 - now) / 1000), 'cooldown', scope);
      if (times.length >= hourlyLimit) consider(Math.ceil((times[0]! + HOUR_MS - now) / 1000), 'hourly', scope);
    }
    return found;
  }

  private rateLimited(l: SendLimit): MemfaError {
    const { cooldownSeconds, hourlyLimit } = this.p.config.codes;
    const whom = l.scope === 'mailbox' ? 'this mailbox' : 'its destination';
    const message =
      l.limit === 'hourly'
        ? `the hourly limit of ${hourlyLimit} codes to ${whom} was reached (codes.hourlyLimit); the next code can be sent in ${l.wait} s`
        : `a code was sent to ${whom} less than ${cooldownSeconds} s ago (codes.cooldownSeconds); the next can be sent in ${l.wait} s`;
    return new MemfaError('RATE_LIMITED', message, { data: { retryAfter: l.wait, reason: 'rate-limited', limit: l.limit } });
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

  /** The send decision (see SendPlan); every challenge, of verify and of self.code.send, takes it here. */
  private plan(rec: MailboxRecord, provider: CodeProvider, to: string, held: IssuedCode | null, now: number): SendPlan {
    const limit = this.sendLimit(rec.address, to, now);
    if (limit !== null) return held !== null ? { kind: 'hold', issued: { ...held, retryAfter: limit.wait } } : { kind: 'refuse', error: this.rateLimited(limit) };
    // The open code is sent again while it is valid and its plain text is still in memory.
    const open = rec.openCode;
    const remembered = this.plain.get(rec.address);
    const again = open !== null && open.provider === provider && open.destination === to && open.expiresAt > now && remembered !== undefined && remembered.hash === open.hash;
    return { kind: 'send', again: again ? { open, code: remembered.code } : null };
  }

  /**
   * Sends a code through `providers` in order (the mailbox's provider, then its fallback) and
   * records the open code once a send succeeded; while the send limits forbid a send, an open
   * code still valid answers instead (sent: false). Throws RATE_LIMITED (limits reached, no code
   * open), PROVIDER_UNUSABLE (no provider could even be tried: disabled, no gateway or no
   * destination) or DELIVERY_FAILED; on failure no code is left open.
   */
  challenge(address: string, providers: CodeProvider[], login: { ip: string; country: string | null }): Promise<IssuedCode> {
    const previous = this.busy.get(address) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.challengeNow(address, providers, login));
    this.busy.set(address, run);
    void run.finally(() => {
      if (this.busy.get(address) === run) this.busy.delete(address);
    }).catch(() => undefined);
    return run;
  }

  private async challengeNow(address: string, providers: CodeProvider[], login: { ip: string; country: string | null }): Promise<IssuedCode> {
    const failures: string[] = [];
    const skipped: UnusableCandidate[] = [];
    const held = this.heldCode(this.p.store.getMailbox(address), providers, this.p.clock());
    for (const provider of providers) {
      const now = this.p.clock();
      const rec = this.p.store.getMailbox(address);
      const to = rec === undefined ? null : destinationOf(rec, provider);
      const sender = this.p.senders[provider];
      if (!this.isEnabled(provider)) {
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
      const plan = this.plan(rec, provider, to, held, now);
      if (plan.kind === 'hold') return plan.issued;
      if (plan.kind === 'refuse') throw plan.error;
      const again = plan.again;
      const code = again !== null ? again.code : generateNumericCode((min, max) => this.p.random.int(min, max), this.p.config.codes.digits);
      const expiresAt = again !== null ? again.open.expiresAt : now + this.p.config.codes.ttlSeconds * 1000;
      const hash = again !== null ? again.open.hash : this.hash(code);
      try {
        await sender.send({ kind: 'code', to, code, mailbox: address, ip: login.ip, country: login.country, expiresAt });
      } catch (err) {
        const e = err instanceof MemfaError ? err : new MemfaError('DELIVERY_FAILED', (err as Error).message);
        this.p.log.warn('delivery-failed', { mailbox: address, provider, to: maskRecipient(provider, to), error: e.message });
        failures.push(`${provider}: ${e.message}`);
        continue;
      }
      for (const key of [`m:${address}`, `d:${to}`]) this.sends.set(key, [...(this.sends.get(key) ?? []), now]);
      const sentAt = this.p.clock();
      await this.p.store.transact((tx) => {
        const current = tx.getMailbox(address);
        if (current === undefined) return;
        const openCode: OpenCode = again !== null
          ? { ...again.open, sends: again.open.sends + 1, lastSentAt: sentAt }
          : { hash, provider, destination: to, createdAt: now, expiresAt, failedTries: 0, sends: 1, lastSentAt: sentAt };
        // Any other open code is replaced: only the latest code sent is valid.
        tx.putMailbox({ ...current, openCode, updatedAt: sentAt });
      });
      this.plain.set(address, { code, hash, expiresAt });
      this.sweep(now);
      return { provider, destination: maskRecipient(provider, to), expiresAt, sent: true, resent: again !== null };
    }
    // Nothing reached the user: make sure no code stays open that they never received.
    const stale = this.p.store.getMailbox(address)?.openCode;
    if (stale) await this.p.store.transact((tx) => {
      const current = tx.getMailbox(address);
      if (current?.openCode) tx.putMailbox({ ...current, openCode: null });
    });
    this.plain.delete(address);
    // Not one provider could be tried: a configuration error, which retrying does not mend.
    if (failures.length === 0) throw providerUnusable(address, skipped);
    const unusable = skipped.map((c) => `${c.provider} ${problemText(c)}`);
    throw new MemfaError('DELIVERY_FAILED', `the code could not be delivered: ${[...failures, ...unusable].join('; ')}`, { data: { reason: 'delivery-failed' }, hint: 'memfa provider test sms|email checks the gateway' });
  }

  /**
   * Inside a transaction: checks `code` against the open code. A wrong code counts one try; after
   * maxTries the code is void. Returns the open code to store (null when used, expired or void).
   */
  check(rec: MailboxRecord, code: string, now: number): { result: CodeCheck; openCode: OpenCode | null } {
    const open = rec.openCode;
    if (open === null) return { result: { ok: false, reason: 'no-open-code', record: null }, openCode: null };
    if (open.expiresAt <= now) {
      this.plain.delete(rec.address);
      return { result: { ok: false, reason: 'code-expired', record: null }, openCode: null };
    }
    if (verifyKeyedHash(this.p.secrets.macKey(CODE_PURPOSE), CODE_PURPOSE, code, open.hash)) {
      this.plain.delete(rec.address);
      return { result: { ok: true }, openCode: null };
    }
    const tries = open.failedTries + 1;
    if (tries >= this.p.config.codes.maxTries) {
      this.plain.delete(rec.address);
      return { result: { ok: false, reason: 'code-invalid', record: null }, openCode: null };
    }
    const next = { ...open, failedTries: tries };
    return { result: { ok: false, reason: 'code-invalid', record: next }, openCode: next };
  }

  forget(address: string): void {
    this.plain.delete(address);
  }

  /** Drops what can no longer matter: expired codes, and send times older than an hour. */
  private sweep(now: number): void {
    for (const [k, v] of this.plain) if (v.expiresAt <= now) this.plain.delete(k);
    for (const [k, times] of this.sends) if (now - times[times.length - 1]! >= HOUR_MS) this.sends.delete(k);
  }
}
