// When and from where each app password was last used, and how often: kept in memory as logins
// happen and written to the store in one operation per appPasswords.usageFlushSeconds (and at
// shutdown; AppPasswordUseStore recordAppPasswordUses, which adds to what other daemons wrote and
// touches nothing else of the mailboxes), never on a login's path. An IMAP client that logs in every few seconds costs one
// store write a minute, whatever its rate. A crash loses at most that interval's counts; nothing
// that decides a login depends on them.
import type { AppPassword } from '../core/model.js';
import type { Log } from './ports.js';
import type { AppPasswordUseStore } from './store-ports.js';

export interface AppPasswordUsagePorts {
  state: AppPasswordUseStore;
  log: Pick<Log, 'error'>;
}

export interface Use {
  at: number;
  ip: string;
  country: string | null;
}

interface Pending extends Use {
  count: number;
}

/** Mailboxes with uses waiting at most; past it they are written at once. */
export const MAX_PENDING_MAILBOXES = 10_000;

export class AppPasswordUsage {
  /** address → app password id → uses not yet written. */
  private readonly pending = new Map<string, Map<string, Pending>>();
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly p: AppPasswordUsagePorts,
    private readonly intervalMs: number,
  ) {}

  note(address: string, id: string, use: Use): void {
    let uses = this.pending.get(address);
    if (uses === undefined) {
      uses = new Map();
      this.pending.set(address, uses);
    }
    const prev = uses.get(id);
    uses.set(id, { ...use, count: (prev?.count ?? 0) + 1 });
    if (this.pending.size >= MAX_PENDING_MAILBOXES) void this.flush();
    else if (this.timer === null) {
      this.timer = setTimeout(() => void this.flush(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** An app password's usage as a reader should see it: what is stored plus what is waiting. */
  view(address: string, ap: AppPassword): Pick<AppPassword, 'lastUsed' | 'uses'> {
    const waiting = this.pending.get(address)?.get(ap.id);
    if (waiting === undefined) return { lastUsed: ap.lastUsed, uses: ap.uses };
    return { lastUsed: { at: waiting.at, ip: waiting.ip, country: waiting.country }, uses: ap.uses + waiting.count };
  }

  /** Forgets what is waiting for app passwords that no longer exist (revoked). */
  forget(address: string, ids: readonly string[] | 'all'): void {
    if (ids === 'all') this.pending.delete(address);
    else for (const id of ids) this.pending.get(address)?.delete(id);
  }

  /** Writes everything waiting, in one operation; resolves once it is durable (or was lost). */
  flush(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size === 0) return this.writing;
    const batch = new Map(this.pending);
    this.pending.clear();
    const uses = [...batch].flatMap(([address, ids]) => [...ids].map(([id, u]) => ({ address, id, ...u })));
    const write = this.p.state
      .recordAppPasswordUses(uses)
      .catch((err: unknown) => {
        // Counts only; the logins themselves were answered and audited.
        this.p.log.error('app-password-usage-lost', { mailboxes: batch.size, error: (err as Error).message });
      });
    this.writing = this.writing.then(() => write);
    return this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
