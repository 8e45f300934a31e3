// The one long-lived SMPP session behind SMS delivery. A login should not pay for a TCP connect
// and a bind, so the link binds as soon as it is created and stays bound: kept alive with
// enquire_link, bound again with exponential backoff when it drops.
//
// While the link is known down (an attempt to bind failed, and no bind has succeeded since; a
// session that drops after serving a while is bound again at once, not counted as down), a send
// fails at once, naming since when and when the next attempt is due,
// rather than waiting for time-outs: the login then goes to the mailbox's fallback provider at
// once. A send does wait (up to connectTimeoutMs) for an attempt in flight: the first one, whose
// outcome is not known yet, or a reconnect that is due. Sends never start an attempt, so a down
// gateway sees one attempt per backoff step, plus the checks administrators ask for.
//
// A check (`status`, `provider test`) does not report what the link last saw: it binds now when
// the link is down, or asks a bound session with enquire_link. A bind made by a check is kept and
// resets the backoff, so the next login uses it; a check that fails leaves the automatic schedule
// as it was. Concurrent checks share the one in flight.

import smpp from 'smpp';
import type { MemfaError } from '../protocol/errors.js';
import { deliveryFailed, describeError, readSecretFile, sharedInFlight } from './common.js';
import { describeStatus } from './smpp-pdu.js';
import { answerGatewayRequests, bindSession, endSession } from './smpp-session.js';
import type { CheckResult, DeliveryLogger, SmppConfig } from './types.js';

/** A check waits for an attempt's own connectTimeoutMs deadline; this margin only guards a hang. */
const CHECK_MARGIN_MS = 1000;

/**
 * connecting: an attempt (password file, connect, bind) is in flight; bound: submits may go;
 * down: known down, the next attempt waits for the backoff; closed: for good.
 */
type LinkState = 'connecting' | 'bound' | 'down' | 'closed';

type Attempt = { ok: true; session: smpp.Session } | { ok: false; error: string };

const CLOSED = 'SMPP sender is closed';

function notBound(reason: string): string {
  return `SMPP gateway not bound: ${reason}`;
}

export class SmppLink {
  private state: LinkState = 'connecting';
  private session: smpp.Session | null = null;
  /** Why the link is not bound (empty while bound). */
  private lastError = 'not connected yet';
  /** The failure seen during the current connection, if any, to explain its 'close'. */
  private attemptError: string | null = null;
  /** Epoch ms of the first failure since the link was last bound; null while bound or untried. */
  private downSince: number | null = null;
  private backoffMs: number;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private nextAttemptAt: number | null = null;
  /** When the automatic attempt that a check brought forward was due: a failed check restores it. */
  private preemptedAttemptAt: number | null = null;
  private attemptTimer: NodeJS.Timeout | null = null;
  private enquireTimer: NodeJS.Timeout | null = null;
  private enquireUnanswered = false;
  /** Epoch ms of the current session's bind. */
  private boundAt = 0;
  /** Sends and checks waiting for the outcome of the attempt in flight. */
  private readonly attemptWaiters = new Set<(attempt: Attempt) => void>();
  /** Told when the bound session drops (submits waiting for their answer, a check's enquire_link). */
  private readonly lostListeners = new Set<(reason: string) => void>();
  private readonly sharedCheck = sharedInFlight(() => this.checkNow());
  private closing: Promise<void> | null = null;

  constructor(
    private readonly cfg: SmppConfig,
    private readonly logger: DeliveryLogger,
  ) {
    this.backoffMs = cfg.reconnect.initialMs;
    this.connect();
  }

  get closed(): boolean {
    return this.closing !== null;
  }

  /**
   * The bound session, waiting for an attempt in flight; DELIVERY_FAILED at once while the link
   * is known down.
   */
  async acquire(): Promise<smpp.Session> {
    if (this.closing !== null) throw deliveryFailed('sms', CLOSED, { transport: 'smpp' });
    if (this.state === 'bound' && this.session !== null) return this.session;
    if (this.state === 'down') throw this.downError();
    const attempt = await this.nextAttempt(this.cfg.connectTimeoutMs);
    if (attempt.ok) return attempt.session;
    throw deliveryFailed('sms', attempt.error, { transport: 'smpp', smppState: this.state });
  }

  /** Checks the gateway now (see the top of this file). Never rejects. */
  check(): Promise<CheckResult> {
    if (this.closing !== null) return Promise.resolve({ ok: false, error: CLOSED });
    return this.sharedCheck();
  }

  /** Registers a listener for the bound session dropping; returns the function that removes it. */
  onLost(listener: (reason: string) => void): () => void {
    this.lostListeners.add(listener);
    return () => this.lostListeners.delete(listener);
  }

  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdown();
    return this.closing;
  }

  private async checkNow(): Promise<CheckResult> {
    if (this.state === 'bound' && this.session !== null) return this.enquire(this.session);
    if (this.state === 'down') this.attemptNow();
    const attempt = await this.nextAttempt(this.cfg.connectTimeoutMs + CHECK_MARGIN_MS);
    return attempt.ok ? { ok: true } : { ok: false, error: attempt.error };
  }

  /** One enquire_link on the bound session; a session that does not answer is dropped. */
  private enquire(session: smpp.Session): Promise<CheckResult> {
    const limitMs = this.cfg.connectTimeoutMs;
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const finish = (result: CheckResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopWatching();
        resolve(result);
      };
      const stopWatching = this.onLost((reason) => finish({ ok: false, error: notBound(reason) }));
      const timer = setTimeout(() => {
        const reason = `enquire_link not answered within ${limitMs} ms`;
        finish({ ok: false, error: notBound(reason) });
        this.abandon(session, reason);
      }, limitMs);
      // Any answer (even generic_nack) shows the gateway is there and reading.
      if (!session.enquire_link({}, () => finish({ ok: true }))) finish({ ok: false, error: notBound('the connection is not writable') });
    });
  }

  /** A check's attempt, brought forward from the backoff schedule. */
  private attemptNow(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.preemptedAttemptAt = this.nextAttemptAt;
    this.connect();
  }

  private downError(): MemfaError {
    const now = Date.now();
    const since = new Date(this.downSince ?? now).toISOString();
    const retryInMs = this.nextAttemptAt === null ? 0 : Math.max(0, this.nextAttemptAt - now);
    return deliveryFailed('sms', `${notBound(this.lastError)}; down since ${since}, next attempt in ${Math.ceil(retryInMs / 1000)} s`, {
      transport: 'smpp',
      smppState: 'down',
      downSince: since,
      retryInMs,
    });
  }

  private nextAttempt(timeoutMs: number): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      const done = (attempt: Attempt): void => {
        clearTimeout(timer);
        this.attemptWaiters.delete(done);
        resolve(attempt);
      };
      const timer = setTimeout(() => done({ ok: false, error: notBound(`connect and bind did not complete within ${timeoutMs} ms`) }), timeoutMs);
      this.attemptWaiters.add(done);
    });
  }

  private attemptEnded(attempt: Attempt): void {
    for (const waiter of [...this.attemptWaiters]) waiter(attempt);
  }

  private async shutdown(): Promise<void> {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attemptEnded({ ok: false, error: CLOSED });
    if (this.session !== null) await endSession(this.session, this.state === 'bound');
    this.clearSessionTimers();
    this.state = 'closed';
    this.lastError = 'sender closed';
    this.logger.info('smpp.closed', { host: this.cfg.host, port: this.cfg.port });
  }

  private connect(): void {
    if (this.closing !== null) return;
    this.reconnectTimer = null;
    this.nextAttemptAt = null;
    this.state = 'connecting';
    this.attemptError = null;
    this.readPassword().then(
      (password) => {
        if (this.closing !== null) {
          this.state = 'closed';
          return;
        }
        try {
          this.open(password);
        } catch (err) {
          // net.connect throws synchronously on options it cannot use (a bad port, say).
          this.session = null;
          this.clearSessionTimers();
          this.attemptFailed(describeError(err, [password]));
        }
      },
      (err: unknown) => this.attemptFailed(describeError(err)),
    );
  }

  /** Read at every attempt, so that a rotated password is used by the next bind. */
  private async readPassword(): Promise<string> {
    if (this.cfg.passwordFile !== undefined) return readSecretFile(this.cfg.passwordFile, 'sms.smpp.passwordFile', this.logger);
    return this.cfg.password ?? '';
  }

  private open(password: string): void {
    const { cfg } = this;
    const session = smpp.connect({
      host: cfg.host,
      port: cfg.port,
      tls: cfg.tls,
      rejectUnauthorized: cfg.rejectUnauthorized,
    });
    this.session = session;
    this.attemptTimer = setTimeout(() => {
      this.abandon(session, `connect and bind did not complete within ${cfg.connectTimeoutMs} ms`);
    }, cfg.connectTimeoutMs);

    session.on('error', (err: unknown) => {
      if (this.session === session && this.attemptError === null) this.attemptError = describeError(err, [password]);
      // A socket error is followed by 'close', but a malformed PDU leaves the library's reader
      // stuck with the socket open: destroy it either way so that 'close' comes.
      if (!session.socket.destroyed) session.destroy();
    });
    session.on('close', () => this.onClosed(session));
    session.on(cfg.tls ? 'secureConnect' : 'connect', () => this.bind(session, password));

    answerGatewayRequests(session, () => {
      this.attemptError = 'the gateway unbound the session';
    });
  }

  private bind(session: smpp.Session, password: string): void {
    const { cfg } = this;
    const onResponse = (pdu: smpp.PDU): void => {
      if (this.session !== session) return;
      if (pdu.command_status !== 0) {
        this.abandon(session, `bind refused: ${describeStatus(pdu.command_status)}`);
        return;
      }
      if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
      this.attemptTimer = null;
      this.state = 'bound';
      this.boundAt = Date.now();
      this.lastError = '';
      this.downSince = null;
      this.preemptedAttemptAt = null;
      this.backoffMs = cfg.reconnect.initialMs;
      this.startEnquireLink(session);
      this.logger.info('smpp.bound', { host: cfg.host, port: cfg.port, systemId: cfg.systemId, mode: cfg.bindMode });
      this.attemptEnded({ ok: true, session });
    };
    bindSession(session, cfg, password, onResponse);
  }

  private startEnquireLink(session: smpp.Session): void {
    this.enquireUnanswered = false;
    this.enquireTimer = setInterval(() => {
      // A half-open TCP connection looks bound forever; an unanswered enquire_link exposes it.
      if (this.enquireUnanswered) {
        this.abandon(session, `enquire_link not answered within ${this.cfg.enquireLinkMs} ms`);
        return;
      }
      this.enquireUnanswered = true;
      session.enquire_link({}, () => {
        this.enquireUnanswered = false;
      });
    }, this.cfg.enquireLinkMs);
  }

  /** Records why a connection is being given up and destroys it; 'close' does the rest. */
  private abandon(session: smpp.Session, reason: string): void {
    if (this.session !== session) return;
    this.attemptError = reason;
    session.destroy();
  }

  private onClosed(session: smpp.Session): void {
    if (this.session !== session) return;
    const wasBound = this.state === 'bound';
    this.session = null;
    this.clearSessionTimers();
    const reason = this.attemptError ?? (wasBound ? 'connection closed by the gateway' : 'connection closed before the bind completed');
    if (!wasBound) {
      this.attemptFailed(reason);
      return;
    }
    this.lastError = reason;
    for (const lost of [...this.lostListeners]) lost(reason);
    this.lostListeners.clear();
    if (this.closing !== null) {
      this.state = 'closed';
      return;
    }
    this.logger.warn('smpp.unbound', { host: this.cfg.host, port: this.cfg.port, error: reason });
    // A session that served a while and then dropped (a gateway closing idle sessions, a
    // restart) is not known down yet: bind again at once, and sends wait for that attempt. One
    // that drops right after its bind goes through the backoff, so a flapping gateway is not
    // hammered.
    if (Date.now() - this.boundAt >= this.cfg.reconnect.initialMs) this.connect();
    else this.scheduleReconnect();
  }

  /** An attempt ended without a bind: the link is known down until one succeeds. */
  private attemptFailed(reason: string): void {
    this.lastError = reason;
    this.scheduleReconnect();
    this.attemptEnded({ ok: false, error: notBound(reason) });
  }

  private scheduleReconnect(): void {
    if (this.closing !== null) {
      this.state = 'closed';
      return;
    }
    const now = Date.now();
    this.state = 'down';
    this.downSince ??= now;
    let delay: number;
    if (this.preemptedAttemptAt !== null) {
      // A check's attempt failed: the automatic attempt stays when it was due, the backoff as it was.
      delay = Math.max(0, this.preemptedAttemptAt - now);
      this.preemptedAttemptAt = null;
    } else {
      delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, this.cfg.reconnect.maxMs);
      this.logger.info('smpp.reconnect_scheduled', { host: this.cfg.host, port: this.cfg.port, inMs: delay, error: this.lastError });
    }
    this.nextAttemptAt = now + delay;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private clearSessionTimers(): void {
    if (this.attemptTimer !== null) clearTimeout(this.attemptTimer);
    if (this.enquireTimer !== null) clearInterval(this.enquireTimer);
    this.attemptTimer = null;
    this.enquireTimer = null;
  }
}
