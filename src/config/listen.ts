// The address of the metrics HTTP listener (metrics.listen): an IP literal with a port, or a Unix
// socket path. Shared by the configuration check and the daemon, so that `memfa config check`
// refuses what the daemon would.
import { BlockList, isIP } from 'node:net';

export type ListenAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** A value with a slash is a socket path; otherwise HOST:PORT, the host an IPv4 or bracketed IPv6 literal. */
export function parseListen(value: string): ListenAddress | { problem: string } {
  if (value.includes('/')) return { kind: 'unix', path: value };
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const family = host === undefined ? 0 : isIP(host);
  const port = Number(m?.[3]);
  if (m === null || host === undefined || family === 0 || (m[1] !== undefined) !== (family === 6)) {
    return { problem: 'must be HOST:PORT with an IP address as HOST (127.0.0.1:9387, [::1]:9387), or a Unix socket path (one with a slash)' };
  }
  if (port < 1 || port > 65535) return { problem: `port ${m[3]} is not from 1 to 65535` };
  return { kind: 'tcp', host, port };
}

export function isLoopback(host: string): boolean {
  return LOOPBACK.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4');
}
