// Binds every protocol method to the service that answers it.
import type { Handlers } from '../daemon/dispatch.js';
import { OneTimeCodes } from './codes.js';
import { Enrolment } from './enrol.js';
import { MailboxOps } from './mailbox-ops.js';
import type { Ports } from './ports.js';
import { SettingsAdmin } from './settings-admin.js';
import { daemonStatus } from './status.js';
import { testProvider } from './provider-test.js';
import { Verifier } from './verify.js';
import { RecoveryCodes } from './recovery.js';
import { SecurityAdmin } from './security-admin.js';

export function createHandlers(p: Ports): Handlers {
  const settings = new SettingsAdmin(p);
  const enrolment = new Enrolment(p);
  const codes = new OneTimeCodes(p);
  const recovery = new RecoveryCodes(p);
  const security = new SecurityAdmin(p);
  const verifier = new Verifier(p, enrolment, codes, recovery);
  const ops = new MailboxOps(p, verifier, codes);
  return {
    ping: () => ({ pong: true }),
    status: () => daemonStatus(p),
    verify: (params, ctx) => verifier.verify(params, ctx),
    explain: (params) => ops.explain(params),
    'mailbox.set': (params, ctx) => settings.setMailbox(params, ctx),
    'mailbox.show': (params) => settings.showMailbox(params),
    'mailbox.list': (params) => settings.listMailboxes(params),
    'mailbox.remove': (params, ctx) => settings.removeMailbox(params, ctx),
    'domain.set': (params, ctx) => settings.setDomain(params, ctx),
    'domain.show': (params) => settings.showDomain(params),
    'domain.list': () => settings.listDomains(),
    'domain.remove': (params, ctx) => settings.removeDomain(params, ctx),
    'global.set': (params, ctx) => settings.setGlobal(params, ctx),
    'global.show': () => settings.showGlobal(),
    'enroll.start': (params, ctx) => enrolment.start(params, ctx),
    'enroll.confirm': (params, ctx) => enrolment.confirm(params, ctx),
    reset: (params, ctx) => ops.reset(params, ctx),
    'provider.test': (params, ctx) => testProvider(p, params, ctx),
    unlock: (params, ctx) => security.unlock(params, ctx),
    'recovery.generate': (params, ctx) => recovery.generate(params, ctx),
    'key.rotate': (_params, ctx) => security.rotateKey(ctx),
    'audit.query': (params) => security.auditQuery(params),
    'audit.verify': () => security.auditVerify(),
  };
}
