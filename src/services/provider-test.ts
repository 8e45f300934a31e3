// `provider test`: sends a test message through a configured gateway, for administrators.
import { maskRecipient } from '../core/mask.js';
import { normaliseAddress } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import type { ProviderTestResult } from '../protocol/results.js';
import type { CodeProvider } from '../protocol/vocabulary.js';
import { phoneRules } from './phone-rules.js';
import type { AuditSink, CallContext, Clock, Ports } from './ports.js';

export interface ProviderTestPorts {
  clock: Clock;
  senders: Ports['senders'];
  audit: Pick<AuditSink, 'append'>;
}

export async function testProvider(p: ProviderTestPorts, params: { provider: CodeProvider; to: string }, ctx: CallContext): Promise<ProviderTestResult> {
  const provider = params.provider;
  const to = provider === 'sms' ? (await phoneRules()).normalisePhone(params.to, 'to') : normaliseAddress(params.to, 'to');
  const sender = p.senders[provider];
  if (sender === undefined) {
    throw new MemfaError('PROVIDER_DISABLED', `no ${provider} gateway is configured`, {
      hint: provider === 'sms' ? 'configure the "smpp" section (or providers.sms.transport "log")' : 'configure the "smtp" section (or providers.email.transport "log")',
    });
  }
  const started = p.clock();
  // An administrator's test means "try it now": the check brings a gateway known to be down back
  // up if it can (so that the send is not refused from a remembered state) and names why if not.
  const check = await sender.check();
  if (!check.ok) throw new MemfaError('DELIVERY_FAILED', check.error, { data: { provider, transport: sender.transport } });
  const sent = await sender.send({ kind: 'test', to, mailbox: to, expiresAt: started + 60_000 });
  await p.audit.append({ actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'provider.test', result: 'ok', details: { provider, to: maskRecipient(provider, to) } });
  return { provider, transport: sender.transport, to: maskRecipient(provider, to), ok: true, messageId: sent.messageId ?? null, ms: p.clock() - started };
}
