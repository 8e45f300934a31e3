// `mailbox.list`: one row per stored mailbox, and the filters an administrator combines to find
// the mailboxes that need attention (locked, not enrolled, a pending enrolment, a provider). The
// store selects and counts (MailboxSearch.findMailboxes); the rows are core/mailbox-row.ts's.
import { mailboxRow, type MailboxCriteria } from '../core/mailbox-row.js';
import type { LevelSettings } from '../core/model.js';
import { domainOf, normaliseDomain } from '../core/validate.js';
import type { MemfaConfig } from '../config/types.js';
import { invalidParams } from '../protocol/errors.js';
import type { MailboxListResult } from '../protocol/results.js';
import type { CallContext, Clock } from './ports.js';
import { assertDomain } from './scope.js';
import type { MailboxSearch, SettingsStore } from './store-ports.js';

/**
 * Each filter given keeps only the mailboxes whose row says so (true) or says otherwise (false);
 * the filters given must all hold (core/mailbox-row.ts MailboxCriteria).
 */
export type MailboxFilter = Pick<MailboxCriteria, 'locked' | 'notEnrolled' | 'pending' | 'provider'>;

export interface MailboxListPorts {
  config: MemfaConfig;
  clock: Clock;
  state: MailboxSearch & Pick<SettingsStore, 'getGlobal' | 'getDomain'>;
}

export class MailboxList {
  constructor(private readonly p: MailboxListPorts) {}

  async list(params: { domain?: string | undefined; limit?: number | undefined; after?: string | undefined } & MailboxFilter, ctx: CallContext): Promise<MailboxListResult> {
    const domain = params.domain === undefined ? undefined : normaliseDomain(params.domain);
    if (domain !== undefined) assertDomain(ctx, domain);
    else if (ctx.scope) {
      if (ctx.scope.domains.length !== 1) throw invalidParams('domain: give one of your domains with --domain', { param: 'domain' });
      return this.list({ ...params, domain: ctx.scope.domains[0] }, ctx);
    }
    const now = this.p.clock();
    const { locked, notEnrolled, pending, provider } = params;
    // With filters, total counts the mailboxes that pass them (in the domain, if one is given).
    const found = await this.p.state.findMailboxes({ domain, after: params.after, limit: params.limit, criteria: { locked, notEnrolled, pending, provider }, defaults: this.p.config.defaults, now });
    // The rows' settings: the global ones and those of each domain on the page, read once.
    const global = await this.p.state.getGlobal();
    const domains = new Map<string, LevelSettings | undefined>();
    for (const d of new Set(found.mailboxes.map((r) => domainOf(r.address)))) domains.set(d, (await this.p.state.getDomain(d))?.settings);
    return { total: found.total, mailboxes: found.mailboxes.map((r) => mailboxRow(this.p.config.defaults, global, domains.get(domainOf(r.address)), r, now)) };
  }
}
