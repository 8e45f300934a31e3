// The shapes of verify's answers (services/verify.ts) that do not depend on its state: the grace
// allow, the locked deny, the reason an error answer is audited and counted with.
import type { GraceState } from '../core/grace.js';
import type { RememberedIp } from '../core/model.js';
import { MemfaError } from '../protocol/errors.js';
import type { VerifyResult } from '../protocol/results.js';

export type Answer = Omit<VerifyResult, 'user' | 'ip' | 'country'>;

/** allow 'enrolment-grace': in by the grace, with the secret to enrol and what is left of the grace. */
export function graceAnswer(grace: Extract<GraceState, { active: true }>, offer: { otpauthUri: string; expiresAt: number }): Answer {
  const answer: Answer = { result: 'allow', reason: 'enrolment-grace', provider: 'totp', ...offer };
  if (grace.loginsLeft !== null) answer.graceLoginsLeft = grace.loginsLeft;
  if (grace.until !== null) answer.graceUntil = grace.until;
  return answer;
}

/** The record's own copy of `ip` when it remembers that address, else `ip` itself. */
export function rememberedCopy(ips: readonly RememberedIp[], ip: string): string {
  // Indexed: for-of allocates an iterator where V8 does not inline this.
  for (let i = 0; i < ips.length; i++) if (ips[i]!.ip === ip) return ips[i]!.ip;
  return ip;
}

/** The audit reason of an error answer, where it has a name of its own. */
const ERROR_REASONS: Partial<Record<MemfaError['code'], string>> = { DELIVERY_FAILED: 'delivery-failed', RATE_LIMITED: 'rate-limited', PROVIDER_UNUSABLE: 'provider-unusable' };

/** The reason of an error answer, as the audit trail and the metrics give it: e.g. 'delivery-failed', 'store-failed'. */
export function errorReason(err: unknown): string {
  return err instanceof MemfaError ? ERROR_REASONS[err.code] ?? err.code.toLowerCase().replaceAll('_', '-') : 'internal';
}

/** deny 'locked', with when to retry where the lock ends. */
export function lockedAnswer(provider: VerifyResult['provider'], until: number | null, now: number): Answer {
  const answer: Answer = { result: 'deny', reason: 'locked', provider };
  if (until !== null) answer.retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
  return answer;
}
