// One-time codes delivered by SMS or email: issue (or re-send) on a challenge, check on verify.
//
// The store keeps only a keyed hash of a code. To re-send the same code while it is open (so a slow
// SMS does not make the user's code stale) the daemon keeps the plain code in memory only, until it
// expires or is used; after a restart a re-challenge issues a new code instead.
import { generateNumericCode } from '../core/codes.js';
import type { MailboxRecord, OpenCode } from '../core/model.js';
import { maskRecipient } from '../delivery/mask.js';
import { MemfaError } from '../protocol/errors.js';
import { keyedHash, verifyKeyedHash } from '../security/hash.js';
import type { Ports } from './ports.js';

export type CodeProvider = 'sms' | 'email';
export const CODE_PURPOSE = 'otp-code';

export interface IssuedCode {
  provider: CodeProvider;
  destination: string; // masked
  expiresAt: number;
  resent: boolean;
}

export type CodeCheck = { ok: true } | { ok: false; reason: 'code-invalid' | 'code-expired' | 'no-open-code'; record: OpenCode | null };

interface Remembered {
  code: string;
  hash: string;
  expiresAt: number;
}

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

  destinationOf(rec: MailboxRecord, provider: CodeProvider): string | null {
    return provider === 'sms' ? rec.phone : rec.altEmail;
  }

  private hash(code: string): string {
    return keyedHash(this.p.secrets.macKey(CODE_PURPOSE), CODE_PURPOSE, code);
  }

  /** Seconds until another send to (mailbox, destination) is allowed, or 0. */
  private retryAfter(keys: string[], now: number): number {
    const { cooldownSeconds, hourlyLimit } = this.p.config.codes;
    let wait = 0;
    for (const key of keys) {
      const times = (this.sends.get(key) ?? []).filter((t) => now - t < 3_600_000);
      if (times.length === 0) this.sends.delete(key);
      else this.sends.set(key, times);
      const last = times[times.length - 1];
      if (last !== undefined && now - last < cooldownSeconds * 1000) wait = Math.max(wait, Math.ceil((last + cooldownSeconds * 1000 - now) / 1000));
      if (times.length >= hourlyLimit) wait = Math.max(wait, Math.ceil((times[0]! + 3_600_000 - now) / 1000));
    }
    return wait;
  }

  /**
   * Sends a code through `providers` in order (the mailbox's provider, then its fallback) and
   * records the open code once a send succeeded. Throws RATE_LIMITED or DELIVERY_FAILED; on failure
   * no code is left open.
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
    for (const provider of providers) {
      const now = this.p.clock();
      const rec = this.p.store.getMailbox(address);
      const to = rec === undefined ? null : this.destinationOf(rec, provider);
      const sender = this.p.senders[provider];
      if (rec === undefined || to === null) {
        failures.push(`${provider}: the mailbox has no ${provider === 'sms' ? 'phone number' : 'alternate address'}`);
        continue;
      }
      if (sender === undefined || !this.isEnabled(provider)) {
        failures.push(`${provider}: the provider is not enabled or has no gateway configured`);
        continue;
      }
      const open = rec.openCode;
      const remembered = this.plain.get(address);
      const reusable = open !== null && open.provider === provider && open.destination === to && open.expiresAt > now && remembered !== undefined && remembered.hash === open.hash;
      const wait = this.retryAfter([`m:${address}`, `d:${to}`], now);
      if (wait > 0) {
        throw new MemfaError('RATE_LIMITED', `a code was sent to this mailbox too recently; retry in ${wait} s`, { data: { retryAfter: wait, reason: 'rate-limited' } });
      }
      const code = reusable ? remembered.code : generateNumericCode((min, max) => this.p.random.int(min, max), this.p.config.codes.digits);
      const expiresAt = reusable ? open.expiresAt : now + this.p.config.codes.ttlSeconds * 1000;
      const hash = reusable ? open.hash : this.hash(code);
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
        const openCode: OpenCode = reusable
          ? { ...open, sends: open.sends + 1, lastSentAt: sentAt }
          : { hash, provider, destination: to, createdAt: now, expiresAt, failedTries: 0, sends: 1, lastSentAt: sentAt };
        // Any other open code is replaced: only the latest code sent is valid.
        tx.putMailbox({ ...current, openCode, updatedAt: sentAt });
      });
      this.plain.set(address, { code, hash, expiresAt });
      this.sweep(now);
      return { provider, destination: maskRecipient(provider, to), expiresAt, resent: reusable };
    }
    // Nothing reached the user: make sure no code stays open that they never received.
    const stale = this.p.store.getMailbox(address)?.openCode;
    if (stale) await this.p.store.transact((tx) => {
      const current = tx.getMailbox(address);
      if (current?.openCode) tx.putMailbox({ ...current, openCode: null });
    });
    this.plain.delete(address);
    throw new MemfaError('DELIVERY_FAILED', `the code could not be delivered: ${failures.join('; ')}`, { data: { reason: 'delivery-failed' }, hint: 'memfa provider test sms|email checks the gateway' });
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
    for (const [k, times] of this.sends) if (now - times[times.length - 1]! >= 3_600_000) this.sends.delete(k);
  }
}
