// Validation and normalisation of everything that names a mailbox, a place or a phone.
// Each function returns the canonical form or throws MemfaError('INVALID_PARAMS') whose message
// starts with the parameter name and whose data.param names it for machines.
// Pure: node:net and node:url are used only for parsing.

import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { MemfaError } from '../protocol/errors.js';
import { COUNTRY_MISTAKES, EU_MEMBERS, GEOIP_COUNTRIES, isUserAssigned } from './countries.js';
import { KeyQueue } from './key-queue.js';

function invalid(param: string, message: string): MemfaError {
  return new MemfaError('INVALID_PARAMS', `${param}: ${message}`, { data: { param } });
}

function requireString(s: unknown, param: string): string {
  if (typeof s !== 'string') throw invalid(param, `expected a string, got ${s === null ? 'null' : typeof s}`);
  return s.trim();
}

// Control characters (C0, DEL, C1) and every kind of white space.
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff]/;

// ---------------------------------------------------------------------------------------------
// Addresses and domains

const MAX_ADDRESS = 254; // RFC 5321 path limit minus the angle brackets
const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
// RFC 5322 dot-atom text; quoted local parts are not supported (no mail server we serve uses them).
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * A DNS domain with at least two labels, in lower-case ASCII. Internationalised names are
 * converted to their xn-- form so that one domain has one spelling in the store.
 */
// Domains repeat across logins (many mailboxes, few domains): valid ones are remembered. Pure, so
// a cache cannot change an answer; bounded, so hostile input cannot grow it.
const domainCache = new Map<string, string>();
/** Its keys in the order they came: the first goes when it is full (core/key-queue.ts). */
const domainCacheOrder = new KeyQueue<string>();
const DOMAIN_CACHE_MAX = 10_000;

export function normaliseDomain(s: unknown, param = 'domain'): string {
  if (typeof s === 'string') {
    const hit = domainCache.get(s);
    if (hit !== undefined) return hit;
    const d = checkDomain(s, param);
    if (domainCache.size >= DOMAIN_CACHE_MAX) {
      domainCache.delete(domainCacheOrder.take()!);
    }
    domainCache.set(s, d);
    domainCacheOrder.push(s);
    return d;
  }
  return checkDomain(s, param);
}

function checkDomain(s: unknown, param: string): string {
  let d = requireString(s, param).toLowerCase();
  if (d === '') throw invalid(param, 'must not be empty');
  if (CONTROL_OR_SPACE.test(d)) throw invalid(param, 'must not contain spaces or control characters');
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (/[^\x00-\x7f]/.test(d)) {
    const ascii = domainToASCII(d);
    if (ascii === '') throw invalid(param, `'${d}' is not a valid internationalised domain name`);
    d = ascii;
  }
  if (d.length > MAX_DOMAIN) throw invalid(param, `longer than ${MAX_DOMAIN} characters`);
  const labels = d.split('.');
  if (labels.length < 2) throw invalid(param, `'${d}' needs at least one dot (a fully qualified domain)`);
  for (const label of labels) {
    if (!LABEL.test(label)) {
      throw invalid(param, `'${d}' has an invalid label '${label}' (1-63 of a-z, 0-9, '-', not starting or ending with '-')`);
    }
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) throw invalid(param, `'${d}' is an address, not a domain`);
  return d;
}

/** local@domain, trimmed and lower-cased as a whole. */
export function normaliseAddress(s: unknown, param = 'user'): string {
  const a = requireString(s, param).toLowerCase();
  if (a === '') throw invalid(param, 'must not be empty');
  if (a.length > MAX_ADDRESS) throw invalid(param, `longer than ${MAX_ADDRESS} characters`);
  if (CONTROL_OR_SPACE.test(a)) throw invalid(param, 'must not contain spaces or control characters');
  const at = a.indexOf('@');
  if (at < 0 || at !== a.lastIndexOf('@')) throw invalid(param, `'${a}' must contain exactly one '@' (local@domain)`);
  const local = a.slice(0, at);
  if (local === '' || local.length > MAX_LOCAL) throw invalid(param, `the local part must be 1 to ${MAX_LOCAL} characters`);
  if (!LOCAL_PART.test(local)) {
    throw invalid(param, `'${local}' is not a valid local part (letters, digits, dots and !#$%&'*+/=?^_\`{|}~- only; no leading, trailing or double dot)`);
  }
  const given = a.slice(at + 1);
  const domain = normaliseDomain(given, param);
  // Most addresses arrive normalised: keep the string rather than build an equal one.
  const address = domain === given ? a : `${local}@${domain}`;
  if (address.length > MAX_ADDRESS) throw invalid(param, `longer than ${MAX_ADDRESS} characters`);
  return address;
}

/** The domain of an address that has already been normalised. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) throw invalid('user', `'${address}' has no '@'`);
  return address.slice(at + 1);
}

/**
 * The mailbox a normalised address delivers to: without a '+' subaddress (RFC 5233, the
 * recipient delimiter of Postfix, Dovecot, Exim and most others), u1+tag@a.example to u1@a.example.
 */
function deliversTo(address: string): string {
  const at = address.lastIndexOf('@');
  const plus = address.indexOf('+');
  return plus > 0 && plus < at ? address.slice(0, plus) + address.slice(at) : address;
}

/**
 * An alternative address for codes: valid, and not the mailbox itself (whose password may be the
 * one stolen), under any spelling that delivers to it: another case, or a '+' subaddress.
 */
export function normaliseAltEmail(alt: unknown, mailbox: string): string {
  const a = normaliseAddress(alt, 'altEmail');
  const own = mailbox.trim().toLowerCase();
  if (a === own) {
    throw invalid('altEmail', 'must differ from the mailbox being protected: codes sent there would reach whoever holds its password');
  }
  if (deliversTo(a) === deliversTo(own)) {
    throw invalid('altEmail', `'${a}' delivers to the mailbox ${deliversTo(own)} itself (a '+' subaddress): it must differ from the mailbox being protected, since codes sent there would reach whoever holds its password`);
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// Phones and countries

/**
 * The form every stored phone number has, which delivery checks before it sends: E.164, '+' then 8
 * to 15 digits, the first not 0 (spaces, dashes, dots and parentheses are dropped). A number given
 * by a person goes through normalisePhone of core/phone.ts, which knows the numbering plans and
 * always returns this form; numbers stored before it have this form too.
 */
export function normaliseE164(s: unknown, param = 'phone'): string {
  const raw = requireString(s, param);
  const p = raw.replace(/[\s\-.()]/g, '');
  if (!p.startsWith('+')) throw invalid(param, `'${raw}' must be in international form, starting with '+' and the country code`);
  if (!/^\+[1-9][0-9]{7,14}$/.test(p)) {
    throw invalid(param, `'${raw}' is not an E.164 number ('+' then 8 to 15 digits, the first not 0)`);
  }
  return p;
}

// English names, for the suggestions of a refusal only (made on the first one); a Node without
// them shows the codes alone.
let regionNames: Intl.DisplayNames | undefined;

/** 'GB (United Kingdom)', or 'GB' where no name is known. */
function countryWithName(code: string): string {
  let name: string | undefined;
  try {
    regionNames ??= new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
    name = regionNames.of(code);
  } catch {
    name = undefined;
  }
  return name === undefined ? code : `${code} (${name})`;
}

function suggest(codes: readonly string[]): string {
  const named = codes.map(countryWithName);
  return named.length === 1 ? named[0]! : `${named.slice(0, -1).join(', ')} or ${named.at(-1)}`;
}

/**
 * An ISO 3166-1 alpha-2 code that the country data can return (GEOIP_COUNTRIES), upper case. A
 * rule naming any other code would never apply, or, as an allow-only rule, refuse everyone; the
 * refusal names the code meant where the mistake is a common one.
 */
export function normaliseCountry(s: unknown, param = 'country'): string {
  const given = requireString(s, param);
  if (!/^[A-Za-z]{2}$/.test(given)) {
    if (/^[A-Za-z]{3}$/.test(given)) throw invalid(param, `'${given}' looks like an ISO 3166-1 alpha-3 code; give the two-letter (alpha-2) code, e.g. DE for DEU`);
    throw invalid(param, `'${given}' is not an ISO 3166-1 alpha-2 code (two letters, e.g. DE)`);
  }
  const c = given.toUpperCase();
  if (GEOIP_COUNTRIES.has(c)) return c;
  if (c === 'EU') {
    throw invalid(param, `'${given}' is the European Union, not a country: the country data gives each member state its own code (${EU_MEMBERS.join(',')})`);
  }
  const mistake = COUNTRY_MISTAKES[c];
  if (mistake !== undefined) throw invalid(param, `'${given}' is not an ISO 3166-1 country code (${mistake.what}); did you mean ${suggest(mistake.use)}?`);
  if (isUserAssigned(c)) throw invalid(param, `'${given}' is a user-assigned code that no country has (ISO 3166-1 alpha-2, e.g. DE)`);
  const swapped = c[1]! + c[0]!;
  if (GEOIP_COUNTRIES.has(swapped)) throw invalid(param, `'${given}' is not an ISO 3166-1 country code; did you mean ${suggest([swapped])}?`);
  throw invalid(param, `'${given}' is not an ISO 3166-1 country code (two letters, e.g. DE)`);
}

// ---------------------------------------------------------------------------------------------
// IP addresses and networks

/** RFC 5952-style text of an IPv6 address (lower case, longest zero run compressed). */
function canonicalIpv6(ip: string): string {
  // The WHATWG URL serialiser implements exactly this canonical form.
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}

/** Groups of a canonical IPv6 address as 8 numbers. */
function ipv6Groups(canonical: string): number[] {
  const [head = '', tail] = canonical.split('::');
  const part = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = part(head);
  if (tail === undefined) return h;
  const t = part(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

/**
 * One canonical text per address, so that remembered IPs compare as strings: IPv4 as dotted quad
 * (leading zeros are refused by isIP, not guessed at), IPv4-mapped IPv6 (::ffff:1.2.3.4, as a
 * dual-stack listener reports IPv4 peers) as plain IPv4, IPv6 in RFC 5952 form. Zone ids and
 * brackets are refused.
 */
export function normaliseIp(s: unknown, param = 'ip'): string {
  const ip = requireString(s, param);
  const kind = isIP(ip);
  if (kind === 4) return ip;
  if (kind === 6 && !ip.includes('%')) {
    const c = canonicalIpv6(ip);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(c);
    if (mapped) {
      const hi = parseInt(mapped[1] ?? '0', 16);
      const lo = parseInt(mapped[2] ?? '0', 16);
      return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
    }
    return c;
  }
  throw invalid(param, `'${ip}' is not an IPv4 or IPv6 address`);
}

function maskIpv4(ip: string, prefix: number): string {
  const n = ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  const net = Math.floor(n / size) * size;
  return [24, 16, 8, 0].map((shift) => Math.floor(net / 2 ** shift) % 256).join('.');
}

function maskIpv6(canonical: string, prefix: number): string {
  const groups = ipv6Groups(canonical).map((g, i) => {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  return canonicalIpv6(groups.map((g) => g.toString(16)).join(':'));
}

/**
 * The network of a normalised address with its first `ipv4Prefix` or `ipv6Prefix` bits, as
 * 'net/prefix'; at the full length (32, 128), the address itself.
 */
export function ipNetwork(ip: string, ipv4Prefix: number, ipv6Prefix: number): string {
  if (isIP(ip) === 4) return ipv4Prefix >= 32 ? ip : `${maskIpv4(ip, ipv4Prefix)}/${ipv4Prefix}`;
  return ipv6Prefix >= 128 ? ip : `${maskIpv6(ip, ipv6Prefix)}/${ipv6Prefix}`;
}

/**
 * 'a.b.c.d/n' or 'v6/n' in canonical form; a bare address means a single host (/32, /128).
 * An address with host bits set ('10.1.2.3/8') is refused with the network it probably means,
 * rather than silently widened or narrowed.
 */
export function normaliseCidr(s: unknown, param = 'trustedNetworks'): string {
  const raw = requireString(s, param);
  const slash = raw.indexOf('/');
  const addr = slash < 0 ? raw : raw.slice(0, slash);
  const prefixText = slash < 0 ? null : raw.slice(slash + 1);
  const kind = addr.includes('%') ? 0 : isIP(addr);
  if (kind === 0) throw invalid(param, `'${raw}' is not an IPv4 or IPv6 network (address/prefix)`);
  const bits = kind === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== null) {
    if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
      throw invalid(param, `'${raw}' has an invalid prefix length (0 to ${bits})`);
    }
    prefix = Number(prefixText);
  }
  const canonical = kind === 4 ? addr : canonicalIpv6(addr);
  const network = kind === 4 ? maskIpv4(canonical, prefix) : maskIpv6(canonical, prefix);
  if (network !== canonical) {
    throw invalid(param, `'${raw}' has host bits set; did you mean ${network}/${prefix}?`);
  }
  return `${canonical}/${prefix}`;
}

// Built once per distinct CIDR text; the lists are small and come from settings.
const blockLists = new Map<string, BlockList>();
const MAX_CACHED_LISTS = 1024;

function blockListFor(cidr: string): BlockList {
  let list = blockLists.get(cidr);
  if (list === undefined) {
    const norm = normaliseCidr(cidr);
    const slash = norm.lastIndexOf('/');
    const addr = norm.slice(0, slash);
    list = new BlockList();
    list.addSubnet(addr, Number(norm.slice(slash + 1)), isIP(addr) === 4 ? 'ipv4' : 'ipv6');
    if (blockLists.size >= MAX_CACHED_LISTS) blockLists.clear();
    blockLists.set(cidr, list);
  }
  return list;
}

/**
 * The first of `cidrs` that contains `ip`, or null. BlockList also matches IPv4 addresses
 * against IPv4-mapped IPv6 networks (::ffff:0:0/96) and the other way round.
 */
export function ipInNetworks(ip: string, cidrs: readonly string[]): string | null {
  if (cidrs.length === 0) return null;
  const addr = normaliseIp(ip);
  const family = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
  for (const cidr of cidrs) {
    if (blockListFor(cidr).check(addr, family)) return cidr;
  }
  return null;
}
