// A prom-client Histogram whose buckets are read from memfa's own tally at scrape time instead of
// being observed one value at a time (see tally.ts for why). The registry formats it like any
// other histogram; only where the numbers come from differs.
import { Histogram } from 'prom-client';
import type { LatencySeries } from './tally.js';

interface ExportValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

export class TalliedHistogram<T extends string> extends Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly metricName: string;
  private readonly helpText: string;

  constructor(
    config: { name: string; help: string; labelNames: readonly T[]; buckets: readonly number[] },
    private readonly read: () => LatencySeries[],
    private readonly labelOf: (s: LatencySeries) => Record<T, string>,
  ) {
    super({ name: config.name, help: config.help, labelNames: config.labelNames, buckets: [...config.buckets], registers: [] });
    this.bounds = config.buckets;
    this.metricName = config.name;
    this.helpText = config.help;
  }

  /**
   * What prom-client's registry reads to render a histogram (and get() reads too): the buckets,
   * +Inf, _sum and _count of each series. Checked against the tally in test/metrics.test.ts, so
   * that a prom-client whose histograms render otherwise fails there, not in production.
   */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: ExportValue[]; aggregator: 'sum' }> {
    const values: ExportValue[] = [];
    const name = this.metricName;
    for (const s of this.read()) {
      const labels = this.labelOf(s);
      this.bounds.forEach((le, i) => values.push({ labels: { ...labels, le }, sharedLabels: {}, value: s.cumulative[i]!, metricName: `${name}_bucket` }));
      values.push({ labels: { ...labels, le: '+Inf' }, sharedLabels: {}, value: s.count, metricName: `${name}_bucket` });
      values.push({ labels: { ...labels }, sharedLabels: {}, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: { ...labels }, sharedLabels: {}, value: s.count, metricName: `${name}_count` });
    }
    return { name, help: this.helpText, type: 'histogram', values, aggregator: 'sum' };
  }
}
