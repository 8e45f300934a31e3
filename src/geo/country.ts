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

export async function loadCountryLookup(dataDir: string): Promise<CountryLookup> {
  (globalThis as { geodatadir?: string }).geodatadir = await prepareCountryDir(dataDir);
  const geoip = (await import('geoip-lite')).default;
  return (ip: string) => {
    const hit = geoip.lookup(ip);
    const country = hit?.country;
    return typeof country === 'string' && /^[A-Z]{2}$/.test(country) ? country : null;
  };
}
