// The daemon's metrics in the Prometheus text format, built with prom-client. Every value is read
// when scraped, from the tallies the request paths keep (tally.ts) and from what the daemon's
// parts already know; nothing here runs on a login. No label holds a mailbox or a client address:
// every label value comes from a short fixed list (results, reasons, providers, sockets, streams).
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditStatus, MetricsResult } from '../protocol/results.js';
import type { LockCounts } from '../services/lock-census.js';
import type { ListenerStats } from '../daemon/listener.js';
import type { GatewayWatch } from './gateways.js';
import { TalliedHistogram } from './tallied-histogram.js';
import { VERIFY_LATENCY_BUCKETS, type DeliveryTally, type LoginCheckTally, type VerifyTally } from './tally.js';

export interface StoreFigures {
  mailboxes: number;
  domains: number;
  /** The file store's snapshot and journal (services/store-ports.ts StoreFacts.fileSizes); 0 for a database. */
  snapshotBytes: number;
  journalBytes: number;
}

/** Where the figures come from; each is read at every scrape. */
export interface MetricsSources {
  version: string;
  verify: VerifyTally;
  loginCheck: LoginCheckTally;
  deliveries: DeliveryTally;
  gateways: GatewayWatch;
  locks: () => LockCounts;
  store: () => StoreFigures;
  audit: () => AuditStatus;
  listeners: () => ListenerStats[];
}

export interface MetricFamily {
  name: string;
  type: string;
  labelNames: readonly string[];
}

export interface MetricsExposition {
  render(): Promise<MetricsResult>;
  /** Every metric family this exposition has (for the manual's check). */
  families(): MetricFamily[];
}

const SHED_REASONS = [
  ['frameTimeouts', 'frame-timeout'],
  ['evicted', 'evicted'],
  ['turnedAway', 'turned-away'],
] as const;

export function createExposition(src: MetricsSources): MetricsExposition {
  const register = new Registry();
  const registers = [register];
  // process_* and nodejs_*: CPU, memory, file descriptors, event loop delay, heap, GC.
  collectDefaultMetrics({ register });

  new Gauge({
    name: 'memfa_build_info',
    help: 'Always 1; the version of the running daemon is in its label.',
    labelNames: ['version'],
    registers,
    collect() {
      this.set({ version: src.version }, 1);
    },
  });

  new Counter({
    name: 'memfa_verify_answers_total',
    help: 'Verify answers by result (allow, deny, challenge, enroll, error) and reason (memfa(1), VERIFY REASONS; for error, the error code in lower case).',
    labelNames: ['result', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const c of src.verify.counts()) this.inc({ result: c.result, reason: c.reason }, c.count);
    },
  });

  register.registerMetric(
    new TalliedHistogram(
      {
        name: 'memfa_verify_duration_seconds',
        help: 'Time the daemon took to answer verify, from the request taken to the answer ready, by result.',
        labelNames: ['result'],
        buckets: VERIFY_LATENCY_BUCKETS,
      },
      () => src.verify.latency(),
      (s) => ({ result: s.result }),
    ),
  );

  new Counter({
    name: 'memfa_login_check_answers_total',
    help: 'login.check answers (mail-protocol logins) by protocol (imap, pop3, smtp, sieve, dav), result (allow, continue, deny, error) and reason (memfa(1), LOGIN CHECK).',
    labelNames: ['protocol', 'result', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const c of src.loginCheck.counts()) this.inc({ protocol: c.protocol, result: c.result, reason: c.reason }, c.count);
    },
  });

  register.registerMetric(
    new TalliedHistogram(
      {
        name: 'memfa_login_check_duration_seconds',
        help: 'Time the daemon took to answer login.check, from the request taken to the answer ready, by result (every protocol together).',
        labelNames: ['result'],
        buckets: VERIFY_LATENCY_BUCKETS,
      },
      () => src.loginCheck.latency(),
      (s) => ({ result: s.result }),
    ),
  );

  new Counter({
    name: 'memfa_code_deliveries_total',
    help: 'One-time codes handed to a gateway, by provider (sms, email) and outcome (sent: accepted by the gateway; failed).',
    labelNames: ['provider', 'outcome'],
    registers,
    collect() {
      this.reset();
      for (const d of src.deliveries.all()) this.inc({ provider: d.provider, outcome: d.outcome }, d.count);
    },
  });

  new Gauge({
    name: 'memfa_gateway_up',
    help: 'Whether the last check of a configured gateway succeeded (1) or not (0); checked again when a scrape finds it older than 60 s.',
    labelNames: ['provider', 'transport'],
    registers,
    collect() {
      this.reset();
      for (const g of src.gateways.states()) if (g.up !== null) this.set({ provider: g.provider, transport: g.transport }, g.up ? 1 : 0);
    },
  });

  new Gauge({
    name: 'memfa_gateway_last_check_timestamp_seconds',
    help: 'When the last check of a configured gateway answered (Unix time).',
    labelNames: ['provider'],
    registers,
    collect() {
      this.reset();
      for (const g of src.gateways.states()) if (g.checkedAt !== null) this.set({ provider: g.provider }, g.checkedAt / 1000);
    },
  });

  new Gauge({
    name: 'memfa_locked_mailboxes',
    help: 'Mailboxes locked now, by reason (lockout: for a while; hard-lock: until memfa unlock); counted at most every 30 s.',
    labelNames: ['reason'],
    registers,
    collect() {
      const l = src.locks();
      this.set({ reason: 'lockout' }, l.lockout);
      this.set({ reason: 'hard-lock' }, l.hardLock);
    },
  });

  new Gauge({
    name: 'memfa_blocked_sources',
    help: 'Client sources (addresses or networks, see lockout.ipv4Prefix) whose code checks are blocked now; counted at most every 30 s.',
    registers,
    collect() {
      this.set(src.locks().blockedSources);
    },
  });

  const storeGauge = (name: string, help: string, pick: (s: StoreFigures) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(pick(src.store()));
      },
    });
  storeGauge('memfa_store_mailboxes', 'Stored mailboxes.', (s) => s.mailboxes);
  storeGauge('memfa_store_domains', 'Stored domains.', (s) => s.domains);
  storeGauge('memfa_store_snapshot_bytes', 'Size of the store snapshot file as last written or read.', (s) => s.snapshotBytes);
  storeGauge('memfa_store_journal_bytes', 'Size of the store journal since the last compaction started.', (s) => s.journalBytes);

  const auditCounter = (name: string, help: string, pick: (s: AuditStatus['streams'][number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['stream'],
      registers,
      collect() {
        this.reset();
        for (const s of src.audit().streams) this.inc({ stream: s.name }, pick(s));
      },
    });
  auditCounter('memfa_audit_failed_writes_total', 'Failed write attempts of an audit stream (security, logins) since the daemon started.', (s) => s.failedWrites);
  auditCounter('memfa_audit_lost_lines_total', 'Audit lines that never reached their file since the daemon started.', (s) => s.droppedLines);
  auditCounter('memfa_audit_gaps_total', 'Breaks in an audit stream (removed or cut files) found since the daemon started.', (s) => s.gaps);

  new Gauge({
    name: 'memfa_connections',
    help: 'Connections open on a socket (admin, hook, self).',
    labelNames: ['socket'],
    registers,
    collect() {
      for (const l of src.listeners()) this.set({ socket: l.socket }, l.open);
    },
  });
  new Gauge({
    name: 'memfa_connections_waiting',
    help: 'Connections waiting for a slot on a socket (limits.maxConnections).',
    labelNames: ['socket'],
    registers,
    collect() {
      for (const l of src.listeners()) this.set({ socket: l.socket }, l.waiting);
    },
  });
  new Counter({
    name: 'memfa_connections_accepted_total',
    help: 'Connections accepted on a socket since the daemon started.',
    labelNames: ['socket'],
    registers,
    collect() {
      this.reset();
      for (const l of src.listeners()) this.inc({ socket: l.socket }, l.accepted);
    },
  });
  new Counter({
    name: 'memfa_connections_shed_total',
    help: 'Connections closed or turned away by the daemon, by socket and reason (frame-timeout, evicted, turned-away), as logged in connections-shed.',
    labelNames: ['socket', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const l of src.listeners()) for (const [field, reason] of SHED_REASONS) this.inc({ socket: l.socket, reason }, l[field]);
    },
  });

  return {
    async render() {
      return { contentType: register.contentType, text: await register.metrics() };
    },
    families: () =>
      register.getMetricsAsArray().map((m) => {
        // prom-client's metric objects carry these; its typings declare only some of them.
        const { name, type, labelNames } = m as unknown as { name: string; type: string; labelNames?: readonly string[] };
        return { name, type, labelNames: labelNames ?? [] };
      }),
  };
}
