// What the daemon counts on its request paths for the metrics: plain numbers, updated with a few
// increments and no allocation. The Prometheus client library renders them at scrape time
// (metrics/registry.ts); its own counters and histograms would cost about 0.3-0.5 µs and a few
// objects per update (a label hash string, a label object), on every login.
import type { DecisionReason } from '../core/decide.js';
import { LOGIN_CHECK_REASONS } from '../core/protocol-login.js';
import type { LoginCheckOutcome, VerifyOutcome } from '../protocol/results.js';
import { APP_PROTOCOLS } from '../protocol/vocabulary.js';

export type VerifyAnswerKind = VerifyOutcome | 'error';

/**
 * The answers verify gives, by result: their series exist from the start (at 0), so that a rate
 * over them is defined before the first such login. An answer not listed here is counted all the
 * same, in a series made at its first occurrence.
 */
export const KNOWN_VERIFY_ANSWERS: Readonly<Record<VerifyAnswerKind, readonly DecisionReason[]>> = {
  allow: ['trusted-network', 'mode-never', 'known-ip', 'known-country', 'enrolment-grace', 'code-valid', 'recovery-code-used', 'enrolled'],
  deny: ['country-blocked', 'code-invalid', 'code-reused', 'code-expired', 'no-open-code', 'locked', 'provider-disabled'],
  challenge: ['always', 'new-ip', 'new-country', 'country-unknown'],
  enroll: ['enroll-required'],
  error: ['delivery-failed', 'rate-limited', 'provider-unusable'],
};

/**
 * Upper bounds of the latency buckets, in seconds: 0.1 ms to 10 s. A login answered from memory
 * takes well under a millisecond; one that sends a code waits for the gateway.
 */
export const VERIFY_LATENCY_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Series of answers at most; reasons beyond it (none exist today) are counted as "other". */
const MAX_ANSWER_SERIES = 256;

interface Answers {
  byReason: Map<string, { count: number }>;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

export interface AnswerCount {
  result: string;
  reason: string;
  count: number;
}

export interface LatencySeries {
  result: string;
  /** Cumulative counts, one per bound of VERIFY_LATENCY_BUCKETS. */
  cumulative: number[];
  sum: number;
  count: number;
}

/** Answers by result and reason, with their latency by result; the series of `known` exist from the start. */
export class AnswerTally {
  private readonly byResult = new Map<string, Answers>();
  private series = 0;

  constructor(known: Readonly<Record<string, readonly string[]>>) {
    for (const [result, reasons] of Object.entries(known)) for (const reason of reasons) this.slot(this.answers(result), reason);
  }

  private answers(result: string): Answers {
    let a = this.byResult.get(result);
    if (a === undefined) {
      a = { byReason: new Map(), buckets: new Float64Array(VERIFY_LATENCY_BUCKETS.length + 1), sum: 0, count: 0 };
      this.byResult.set(result, a);
    }
    return a;
  }

  private slot(a: Answers, reason: string): { count: number } {
    let s = a.byReason.get(reason);
    if (s === undefined) {
      const name = this.series < MAX_ANSWER_SERIES ? reason : 'other';
      s = a.byReason.get(name);
      if (s === undefined) {
        s = { count: 0 };
        a.byReason.set(name, s);
        this.series++;
      }
    }
    return s;
  }

  /** One answer, and how long it took in seconds. */
  answered(result: string, reason: string, seconds: number): void {
    const a = this.byResult.get(result) ?? this.answers(result);
    (a.byReason.get(reason) ?? this.slot(a, reason)).count++;
    let i = 0;
    while (i < VERIFY_LATENCY_BUCKETS.length && seconds > VERIFY_LATENCY_BUCKETS[i]!) i++;
    a.buckets[i]!++;
    a.sum += seconds;
    a.count++;
  }

  counts(): AnswerCount[] {
    const out: AnswerCount[] = [];
    for (const [result, a] of this.byResult) for (const [reason, s] of a.byReason) out.push({ result, reason, count: s.count });
    return out;
  }

  latency(): LatencySeries[] {
    const out: LatencySeries[] = [];
    for (const [result, a] of this.byResult) {
      let acc = 0;
      const cumulative = VERIFY_LATENCY_BUCKETS.map((_, i) => (acc += a.buckets[i]!));
      out.push({ result, cumulative, sum: a.sum, count: a.count });
    }
    return out;
  }
}

/** verify's answers. */
export class VerifyTally extends AnswerTally {
  constructor() {
    super(KNOWN_VERIFY_ANSWERS);
  }
}

export type LoginCheckAnswerKind = LoginCheckOutcome | 'error';

/** The answers login.check gives, by result, at 0 from the start (for every protocol). */
export const KNOWN_LOGIN_CHECK_ANSWERS: Readonly<Record<LoginCheckAnswerKind, readonly string[]>> = (() => {
  const known: Record<LoginCheckAnswerKind, string[]> = { allow: [], continue: [], deny: [], error: [] };
  for (const r of LOGIN_CHECK_REASONS) known[r.result].push(r.reason);
  return known;
})();

export interface ProtocolAnswerCount extends AnswerCount {
  protocol: string;
}

/**
 * login.check's answers, by protocol, result and reason; its latency by result only (summed over
 * the protocols at scrape time), so that the histogram keeps a handful of series.
 */
export class LoginCheckTally {
  private readonly byProtocol = new Map<string, AnswerTally>();

  constructor(protocols: readonly string[] = APP_PROTOCOLS) {
    for (const p of protocols) this.byProtocol.set(p, new AnswerTally(KNOWN_LOGIN_CHECK_ANSWERS));
  }

  answered(protocol: string, result: LoginCheckAnswerKind, reason: string, seconds: number): void {
    // The protocol was checked against APP_PROTOCOLS before the handler ran.
    let t = this.byProtocol.get(protocol);
    if (t === undefined) this.byProtocol.set(protocol, (t = new AnswerTally({})));
    t.answered(result, reason, seconds);
  }

  counts(): ProtocolAnswerCount[] {
    const out: ProtocolAnswerCount[] = [];
    for (const [protocol, t] of this.byProtocol) for (const c of t.counts()) out.push({ protocol, ...c });
    return out;
  }

  latency(): LatencySeries[] {
    const byResult = new Map<string, LatencySeries>();
    for (const t of this.byProtocol.values()) {
      for (const s of t.latency()) {
        const sum = byResult.get(s.result);
        if (sum === undefined) byResult.set(s.result, { ...s, cumulative: [...s.cumulative] });
        else {
          s.cumulative.forEach((n, i) => (sum.cumulative[i]! += n));
          sum.sum += s.sum;
          sum.count += s.count;
        }
      }
    }
    return [...byResult.values()];
  }
}

export type DeliveryOutcome = 'sent' | 'failed';

/** Codes handed to a gateway, by provider and outcome. */
export class DeliveryTally {
  private readonly counts = new Map<string, { sent: number; failed: number }>();

  constructor(providers: readonly string[]) {
    for (const p of providers) this.counts.set(p, { sent: 0, failed: 0 });
  }

  delivered(provider: string, outcome: DeliveryOutcome): void {
    let c = this.counts.get(provider);
    if (c === undefined) this.counts.set(provider, (c = { sent: 0, failed: 0 }));
    c[outcome]++;
  }

  all(): { provider: string; outcome: DeliveryOutcome; count: number }[] {
    const out: { provider: string; outcome: DeliveryOutcome; count: number }[] = [];
    for (const [provider, c] of this.counts) out.push({ provider, outcome: 'sent', count: c.sent }, { provider, outcome: 'failed', count: c.failed });
    return out;
  }
}
