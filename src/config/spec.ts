// The configuration schema: every key, its default and its check. The validator walks a file
// against this tree, collects every error (each naming its key) and rejects unknown keys.
import { CHALLENGE_MODES, FALLBACK_PROVIDERS, NOTICE_KINDS, PRIMARY_PASSWORD_MODES, PROVIDERS } from '../protocol/vocabulary.js';
import { parseListen } from './listen.js';

const listenProblem = (v: string): string | null => {
  const parsed = parseListen(v);
  return 'problem' in parsed ? parsed.problem : null;
};

export type Check = (value: unknown) => string | null;

export interface Leaf {
  kind: 'leaf';
  default: unknown;
  check: Check;
}

export interface Section {
  kind: 'section';
  fields: Record<string, Node>;
  /** A section that is absent (null) unless configured, e.g. smtp. */
  nullable?: boolean;
  /** Keys of a nullable section that must be given when it is configured. */
  required?: string[];
}

export type Node = Leaf | Section;

export const leaf = (def: unknown, check: Check): Leaf => ({ kind: 'leaf', default: def, check });
export const section = (fields: Record<string, Node>, opts: { nullable?: boolean; required?: string[] } = {}): Section => ({ kind: 'section', fields, ...opts });

export const isInt = (min: number, max: number): Check => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? null : `must be an integer from ${min} to ${max}`;
export const isBool: Check = (v) => (typeof v === 'boolean' ? null : 'must be true or false');
export const isString = (opts: { min?: number; max?: number } = {}): Check => (v) =>
  typeof v === 'string' && v.length >= (opts.min ?? 1) && v.length <= (opts.max ?? 4096) ? null : `must be a string of ${opts.min ?? 1} to ${opts.max ?? 4096} characters`;
export const isOneOf = (values: readonly string[]): Check => (v) => (typeof v === 'string' && values.includes(v) ? null : `must be one of ${values.join(', ')}`);
export const orNull = (check: Check): Check => (v) => (v === null ? null : check(v));
export const isIntOneOf = (values: readonly number[]): Check => (v) =>
  typeof v === 'number' && values.includes(v) ? null : `must be one of ${values.join(', ')}`;
export const isMode: Check = (v) => (typeof v === 'string' && /^0?[0-7]{3}$/.test(v) ? null : 'must be an octal file mode string such as "0660"');
/** The otpauth:// label is ISSUER:ACCOUNT; authenticator apps split it at the first colon. */
export const isIssuer: Check = (v) => isString({ max: 64 })(v) ?? ((v as string).includes(':') ? 'must not contain a colon (it separates the issuer from the account in the otpauth:// label)' : null);
export const isStringList: Check = (v) => (Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0 && s.length < 256) ? null : 'must be a list of strings');

/** Where the state is kept: the embedded file store, or a PostgreSQL database shared by several daemons. */
export const STORE_BACKENDS = ['file', 'postgres'] as const;
/** TLS to PostgreSQL: verify-full checks the certificate chain and the host name; require only encrypts. */
export const PG_TLS_MODES = ['verify-full', 'require', 'disable'] as const;

const providerSection = (enabled: boolean, transports: readonly string[], transport: string): Section =>
  section({
    enabled: leaf(enabled, isBool),
    domainAdmins: leaf(true, isBool),
    endUsers: leaf(true, isBool),
    ...(transports.length > 0 ? { transport: leaf(transport, isOneOf(transports)) } : {}),
  });

const socketSection = (): Section =>
  section({
    path: leaf(null, orNull(isString({ max: 100 }))),
    mode: leaf('0660', isMode),
    group: leaf(null, orNull(isString({ max: 64 }))),
    // A mode wider than 0660 is refused unless this says it is meant (config/rules.ts).
    allowWideMode: leaf(false, isBool),
  });

export const CONFIG_SPEC: Section = section({
  dataDir: leaf('/var/lib/memfa', isString()),
  runDir: leaf('/run/memfa', isString()),
  sockets: section({
    admin: socketSection(),
    hook: socketSection(),
    self: socketSection(),
  }),
  limits: section({
    maxFrameBytes: leaf(65536, isInt(1024, 16 * 1024 * 1024)),
    idleTimeoutMs: leaf(30000, isInt(100, 3600000)),
    frameTimeoutMs: leaf(5000, isInt(100, 600000)),
    requestTimeoutMs: leaf(15000, isInt(100, 600000)),
    maxConnections: leaf(512, isInt(1, 100000)),
    maxWaitingConnections: leaf(4096, isInt(0, 100000)),
    waitTimeoutMs: leaf(2000, isInt(10, 600000)),
    listenBacklog: leaf(4096, isInt(1, 65535)),
  }),
  metrics: section({
    // null: no HTTP listener (the metrics method on the hook and admin sockets is always there).
    listen: leaf(null, orNull((v) => isString({ max: 100 })(v) ?? listenProblem(v as string))),
    // A listener on an address other than loopback is refused unless this says it is meant (config/rules.ts).
    allowNonLoopback: leaf(false, isBool),
  }),
  store: section({
    backend: leaf('file', isOneOf(STORE_BACKENDS)),
    file: leaf('memfa.json', isString()),
    compactJournalBytes: leaf(64 * 1024 * 1024, isInt(4096, 1024 * 1024 * 1024)),
    postgres: section(
      {
        // A host name or address, or the directory of the server's Unix socket (an absolute path).
        host: leaf(null, isString({ max: 255 })),
        port: leaf(5432, isInt(1, 65535)),
        database: leaf('memfa', isString({ max: 63 })),
        user: leaf('memfa', isString({ max: 63 })),
        passwordFile: leaf(null, orNull(isString())),
        tls: leaf('verify-full', isOneOf(PG_TLS_MODES)),
        caFile: leaf(null, orNull(isString())),
        poolSize: leaf(10, isInt(1, 1000)),
        connectTimeoutMs: leaf(5000, isInt(100, 120000)),
        statementTimeoutMs: leaf(5000, isInt(100, 600000)),
        lockTimeoutMs: leaf(2000, isInt(10, 600000)),
        // The read cache of settings, policy and mailboxes' read-mostly parts (store/postgres/cache.ts).
        cacheTtlMs: leaf(30000, isInt(100, 60000)),
        cacheEntries: leaf(20000, isInt(0, 10_000_000)),
      },
      { nullable: true, required: ['host'] },
    ),
  }),
  keyFile: leaf(null, orNull(isString())),
  issuer: leaf('memfa', isIssuer),
  defaults: section({
    challenge: leaf('never', isOneOf(CHALLENGE_MODES)),
    provider: leaf('totp', isOneOf(PROVIDERS)),
    fallbackProvider: leaf('none', isOneOf(FALLBACK_PROVIDERS)),
    usersMayConfigure: leaf(true, isBool),
    notifications: leaf(true, isBool),
    primaryPassword: leaf('app-password', isOneOf(PRIMARY_PASSWORD_MODES)),
  }),
  totp: section({
    algorithm: leaf('SHA1', isOneOf(['SHA1', 'SHA256', 'SHA512'])),
    digits: leaf(6, isInt(6, 8)),
    period: leaf(30, isInt(15, 120)),
    window: leaf(1, isInt(0, 10)),
    enrolmentTtlSeconds: leaf(86400, isInt(60, 30 * 86400)),
  }),
  locations: section({
    maxEntries: leaf(20, isInt(1, 1000)),
    maxAgeDays: leaf(180, isInt(1, 3650)),
  }),
  codes: section({
    digits: leaf(6, isInt(6, 10)),
    ttlSeconds: leaf(300, isInt(30, 600)),
    maxTries: leaf(5, isInt(1, 20)),
    cooldownSeconds: leaf(30, isInt(0, 3600)),
    hourlyLimit: leaf(5, isInt(1, 1000)),
  }),
  lockout: section({
    threshold: leaf(5, isInt(1, 1000)),
    baseDelaySeconds: leaf(60, isInt(1, 86400)),
    maxDelaySeconds: leaf(3600, isInt(1, 7 * 86400)),
    hardLockAfter: leaf(100, isInt(2, 100000)),
    ipMaxFailures: leaf(20, isInt(1, 100000)),
    ipDistinctMailboxes: leaf(10, isInt(1, 100000)),
    ipWindowSeconds: leaf(900, isInt(1, 86400)),
    ipBlockSeconds: leaf(900, isInt(1, 86400)),
    ipv4Prefix: leaf(32, isInt(8, 32)),
    ipv6Prefix: leaf(64, isInt(32, 128)),
  }),
  appPasswords: section({
    enabled: leaf(true, isBool),
    domainAdmins: leaf(true, isBool),
    endUsers: leaf(true, isBool),
    maxPerMailbox: leaf(20, isInt(1, 100)),
    mailboxMaxFailures: leaf(50, isInt(1, 100000)),
    usageFlushSeconds: leaf(60, isInt(1, 3600)),
  }),
  providers: section({
    totp: providerSection(true, [], ''),
    sms: providerSection(false, ['smpp', 'log'], 'smpp'),
    email: providerSection(false, ['smtp', 'log'], 'smtp'),
  }),
  smtp: section(
    {
      host: leaf(null, isString({ max: 255 })),
      port: leaf(587, isInt(1, 65535)),
      secure: leaf('starttls', isOneOf(['tls', 'starttls', 'none'])),
      rejectUnauthorized: leaf(true, isBool),
      user: leaf(null, orNull(isString({ max: 255 }))),
      passwordFile: leaf(null, orNull(isString())),
      from: leaf(null, isString({ max: 255 })),
      pool: leaf(true, isBool),
      maxConnections: leaf(2, isInt(1, 100)),
      timeoutMs: leaf(10000, isInt(100, 120000)),
      subject: leaf(null, orNull(isString({ max: 255 }))),
      text: leaf(null, orNull(isString({ max: 10000 }))),
      html: leaf(null, orNull(isString({ max: 20000 }))),
    },
    { nullable: true, required: ['host', 'from'] },
  ),
  smpp: section(
    {
      host: leaf(null, isString({ max: 255 })),
      port: leaf(2775, isInt(1, 65535)),
      tls: leaf(false, isBool),
      rejectUnauthorized: leaf(true, isBool),
      systemId: leaf(null, isString({ max: 16 })),
      passwordFile: leaf(null, orNull(isString())),
      systemType: leaf('', (v) => (typeof v === 'string' && v.length <= 13 ? null : 'must be a string of at most 13 characters')),
      bindMode: leaf('transmitter', isOneOf(['transmitter', 'transceiver'])),
      sourceAddr: leaf('memfa', isString({ max: 21 })),
      sourceTon: leaf(5, isInt(0, 6)),
      sourceNpi: leaf(0, isInt(0, 18)),
      destTon: leaf(1, isInt(0, 6)),
      destNpi: leaf(1, isInt(0, 18)),
      // The codings delivery/types.ts can encode (SmppDataCoding): GSM default, ASCII, Latin-1, UCS-2.
      dataCoding: leaf(0, isIntOneOf([0, 1, 3, 8])),
      enquireLinkMs: leaf(30000, isInt(1000, 600000)),
      connectTimeoutMs: leaf(10000, isInt(100, 120000)),
      submitTimeoutMs: leaf(10000, isInt(100, 120000)),
      reconnectInitialMs: leaf(1000, isInt(10, 600000)),
      reconnectMaxMs: leaf(60000, isInt(10, 3600000)),
      template: leaf(null, orNull(isString({ max: 1000 }))),
    },
    { nullable: true, required: ['host', 'systemId'] },
  ),
  logTransport: section({ file: leaf('outbox.log', isString()) }),
  notifications: section({
    support: leaf('If this was not you, change your password now and tell your mail administrator.', isString({ max: 500 })),
    maxPerKindPerDay: leaf(3, isInt(1, 100)),
    maxPending: leaf(10000, isInt(1, 1000000)),
    maxAttempts: leaf(12, isInt(1, 100)),
    retryInitialSeconds: leaf(60, isInt(1, 86400)),
    retryMaxSeconds: leaf(3600, isInt(1, 7 * 86400)),
    // One subject and text per kind of notice; null: the built-in one (delivery/notice.ts).
    templates: section(Object.fromEntries(NOTICE_KINDS.map((kind) => [kind, section({ subject: leaf(null, orNull(isString({ max: 255 }))), text: leaf(null, orNull(isString({ max: 10000 }))) })]))),
  }),
  audit: section({
    file: leaf('audit.log', isString()),
    maxBytes: leaf(10 * 1024 * 1024, isInt(4096, 1024 * 1024 * 1024)),
    keep: leaf(5, isInt(1, 1000)),
    aggregateSeconds: leaf(60, isInt(0, 3600)),
    security: section({
      file: leaf('audit-security.log', isString()),
      maxBytes: leaf(10 * 1024 * 1024, isInt(4096, 1024 * 1024 * 1024)),
      keep: leaf(10, isInt(1, 1000)),
    }),
  }),
  log: section({ level: leaf('info', isOneOf(['debug', 'info', 'notice', 'warn', 'error'])) }),
});
