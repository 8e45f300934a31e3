// What the file store keeps in memory only, bounded, and a restart forgets (as the services' maps
// did before the state ports): the per-source throttle of code checks, the failures of mailboxes
// without a record, the send limits of one-time codes and the failure windows of login.check's
// throttle. It is the store's memory, not a service's: the services hold no state of their own,
// so another backend can keep these where several daemons see them. Each operation runs to its
// end without awaiting, so each check-then-act is atomic in the one daemon; the rules are the
// pure core's (core/lockout.ts).
import {
  clearIpSource,
  ipBlockStarted,
  ipSourceBlock,
  ipSourceFailures,
  ipSourceIdle,
  lockState,
  recordFailure,
  recordIpFailure,
  reserveIpAttempt,
  settleIpAttempt,
  sourceBlockStarted,
  unstoredFailureExpired,
  type AttemptOutcome,
  type IpSourceBlock,
  type IpSourceState,
  type IpThrottlePolicy,
  type IpThrottleRecord,
  type IpThrottleState,
  type LockoutPolicy,
} from '../core/lockout.js';
import { emptyFailures, type FailureState } from '../core/model.js';
import type { CensusReads, CodeStore, Locked, SourceStore, UnstoredFailureStore, WindowCounterStore } from '../services/store-ports.js';
import { Recent } from './recent.js';

/** Bounds of what is kept in memory only. */
export const MAX_SOURCES = 100_000;
export const MAX_UNSTORED_FAILURES = 10_000;
export const MAX_SEND_KEYS = 100_000;
export const MAX_WINDOW_KEYS = 100_000;

const HOUR_MS = 3_600_000;

export class MemoryLimits implements UnstoredFailureStore, SourceStore, WindowCounterStore, Pick<CodeStore, 'claimSend' | 'releaseSend'>, CensusReads {
  private readonly sources = new Recent<string, IpSourceState>(MAX_SOURCES);
  private readonly unstored: Recent<string, FailureState>;
  /** Send times within the last hour, per key (a mailbox, a destination), oldest first. */
  private readonly sends = new Recent<string, number[]>(MAX_SEND_KEYS);
  private readonly windows = new Map<string, Recent<string, IpThrottleRecord>>();

  /** `bounds`: smaller bounds than the defaults above, for tests of what a bound drops. */
  constructor(bounds: { unstoredFailures?: number } = {}) {
    this.unstored = new Recent(bounds.unstoredFailures ?? MAX_UNSTORED_FAILURES);
  }

  unstoredFailureStates(): IterableIterator<FailureState> {
    return this.unstored.values();
  }

  sourceStates(): IterableIterator<IpSourceState> {
    return this.sources.values();
  }

  /** How many mailboxes without a record have failures kept now (at most MAX_UNSTORED_FAILURES). */
  get unstoredTracked(): number {
    return this.unstored.size;
  }

  // -------------------------------------------------------------------------------------------
  // Mailboxes without a record

  unstoredFailures(address: string, now: number, policy: LockoutPolicy): Promise<FailureState | undefined> {
    const f = this.unstored.get(address);
    if (f !== undefined && unstoredFailureExpired(f, now, policy)) this.unstored.delete(address);
    return Promise.resolve(f === undefined || unstoredFailureExpired(f, now, policy) ? undefined : f);
  }

  recordUnstoredFailure(address: string, now: number, policy: LockoutPolicy): Promise<{ outcome: 'counted'; state: FailureState } | Locked> {
    let current = this.unstored.get(address);
    if (current !== undefined && unstoredFailureExpired(current, now, policy)) current = undefined;
    const lock = current === undefined ? null : lockState(current, now);
    if (lock !== null && lock.locked) return Promise.resolve({ outcome: 'locked' as const, until: lock.until });
    const next = recordFailure(current ?? emptyFailures(), now, policy);
    this.unstored.touch(address, next);
    // An entry's expiry follows its last failure and its lock: the old end expires first.
    this.unstored.sweep((f) => unstoredFailureExpired(f, now, policy));
    return Promise.resolve({ outcome: 'counted' as const, state: next });
  }

  clearUnstoredFailures(address: string): Promise<FailureState | undefined> {
    return Promise.resolve(this.unstored.delete(address));
  }

  // -------------------------------------------------------------------------------------------
  // Send limits of one-time codes

  claimSend(keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }) {
    return Promise.resolve(this.claimSendNow(keys, now, limits));
  }

  /** claimSend at once: for a transaction of the store that claims and opens a code together. */
  protected claimSendNow(keys: readonly string[], now: number, limits: { cooldownMs: number; hourlyLimit: number }): { ok: true } | { ok: false; retryAfterMs: number; limit: 'cooldown' | 'hourly'; key: string } {
    let wait = 0;
    let limit: 'cooldown' | 'hourly' = 'cooldown';
    let by = '';
    for (const key of keys) {
      const times = (this.sends.get(key) ?? []).filter((t) => now - t < HOUR_MS);
      const last = times[times.length - 1];
      if (last !== undefined && now - last < limits.cooldownMs && last + limits.cooldownMs - now > wait) {
        wait = last + limits.cooldownMs - now;
        limit = 'cooldown';
        by = key;
      }
      if (times.length >= limits.hourlyLimit && times[0]! + HOUR_MS - now > wait) {
        wait = times[0]! + HOUR_MS - now;
        limit = 'hourly';
        by = key;
      }
    }
    if (wait > 0) return { ok: false, retryAfterMs: wait, limit, key: by };
    for (const key of keys) this.sends.touch(key, [...(this.sends.get(key) ?? []).filter((t) => now - t < HOUR_MS), now]);
    this.sends.sweep((times) => now - times[times.length - 1]! >= HOUR_MS);
    return { ok: true };
  }

  releaseSend(keys: readonly string[], claimedAt: number): Promise<void> {
    for (const key of keys) {
      const times = this.sends.get(key);
      if (times === undefined) continue;
      const i = times.lastIndexOf(claimedAt);
      if (i === -1) continue;
      const rest = times.filter((_, j) => j !== i);
      if (rest.length === 0) this.sends.delete(key);
      else this.sends.replace(key, rest);
    }
    return Promise.resolve();
  }

  // -------------------------------------------------------------------------------------------
  // Throttles

  reserveAttempt(source: string, mailbox: string, creates: boolean, now: number, policy: IpThrottlePolicy) {
    const r = reserveIpAttempt(this.sources.get(source), mailbox, creates, now, policy);
    if (!r.granted) return Promise.resolve({ granted: false as const, until: r.until, reason: r.reason });
    this.sources.touch(source, r.state);
    return Promise.resolve({ granted: true as const });
  }

  settleAttempt(source: string, mailbox: string, creates: boolean, outcome: AttemptOutcome, now: number, policy: IpThrottlePolicy): Promise<IpSourceBlock | null> {
    const before = this.sources.get(source);
    const next = settleIpAttempt(before, mailbox, creates, outcome, now, policy);
    const started = sourceBlockStarted(before, next, now, policy);
    if (next === null) this.sources.delete(source);
    else this.sources.touch(source, next);
    // Sources whose window and block are over go, so that the map shrinks back after a flood.
    this.sources.sweep((state) => ipSourceIdle(state, now, policy));
    return Promise.resolve(started);
  }

  listSources(): Promise<{ source: string; state: IpSourceState }[]> {
    return Promise.resolve([...this.sources].map(([source, state]) => ({ source, state })));
  }

  clearSource(source: string, now: number, policy: IpThrottlePolicy): Promise<IpSourceState | null> {
    const state = this.sources.get(source);
    if (state === undefined || (ipSourceBlock(state, now, policy) === null && ipSourceFailures(state, now, policy) === 0)) return Promise.resolve(null);
    const next = clearIpSource(state, now);
    if (next === null) this.sources.delete(source);
    else this.sources.replace(source, next);
    return Promise.resolve(state);
  }

  windowState(scope: string, key: string): Promise<IpThrottleRecord | undefined> {
    return Promise.resolve(this.windows.get(scope)?.get(key));
  }

  /** How many keys the windows of `scope` keep now (at most MAX_WINDOW_KEYS). */
  windowKeys(scope: string): number {
    return this.windows.get(scope)?.size ?? 0;
  }

  recordWindowFailure(scope: string, key: string, member: string, now: number, policy: IpThrottlePolicy): Promise<{ record: IpThrottleRecord; started: Extract<IpThrottleState, { locked: true }> | null }> {
    let entries = this.windows.get(scope);
    if (entries === undefined) this.windows.set(scope, (entries = new Recent(MAX_WINDOW_KEYS)));
    const before = entries.get(key);
    const next = recordIpFailure(before, member, now, policy);
    entries.touch(key, next);
    entries.sweep((rec) => now - rec.windowStart >= policy.windowMs && (rec.lockedUntil === null || now >= rec.lockedUntil));
    return Promise.resolve({ record: next, started: ipBlockStarted(before, next, now, policy) });
  }
}
