// The method catalogue: every JSON-RPC method memfa speaks, which sockets expose it, the schema
// of its parameters and the type of its result (the shapes themselves are in results.ts). Client
// and daemon both import this module.
import type {
  AdminAddResult,
  AdminListResult,
  AdminRemoveResult,
  AppPasswordAdded,
  AppPasswordList,
  AppPasswordRevoked,
  AuditQueryResult,
  AuditVerifyResult,
  DomainListResult,
  DomainRemoveResult,
  DomainView,
  EnrolConfirmResult,
  EnrolResult,
  ExplainResult,
  ForgetLocationsResult,
  GlobalView,
  ImportResult,
  IpBlockClearResult,
  IpBlockListResult,
  KeyAddResult,
  KeyRotateResult,
  LoginCheckResult,
  MailboxListResult,
  MailboxRemoveResult,
  MailboxView,
  MetricsResult,
  PingResult,
  ProtocolExplainResult,
  ProvidersListResult,
  ProvidersSetResult,
  ProviderTestResult,
  RecoveryCodesResult,
  ResetResult,
  SelfCodeSent,
  SelfView,
  SetWarnings,
  StatusResult,
  UnlockResult,
  VerifyResult,
} from './results.js';
import { arr, bool, int, json, nullable, obj, optional, str, type Infer, type Schema } from './schema.js';
import { APP_PROTOCOLS, CHALLENGE_MODES, CODE_PROVIDERS, POLICY_NAMES, PROVIDERS, orInherit } from './vocabulary.js';

/**
 * Sockets by privilege: `admin` (every method; platform administrators), `hook` (what a login
 * needs; the mail server's group), `self` (self-service for the webmail back end's group). A login
 * hook cannot change anyone's MFA, and the webmail cannot answer logins.
 */
export const SOCKET_KINDS = ['admin', 'hook', 'self'] as const;
export type SocketKind = (typeof SOCKET_KINDS)[number];

/**
 * A method's result type, carried by the catalogue for the compiler only (ResultOf reads it): the
 * value is the same empty object for every method. A method without one does not compile.
 */
declare const RESULT: unique symbol;
export interface Returns<T> {
  readonly [RESULT]?: T;
}
const NO_VALUE: Returns<never> = Object.freeze({});
function returns<T>(): Returns<T> {
  return NO_VALUE;
}

const address = str({ max: 254, min: 1 });
const ip = str({ max: 64, min: 1 });
const code = str({ max: 64, min: 1 });
const domain = str({ max: 253, min: 1 });
const protocol = str({ oneOf: APP_PROTOCOLS });

// An app password's description (core/app-passwords.ts checks each field further).
const appPasswordFields = {
  name: str({ max: 128, min: 1 }),
  protocols: optional(arr(str({ max: 16, min: 1 }), { max: 8 })),
  networks: optional(arr(str({ max: 64, min: 1 }), { max: 32 })),
  expires: optional(nullable(str({ max: 40, min: 1 }))),
};
const revokeFields = { idOrName: optional(str({ max: 128, min: 1 })), all: optional(bool()) };

/**
 * `currentCode` (self.set, self.enroll.start, self.app-password.add, self.recovery.generate): proof of the mailbox's current second factor, which
 * a change that replaces or removes it needs on the self socket (see services/proof.ts).
 *
 * `send: false` (verify): decide without sending a code, creating a pending enrolment or counting
 * anything, for a hook that cannot answer a challenge.
 *
 * `password` (login.check): the password of a mail-protocol login, never logged or audited; only
 * one of an app password's shape is hashed.
 *
 * `delegable`: a domain administrator may call the method on the hook socket by adding
 * `"auth": "<token>"` to the parameters; the daemon then limits it to the token's domains.
 */
export const METHODS = {
  ping: { sockets: ['admin', 'hook', 'self'], params: obj({}), result: returns<PingResult>() },
  status: { sockets: ['admin'], params: obj({}), result: returns<StatusResult>() },
  // Counts only, no mailbox or client address: monitoring in the mail server's group may read them.
  metrics: { sockets: ['admin', 'hook'], params: obj({}), result: returns<MetricsResult>() },
  verify: {
    sockets: ['admin', 'hook'],
    params: obj({ user: address, ip, code: optional(code), send: optional(bool()) }),
    result: returns<VerifyResult>(),
  },
  'login.check': {
    sockets: ['admin', 'hook'],
    params: obj({ user: address, ip, protocol, password: str({ max: 1024, allowControl: true }) }),
    result: returns<LoginCheckResult>(),
  },
  explain: { sockets: ['admin'], delegable: true, params: obj({ address, ip, protocol: optional(protocol) }), result: returns<ExplainResult | ProtocolExplainResult>() },
  'mailbox.set': {
    sockets: ['admin'],
    delegable: true,
    params: obj({ address, settings: optional(json()), phone: optional(nullable(str({ max: 32 }))), altEmail: optional(nullable(str({ max: 254 }))) }),
    result: returns<MailboxView & SetWarnings>(),
  },
  'mailbox.show': { sockets: ['admin'], delegable: true, params: obj({ address }), result: returns<MailboxView>() },
  'mailbox.list': {
    sockets: ['admin'],
    delegable: true,
    params: obj({
      domain: optional(domain),
      limit: optional(int({ min: 1, max: 100000 })),
      after: optional(address),
      locked: optional(bool()),
      notEnrolled: optional(bool()),
      pending: optional(bool()),
      provider: optional(str({ oneOf: PROVIDERS })),
    }),
    result: returns<MailboxListResult>(),
  },
  'mailbox.remove': { sockets: ['admin'], delegable: true, params: obj({ address }), result: returns<MailboxRemoveResult>() },
  // Migration from other MFA tools (memfa import). `secret` is base32; the totp parameters are the
  // source's, refused unless they match the configuration.
  'mailbox.import': {
    sockets: ['admin'],
    params: obj({
      address,
      secret: str({ max: 256, min: 1 }),
      recoveryCodes: optional(arr(str({ max: 64, min: 1 }), { max: 100 })),
      phone: optional(str({ max: 32 })),
      altEmail: optional(str({ max: 254 })),
      period: optional(int({ min: 1, max: 3600 })),
      digits: optional(int({ min: 1, max: 10 })),
      algorithm: optional(str({ max: 16, min: 1 })),
      replace: optional(bool()),
      dryRun: optional(bool()),
    }),
    result: returns<ImportResult>(),
  },
  'domain.set': { sockets: ['admin'], delegable: true, params: obj({ domain, settings: json() }), result: returns<DomainView & SetWarnings>() },
  'domain.show': { sockets: ['admin'], delegable: true, params: obj({ domain }), result: returns<DomainView>() },
  'domain.list': { sockets: ['admin'], delegable: true, params: obj({}), result: returns<DomainListResult>() },
  'domain.remove': { sockets: ['admin'], delegable: true, params: obj({ domain }), result: returns<DomainRemoveResult>() },
  'global.set': { sockets: ['admin'], params: obj({ settings: json() }), result: returns<GlobalView & SetWarnings>() },
  'global.show': { sockets: ['admin'], params: obj({}), result: returns<GlobalView>() },
  'enroll.start': { sockets: ['admin'], delegable: true, params: obj({ address, restart: optional(bool()) }), result: returns<EnrolResult>() },
  'enroll.confirm': { sockets: ['admin'], delegable: true, params: obj({ address, code: optional(code), force: optional(bool()) }), result: returns<EnrolConfirmResult>() },
  reset: { sockets: ['admin'], delegable: true, params: obj({ address, secret: optional(bool()), locations: optional(bool()) }), result: returns<ResetResult>() },
  unlock: { sockets: ['admin'], delegable: true, params: obj({ address }), result: returns<UnlockResult>() },
  'ip-block.list': { sockets: ['admin'], params: obj({ limit: optional(int({ min: 1, max: 100000 })) }), result: returns<IpBlockListResult>() },
  'ip-block.clear': { sockets: ['admin'], params: obj({ source: optional(ip), all: optional(bool()) }), result: returns<IpBlockClearResult>() },
  'recovery.generate': { sockets: ['admin'], delegable: true, params: obj({ address }), result: returns<RecoveryCodesResult>() },
  'key.add': { sockets: ['admin'], params: obj({}), result: returns<KeyAddResult>() },
  'app-password.add': { sockets: ['admin'], delegable: true, params: obj({ address, ...appPasswordFields }), result: returns<AppPasswordAdded>() },
  'app-password.list': { sockets: ['admin'], delegable: true, params: obj({ address }), result: returns<AppPasswordList>() },
  'app-password.revoke': { sockets: ['admin'], delegable: true, params: obj({ address, ...revokeFields }), result: returns<AppPasswordRevoked>() },
  'key.rotate': { sockets: ['admin'], params: obj({}), result: returns<KeyRotateResult>() },
  'audit.query': {
    sockets: ['admin'],
    // A domain administrator gets only the entries of their domains' mailboxes (security-admin.ts).
    delegable: true,
    params: obj({
      mailbox: optional(address),
      since: optional(str({ max: 64 })),
      until: optional(str({ max: 64 })),
      result: optional(str({ max: 32 })),
      action: optional(str({ max: 64 })),
      limit: optional(int({ min: 1, max: 100000 })),
    }),
    result: returns<AuditQueryResult>(),
  },
  'audit.verify': { sockets: ['admin'], params: obj({}), result: returns<AuditVerifyResult>() },
  'provider.test': { sockets: ['admin'], params: obj({ provider: str({ oneOf: CODE_PROVIDERS }), to: str({ max: 254, min: 1 }) }), result: returns<ProviderTestResult>() },
  'providers.list': { sockets: ['admin'], params: obj({}), result: returns<ProvidersListResult>() },
  'providers.set': {
    sockets: ['admin'],
    params: obj({ provider: str({ oneOf: POLICY_NAMES }), enabled: optional(bool()), domainAdmins: optional(bool()), endUsers: optional(bool()) }),
    result: returns<ProvidersSetResult>(),
  },
  'admin.add': { sockets: ['admin'], params: obj({ name: str({ max: 64, min: 1 }), domains: arr(domain, { max: 1000 }) }), result: returns<AdminAddResult>() },
  'admin.list': { sockets: ['admin'], params: obj({}), result: returns<AdminListResult>() },
  'admin.remove': { sockets: ['admin'], params: obj({ name: str({ max: 64, min: 1 }) }), result: returns<AdminRemoveResult>() },
  'self.show': { sockets: ['admin', 'self'], params: obj({ user: address }), result: returns<SelfView>() },
  'self.set': {
    sockets: ['admin', 'self'],
    params: obj({
      user: address,
      challenge: optional(str({ oneOf: orInherit(CHALLENGE_MODES) })),
      provider: optional(str({ oneOf: orInherit(PROVIDERS) })),
      phone: optional(nullable(str({ max: 32 }))),
      altEmail: optional(nullable(str({ max: 254 }))),
      currentCode: optional(code),
    }),
    result: returns<SelfView>(),
  },
  'self.code.send': { sockets: ['admin', 'self'], params: obj({ user: address, ip: optional(ip) }), result: returns<SelfCodeSent>() },
  'self.enroll.start': { sockets: ['admin', 'self'], params: obj({ user: address, restart: optional(bool()), currentCode: optional(code) }), result: returns<EnrolResult>() },
  'self.enroll.confirm': { sockets: ['admin', 'self'], params: obj({ user: address, code }), result: returns<EnrolConfirmResult>() },
  'self.forget-locations': { sockets: ['admin', 'self'], params: obj({ user: address }), result: returns<ForgetLocationsResult>() },
  'self.app-password.add': { sockets: ['admin', 'self'], params: obj({ user: address, ...appPasswordFields, currentCode: optional(code) }), result: returns<AppPasswordAdded>() },
  'self.app-password.list': { sockets: ['admin', 'self'], params: obj({ user: address }), result: returns<AppPasswordList>() },
  'self.app-password.revoke': { sockets: ['admin', 'self'], params: obj({ user: address, ...revokeFields }), result: returns<AppPasswordRevoked>() },
  'self.recovery.generate': { sockets: ['admin', 'self'], params: obj({ user: address, currentCode: optional(code) }), result: returns<RecoveryCodesResult>() },
} as const satisfies Record<string, { sockets: readonly SocketKind[]; delegable?: true; params: Schema<unknown>; result: Returns<unknown> }>;

export type MethodName = keyof typeof METHODS;
export type ParamsOf<M extends MethodName> = Infer<(typeof METHODS)[M]['params']>;
/** What the daemon answers to `M`: its handler must return it (daemon/dispatch.ts), the client's call returns it. */
export type ResultOf<M extends MethodName> = (typeof METHODS)[M]['result'] extends Returns<infer R> ? R : never;

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(METHODS, name);
}

export function isDelegable(method: MethodName): boolean {
  return (METHODS[method] as { delegable?: true }).delegable === true;
}

export function methodAllowedOn(method: MethodName, socket: SocketKind): boolean {
  return (METHODS[method].sockets as readonly SocketKind[]).includes(socket);
}
