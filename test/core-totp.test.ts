import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { URI as IndependentUri, TOTP as IndependentTotp } from 'otpauth';
import { MemfaError } from '../src/protocol/errors.js';
import { validateConfig } from '../src/config/load.js';
import {
  checkTotp,
  fromBase32,
  generateTotpSecret,
  groupSecret,
  hotpCode,
  otpauthUri,
  timeStep,
  toBase32,
  totpCode,
  type TotpAlgorithm,
  type TotpOptions,
} from '../src/core/totp.js';
import { totpOptions } from '../src/services/context.js';

// The configuration's defaults (config/spec.ts) are the only defaults; the daemon reads the TOTP
// options from the configuration the same way.
const DEFAULT_TOTP = totpOptions(validateConfig({}, '/defaults/memfa.json', {}, {}));

// The compiled test runs from dist/test/ (repo root ../../) or from an outDir elsewhere; the
// fixtures are not copied by tsc, so find the tree that holds them: up from here, then the cwd.
function repoRoot(): string {
  const marker = join('test', 'fixtures', 'vectors', 'rfc4226.json');
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      if (existsSync(join(dir, marker))) return dir;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error(`cannot find ${marker} above ${fileURLToPath(import.meta.url)} or ${process.cwd()}`);
}

const root = repoRoot();
const fixtureDir = join(root, 'test', 'fixtures', 'vectors');

interface Rfc4226 {
  secret: string;
  digits: number;
  codes: string[];
}
interface Rfc6238 {
  seeds: Record<TotpAlgorithm, string>;
  step: number;
  digits: number;
  vectors: { time: number; algorithm: TotpAlgorithm; code: string }[];
}

const rfc4226 = JSON.parse(readFileSync(join(fixtureDir, 'rfc4226.json'), 'utf8')) as Rfc4226;
const rfc6238 = JSON.parse(readFileSync(join(fixtureDir, 'rfc6238.json'), 'utf8')) as Rfc6238;

function isInvalidParams(param: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof MemfaError, `expected MemfaError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_PARAMS');
    assert.equal(err.data?.param, param);
    return true;
  };
}

test('fixture vectors match the shared copy when it exists', (t) => {
  const shared = resolve(root, '..', 'shared', 'vectors');
  if (!existsSync(shared)) {
    t.skip(`${shared} not present`);
    return;
  }
  for (const name of ['rfc4226.json', 'rfc6238.json']) {
    assert.equal(readFileSync(join(fixtureDir, name), 'utf8'), readFileSync(join(shared, name), 'utf8'), name);
  }
});

test('RFC 4226 Appendix D: HOTP counters 0..9', () => {
  assert.equal(rfc4226.codes.length, 10);
  const key = Buffer.from(rfc4226.secret, 'ascii');
  rfc4226.codes.forEach((code, counter) => {
    assert.equal(hotpCode(key, counter, rfc4226.digits, 'SHA1'), code, `counter ${counter}`);
  });
});

test('RFC 6238 Appendix B: every TOTP vector (SHA1, SHA256, SHA512; 8 digits)', () => {
  assert.equal(rfc6238.vectors.length, 18);
  for (const v of rfc6238.vectors) {
    const key = Buffer.from(rfc6238.seeds[v.algorithm], 'ascii');
    const opts: TotpOptions = { algorithm: v.algorithm, digits: rfc6238.digits, period: rfc6238.step, window: 0 };
    const timeMs = v.time * 1000;
    assert.equal(totpCode(key, timeMs, opts), v.code, `${v.algorithm} at ${v.time}`);
    assert.deepEqual(checkTotp(key, v.code, timeMs, opts, null), { ok: true, step: Math.floor(v.time / rfc6238.step) });
  }
});

test('SHA256/512 use the key as given, unpadded (as authenticator apps do)', () => {
  // otplib's TOTP class would repeat a 20-byte key up to 32/64 bytes; the RFC 6238 SHA256 seed is
  // exactly that repetition, so a 20-byte key must give a different code.
  const short = Buffer.from(rfc6238.seeds.SHA1, 'ascii');
  const padded = Buffer.from(rfc6238.seeds.SHA256, 'ascii');
  assert.notEqual(hotpCode(short, 1, 8, 'SHA256'), hotpCode(padded, 1, 8, 'SHA256'));
});

test('the default TOTP options are SHA1, 6 digits, 30 s, window 1', () => {
  assert.deepEqual({ ...DEFAULT_TOTP }, { algorithm: 'SHA1', digits: 6, period: 30, window: 1 });
});

test('timeStep boundaries', () => {
  assert.equal(timeStep(0, 30), 0);
  assert.equal(timeStep(29_999, 30), 0);
  assert.equal(timeStep(30_000, 30), 1);
  assert.equal(timeStep(59_999, 30), 1);
  assert.equal(timeStep(1_111_111_111_000, 30), 37_037_037);
  assert.throws(() => timeStep(-1, 30), isInvalidParams('time'));
  assert.throws(() => timeStep(0, 0), isInvalidParams('period'));
});

test('hotpCode and totpCode refuse bad parameters', () => {
  const key = Buffer.from(rfc4226.secret, 'ascii');
  assert.throws(() => hotpCode(Buffer.alloc(0), 0, 6, 'SHA1'), isInvalidParams('secret'));
  assert.throws(() => hotpCode(key, -1, 6, 'SHA1'), isInvalidParams('counter'));
  assert.throws(() => hotpCode(key, 1.5, 6, 'SHA1'), isInvalidParams('counter'));
  assert.throws(() => hotpCode(key, 0, 5, 'SHA1'), isInvalidParams('digits'));
  assert.throws(() => hotpCode(key, 0, 9, 'SHA1'), isInvalidParams('digits'));
  assert.throws(() => hotpCode(key, 0, 6, 'MD5' as TotpAlgorithm), isInvalidParams('algorithm'));
  assert.throws(() => totpCode(key, 0, { ...DEFAULT_TOTP, window: 11 }), isInvalidParams('window'));
  assert.throws(() => totpCode(key, 0, { ...DEFAULT_TOTP, period: 0 }), isInvalidParams('period'));
});

// ---------------------------------------------------------------------------------------------

const KEY = Buffer.from(rfc4226.secret, 'ascii');
const OPTS: TotpOptions = { ...DEFAULT_TOTP };
const NOW = 1_111_111_111_000;
const STEP = timeStep(NOW, 30);
const codeAt = (step: number, opts: TotpOptions = OPTS): string => hotpCode(KEY, step, opts.digits, opts.algorithm);

test('checkTotp: window edges', () => {
  const cases: [offset: number, window: number, ok: boolean][] = [
    [0, 0, true],
    [-1, 0, false],
    [1, 0, false],
    [-1, 1, true],
    [1, 1, true],
    [-2, 1, false],
    [2, 1, false],
    [-2, 2, true],
    [2, 2, true],
    [-3, 2, false],
  ];
  for (const [offset, window, ok] of cases) {
    const got = checkTotp(KEY, codeAt(STEP + offset), NOW, { ...OPTS, window }, null);
    const want = ok ? { ok: true, step: STEP + offset } : { ok: false, reason: 'code-invalid' };
    assert.deepEqual(got, want, `offset ${offset}, window ${window}`);
  }
});

test('checkTotp: the first and last millisecond of a step', () => {
  const start = STEP * 30_000;
  const end = start + 29_999;
  const w0 = { ...OPTS, window: 0 };
  assert.deepEqual(checkTotp(KEY, codeAt(STEP), start, w0, null), { ok: true, step: STEP });
  assert.deepEqual(checkTotp(KEY, codeAt(STEP), end, w0, null), { ok: true, step: STEP });
  assert.deepEqual(checkTotp(KEY, codeAt(STEP), end + 1, w0, null), { ok: false, reason: 'code-invalid' });
  assert.deepEqual(checkTotp(KEY, codeAt(STEP), start - 1, w0, null), { ok: false, reason: 'code-invalid' });
});

test('checkTotp: replay of the same step and of earlier steps is refused', () => {
  const cases: [offset: number, lastAccepted: number | null, want: ReturnType<typeof checkTotp>][] = [
    [0, null, { ok: true, step: STEP }],
    [0, STEP - 1, { ok: true, step: STEP }],
    [0, STEP, { ok: false, reason: 'code-reused' }],
    [-1, STEP, { ok: false, reason: 'code-reused' }],
    [-1, STEP - 1, { ok: false, reason: 'code-reused' }],
    [1, STEP, { ok: true, step: STEP + 1 }],
    [1, STEP + 1, { ok: false, reason: 'code-reused' }],
    [0, STEP + 1, { ok: false, reason: 'code-reused' }],
    // A code of no step in the window is invalid, not reused, whatever was accepted before.
    [-5, STEP, { ok: false, reason: 'code-invalid' }],
    [5, null, { ok: false, reason: 'code-invalid' }],
  ];
  for (const [offset, lastAccepted, want] of cases) {
    assert.deepEqual(checkTotp(KEY, codeAt(STEP + offset), NOW, OPTS, lastAccepted), want, `offset ${offset}, last ${lastAccepted}`);
  }
});

test('checkTotp: accepting a code and replaying it at once is refused', () => {
  const first = checkTotp(KEY, codeAt(STEP), NOW, OPTS, null);
  assert.equal(first.ok, true);
  const last = first.ok ? first.step : null;
  assert.deepEqual(checkTotp(KEY, codeAt(STEP), NOW + 5_000, OPTS, last), { ok: false, reason: 'code-reused' });
  assert.deepEqual(checkTotp(KEY, codeAt(STEP + 1), NOW + 30_000, OPTS, last), { ok: true, step: STEP + 1 });
});

test('checkTotp: a code matching two steps takes the later one, so it cannot pass twice', () => {
  // Found by search: with the RFC 4226 key, SHA1/6, steps 153567 and 153569 both give 468457.
  const now = 153_568 * 30_000;
  assert.equal(codeAt(153_567), '468457');
  assert.equal(codeAt(153_569), '468457');
  assert.deepEqual(checkTotp(KEY, '468457', now, OPTS, null), { ok: true, step: 153_569 });
  assert.deepEqual(checkTotp(KEY, '468457', now, OPTS, 153_567), { ok: true, step: 153_569 });
  assert.deepEqual(checkTotp(KEY, '468457', now, OPTS, 153_569), { ok: false, reason: 'code-reused' });
});

test('checkTotp: wrong length and non-digits are invalid', () => {
  const good = codeAt(STEP);
  const bad = [
    '',
    good.slice(1),
    `${good}0`,
    `0${good}`,
    ` ${good.slice(1)}`,
    `${good.slice(0, 5)}a`,
    '12345e',
    '-12345',
    '+12345',
    '1.2345',
    // Full-width digits: the same length in characters, not ASCII.
    good.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d))),
    `${good.slice(0, 5)}\n`,
  ];
  for (const code of bad) {
    assert.deepEqual(checkTotp(KEY, code, NOW, OPTS, null), { ok: false, reason: 'code-invalid' }, JSON.stringify(code));
  }
  assert.deepEqual(checkTotp(KEY, 12345 as unknown as string, NOW, OPTS, null), { ok: false, reason: 'code-invalid' });
});

test('checkTotp: 8 digits and other algorithms', () => {
  for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
    const opts: TotpOptions = { algorithm, digits: 8, period: 60, window: 1 };
    const code = totpCode(KEY, NOW - 60_000, opts);
    assert.deepEqual(checkTotp(KEY, code, NOW, opts, null), { ok: true, step: timeStep(NOW, 60) - 1 });
    assert.deepEqual(checkTotp(KEY, code.slice(2), NOW, opts, null), { ok: false, reason: 'code-invalid' });
  }
});

test('checkTotp: near the epoch, steps below 0 are skipped', () => {
  assert.deepEqual(checkTotp(KEY, codeAt(0), 1_000, OPTS, null), { ok: true, step: 0 });
  assert.deepEqual(checkTotp(KEY, codeAt(1), 1_000, OPTS, null), { ok: true, step: 1 });
});

// ---------------------------------------------------------------------------------------------

test('base32: RFC 4648 section 10 vectors, no padding', () => {
  const table: [string, string][] = [
    ['f', 'MY'],
    ['fo', 'MZXQ'],
    ['foo', 'MZXW6'],
    ['foob', 'MZXW6YQ'],
    ['fooba', 'MZXW6YTB'],
    ['foobar', 'MZXW6YTBOI'],
  ];
  assert.equal(toBase32(Buffer.alloc(0)), '');
  for (const [plain, encoded] of table) {
    assert.equal(toBase32(Buffer.from(plain)), encoded);
    assert.equal(fromBase32(encoded).toString(), plain);
  }
  assert.equal(toBase32(Buffer.from(rfc4226.secret, 'ascii')), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
});

test('base32: decoding tolerates spaces, dashes, lower case and padding', () => {
  for (const input of ['mzxw6ytboi', 'MZXW 6YTB OI', 'MZXW6YTBOI======', 'mzxw-6ytb-oi', ' MZXW6YTBOI\n', 'Mzxw6YtbOi==']) {
    assert.equal(fromBase32(input).toString(), 'foobar', JSON.stringify(input));
  }
});

test('base32: invalid input names the secret', () => {
  for (const input of ['', '====', 'M', 'MZX', 'MZXW6Y', 'MZXW1', 'MZXW8', 'MZ=XW', 'MZXW6YTBÖI']) {
    assert.throws(() => fromBase32(input), isInvalidParams('secret'), JSON.stringify(input));
  }
});

test('base32: round trip of every byte value and of random lengths', () => {
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  assert.deepEqual(fromBase32(toBase32(all)), all);
  for (let len = 1; len <= 70; len++) {
    const buf = Buffer.from(Array.from({ length: len }, (_, i) => (i * 151 + len * 17) & 0xff));
    const enc = toBase32(buf);
    assert.match(enc, /^[A-Z2-7]+$/);
    assert.equal(enc.length, Math.ceil((len * 8) / 5));
    assert.deepEqual(fromBase32(enc), buf);
    assert.deepEqual(fromBase32(groupSecret(enc).toLowerCase()), buf);
  }
});

test('groupSecret: groups of four', () => {
  assert.equal(groupSecret('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), 'GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ');
  assert.equal(groupSecret('MZXW6YTBOI'), 'MZXW 6YTB OI');
  assert.equal(groupSecret('mzxw 6ytboi=='), 'MZXW 6YTB OI');
  assert.equal(groupSecret(''), '');
});

test('generateTotpSecret: uses the given source and enforces at least 20 bytes', () => {
  const calls: number[] = [];
  const fake = (n: number): Buffer => {
    calls.push(n);
    return Buffer.alloc(n, 0xab);
  };
  assert.deepEqual(generateTotpSecret(fake), Buffer.alloc(20, 0xab));
  assert.deepEqual(generateTotpSecret(fake, 32), Buffer.alloc(32, 0xab));
  assert.deepEqual(calls, [20, 32]);
  assert.throws(() => generateTotpSecret(fake, 19), isInvalidParams('bytes'));
  assert.throws(() => generateTotpSecret(fake, 20.5), isInvalidParams('bytes'));
  assert.throws(
    () => generateTotpSecret(() => Buffer.alloc(10)),
    (err: unknown) => err instanceof MemfaError && err.code === 'INTERNAL',
  );
});

// ---------------------------------------------------------------------------------------------

test('otpauthUri: escaping table', () => {
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const tail = `&algorithm=SHA1&digits=6&period=30`;
  const table: [issuer: string, account: string, label: string, issuerParam: string][] = [
    ['memfa', 'alice@example.com', 'memfa:alice%40example.com', 'memfa'],
    ['ACME Mail', 'bob@example.com', 'ACME%20Mail:bob%40example.com', 'ACME%20Mail'],
    ['R&D', 'a&b@example.com', 'R%26D:a%26b%40example.com', 'R%26D'],
    ['C++ Mail', 'tag+x@example.com', 'C%2B%2B%20Mail:tag%2Bx%40example.com', 'C%2B%2B%20Mail'],
    ['Müller GmbH', 'jürgen@example.com', 'M%C3%BCller%20GmbH:j%C3%BCrgen%40example.com', 'M%C3%BCller%20GmbH'],
    ['a?b=c#d/e', 'u', 'a%3Fb%3Dc%23d%2Fe:u', 'a%3Fb%3Dc%23d%2Fe'],
    ['100%', 'u', '100%25:u', '100%25'],
  ];
  for (const [issuer, account, label, issuerParam] of table) {
    const uri = otpauthUri({ issuer, account, secretBase32: secret, algorithm: 'SHA1', digits: 6, period: 30 });
    assert.equal(uri, `otpauth://totp/${label}?secret=${secret}&issuer=${issuerParam}${tail}`, `${issuer} / ${account}`);
    assert.doesNotMatch(uri, /[ +]/);
    // What an app sees when it parses it back.
    const parsed = new URL(uri);
    assert.equal(parsed.searchParams.get('issuer'), issuer);
    assert.equal(parsed.host, 'totp');
    const [l1 = '', l2 = '', ...rest] = parsed.pathname.slice(1).split(':');
    assert.deepEqual(rest, [], 'exactly one label separator');
    assert.equal(decodeURIComponent(l1), issuer);
    assert.equal(decodeURIComponent(l2), account);
  }
});

test('otpauthUri: an independent parser (hectorm/otpauth) reads back the issuer, account, secret and options', () => {
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  const cases: [issuer: string, account: string, algorithm: TotpAlgorithm, digits: number, period: number][] = [
    ['memfa', 'alice@example.com', 'SHA1', 6, 30],
    ['ACME Mail', 'bob@example.com', 'SHA256', 8, 60],
    ['R&D', 'a&b@example.com', 'SHA512', 7, 15],
    ['C++ Mail', 'tag+x@example.com', 'SHA1', 6, 30],
    ['Müller GmbH', 'jürgen@example.com', 'SHA1', 6, 30],
    ['a?b=c#d/e', 'u@example.com', 'SHA1', 6, 30],
    ['100%', 'u@example.com', 'SHA1', 6, 30],
  ];
  for (const [issuer, account, algorithm, digits, period] of cases) {
    const uri = otpauthUri({ issuer, account, secretBase32: secret, algorithm, digits, period });
    const parsed = IndependentUri.parse(uri);
    assert.ok(parsed instanceof IndependentTotp, uri);
    assert.deepEqual(
      [parsed.issuer, parsed.label, parsed.issuerInLabel, parsed.secret.base32, parsed.algorithm, parsed.digits, parsed.period],
      [issuer, account, true, secret, algorithm, digits, period],
      uri,
    );
    // And it computes the codes this module checks.
    const at = 1_796_000_000_000;
    assert.equal(parsed.generate({ timestamp: at }), totpCode(fromBase32(secret), at, { algorithm, digits, period, window: 0 }), uri);
  }
});

test('otpauthUri: a colon in the issuer or account is refused, as the Key URI Format requires', () => {
  const base = { issuer: 'memfa', account: 'a@b.de', secretBase32: 'GEZDGNBV', algorithm: 'SHA1' as const, digits: 6, period: 30 };
  // What a colon did: encoded or not, parsers split the label at the first one.
  const parsed = IndependentUri.parse('otpauth://totp/Acme%3A%20Mail:a%40b.de?secret=GEZDGNBV&issuer=Acme%3A%20Mail');
  assert.notEqual(parsed.label, 'a@b.de', 'the independent parser misreads an escaped colon');
  assert.throws(() => otpauthUri({ ...base, issuer: 'Acme: Mail' }), isInvalidParams('issuer'));
  assert.throws(() => otpauthUri({ ...base, issuer: 'A:B' }), isInvalidParams('issuer'));
  assert.throws(() => otpauthUri({ ...base, account: 'x:y@example.com' }), isInvalidParams('account'));
});

test('otpauthUri: algorithm, digits, period and a normalised secret', () => {
  const uri = otpauthUri({ issuer: 'memfa', account: 'a@b.de', secretBase32: 'gezd gnbv gy3t qojq====', algorithm: 'SHA512', digits: 8, period: 60 });
  assert.equal(uri, 'otpauth://totp/memfa:a%40b.de?secret=GEZDGNBVGY3TQOJQ&issuer=memfa&algorithm=SHA512&digits=8&period=60');
});

test('otpauthUri: refuses empty issuer/account and bad secrets', () => {
  const base = { issuer: 'memfa', account: 'a@b.de', secretBase32: 'GEZDGNBV', algorithm: 'SHA1' as const, digits: 6, period: 30 };
  assert.throws(() => otpauthUri({ ...base, issuer: '' }), isInvalidParams('issuer'));
  assert.throws(() => otpauthUri({ ...base, issuer: '   ' }), isInvalidParams('issuer'));
  assert.throws(() => otpauthUri({ ...base, account: '' }), isInvalidParams('account'));
  assert.throws(() => otpauthUri({ ...base, secretBase32: 'not base32!' }), isInvalidParams('secret'));
  assert.throws(() => otpauthUri({ ...base, digits: 4 }), isInvalidParams('digits'));
});
