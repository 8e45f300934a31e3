// Country of an IP address, from geoip-lite's bundled data, loaded once at daemon start.
//
// geoip-lite loads its city database (about 190 MB resident) when the city files are in its data
// directory and falls back to the country files (about 15 MB on disk) when they are missing. memfa
// needs the country only, so it points geoip-lite (through its supported `global.geodatadir`) at a
// directory in the data directory that links to the country files alone.
import { mkdir, symlink, copyFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export type CountryLookup = (ip: string) => string | null;

const COUNTRY_FILES = ['geoip-country.dat', 'geoip-country6.dat'];
/** log2 of the cache's slots: 16,384 IPv4 answers in 160 KB, as many IPv6 ones. */
const CACHE_BITS = 14;
const CACHE_SLOTS = 1 << CACHE_BITS;

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

/**
 * The 32-bit number of an IPv4 address in the form net.isIPv4 accepts (four decimal octets,
 * 0-255, no leading zeros), or -1 for any other text (an IPv6 address).
 */
export function dottedQuad(ip: string): number {
  if (ip.length < 7 || ip.length > 15) return -1;
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 3 || (digits === 1 && octet === 0)) return -1;
      octet = octet * 10 + (c - 0x30);
      if (octet > 255) return -1;
      digits++;
    } else return -1;
  }
  return dots === 3 && digits > 0 ? n * 256 + octet : -1;
}

export async function loadCountryLookup(dataDir: string): Promise<CountryLookup> {
  (globalThis as { geodatadir?: string }).geodatadir = await prepareCountryDir(dataDir);
  const geoip = (await import('geoip-lite')).default;
  const placeable = (hit: { country?: unknown } | null): string | null => {
    const country = hit?.country;
    return typeof country === 'string' && /^[A-Z]{2}$/.test(country) ? country : null;
  };
  // The same addresses log in again and again (a user's home, an office behind one NAT), and a
  // lookup is a binary search that builds a result object: answers are kept in direct-mapped
  // caches of CACHE_SLOTS entries (an address goes in the slot its hash picks, replacing what was
  // there). The data does not change while the daemon runs, so a kept answer is the one a lookup
  // would give.
  // - Fixed arrays, not a Map: a Map used as an LRU rehashes its table (half a megabyte at 10,000
  //   entries) every few thousand replacements.
  // - An IPv4 address is kept as its number and its answer as a small index into the country
  //   codes: a cache that kept the request's address text and geoip-lite's answer text moved two
  //   strings per miss into the old generation, the main growth of a busy daemon's heap between
  //   full collections when 100,000 mailboxes log in from 200,000 addresses. The number is also
  //   what geoip-lite is asked with: its own parsing costs as much as its search.
  // - Other addresses (IPv6) have a cache of their own, by text.
  const codes: string[] = [''];
  const codeIndex = new Map<string, number>();
  const indexOf = (country: string | null): number => {
    if (country === null) return 0;
    let i = codeIndex.get(country);
    if (i === undefined) {
      i = codes.length;
      codes.push(country);
      codeIndex.set(country, i);
    }
    return i;
  };
  const v4Keys = new Float64Array(CACHE_SLOTS).fill(-1);
  const v4Answers = new Uint16Array(CACHE_SLOTS);
  const textKeys = new Array<string>(CACHE_SLOTS).fill('');
  const textAnswers = new Array<string | null>(CACHE_SLOTS).fill(null);
  return (ip: string) => {
    const n = dottedQuad(ip);
    if (n !== -1) {
      const slot = Math.imul(n, 0x9e3779b1) >>> (32 - CACHE_BITS);
      if (v4Keys[slot] !== n) {
        v4Keys[slot] = n;
        v4Answers[slot] = indexOf(placeable(geoip.lookup(n)));
      }
      const a = v4Answers[slot]!;
      return a === 0 ? null : codes[a]!;
    }
    const slot = slotOf(ip);
    if (textKeys[slot] === ip) return textAnswers[slot] ?? null;
    const country = placeable(geoip.lookup(ip));
    textKeys[slot] = ip;
    textAnswers[slot] = country;
    return country;
  };
}

/** FNV-1a of the address's UTF-16 units, folded to a slot. */
function slotOf(ip: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
  return (h >>> 0) & (CACHE_SLOTS - 1);
}
