// Binds every protocol method to the service that answers it, and gives each service the ports
// it names (its own *Ports interface) out of what the daemon wires in (Ports).
import type { MethodName, ParamsOf, ResultOf } from '../protocol/methods.js';
import { DomainAdmins } from './admins.js';
import { AppPasswordUsage } from './app-password-usage.js';
import { AppPasswords } from './app-passwords.js';
import { LoginCheck } from './login-check.js';
import { SelfCredentials } from './self-credentials.js';
import { OneTimeCodes } from './codes.js';
import { Enrolment } from './enrol.js';
import { IpBlocks } from './ip-blocks.js';
import { LockCensus } from './lock-census.js';
import { MailboxImport } from './import.js';
import { MailboxOps } from './mailbox-ops.js';
import { MailboxList } from './mailbox-list.js';
import { Notifier } from './notify.js';
import { PlatformPolicy, type ProviderPolicy } from './policy.js';
import { FactorProof } from './proof.js';
import type { CallContext, Ports } from './ports.js';
import { testProvider } from './provider-test.js';
import { RecoveryCodes } from './recovery.js';
import { SecurityAdmin } from './security-admin.js';
import { SelfService } from './self.js';
import { SettingsAdmin } from './settings-admin.js';
import { daemonStatus, warnProvidersWithoutGateway } from './status.js';
import { Verifier } from './verify.js';

/** One handler per method, answering with the method's result type (protocol/methods.ts), at once or later. */
export type Handlers = { [M in MethodName]: (params: ParamsOf<M>, ctx: CallContext) => ResultOf<M> | Promise<ResultOf<M>> };

/** Every method but `metrics`, which the daemon answers itself (daemon/main.ts, metrics/). */
export type ServiceHandlers = Omit<Handlers, 'metrics'>;

export interface Services {
  handlers: ServiceHandlers;
  authenticate: DomainAdmins['authenticate'];
  /** Locked mailboxes and blocked sources, counted at a bounded cost (lock-census.ts). */
  census: LockCensus;
  /** Sends the security notices the services queue; the daemon starts and stops it. */
  notifier: Notifier;
  /** Stops the notifier and writes what the services keep to write later (app password usage); before the store closes. */
  close(): Promise<void>;
}

export function createServices(p: Ports): Services {
  const { config, clock, state, audit, random, secrets, hashes, country, log, senders } = p;
  const hasGateway = (provider: 'sms' | 'email') => senders[provider] !== undefined;
  // The provider policy as stored when each request runs: every service asks it (PlatformPolicy now/current).
  const policy = new PlatformPolicy({ config, clock, state, audit, hasGateway });
  const warn = (current: ProviderPolicy) => warnProvidersWithoutGateway({ senders, log }, current);
  const first = policy.now();
  if (first instanceof Promise) first.then(warn, (err: Error) => log.warn('provider-policy-unread', { error: err.message }));
  else warn(first);
  const settings = new SettingsAdmin({ config, clock, state, audit, policy });
  const mailboxList = new MailboxList({ config, clock, state });
  const notifier = new Notifier({ state, config, clock, audit, log }, p.notices);
  const enrolment = new Enrolment({ state, config, clock, random, secrets, audit, log }, notifier);
  const codes = new OneTimeCodes({ state, config, clock, random, secrets, hashes, log, senders }, async (provider) => (await policy.now()).rights(provider).enabled);
  const recovery = new RecoveryCodes({ state, hashes, random, clock, audit }, notifier);
  const imports = new MailboxImport({ config, clock, state, secrets, recovery, audit });
  // The holder of this daemon's job claims (a key rotation): unique among the daemons of a store.
  const holder = random.bytes(8).toString('hex');
  const security = new SecurityAdmin({ clock, state, keys: p.keys, audit, holder });
  const admins = new DomainAdmins({ clock, random, state, hashes, audit });
  const verifier = new Verifier({ state, config, clock, country, secrets, audit, log }, enrolment, codes, recovery, policy, notifier);
  const ops = new MailboxOps({ config, clock, country, state, audit }, verifier, policy, notifier);
  const ipBlocks = new IpBlocks({ clock, audit }, verifier.throttle);
  const proof = new FactorProof({ state, config, secrets, log }, codes, recovery, notifier);
  const self = new SelfService({ config, clock, country, state, audit }, enrolment, ops, policy, codes, proof);
  const usage = new AppPasswordUsage({ state, log }, config.appPasswords.usageFlushSeconds * 1000);
  const appPasswords = new AppPasswords({ config, clock, random, hashes, state, audit, policy }, usage, notifier);
  const loginCheck = new LoginCheck({ state, config, clock, country, audit, log }, appPasswords);
  const credentials = new SelfCredentials({ config, clock, state, audit }, appPasswords, recovery, proof, notifier);
  const handlers: ServiceHandlers = {
    ping: () => ({ pong: true, version: p.version, uptimeSeconds: Math.round((clock() - p.startedAt) / 1000) }),
    status: async () => daemonStatus({ config, clock, state, store: p.storeFacts, senders, audit, startedAt: p.startedAt, version: p.version }, await policy.current()),
    verify: (params, ctx) => verifier.verify(params, ctx),
    'login.check': (params, ctx) => loginCheck.check(params, ctx),
    explain: (params, ctx) => (params.protocol === undefined ? ops.explain(params, ctx) : loginCheck.explain({ ...params, protocol: params.protocol }, ctx)),
    'mailbox.set': (params, ctx) => settings.setMailbox(params, ctx),
    'mailbox.show': (params, ctx) => settings.showMailbox(params, ctx),
    'mailbox.list': (params, ctx) => mailboxList.list(params, ctx),
    'mailbox.remove': (params, ctx) => settings.removeMailbox(params, ctx),
    'mailbox.import': (params, ctx) => imports.import(params, ctx),
    'domain.set': (params, ctx) => settings.setDomain(params, ctx),
    'domain.show': (params, ctx) => settings.showDomain(params, ctx),
    'domain.list': (_params, ctx) => settings.listDomains(ctx),
    'domain.remove': (params, ctx) => settings.removeDomain(params, ctx),
    'global.set': (params, ctx) => settings.setGlobal(params, ctx),
    'global.show': () => settings.showGlobal(),
    'enroll.start': (params, ctx) => enrolment.start(params, ctx),
    'enroll.confirm': (params, ctx) => enrolment.confirm(params, ctx),
    reset: (params, ctx) => ops.reset(params, ctx),
    'provider.test': (params, ctx) => testProvider({ clock, senders, audit }, params, ctx),
    unlock: (params, ctx) => security.unlock(params, ctx),
    'ip-block.list': (params) => ipBlocks.list(params),
    'ip-block.clear': (params, ctx) => ipBlocks.clear(params, ctx),
    'recovery.generate': (params, ctx) => recovery.generate(params, ctx),
    'key.add': (_params, ctx) => security.addKey(ctx),
    'app-password.add': (params, ctx) => appPasswords.add(params, ctx),
    'app-password.list': (params, ctx) => appPasswords.list(params, ctx),
    'app-password.revoke': (params, ctx) => appPasswords.revoke(params, ctx),
    'key.rotate': (_params, ctx) => security.rotateKey(ctx),
    'audit.query': (params, ctx) => security.auditQuery(params, ctx),
    'audit.verify': () => security.auditVerify(),
    'providers.list': () => policy.list(),
    'providers.set': (params, ctx) => policy.change(params, ctx),
    'admin.add': (params, ctx) => admins.add(params, ctx),
    'admin.list': () => admins.list(),
    'admin.remove': (params, ctx) => admins.remove(params, ctx),
    'self.show': (params) => self.show(params),
    'self.set': (params, ctx) => self.set(params, ctx),
    'self.code.send': (params, ctx) => self.codeSend(params, ctx),
    'self.enroll.start': (params, ctx) => self.enrollStart(params, ctx),
    'self.enroll.confirm': (params, ctx) => self.enrollConfirm(params, ctx),
    'self.forget-locations': (params, ctx) => self.forgetLocations(params, ctx),
    'self.app-password.add': (params, ctx) => credentials.addAppPassword(params, ctx),
    'self.app-password.list': (params) => credentials.listAppPasswords(params),
    'self.app-password.revoke': (params, ctx) => credentials.revokeAppPassword(params, ctx),
    'self.recovery.generate': (params, ctx) => credentials.generateRecoveryCodes(params, ctx),
  };
  const census = new LockCensus(() => state.storedFailures?.() ?? [], { states: () => state.unstoredFailureStates?.() ?? [] }, verifier.throttle, clock, undefined, (now, maxAgeMs) => state.lockCounts?.(now, maxAgeMs, verifier.throttle.policy));
  const close = async () => {
    await notifier.stop();
    await usage.close();
  };
  return { handlers, authenticate: (token) => admins.authenticate(token), census, notifier, close };
}
