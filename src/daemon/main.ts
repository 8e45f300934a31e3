// The daemon: wires real implementations into the services, starts in order (directories and the
// data directory's lock, store, keys, audit trail, geo, senders, listeners, the metrics listener),
// tells systemd it is ready, and stops in reverse on SIGTERM/SIGINT.
import { randomBytes, randomInt } from 'node:crypto';
import { chmod, mkdir, stat } from 'node:fs/promises';

import type { MemfaConfig } from '../config/types.js';
import { parseListen } from '../config/listen.js';
import { loadCountryLookup } from '../geo/country.js';
import { listenMetricsHttp } from '../metrics/http.js';
import { DaemonMetrics } from '../metrics/wiring.js';
import { MemfaError } from '../protocol/errors.js';
import { SOCKET_KINDS } from '../protocol/methods.js';
import { keyedHasher } from '../security/hash.js';
import { createServices } from '../services/handlers.js';
import type { Ports } from '../services/ports.js';
import { VERSION } from '../version.js';
import { openAudit } from './audit-choice.js';
import { daemonClock } from './clock.js';
import { createDispatcher } from './dispatch.js';
import { applyHeapPolicy } from './heap.js';
import { openKeys } from './key-ring.js';
import { Listener } from './listener.js';
import { acquireDataDirLock } from './lock.js';
import { nodeId } from './node-id.js';
import { logRequests } from './request-log.js';
import { checkSenders, createNoticeSender, createSenders } from './senders.js';
import { storeFigures } from './store-figures.js';
import { openStore } from './store-open.js';
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
    await ensureDir(config.dataDir, 0o700, log);
    await ensureDir(config.runDir, 0o750, log);
    const unlock = await acquireDataDirLock(config.dataDir);
    cleanups.push(unlock);

    // Only daemons that share a store need to tell themselves apart in it.
    const node = config.store.backend === 'file' ? 'local' : await nodeId(config.dataDir);
    const store = await openStore(config, log);
    cleanups.push(() => store.close());
    const { state, facts } = store;
    const clock = daemonClock(log, store.measureClock === null || store.clock === null ? null : { measure: store.measureClock, first: store.clock });
    cleanups.push(async () => clock.stop());
    const keys = await openKeys(config, facts.backend, state, node, clock.now, log);
    cleanups.push(() => keys.stop());
    const audit = await openAudit({ config, backend: facts.backend, node, state, db: store.db, now: () => Date.now() + clock.offsetMs(), log });
    // Closed before the store (cleanups run in reverse): closing writes what is queued and, for the
    // file trail, anchors the final heads.
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
      storeFacts: facts,
      clock: clock.now,
      random: { bytes: (n) => randomBytes(n), int: (min, max) => randomInt(min, max) },
      country,
      secrets: keys.secrets,
      keys: keys.keys,
      hashes: keyedHasher((purpose) => keys.keyring.macKey(purpose)),
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
      store: storeFigures(state, facts, log),
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
      store: facts.location,
      backend: facts.backend,
      ...(facts.backend === 'file' ? {} : { node }),
      adminSocket: config.sockets.admin.path,
      hookSocket: config.sockets.hook.path,
      selfSocket: config.sockets.self.path,
      // Counting a database's mailboxes is not free: the file store's count only.
      ...(facts.backend === 'file' ? { mailboxes: await state.countMailboxes() } : {}),
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

