// The daemon: wires real implementations into the services, starts in order (directories and the
// data directory's lock, store, keys, audit trail, geo, senders, listeners, the metrics listener),
// tells systemd it is ready, and stops in reverse on SIGTERM/SIGINT.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';

import type { AnchorStore } from '../audit/anchor.js';
import { AuditTrail } from '../audit/trail.js';
import type { MemfaConfig } from '../config/types.js';
import { parseListen } from '../config/listen.js';
import { loadCountryLookup } from '../geo/country.js';
import { listenMetricsHttp } from '../metrics/http.js';
import { DaemonMetrics } from '../metrics/wiring.js';
import { MemfaError } from '../protocol/errors.js';
import { SOCKET_KINDS } from '../protocol/methods.js';
import type { AuditStreamName } from '../protocol/results.js';
import { keyedHasher } from '../security/hash.js';
import { Keyring, secretAad } from '../security/keyring.js';
import { TOTP_PURPOSE } from '../services/enrol.js';
import { createServices } from '../services/handlers.js';
import type { Ports } from '../services/ports.js';
import type { SealedSecretSample } from '../services/store-ports.js';
import { FileStore } from '../store/file-store.js';
import { FileStatePorts } from '../store/state-ports.js';
import { VERSION } from '../version.js';
import { createDispatcher } from './dispatch.js';
import { applyHeapPolicy } from './heap.js';
import { Listener } from './listener.js';
import { acquireDataDirLock } from './lock.js';
import { assertStoreBackend } from './preflight.js';
import { logRequests } from './request-log.js';
import { checkSenders, createNoticeSender, createSenders } from './senders.js';
import { renderNotice } from '../delivery/notice.js';
import { createLogger, type Logger } from './logger.js';
import { serviceManager } from './notify.js';

async function ensureDir(dir: string, mode: number, log: Logger): Promise<void> {
  const existing = await stat(dir).catch(() => null);
  if (existing === null) {
    await mkdir(dir, { recursive: true, mode });
    await chmod(dir, mode); // mkdir's mode is filtered by the umask
    return;
  }
  if (!existing.isDirectory()) throw new MemfaError('CONFIG_INVALID', `${dir} exists and is not a directory`, { data: { file: dir } });
  if (process.platform !== 'win32' && (existing.mode & 0o777 & ~mode) !== 0) {
    log.warn('directory-too-open', { dir, mode: (existing.mode & 0o777).toString(8), expected: mode.toString(8) });
  }
}

/**
 * The daemon's clock. Tests of expiry and lockout timing set MEMFA_UNSAFE_TEST_CLOCK to a file
 * holding an offset in milliseconds, read at every tick; production never sets it, and the daemon
 * warns loudly when it is set.
 */
function makeClock(log: Logger): () => number {
  const file = process.env['MEMFA_UNSAFE_TEST_CLOCK'];
  if (!file) return () => Date.now();
  log.warn('unsafe-test-clock', { file, why: 'MEMFA_UNSAFE_TEST_CLOCK is set: time can be shifted by whoever writes this file; never set it in production' });
  return () => {
    let offset = 0;
    try {
      offset = Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      offset = 0;
    }
    return Date.now() + offset;
  };
}

/**
 * Opens one stored secret per key id with the key file, so that a wrong or stale key file stops
 * the daemon at start instead of failing every login later. Never resets anything.
 */
async function checkSecretsOpen(sample: SealedSecretSample, keyring: { open(sealed: string, aad: string): Buffer }, keyFile: string): Promise<void> {
  for (const { kid, address, sealedSecret } of await sample.sealedSecretPerKey()) {
    try {
      keyring.open(sealedSecret, secretAad(TOTP_PURPOSE, address));
    } catch {
      throw new MemfaError('CONFIG_INVALID', `the key file ${keyFile} cannot open the secrets in the store (key ${kid}); refusing to start`, {
        data: { file: keyFile },
        hint: 'restore the key file that belongs to this store; secrets are never reset automatically',
      });
    }
  }
}

export interface RunningDaemon {
  stop(): Promise<void>;
  done: Promise<void>;
}

export async function startDaemon(config: MemfaConfig, log: Logger = createLogger(config.log.level)): Promise<RunningDaemon> {
  const started = Date.now();
  const cleanups: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch((err: Error) => log.error('stop-step-failed', { error: err.message }));
  };
  try {
    // Before anything is made or locked: a backend this daemon cannot serve is refused outright.
    assertStoreBackend(config);
    await ensureDir(config.dataDir, 0o700, log);
    await ensureDir(config.runDir, 0o750, log);
    const unlock = await acquireDataDirLock(config.dataDir);
    cleanups.push(unlock);

    const store = await FileStore.open(config.store.file, {
      compactJournalBytes: config.store.compactJournalBytes,
      onEvent: (event, fields) => log.info(event, fields),
    });
    cleanups.push(() => store.close());
    // A key file is created only at the first start: later, a missing one means lost keys, and a
    // new one would make every stored secret unopenable.
    const firstStart = store.countMailboxes() === 0 && store.getMeta('keyringCreated') === undefined;
    const keyring = await Keyring.load(config.keyFile, { create: firstStart, onReread: (event) => log.info('key-file-reread', { file: config.keyFile, ...event }) });
    const state = new FileStatePorts(store);
    await checkSecretsOpen(state, keyring, config.keyFile);
    if (store.getMeta('keyringCreated') === undefined) await store.transact((tx) => tx.putMeta('keyringCreated', Date.now()));
    // Each stream's head is anchored in the store, so that cut or removed audit files are found
    // after a restart too (audit/anchor.ts).
    const anchorIn = (name: AuditStreamName): AnchorStore => ({
      load: () => store.getMeta(`auditAnchor.${name}`),
      save: (anchor) => store.transact((tx) => tx.putMeta(`auditAnchor.${name}`, anchor)),
    });
    const audit = await AuditTrail.open({
      streams: {
        security: { ...config.audit.security, anchor: anchorIn('security') },
        logins: { file: config.audit.file, maxBytes: config.audit.maxBytes, keep: config.audit.keep, anchor: anchorIn('logins') },
      },
      aggregateMs: config.audit.aggregateSeconds * 1000,
      onEvent: (level, event, fields) => log[level](event, fields),
    });
    // Closed before the store (cleanups run in reverse): closing anchors the final heads.
    cleanups.push(() => audit.close());
    const country = await loadCountryLookup(config.dataDir);
    const metrics = new DaemonMetrics(VERSION);
    const senders = metrics.watchSenders(createSenders(config, log));
    cleanups.push(async () => {
      await Promise.all(Object.values(senders).map((s) => s.close()));
    });
    checkSenders(senders, log);
    const notices = createNoticeSender(config, log, senders);
    if (notices !== undefined) cleanups.push(notices.close);

    const ports: Ports = {
      config,
      state,
      store,
      clock: makeClock(log),
      random: { bytes: (n) => randomBytes(n), int: (min, max) => randomInt(min, max) },
      country,
      secrets: keyring,
      keys: keyring,
      hashes: keyedHasher((purpose) => keyring.macKey(purpose)),
      // Services audit what has already happened (a committed change, an answer): a failed audit
      // write must not turn that into an error answer, which would claim nothing changed. The
      // trail never rejects; it counts the loss, logs it and records it in the chain.
      audit,
      log,
      senders,
      ...(notices === undefined
        ? {}
        : { notices: { sender: notices.sender, render: (n, mailbox) => renderNotice(n, mailbox, config.notifications.templates, config.notifications.support) } }),
      startedAt: started,
      version: VERSION,
    };
    const services = createServices(ports);
    await services.notifier.start();
    // Runs after the listeners have drained (cleanups run in reverse), before the gateways and the store close.
    cleanups.push(() => services.close());
    const handlers = {
      ...services.handlers,
      verify: metrics.meterVerify(services.handlers.verify),
      'login.check': metrics.meterLoginCheck(services.handlers['login.check']),
      metrics: () => metrics.render(),
    };
    const dispatcher = createDispatcher(handlers, log, config.limits.requestTimeoutMs, services.authenticate);
    const dispatch = config.log.level === 'debug' ? logRequests(dispatcher, log) : dispatcher;
    const listeners = SOCKET_KINDS.map((kind) => new Listener(kind, config.sockets[kind], config.limits, dispatch, log));
    metrics.attach({
      locks: () => services.census.counts(),
      store: () => ({ mailboxes: store.countMailboxes(), domains: store.listDomains().length, ...store.fileSizes() }),
      audit: () => audit.status(),
      listeners: () => listeners.map((l) => l.stats()),
    });
    // Every socket stops accepting at once, then all drain; only then do the store and the rest close.
    cleanups.push(async () => {
      for (const l of listeners) l.pause();
      await Promise.all(listeners.map((l) => l.drain(config.limits.requestTimeoutMs)));
    });
    for (const l of listeners) await l.listen();
    if (config.metrics.listen !== null) {
      const address = parseListen(config.metrics.listen);
      if ('problem' in address) throw new MemfaError('CONFIG_INVALID', `metrics.listen: ${address.problem}`, { data: { key: 'metrics.listen' } });
      const http = await listenMetricsHttp(address, () => metrics.render(), log);
      cleanups.push(() => http.close());
    }
    const manager = serviceManager(log);
    let announced: Promise<void> = Promise.resolve();

    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    let stopping: Promise<void> | null = null;
    const stop = () => {
      stopping ??= (async () => {
        log.info('stopping', {});
        const told = announced.then(() => manager.stopping());
        // Listeners first (stop accepting, answer what is in flight), then the store and the rest.
        await unwind();
        await told;
        log.info('stopped', { uptimeMs: Date.now() - started });
        resolveDone();
      })();
      return stopping;
    };
    log.info('ready', {
      version: VERSION,
      pid: process.pid,
      config: config.source,
      store: config.store.file,
      adminSocket: config.sockets.admin.path,
      hookSocket: config.sockets.hook.path,
      selfSocket: config.sockets.self.path,
      mailboxes: store.countMailboxes(),
      startMs: Date.now() - started,
    });
    // Not awaited: the daemon serves meanwhile; a stop tells systemd only after this.
    announced = manager.ready();
    return { stop, done };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/** Runs in the foreground until SIGTERM or SIGINT; returns the process exit code. */
export async function runDaemon(config: MemfaConfig): Promise<number> {
  const log = createLogger(config.log.level);
  applyHeapPolicy(log);
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon(config, log);
  } catch (err) {
    const e = err instanceof MemfaError ? err : new MemfaError('INTERNAL', (err as Error).message);
    log.error('start-failed', { error: e.message, errorCode: e.code, hint: e.hint });
    return e.exitCode;
  }
  // A bug that escapes every handler leaves state nobody can vouch for: log it as one structured
  // line and exit at once (acknowledged writes are already durable; the service manager restarts).
  const crash = (kind: string) => (err: unknown) => {
    log.error(kind, { error: (err as Error)?.message ?? String(err), stack: (err as Error)?.stack });
    process.exit(70);
  };
  process.on('uncaughtException', crash('uncaught-exception'));
  process.on('unhandledRejection', crash('unhandled-rejection'));
  const onSignal = (signal: string) => {
    log.info('signal', { signal });
    void daemon.stop();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => log.info('signal-ignored', { signal: 'SIGHUP', why: 'restart the daemon to reload its configuration' }));
  await daemon.done;
  return 0;
}

