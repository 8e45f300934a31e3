// `status`: what an administrator checks first.
import type { StatusResult } from '../protocol/results.js';
import type { Ports } from './ports.js';
import type { ProviderPolicy } from './policy.js';

export async function daemonStatus(p: Ports, policy: ProviderPolicy): Promise<StatusResult> {
  const providers: StatusResult['providers'] = [];
  providers.push({ name: 'totp', enabled: policy.rights('totp').enabled, transport: 'none', gateway: 'not-needed' });
  for (const name of ['sms', 'email'] as const) {
    const enabled = policy.rights(name).enabled;
    const sender = p.senders[name];
    if (sender === undefined) {
      providers.push({ name, enabled, transport: p.config.providers[name].transport, gateway: 'unconfigured' });
      continue;
    }
    const check = await sender.check();
    const entry: StatusResult['providers'][number] = { name, enabled, transport: sender.transport, gateway: check.ok ? 'ok' : 'down' };
    if (!check.ok) entry.detail = check.error;
    providers.push(entry);
  }
  return {
    version: p.version,
    pid: process.pid,
    uptimeSeconds: Math.round((p.clock() - p.startedAt) / 1000),
    store: p.store.file,
    mailboxes: p.store.countMailboxes(),
    domains: p.store.listDomains().length,
    sockets: { admin: p.config.sockets.admin.path, hook: p.config.sockets.hook.path },
    providers,
    audit: p.audit.status(),
  };
}
