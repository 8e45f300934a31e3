// Security notices to a mailbox's owner (core/notices.ts has the kinds and the queue's rules): a
// mail to the mailbox and its alternate address when a second factor was passed from a new
// country, a TOTP secret was enrolled or reset, recovery codes were made or one was used, an app
// password was created, or the mailbox was locked.
//
// A notice never holds up or fails what it reports. The service that makes the change hands the
// operation that makes it a queue (queueFor(), store-ports.ts NoticeQueue), which the operation
// calls in its own write of the mailbox record, so the notice is durable exactly when the change
// is, and a restart loses nothing; the sending happens here,
// later, off every request path. Each attempt is first recorded (its count and next time), then
// sent through the SMTP gateway; a failure waits retryInitialSeconds, doubling up to
// retryMaxSeconds, and after maxAttempts the notice is given up. Every outcome is audited (action
// notify) and every failure logged. A crash between a send and its record sends it once more.
import type { AuditEvent } from '../audit/entry.js';
import type { MemfaConfig } from '../config/types.js';
import { failuresOf, kindLockState, type FailureKind, type LockState } from '../core/lockout.js';
import { maskEmail } from '../core/mask.js';
import type { MailboxRecord } from '../core/model.js';
import { dueNotice, keptNotices, nextDue, noticesExpireAt, queueNotice, replaceNotice, retryDelay, type MailboxNotices, type NoticeEvent, type NoticePolicy, type PendingNotice } from '../core/notices.js';
import { domainOf } from '../core/validate.js';
import { viewSettings, type Levels } from './context.js';
import type { AuditSink, Clock, Log, NoticeOutlet } from './ports.js';
import type { MailboxStore, NoticeQueue, NoticeStore, SettingsStore } from './store-ports.js';

export type { NoticeEvent } from '../core/notices.js';

/** What the notice sender needs: the queues on the mailbox records, the levels' settings, time, the audit trail. */
export interface NotifierPorts {
  state: NoticeStore & Pick<MailboxStore, 'updateMailbox'> & Pick<SettingsStore, 'getGlobal' | 'getDomain'>;
  config: MemfaConfig;
  clock: Clock;
  audit: Pick<AuditSink, 'append'>;
  log: Pick<Log, 'info' | 'warn' | 'error'>;
}

/** A lock a failure started, as the operation that counted it wrote it: for the security log. */
export interface StartedLock {
  lock: Extract<LockState, { locked: true }>;
  failures: number;
}

/**
 * `queue`, watched for the mailbox-locked notice of a failure of `kind`: `started` then holds the
 * lock as the operation wrote it, once the operation is over (whether or not a notice was queued:
 * notices may be off). For the security log line of the lock (security-log.ts).
 */
export function watchLocks(queue: NoticeQueue, kind: FailureKind, now: number): NoticeQueue & { started: StartedLock | null } {
  const watched = {
    started: null as StartedLock | null,
    inert: (rec: MailboxRecord): boolean => queue.inert?.(rec) ?? false,
    queue(rec: MailboxRecord, events: readonly NoticeEvent[]): MailboxRecord {
      if (events.some((e) => e.kind === 'mailbox-locked')) {
        const lock = kindLockState(rec.failures, kind, now);
        if (lock.locked) watched.started = { lock, failures: failuresOf(rec.failures, kind).consecutive };
      }
      return queue.queue(rec, events);
    },
  };
  return watched;
}

/** How long stop() waits for a send in flight; its notice stays queued and goes out after a restart. */
const STOP_WAIT_MS = 2000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `rec` with `notices` in place, or without the field when nothing is left to keep. */
export function withNotices(rec: MailboxRecord, notices: MailboxNotices | undefined): MailboxRecord {
  const { notices: _old, ...rest } = rec;
  return notices === undefined ? rest : { ...rest, notices };
}

export class Notifier {
  readonly policy: NoticePolicy;
  /**
   * Per mailbox with notices (a cache of the store): how many wait and when the first is due; or,
   * once none waits, when the record of recent ones may go (a record without the field keeps the
   * store's compact form, records.ts).
   */
  private readonly waiting = new Map<string, { count: number; due: number | null; expires: number | null }>();
  private total = 0;
  /** Outcomes decided inside a transaction, audited once it is over. */
  private staged: AuditEvent[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** After a failed send no other is tried before this: a gateway that is down is not hammered. */
  private pauseUntil = 0;
  private stopped = false;
  private seq = 0;

  private readonly sender: NoticeOutlet['sender'] | undefined;

  constructor(
    private readonly p: NotifierPorts,
    private readonly outlet: NoticeOutlet | undefined,
  ) {
    this.sender = outlet?.sender;
    const n = p.config.notifications;
    this.policy = { maxPerKindPerDay: n.maxPerKindPerDay, maxAttempts: n.maxAttempts, retryInitialMs: n.retryInitialSeconds * 1000, retryMaxMs: n.retryMaxSeconds * 1000 };
  }

  /** Picks up the notices a previous run left queued, and starts sending. */
  async start(): Promise<void> {
    for (const { address, notices } of await this.p.state.mailboxNotices()) this.track(address, notices);
    if (this.sender === undefined && (this.p.config.defaults.notifications || (await this.p.state.getGlobal()).notifications === true)) {
      this.p.log.warn('notifications-without-gateway', { why: 'notifications are on but no smtp section is configured: no security notice can be sent' });
    }
    if (this.total > 0) this.p.log.info('notifications-pending', { notices: this.total, mailboxes: [...this.waiting.values()].filter((w) => w.count > 0).length });
    this.schedule();
  }

  /** Notices waiting, over all mailboxes. */
  get pending(): number {
    return this.total;
  }

  /**
   * The queue of the notices of one operation on a mailbox under `levels` (its domain's and the
   * global settings, as read for it), at `now`: handed to the operation (store-ports.ts
   * NoticeQueue), which calls it inside its own write of the record. `where`: the login's address
   * and country, for the events that do not give their own.
   */
  queueFor(levels: Levels, now: number, where: { ip: string | null; country: string | null } | null = null): NoticeQueue {
    return {
      inert: (rec) => this.inert(levels, rec),
      queue: (rec, events) => {
        let next = rec;
        for (const event of events) next = this.queueOne(levels, next, where === null ? event : { ...where, ...event }, now);
        return next;
      },
    };
  }

  /** As queueFor, reading the levels of `address` first (settings: read-mostly, a cache may answer). */
  async queueOf(address: string, now: number, where: { ip: string | null; country: string | null } | null = null): Promise<NoticeQueue> {
    const [global, domain] = await Promise.all([this.p.state.getGlobal(), this.p.state.getDomain(domainOf(address))]);
    return this.queueFor({ global, domain: domain?.settings }, now, where);
  }

  /** No notice can be queued for `rec`: no gateway to send it through, or its settings turn notices off. */
  private inert(levels: Levels, rec: MailboxRecord): boolean {
    return this.sender === undefined || !viewSettings(this.p.config, levels, rec).notifications;
  }

  /**
   * Inside the operation of the event: `rec` with a notice of `event` queued, to be written by the
   * operation. `rec` comes back unchanged when the mailbox's settings turn notices off (setting
   * notifications), when there is no SMTP gateway to send it, or when a bound holds it back
   * (maxPerKindPerDay, maxPending: audited as suppressed or dropped).
   */
  private queueOne(levels: Levels, rec: MailboxRecord, event: NoticeEvent, now: number): MailboxRecord {
    if (this.inert(levels, rec)) return rec;
    const to = rec.altEmail !== null && rec.altEmail !== rec.address ? [rec.address, rec.altEmail] : [rec.address];
    const notice: PendingNotice = {
      id: `${now.toString(36)}-${(this.seq++ % 1296).toString(36)}`,
      kind: event.kind,
      at: now,
      ip: event.ip ?? null,
      country: event.country ?? null,
      ...(event.kind === 'mailbox-locked' ? { until: event.until ?? null } : {}),
      ...(event.left !== undefined ? { left: event.left } : {}),
      to,
      attempts: 0,
      nextAt: now,
    };
    const held = (result: 'suppressed' | 'dropped', why: string) => {
      this.stage({ actor: 'daemon', socket: null, mailbox: rec.address, action: 'notify', result, reason: event.kind, details: { id: notice.id, why } });
      this.p.log.info(`notification-${result}`, { mailbox: rec.address, kind: event.kind, why });
    };
    if (this.total >= this.p.config.notifications.maxPending) {
      held('dropped', 'queue-full');
      return rec;
    }
    const outcome = queueNotice(rec.notices, notice, now, this.policy);
    if (!outcome.queued) {
      held('suppressed', outcome.reason);
      return rec;
    }
    this.track(rec.address, outcome.notices);
    this.schedule();
    return withNotices(rec, outcome.notices);
  }

  /** Queues a notice for an event that has no transaction of its own; resolves once it is stored. */
  async notify(address: string, event: NoticeEvent): Promise<void> {
    const now = this.p.clock();
    const queue = await this.queueOf(address, now);
    await this.p.state.updateMailbox(address, (rec) => ({ next: rec === undefined ? undefined : queue.queue(rec, [event]), result: undefined }));
  }

  /** Stops sending; a send in flight is waited for a moment. What is still queued stays in the store. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const running = this.running;
    if (running !== null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
      clearTimeout(timer);
    }
    await this.flushStaged();
  }

  private stage(event: AuditEvent): void {
    this.staged.push(event);
    this.schedule();
  }

  private async flushStaged(): Promise<void> {
    const events = this.staged.splice(0);
    for (const e of events) await this.p.audit.append(e);
  }

  /** Brings the cache of mailbox `address` in line with `notices`, its notices as stored. */
  private track(address: string, notices: MailboxNotices | undefined): void {
    const before = this.waiting.get(address)?.count ?? 0;
    const count = notices?.pending.length ?? 0;
    const due = nextDue(notices);
    const expires = noticesExpireAt(notices);
    this.total += count - before;
    if (due === null && expires === null) this.waiting.delete(address);
    else this.waiting.set(address, { count, due, expires });
  }

  /** The mailbox whose notice is due first, if one is due at `now`. */
  private firstDue(now: number): string | undefined {
    let first: { address: string; due: number } | undefined;
    for (const [address, w] of this.waiting) if (w.due !== null && w.due <= now && (first === undefined || w.due < first.due)) first = { address, due: w.due };
    return first?.address;
  }

  /** A mailbox whose record of recent notices may go at `now`. */
  private firstExpired(now: number): string | undefined {
    for (const [address, w] of this.waiting) if (w.expires !== null && w.expires <= now) return address;
    return undefined;
  }

  /**
   * Looks again at what is due now. The timer set for the next due time covers the usual case;
   * this is for a clock that jumped (the test clock among them).
   */
  wake(): void {
    this.schedule();
  }

  /** Runs the sender when there is something to do: audits to write, or a notice due. */
  private schedule(): void {
    if (this.stopped || this.running !== null) return; // a run looks again when it ends
    let next = this.staged.length > 0 ? 0 : Infinity;
    for (const w of this.waiting.values()) next = Math.min(next, w.due === null ? Infinity : Math.max(w.due, this.pauseUntil), w.expires ?? Infinity);
    if (next === Infinity) return;
    if (this.timer !== null) clearTimeout(this.timer);
    const wait = Math.min(Math.max(0, next - this.p.clock()), MAX_TIMER_MS);
    this.timer = setTimeout(() => this.run(), wait);
    this.timer.unref();
  }

  private run(): void {
    this.timer = null;
    this.running = (async () => {
      await this.flushStaged();
      while (!this.stopped) {
        const now = this.p.clock();
        const expired = this.firstExpired(now);
        if (expired !== undefined) {
          await this.prune(expired, null);
          continue;
        }
        const address = now < this.pauseUntil || this.sender === undefined ? undefined : this.firstDue(now);
        if (address === undefined) break;
        if (!(await this.deliver(address, this.outlet!, now))) this.pauseUntil = this.p.clock() + this.policy.retryInitialMs;
        await this.flushStaged();
      }
    })()
      .catch((err: unknown) => {
        if (!this.stopped) this.p.log.error('notification-loop-failed', { error: (err as Error)?.message ?? String(err) });
      })
      .finally(() => {
        this.running = null;
        this.schedule();
      });
  }

  /** One attempt at the due notice of `address`; false when the send failed. */
  private async deliver(address: string, outlet: NoticeOutlet, now: number): Promise<boolean> {
    // Recorded before the send: a crash during it still counts the attempt.
    type Claimed = { claim: PendingNotice | null; notices: MailboxNotices | undefined };
    const claimed = await this.p.state.updateMailbox(address, (rec): { next?: MailboxRecord; result: Claimed } => {
      const due = dueNotice(rec?.notices, now);
      if (rec === undefined || due === undefined) return { result: { claim: null, notices: rec?.notices } };
      const attempt: PendingNotice = { ...due, attempts: due.attempts + 1, nextAt: now + retryDelay(due.attempts + 1, this.policy) };
      const next = withNotices(rec, replaceNotice(rec.notices!, due.id, attempt));
      return { next, result: { claim: attempt, notices: next.notices } };
    });
    this.track(address, claimed.notices);
    const claim = claimed.claim;
    if (claim === null) return true;
    const to = claim.to.map(maskEmail);
    const entry = (result: string, details: Record<string, unknown>): AuditEvent => ({
      actor: 'daemon',
      socket: null,
      mailbox: address,
      action: 'notify',
      result,
      reason: claim.kind,
      details: { id: claim.id, attempts: claim.attempts, to, ...details },
    });
    try {
      const { subject, text } = outlet.render(claim, address);
      const sent = await outlet.sender.sendNotice({ to: claim.to, subject, text, mailbox: address, kind: claim.kind });
      await this.prune(address, claim.id);
      this.stage(entry('sent', sent.refused === undefined ? {} : { refused: sent.refused }));
      this.p.log.info('notification-sent', { mailbox: address, kind: claim.kind, attempts: claim.attempts, to });
      return true;
    } catch (err) {
      const error = (err as Error)?.message ?? String(err);
      const last = claim.attempts >= this.policy.maxAttempts;
      if (last) await this.prune(address, claim.id);
      const retryAt = new Date(claim.nextAt).toISOString();
      this.stage(entry(last ? 'abandoned' : 'retrying', last ? { error } : { error, retryAt }));
      if (last) this.p.log.error('notification-abandoned', { mailbox: address, kind: claim.kind, attempts: claim.attempts, to, error });
      else this.p.log.warn('notification-failed', { mailbox: address, kind: claim.kind, attempts: claim.attempts, to, error, retryAt });
      return false;
    }
  }

  /** Removes notice `id` (null: none) and whatever else of the mailbox's notices is not worth keeping. */
  private async prune(address: string, id: string | null): Promise<void> {
    const now = this.p.clock();
    const notices = await this.p.state.updateMailbox(address, (rec) => {
      if (rec?.notices === undefined) return { result: undefined };
      const kept = keptNotices(id === null ? rec.notices : replaceNotice(rec.notices, id, null), now);
      return kept === rec.notices ? { result: kept } : { next: withNotices(rec, kept), result: kept };
    });
    this.track(address, notices);
  }
}
