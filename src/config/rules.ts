// Rules that span several keys, checked after every key has passed its own check: each problem
// names both keys, so that the daemon and `memfa config check` refuse a file that is valid key by
// key but makes no sense as a whole.

import { isLoopback, parseListen } from './listen.js';

/** A socket mode may grant at most read and write to the owner and the group. */
export const WIDEST_SOCKET_MODE = 0o660;

/** The merged, unresolved configuration as the rules read it (spec.ts shapes). */
type Merged = Record<string, unknown>;

function at(merged: Merged, key: string): unknown {
  let v: unknown = merged;
  for (const part of key.split('.')) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

interface NotAbove {
  low: string;
  high: string;
  /** The section that must be configured for the rule to apply (null sections are skipped). */
  section?: string;
}

const NOT_ABOVE: NotAbove[] = [
  { low: 'lockout.baseDelaySeconds', high: 'lockout.maxDelaySeconds' },
  { low: 'lockout.threshold', high: 'lockout.hardLockAfter' },
  { low: 'smpp.reconnectInitialMs', high: 'smpp.reconnectMaxMs', section: 'smpp' },
  { low: 'notifications.retryInitialSeconds', high: 'notifications.retryMaxSeconds' },
];

const SOCKET_KINDS = ['admin', 'hook', 'self'] as const;

/**
 * The cross-key problems of `merged`. `bad` holds the keys that failed their own check: a rule
 * that reads one of them is skipped (its value is not the one the file gave).
 */
export function crossKeyProblems(merged: Merged, bad: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const rule of NOT_ABOVE) {
    if (bad.has(rule.low) || bad.has(rule.high)) continue;
    if (rule.section !== undefined && (at(merged, rule.section) === null || bad.has(rule.section))) continue;
    const low = at(merged, rule.low);
    const high = at(merged, rule.high);
    if (typeof low === 'number' && typeof high === 'number' && low > high) {
      problems.push(`${rule.low}: must not exceed ${rule.high} (${low} > ${high})`);
    }
  }
  if (!bad.has('store.backend') && !bad.has('store.postgres') && at(merged, 'store.backend') === 'postgres' && at(merged, 'store.postgres') === null) {
    problems.push('store.backend: "postgres" needs store.postgres (at least its host: a host name, or the directory of the server\'s socket)');
  }
  for (const kind of SOCKET_KINDS) {
    const key = `sockets.${kind}.mode`;
    if (bad.has(key) || bad.has(`sockets.${kind}.allowWideMode`)) continue;
    const mode = at(merged, key);
    if (typeof mode !== 'string' || at(merged, `sockets.${kind}.allowWideMode`) === true) continue;
    if ((parseInt(mode, 8) & ~WIDEST_SOCKET_MODE) !== 0) {
      problems.push(
        `${key}: "${mode}" grants more than 0660 (read and write for the owner and the group); set sockets.${kind}.allowWideMode to true if that is meant`,
      );
    }
  }
  const listen = at(merged, 'metrics.listen');
  if (typeof listen === 'string' && !bad.has('metrics.listen') && !bad.has('metrics.allowNonLoopback') && at(merged, 'metrics.allowNonLoopback') !== true) {
    const address = parseListen(listen);
    if ('kind' in address && address.kind === 'tcp' && !isLoopback(address.host)) {
      problems.push(`metrics.listen: ${address.host} is not a loopback address (127.0.0.0/8, ::1), so the metrics would be open to the network; set metrics.allowNonLoopback to true if that is meant`);
    }
  }
  return problems;
}
