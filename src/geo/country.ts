// Country of an IP address, from geoip-lite's bundled data, loaded once at daemon start.
//
// geoip-lite loads its city database (about 190 MB resident) when the city files are in its data
// directory and falls back to the country files (about 15 MB on disk) when they are missing. memfa
// needs the country only, so it points geoip-lite (through its supported `global.geodatadir`) at a
// directory in the data directory that links to the country files alone.
import { mkdir, symlink, copyFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { isIPv4 } from 'node:net';
import path from 'node:path';

export type CountryLookup = (ip: string) => string | null;

const COUNTRY_FILES = ['geoip-country.dat', 'geoip-country6.dat'];
/** About 1 MB at most. */
const CACHED_ADDRESSES = 10_000;

async function prepareCountryDir(dataDir: string): Promise<string> {
  const require = createRequire(import.meta.url);
  const source = path.join(path.dirname(require.resolve('geoip-lite/package.json')), 'data');
  const target = path.join(dataDir, 'geoip-country');
  await mkdir(target, { recursive: true, mode: 0o700 });
  for (const name of COUNTRY_FILES) {
    const from = path.join(source, name);
    const to = path.join(target, name);
    const existing = await stat(to).catch(() => null);
    const original = await stat(from);
    if (existing !== null && existing.size === original.size && existing.mtimeMs >= original.mtimeMs) continue;
    await rm(to, { force: true });
    // A copy where symlinks are not allowed (Windows without developer mode).
    await symlink(from, to).catch(() => copyFile(from, to));
  }
  return target;
}

/** The 32-bit number of a dotted-quad IPv4 address (already checked by isIPv4). */
export function ipv4Number(ip: string): number {
  let n = 0;
  let octet = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      n = n * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 0x30);
  }
  return n * 256 + octet;
}

export async function loadCountryLookup(dataDir: string): Promise<CountryLookup> {
  (globalThis as { geodatadir?: string }).geodatadir = await prepareCountryDir(dataDir);
  const geoip = (await import('geoip-lite')).default;
  const lookup = (ip: string): string | null => {
    // An IPv4 address is looked up by its number: geoip-lite's own parsing (net.isIP, a regex
    // split, four parseInts) costs as much as the search itself.
    const hit = geoip.lookup(isIPv4(ip) ? ipv4Number(ip) : ip);
    const country = hit?.country;
    return typeof country === 'string' && /^[A-Z]{2}$/.test(country) ? country : null;
  };
  // The same addresses log in again and again (a user's home, an office behind one NAT), and a
  // lookup is a binary search that builds a result object: answers are kept for the most recent
  // CACHED_ADDRESSES addresses. The data does not change while the daemon runs, so a kept answer
  // is always the one a lookup would give.
  const cache = new Map<string, string | null>();
  return (ip: string) => {
    const kept = cache.get(ip);
    if (kept !== undefined) return kept;
    const country = lookup(ip);
    if (cache.size >= CACHED_ADDRESSES) cache.delete(cache.keys().next().value!);
    cache.set(ip, country);
    return country;
  };
}
