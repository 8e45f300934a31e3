import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { MemfaError } from '../src/protocol/errors.js';
import { generateNumericCode, normaliseCode } from '../src/core/codes.js';

test('generateNumericCode: one draw over [0, 10^digits), leading zeros kept', () => {
  const calls: [number, number][] = [];
  const fixed =
    (value: number) =>
    (min: number, max: number): number => {
      calls.push([min, max]);
      return value;
    };
  assert.equal(generateNumericCode(fixed(0), 6), '000000');
  assert.equal(generateNumericCode(fixed(42), 6), '000042');
  assert.equal(generateNumericCode(fixed(999_999), 6), '999999');
  assert.equal(generateNumericCode(fixed(7), 8), '00000007');
  assert.equal(generateNumericCode(fixed(9_999_999_999), 10), '9999999999');
  assert.deepEqual(calls, [
    [0, 1e6],
    [0, 1e6],
    [0, 1e6],
    [0, 1e8],
    [0, 1e10],
  ]);
});

test('generateNumericCode: 6 to 10 digits only; crypto.randomInt copes with 10', () => {
  for (const digits of [5, 11, 6.5, Number.NaN]) {
    assert.throws(
      () => generateNumericCode(randomInt, digits),
      (err: unknown) => err instanceof MemfaError && err.code === 'INVALID_PARAMS' && err.data?.param === 'digits',
    );
  }
  for (let digits = 6; digits <= 10; digits++) assert.match(generateNumericCode(randomInt, digits), new RegExp(`^[0-9]{${digits}}$`));
});

test('generateNumericCode: a random source out of range is an internal error', () => {
  for (const bad of [-1, 1e6, 0.5, Number.NaN]) {
    assert.throws(
      () => generateNumericCode(() => bad, 6),
      (err: unknown) => err instanceof MemfaError && err.code === 'INTERNAL',
    );
  }
});

test('generateNumericCode: digits are roughly uniform in every position with crypto.randomInt', () => {
  const n = 20_000;
  const digits = 6;
  const counts = Array.from({ length: digits }, () => new Array<number>(10).fill(0));
  let leadingZero = 0;
  for (let i = 0; i < n; i++) {
    const code = generateNumericCode(randomInt, digits);
    assert.equal(code.length, digits);
    if (code.startsWith('0')) leadingZero++;
    for (let p = 0; p < digits; p++) (counts[p] as number[])[Number(code[p])]! += 1;
  }
  // Chi-square with 9 degrees of freedom; 27.88 is the 0.999 quantile, so each position fails
  // by chance about once in a thousand runs. 40 keeps the test quiet while catching real bias
  // (e.g. a first digit never 0, or modulo bias toward low digits).
  const expected = n / 10;
  for (const [p, row] of counts.entries()) {
    const chi2 = row.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    assert.ok(chi2 < 40, `position ${p}: chi2 ${chi2.toFixed(1)} counts ${row.join(',')}`);
  }
  assert.ok(leadingZero > n * 0.07, `codes starting with 0: ${leadingZero} of ${n}`);
});

test('normaliseCode: table', () => {
  const table: [string, string | null][] = [
    ['123456', '123456'],
    ['012345', '012345'],
    ['123 456', '123456'],
    ['123-456', '123456'],
    ['  123 - 456  ', '123456'],
    ['123\t456', '123456'],
    ['123456\n', '123456'],
    ['123456\r\n', '123456'],
    ['123456\0', '123456'],
    ['123456\n\0', '123456'],
    ['', null],
    ['   ', null],
    ['\n', null],
    ['12a456', null],
    ['123456x', null],
    ['+123456', null],
    ['12.3456', null],
    ['1234\n56', null],
    ['１２３４５６', null],
    ['٣٤٥٦٧٨', null],
    ['1'.repeat(64), '1'.repeat(64)],
    ['1'.repeat(65), null],
    [`${'1'.repeat(6)}${' '.repeat(100)}`, null],
  ];
  for (const [input, want] of table) assert.equal(normaliseCode(input), want, JSON.stringify(input));
  assert.equal(normaliseCode(123456 as unknown as string), null);
});
