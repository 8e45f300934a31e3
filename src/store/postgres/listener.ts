// The one connection per daemon, outside the pool, that listens for the changes the writing
// transactions announce (migrations/004_change_notices.sql) and drops them from the read cache
// (cache.ts). The cache serves only while this connection is listening: when it is lost (the
// server restarted, the backend was terminated, a heartbeat went unanswered) the cache stops
// serving at once and everything in it is dropped, and it connects again with a growing delay;
// once it listens again the cache is flushed and serves anew, since notices sent meanwhile were
// lost.
import pg from 'pg';
import { CACHE_CHANNEL, type ReadCache } from './cache.js';
import { clientOptions, type PostgresSettings } from './pool.js';

/** The first delay before connecting again, doubled after each failure up to RECONNECT_MAX_MS. */
export const RECONNECT_MIN_MS = 100;
export const RECONNECT_MAX_MS = 5000;
/** How often the connection is asked whether it still answers: a dead peer says nothing. */
export const HEARTBEAT_MS = 5000;

export interface ListenerEvents {
  /** The listener is listening (again: `reconnects` > 0), or lost its connection (`error`). */
  listening?(reconnects: number): void;
  lost?(error: string): void;
}

export class ChangeListener {
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private delay = RECONNECT_MIN_MS;
  private stopped = false;
  private connects = 0;
  /** Resolves the first time the listener listens (or it is stopped). */
  readonly ready: Promise<void>;
  private markReady!: () => void;

  constructor(
    private readonly settings: PostgresSettings,
    private readonly cache: ReadCache,
    private readonly events: ListenerEvents = {},
  ) {
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
  }

  /** The backend pid of the listening connection, or null while there is none (for tests). */
  pid: number | null = null;

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    const client = new pg.Client({ ...clientOptions(this.settings), application_name: 'memfa-listen', query_timeout: this.settings.connectTimeoutMs });
    this.client = client;
    let lost = false;
    const onLost = (err: unknown) => {
      if (lost) return;
      lost = true;
      this.lose(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost(new Error('connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === CACHE_CHANNEL && msg.payload !== undefined) this.cache.invalidate(msg.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CACHE_CHANNEL}`);
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      if (lost || this.stopped) return;
      this.pid = rows[0]!.pid;
      // Listening from here: what was cached before (nothing, or what a lost connection could not
      // keep true) goes, and reads from now on may fill the cache.
      this.cache.setActive(true);
      this.delay = RECONNECT_MIN_MS;
      this.events.listening?.(this.connects++);
      this.markReady();
      this.heartbeat = setInterval(() => {
        client.query('SELECT 1').catch(onLost);
      }, HEARTBEAT_MS);
      this.heartbeat.unref();
    } catch (err) {
      onLost(err);
    }
  }

  private lose(client: pg.Client, err: unknown): void {
    if (this.client !== client) return;
    this.cache.setActive(false);
    this.pid = null;
    this.client = null;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    client.removeAllListeners('notification');
    client.on('error', () => {});
    void client.end().catch(() => {});
    if (this.stopped) return;
    this.events.lost?.(err instanceof Error ? err.message : String(err));
    const wait = this.delay;
    this.delay = Math.min(RECONNECT_MAX_MS, this.delay * 2);
    this.timer = setTimeout(() => void this.connect(), wait);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.markReady();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const client = this.client;
    if (client !== null) this.lose(client, new Error('stopped'));
    else this.cache.setActive(false);
  }
}
