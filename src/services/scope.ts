// What a caller may touch: the platform administrator everything, a domain administrator the
// mailboxes and settings of the domains of their token.
import { domainOf } from '../core/validate.js';
import { MemfaError } from '../protocol/errors.js';
import type { CallContext } from './ports.js';
import type { Role } from './policy.js';

export function roleOf(ctx: CallContext): Role {
  return ctx.scope ? 'domain-admin' : ctx.actor === 'self' ? 'end-user' : 'platform';
}

export function assertDomain(ctx: CallContext, domain: string): void {
  if (ctx.scope && !ctx.scope.domains.includes(domain)) {
    throw new MemfaError('FORBIDDEN', `administrator ${ctx.scope.admin} has no right to domain ${domain}`, { data: { right: `domain:${domain}` } });
  }
}

export function assertMailbox(ctx: CallContext, address: string): void {
  assertDomain(ctx, domainOf(address));
}
