// `ip-block.list` and `ip-block.clear`: the per-source throttle of code checks (ip-throttle.ts) as
// an administrator sees it. The throttle's state is the state ports'; every clear is audited.
import { MemfaError, invalidParams } from '../protocol/errors.js';
import type { IpBlockClearResult, IpBlockListResult } from '../protocol/results.js';
import type { SourceThrottle } from './ip-throttle.js';
import type { AuditSink, CallContext } from './ports.js';

export interface IpBlockPorts {
  clock: () => number;
  audit: Pick<AuditSink, 'append'>;
}

export class IpBlocks {
  constructor(
    private readonly p: IpBlockPorts,
    private readonly throttle: SourceThrottle,
  ) {}

  /** The blocked sources, the one whose block ends first first; at most `limit` (default 1000). */
  async list(params: { limit?: number | undefined }): Promise<IpBlockListResult> {
    const all = (await this.throttle.blocks(this.p.clock())).sort((a, b) => a.until - b.until || (a.source < b.source ? -1 : 1));
    return { total: all.length, blocks: all.slice(0, params.limit ?? 1000) };
  }

  async clear(params: { source?: string | undefined; all?: boolean | undefined }, ctx: CallContext): Promise<IpBlockClearResult> {
    const all = params.all === true;
    if (all === (params.source !== undefined)) throw invalidParams('give a source (an address or a source as ip-block list shows it), or all', { param: 'source' });
    const now = this.p.clock();
    const entry = { actor: ctx.actor, socket: ctx.socket, mailbox: null, action: 'ip-block.clear', result: 'ok' };
    if (all) {
      const cleared = await this.throttle.clearAll(now);
      await this.p.audit.append({ ...entry, details: { all: true, cleared } });
      return { all: true, cleared };
    }
    const source = this.throttle.sourceOf(params.source!);
    const was = await this.throttle.clear(source, now);
    if (was === null) throw new MemfaError('NOT_FOUND', `no block or failures kept for source ${source}`, { hint: 'memfa ip-block list shows the blocked sources' });
    await this.p.audit.append({ ...entry, ip: source.includes('/') ? null : source, details: { source, reason: was.block?.reason ?? null, until: was.block === null ? null : new Date(was.block.until).toISOString(), failures: was.failures } });
    return { source, blocked: was.block !== null, reason: was.block?.reason ?? null, until: was.block?.until ?? null, failures: was.failures, cleared: 1 };
  }
}
