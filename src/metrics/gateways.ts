// The gateways as the metrics see them: each sender wrapped so that its code deliveries are counted
// by outcome and the result of its last check (at start, by `memfa status`, by `provider test`, or
// by a scrape) is remembered. A scrape reports that result and, when it is older than
// GATEWAY_CHECK_MAX_AGE_MS, starts one new check in the background for the next scrape: scraping
// every few seconds costs the SMTP server or SMSC one check a minute, never one per scrape.
import type { CheckResult, OutgoingCode, Provider, Sender, SendResult } from '../delivery/types.js';
import type { DeliveryTally } from './tally.js';

export const GATEWAY_CHECK_MAX_AGE_MS = 60_000;

export interface GatewayState {
  provider: Provider;
  transport: string;
  /** Null until the first check has answered. */
  up: boolean | null;
  /** Epoch ms of that answer; null before it. */
  checkedAt: number | null;
}

interface Watched {
  sender: Sender;
  last: { ok: boolean; at: number } | null;
  checking: Promise<CheckResult> | null;
}

export class GatewayWatch {
  private readonly watched = new Map<Provider, Watched>();

  constructor(
    private readonly deliveries: DeliveryTally,
    private readonly clock: () => number = () => Date.now(),
    private readonly maxAgeMs = GATEWAY_CHECK_MAX_AGE_MS,
  ) {}

  /** The senders, each wrapped: use these in place of the ones given. */
  watch(senders: Partial<Record<Provider, Sender>>): Partial<Record<Provider, Sender>> {
    const out: Partial<Record<Provider, Sender>> = {};
    for (const [provider, sender] of Object.entries(senders) as [Provider, Sender][]) out[provider] = this.wrap(provider, sender);
    return out;
  }

  private wrap(provider: Provider, sender: Sender): Sender {
    const w: Watched = { sender, last: null, checking: null };
    this.watched.set(provider, w);
    const tally = this.deliveries;
    return {
      provider: sender.provider,
      transport: sender.transport,
      async send(msg: OutgoingCode): Promise<SendResult> {
        // An administrator's test message is not a delivery of a code.
        if (msg.kind !== 'code') return sender.send(msg);
        try {
          const r = await sender.send(msg);
          tally.delivered(provider, 'sent');
          return r;
        } catch (err) {
          tally.delivered(provider, 'failed');
          throw err;
        }
      },
      check: () => this.check(w),
      close: () => sender.close(),
    };
  }

  private check(w: Watched): Promise<CheckResult> {
    // Checks asked while one runs share it (the senders do too; this keeps the bookkeeping simple).
    w.checking ??= w.sender.check().then(
      (r) => {
        w.last = { ok: r.ok, at: this.clock() };
        w.checking = null;
        return r;
      },
      // check() never rejects; a sender that breaks that promise is a gateway that is down.
      (err: unknown) => {
        w.last = { ok: false, at: this.clock() };
        w.checking = null;
        return { ok: false as const, error: (err as Error)?.message ?? String(err) };
      },
    );
    return w.checking;
  }

  /** What each gateway's last check said; one older than the bound is checked again, not awaited. */
  states(): GatewayState[] {
    const now = this.clock();
    const out: GatewayState[] = [];
    for (const [provider, w] of this.watched) {
      if (w.checking === null && (w.last === null || now - w.last.at >= this.maxAgeMs)) void this.check(w);
      out.push({ provider, transport: w.sender.transport, up: w.last?.ok ?? null, checkedAt: w.last?.at ?? null });
    }
    return out;
  }
}
