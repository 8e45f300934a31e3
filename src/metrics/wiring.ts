// The daemon's metrics put together: the tallies the request paths keep, the senders wrapped to
// count deliveries and remember their checks, and the exposition that reads them all. Created
// before the services (the senders go into their ports); the parts made later (services,
// listeners) are handed in once they exist.
import type { CallContext } from '../services/ports.js';
import type { Sender } from '../delivery/types.js';
import type { ParamsOf } from '../protocol/methods.js';
import type { LoginCheckResult, MetricsResult, VerifyResult } from '../protocol/results.js';
import { GatewayWatch } from './gateways.js';
import { createExposition, type MetricsExposition, type MetricsSources, type StoreFigures } from './registry.js';
import { DeliveryTally, LoginCheckTally, VerifyTally } from './tally.js';
import { meteredLoginCheck, meteredVerify } from './login-meter.js';

type Senders = Partial<Record<'sms' | 'email', Sender>>;
type VerifyHandler = (params: ParamsOf<'verify'>, ctx: CallContext) => VerifyResult | Promise<VerifyResult>;
type LoginCheckHandler = (params: ParamsOf<'login.check'>, ctx: CallContext) => LoginCheckResult | Promise<LoginCheckResult>;

export class DaemonMetrics {
  private readonly verifyTally = new VerifyTally();
  private readonly loginCheckTally = new LoginCheckTally();
  private readonly deliveries = new DeliveryTally(['sms', 'email']);
  private readonly gateways = new GatewayWatch(this.deliveries);
  private sources: (Omit<MetricsSources, 'version' | 'verify' | 'loginCheck' | 'deliveries' | 'gateways' | 'store'> & { store: () => StoreFigures | Promise<StoreFigures> }) | null = null;
  /** The store's figures as read for the scrape being rendered (they may have to be asked for). */
  private storeNow: StoreFigures | null = null;
  private readonly exposition: MetricsExposition;

  constructor(version: string) {
    this.exposition = createExposition({
      version,
      verify: this.verifyTally,
      loginCheck: this.loginCheckTally,
      deliveries: this.deliveries,
      gateways: this.gateways,
      locks: () => this.from().locks(),
      store: () => {
        if (this.storeNow === null) throw new Error('the store figures are read before a scrape renders');
        return this.storeNow;
      },
      audit: () => this.from().audit(),
      listeners: () => this.from().listeners(),
    });
  }

  private from(): NonNullable<DaemonMetrics['sources']> {
    if (this.sources === null) throw new Error('metrics asked for before the daemon was wired');
    return this.sources;
  }

  /** The senders to give the services: deliveries counted, checks remembered. */
  watchSenders(senders: Senders): Senders {
    return this.gateways.watch(senders);
  }

  /** The verify handler, each answer counted with its latency. */
  meterVerify(handler: VerifyHandler): VerifyHandler {
    return meteredVerify(handler, this.verifyTally);
  }

  /** The login.check handler, each answer counted by protocol with its latency. */
  meterLoginCheck(handler: LoginCheckHandler): LoginCheckHandler {
    return meteredLoginCheck(handler, this.loginCheckTally);
  }

  /** The rest of the figures, once the parts that have them exist. */
  attach(sources: NonNullable<DaemonMetrics['sources']>): void {
    this.sources = sources;
  }

  async render(): Promise<MetricsResult> {
    this.storeNow = await this.from().store();
    return this.exposition.render();
  }
}
