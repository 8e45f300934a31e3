// Binds every protocol method to the service that answers it.
import type { Handlers } from '../daemon/dispatch.js';
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
import { ProviderPolicy } from './policy.js';
import { FactorProof } from './proof.js';
import type { Ports } from './ports.js';
import { testProvider } from './provider-test.js';
import { RecoveryCodes } from './recovery.js';
import { SecurityAdmin } from './security-admin.js';
import { SelfService } from './self.js';
import { SettingsAdmin } from './settings-admin.js';
import { daemonStatus, warnProvidersWithoutGateway } from './status.js';
import { Verifier } from './verify.js';

/** Every method but `metrics`, which the daemon answers itself (daemon/main.ts, metrics/). */
export type ServiceHandlers = Omit<Handlers, 'metrics'>;

export interface Services {
  handlers: ServiceHandlers;
  authenticate: DomainAdmins['authenticate'];
  /** Locked mailboxes and blocked sources, counted at a bounded cost (lock-census.ts). */
  census: LockCensus;
  /** Writes what the services keep to write later (app password usage); before the store closes. */
  close(): Promise<void>;
}

export function createServices(p: Ports): Services {
  const policy = new ProviderPolicy(p);
  warnProvidersWithoutGateway(p, policy);
  const settings = new SettingsAdmin(p, policy);
  const enrolment = new Enrolment(p);
  const codes = new OneTimeCodes(p, (provider) => policy.rights(provider).enabled);
  const recovery = new RecoveryCodes(p);
  const imports = new MailboxImport(p, recovery);
  const security = new SecurityAdmin(p);
  const admins = new DomainAdmins(p);
  const verifier = new Verifier(p, enrolment, codes, recovery, policy);
  const ops = new MailboxOps(p, verifier, codes);
  const ipBlocks = new IpBlocks(p, verifier.throttle);
  const proof = new FactorProof(p, codes, recovery);
  const self = new SelfService(p, enrolment, ops, policy, codes, proof);
  const usage = new AppPasswordUsage(p, p.config.appPasswords.usageFlushSeconds * 1000);
  const appPasswords = new AppPasswords(p, policy, usage);
  const loginCheck = new LoginCheck(p, appPasswords);
  const credentials = new SelfCredentials(p, appPasswords, recovery, proof);
  const handlers: ServiceHandlers = {
    ping: () => ({ pong: true, version: p.version, uptimeSeconds: Math.round((p.clock() - p.startedAt) / 1000) }),
    status: () => daemonStatus(p, policy),
    verify: (params, ctx) => verifier.verify(params, ctx),
    'login.check': (params, ctx) => loginCheck.check(params, ctx),
    explain: (params, ctx) => (params.protocol === undefined ? ops.explain(params, ctx) : loginCheck.explain({ ...params, protocol: params.protocol }, ctx)),
    'mailbox.set': (params, ctx) => settings.setMailbox(params, ctx),
    'mailbox.show': (params, ctx) => settings.showMailbox(params, ctx),
    'mailbox.list': (params, ctx) => settings.listMailboxes(params, ctx),
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
    'provider.test': (params, ctx) => testProvider(p, params, ctx),
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
  const census = new LockCensus(() => p.store.allMailboxes(), { states: () => p.state.unstoredFailureStates?.() ?? [] }, verifier.throttle, p.clock);
  return { handlers, authenticate: (token) => admins.authenticate(token), census, close: () => usage.close() };
}
