// `status`: what an administrator checks first. Each configured gateway is checked now (the
// senders' check() asks the server or gateway, never a remembered state), both at once, so the
// answer takes as long as the slower check, not their sum.
import { CODE_PROVIDERS, type CodeProvider } from '../core/model.js';
import type { StatusResult } from '../protocol/results.js';
import type { MemfaConfig } from '../config/types.js';
import type { AuditReader, Clock, Log, Ports } from './ports.js';
import type { ProviderPolicy } from './policy.js';
import type { MailboxStore, SettingsStore, StoreFacts } from './store-ports.js';

export interface StatusPorts {
  config: MemfaConfig;
  clock: Clock;
  state: Pick<MailboxStore, 'countMailboxes'> & Pick<SettingsStore, 'listDomains'>;
  /** Where the state is kept, as status names it (the store's file, or the database). */
  store: Pick<StoreFacts, 'backend' | 'location'>;
  senders: Ports['senders'];
  audit: Pick<AuditReader, 'status'>;
  startedAt: number;
  version: string;
}

type ProviderEntry = StatusResult['providers'][number];

/** What an enabled provider without a gateway means, for status and the start-up log. */
function withoutGateway(name: CodeProvider): string {
  return `enabled without a gateway: ${name === 'sms' ? 'smpp' : 'smtp'} is not configured, so verify answers provider-unusable (exit 78) where ${name} is needed`;
}

/** Logs, once at start, every enabled code provider that has no gateway to send through. */
export function warnProvidersWithoutGateway(p: { senders: Ports['senders']; log: Log }, policy: ProviderPolicy): void {
  for (const name of CODE_PROVIDERS) {
    if (policy.rights(name).enabled && p.senders[name] === undefined) p.log.warn('provider-without-gateway', { provider: name, why: withoutGateway(name) });
  }
}

async function gatewayEntry(p: StatusPorts, policy: ProviderPolicy, name: CodeProvider): Promise<ProviderEntry> {
  const enabled = policy.rights(name).enabled;
  const sender = p.senders[name];
  if (sender === undefined) {
    const entry: ProviderEntry = { name, enabled, transport: p.config.providers[name].transport, gateway: 'unconfigured' };
    if (enabled) entry.detail = withoutGateway(name);
    return entry;
  }
  const check = await sender.check();
  const entry: ProviderEntry = { name, enabled, transport: sender.transport, gateway: check.ok ? 'ok' : 'down' };
  if (!check.ok) entry.detail = check.error;
  return entry;
}

export async function daemonStatus(p: StatusPorts, policy: ProviderPolicy): Promise<StatusResult> {
  const [gateways, mailboxes, domains] = await Promise.all([Promise.all([gatewayEntry(p, policy, 'sms'), gatewayEntry(p, policy, 'email')]), p.state.countMailboxes(), p.state.listDomains()]);
  const providers: StatusResult['providers'] = [
    { name: 'totp', enabled: policy.rights('totp').enabled, transport: 'none', gateway: 'not-needed' },
    ...gateways,
  ];
  return {
    version: p.version,
    pid: process.pid,
    uptimeSeconds: Math.round((p.clock() - p.startedAt) / 1000),
    store: p.store.location,
    storeBackend: p.store.backend,
    mailboxes,
    domains: domains.length,
    sockets: { admin: p.config.sockets.admin.path, hook: p.config.sockets.hook.path, self: p.config.sockets.self.path },
    providers,
    audit: p.audit.status(),
  };
}
