// Figures for the metrics exposition without a daemon, each source answering a fixed value.
import { GatewayWatch } from '../../src/metrics/gateways.js';
import type { MetricsSources } from '../../src/metrics/registry.js';
import { DeliveryTally, LoginCheckTally, VerifyTally } from '../../src/metrics/tally.js';

export function stubSources(over: Partial<MetricsSources> = {}): MetricsSources {
  const deliveries = new DeliveryTally(['sms', 'email']);
  return {
    version: '9.9.9',
    verify: new VerifyTally(),
    loginCheck: new LoginCheckTally(),
    deliveries,
    gateways: new GatewayWatch(deliveries),
    locks: () => ({ lockout: 3, hardLock: 1, blockedSources: 2, countedAt: 0 }),
    store: () => ({ mailboxes: 7, domains: 2, snapshotBytes: 1000, journalBytes: 200 }),
    audit: () => ({
      failedWrites: 1,
      droppedLines: 4,
      streams: [
        { name: 'security', file: '/x', seq: 1, failedWrites: 1, droppedLines: 4, lastError: 'ENOSPC', gaps: 0 },
        { name: 'logins', file: '/y', seq: 9, failedWrites: 0, droppedLines: 0, lastError: null, gaps: 2 },
      ],
    }),
    listeners: () => [{ socket: 'hook', open: 3, waiting: 1, accepted: 40, frameTimeouts: 1, evicted: 2, turnedAway: 5 }],
    ...over,
  };
}
