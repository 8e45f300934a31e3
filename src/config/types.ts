// The validated configuration, after defaults are applied and paths resolved (see spec.ts).
import type { NoticeKind } from '../core/notices.js';
import type { ChallengeMode, PrimaryPasswordMode, ProviderName } from '../core/model.js';
import type { SocketKind } from '../protocol/methods.js';

export interface SocketConfig {
  path: string;
  mode: number;
  group: string | null;
  /** A mode wider than 0660 was meant (config/rules.ts). */
  allowWideMode: boolean;
}

export interface ProviderPolicyConfig {
  enabled: boolean;
  domainAdmins: boolean;
  endUsers: boolean;
}

export interface SmtpSettings {
  host: string;
  port: number;
  secure: 'tls' | 'starttls' | 'none';
  rejectUnauthorized: boolean;
  user: string | null;
  passwordFile: string | null;
  from: string;
  pool: boolean;
  maxConnections: number;
  timeoutMs: number;
  subject: string | null;
  text: string | null;
  html: string | null;
}

export interface SmppSettings {
  host: string;
  port: number;
  tls: boolean;
  rejectUnauthorized: boolean;
  systemId: string;
  passwordFile: string | null;
  systemType: string;
  bindMode: 'transmitter' | 'transceiver';
  sourceAddr: string;
  sourceTon: number;
  sourceNpi: number;
  destTon: number;
  destNpi: number;
  dataCoding: 0 | 1 | 3 | 8;
  enquireLinkMs: number;
  connectTimeoutMs: number;
  submitTimeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  template: string | null;
}

/** store.postgres: the shared database (memfa.conf(5)); paths resolved against the configuration file. */
export interface PostgresConfig {
  /** A host name or address, or the directory of the server's Unix socket (starts with '/'). */
  host: string;
  port: number;
  database: string;
  user: string;
  passwordFile: string | null;
  tls: 'verify-full' | 'require' | 'disable';
  caFile: string | null;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  /** How long a cached read-mostly value may be served (store/postgres/cache.ts). */
  cacheTtlMs: number;
  /** At most this many cached values; 0: no cache (and no listener). */
  cacheEntries: number;
}

export interface MemfaConfig {
  /** The file this configuration came from, or 'built-in defaults'. */
  source: string;
  dataDir: string;
  runDir: string;
  sockets: Record<SocketKind, SocketConfig>;
  limits: {
    maxFrameBytes: number;
    idleTimeoutMs: number;
    frameTimeoutMs: number;
    requestTimeoutMs: number;
    maxConnections: number;
    maxWaitingConnections: number;
    waitTimeoutMs: number;
    listenBacklog: number;
  };
  /** listen: HOST:PORT or a Unix socket path (resolved against runDir), or null for no HTTP listener. */
  metrics: { listen: string | null; allowNonLoopback: boolean };
  store: { backend: 'file' | 'postgres'; file: string; compactJournalBytes: number; postgres: PostgresConfig | null };
  keyFile: string;
  issuer: string;
  defaults: { challenge: ChallengeMode; provider: ProviderName; fallbackProvider: ProviderName | 'none'; usersMayConfigure: boolean; notifications: boolean; primaryPassword: PrimaryPasswordMode };
  totp: { algorithm: 'SHA1' | 'SHA256' | 'SHA512'; digits: number; period: number; window: number; enrolmentTtlSeconds: number };
  locations: { maxEntries: number; maxAgeDays: number };
  codes: { digits: number; ttlSeconds: number; maxTries: number; cooldownSeconds: number; hourlyLimit: number };
  lockout: {
    threshold: number;
    baseDelaySeconds: number;
    maxDelaySeconds: number;
    hardLockAfter: number;
    ipMaxFailures: number;
    ipDistinctMailboxes: number;
    ipWindowSeconds: number;
    ipBlockSeconds: number;
    /** Leading bits of a client IPv4 address that make one source for the throttle. */
    ipv4Prefix: number;
    /** Leading bits of a client IPv6 address that make one source for the throttle. */
    ipv6Prefix: number;
  };
  /** Who may create app passwords (as for a provider), how many a mailbox keeps, the throttle of wrong ones, how often their use is written. */
  appPasswords: ProviderPolicyConfig & { maxPerMailbox: number; mailboxMaxFailures: number; usageFlushSeconds: number };
  providers: {
    totp: ProviderPolicyConfig;
    sms: ProviderPolicyConfig & { transport: 'smpp' | 'log' };
    email: ProviderPolicyConfig & { transport: 'smtp' | 'log' };
  };
  smtp: SmtpSettings | null;
  smpp: SmppSettings | null;
  logTransport: { file: string };
  /** Security notices to mailbox owners (services/notify.ts); sent through smtp. */
  notifications: {
    support: string;
    maxPerKindPerDay: number;
    maxPending: number;
    maxAttempts: number;
    retryInitialSeconds: number;
    retryMaxSeconds: number;
    templates: Record<NoticeKind, { subject: string | null; text: string | null }>;
  };
  /** file, maxBytes, keep: the login stream; security: the stream of changes and security events. */
  audit: { file: string; maxBytes: number; keep: number; aggregateSeconds: number; security: { file: string; maxBytes: number; keep: number } };
  log: { level: 'debug' | 'info' | 'notice' | 'warn' | 'error' };
}
