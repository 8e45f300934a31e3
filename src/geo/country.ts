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
/** A power of two; two arrays of this many entries and the addresses they hold, about 1 MB. */
const CACHE_SLOTS = 16_384;

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
  // lookup is a binary search that builds a result object: answers are kept in a direct-mapped
  // cache of CACHE_SLOTS entries (an address goes in the slot its hash picks, replacing what was
  // there). Fixed arrays make no garbage when addresses churn, where a Map used as an LRU
  // rehashes its table (half a megabyte at 10,000 entries) every few thousand replacements. The
  // data does not change while the daemon runs, so a kept answer is the one a lookup would give.
  const keys = new Array<string>(CACHE_SLOTS).fill('');
  const answers = new Array<string | null>(CACHE_SLOTS).fill(null);
  return (ip: string) => {
    const slot = slotOf(ip);
    if (keys[slot] === ip) return answers[slot] ?? null;
    const country = lookup(ip);
    keys[slot] = ip;
    answers[slot] = country;
    return country;
  };
}

/** FNV-1a of the address's UTF-16 units, folded to a slot. */
function slotOf(ip: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
  return (h >>> 0) & (CACHE_SLOTS - 1);
}
