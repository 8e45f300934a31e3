// The method catalogue: every JSON-RPC method memfa speaks, which sockets expose it and the schema
// of its parameters. The shapes of the results are declared apart, in results.ts. Client and daemon
// both import this module.
import { arr, bool, int, json, nullable, obj, optional, str, type Infer, type Schema } from './schema.js';
import { APP_PROTOCOLS, CHALLENGE_MODES, CODE_PROVIDERS, POLICY_NAMES, PROVIDERS, orInherit } from './vocabulary.js';

/**
 * Sockets by privilege: `admin` (every method; platform administrators), `hook` (what a login
 * needs; the mail server's group), `self` (self-service for the webmail back end's group). A login
 * hook cannot change anyone's MFA, and the webmail cannot answer logins.
 */
export const SOCKET_KINDS = ['admin', 'hook', 'self'] as const;
export type SocketKind = (typeof SOCKET_KINDS)[number];

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
  ping: { sockets: ['admin', 'hook', 'self'], params: obj({}) },
  status: { sockets: ['admin'], params: obj({}) },
  verify: {
    sockets: ['admin', 'hook'],
    params: obj({ user: address, ip, code: optional(code), send: optional(bool()) }),
  },
  'login.check': {
    sockets: ['admin', 'hook'],
    params: obj({ user: address, ip, protocol, password: str({ max: 1024, allowControl: true }) }),
  },
  explain: { sockets: ['admin'], delegable: true, params: obj({ address, ip, protocol: optional(protocol) }) },
  'mailbox.set': {
    sockets: ['admin'],
    delegable: true,
    params: obj({ address, settings: optional(json()), phone: optional(nullable(str({ max: 32 }))), altEmail: optional(nullable(str({ max: 254 }))) }),
  },
  'mailbox.show': { sockets: ['admin'], delegable: true, params: obj({ address }) },
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
  },
  'mailbox.remove': { sockets: ['admin'], delegable: true, params: obj({ address }) },
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
  },
  'domain.set': { sockets: ['admin'], delegable: true, params: obj({ domain, settings: json() }) },
  'domain.show': { sockets: ['admin'], delegable: true, params: obj({ domain }) },
  'domain.list': { sockets: ['admin'], delegable: true, params: obj({}) },
  'domain.remove': { sockets: ['admin'], delegable: true, params: obj({ domain }) },
  'global.set': { sockets: ['admin'], params: obj({ settings: json() }) },
  'global.show': { sockets: ['admin'], params: obj({}) },
  'enroll.start': { sockets: ['admin'], delegable: true, params: obj({ address, restart: optional(bool()) }) },
  'enroll.confirm': { sockets: ['admin'], delegable: true, params: obj({ address, code: optional(code), force: optional(bool()) }) },
  reset: { sockets: ['admin'], delegable: true, params: obj({ address, secret: optional(bool()), locations: optional(bool()) }) },
  unlock: { sockets: ['admin'], delegable: true, params: obj({ address }) },
  'ip-block.list': { sockets: ['admin'], params: obj({ limit: optional(int({ min: 1, max: 100000 })) }) },
  'ip-block.clear': { sockets: ['admin'], params: obj({ source: optional(ip), all: optional(bool()) }) },
  'recovery.generate': { sockets: ['admin'], delegable: true, params: obj({ address }) },
  'key.add': { sockets: ['admin'], params: obj({}) },
  'app-password.add': { sockets: ['admin'], delegable: true, params: obj({ address, ...appPasswordFields }) },
  'app-password.list': { sockets: ['admin'], delegable: true, params: obj({ address }) },
  'app-password.revoke': { sockets: ['admin'], delegable: true, params: obj({ address, ...revokeFields }) },
  'key.rotate': { sockets: ['admin'], params: obj({}) },
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
  },
  'audit.verify': { sockets: ['admin'], params: obj({}) },
  'provider.test': { sockets: ['admin'], params: obj({ provider: str({ oneOf: CODE_PROVIDERS }), to: str({ max: 254, min: 1 }) }) },
  'providers.list': { sockets: ['admin'], params: obj({}) },
  'providers.set': {
    sockets: ['admin'],
    params: obj({ provider: str({ oneOf: POLICY_NAMES }), enabled: optional(bool()), domainAdmins: optional(bool()), endUsers: optional(bool()) }),
  },
  'admin.add': { sockets: ['admin'], params: obj({ name: str({ max: 64, min: 1 }), domains: arr(domain, { max: 1000 }) }) },
  'admin.list': { sockets: ['admin'], params: obj({}) },
  'admin.remove': { sockets: ['admin'], params: obj({ name: str({ max: 64, min: 1 }) }) },
  'self.show': { sockets: ['admin', 'self'], params: obj({ user: address }) },
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
  },
  'self.code.send': { sockets: ['admin', 'self'], params: obj({ user: address, ip: optional(ip) }) },
  'self.enroll.start': { sockets: ['admin', 'self'], params: obj({ user: address, restart: optional(bool()), currentCode: optional(code) }) },
  'self.enroll.confirm': { sockets: ['admin', 'self'], params: obj({ user: address, code }) },
  'self.forget-locations': { sockets: ['admin', 'self'], params: obj({ user: address }) },
  'self.app-password.add': { sockets: ['admin', 'self'], params: obj({ user: address, ...appPasswordFields, currentCode: optional(code) }) },
  'self.app-password.list': { sockets: ['admin', 'self'], params: obj({ user: address }) },
  'self.app-password.revoke': { sockets: ['admin', 'self'], params: obj({ user: address, ...revokeFields }) },
  'self.recovery.generate': { sockets: ['admin', 'self'], params: obj({ user: address, currentCode: optional(code) }) },
} as const satisfies Record<string, { sockets: readonly SocketKind[]; delegable?: true; params: Schema<unknown> }>;

export type MethodName = keyof typeof METHODS;
export type ParamsOf<M extends MethodName> = Infer<(typeof METHODS)[M]['params']>;

export function isMethodName(name: string): name is MethodName {
  return Object.prototype.hasOwnProperty.call(METHODS, name);
}

export function isDelegable(method: MethodName): boolean {
  return (METHODS[method] as { delegable?: true }).delegable === true;
}

export function methodAllowedOn(method: MethodName, socket: SocketKind): boolean {
  return (METHODS[method].sockets as readonly SocketKind[]).includes(socket);
}
