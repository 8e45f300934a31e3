import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { keyedHash, keyedHashIndex, randomToken, verifyKeyedHash } from '../src/security/hash.js';

const KEY = Buffer.alloc(32, 0x42);

test('keyedHash is HMAC-SHA256 over purpose NUL value, prefixed h1:', () => {
  const expected = createHmac('sha256', KEY).update('code:alice@example.org\x00123456').digest('base64url');
  assert.equal(keyedHash(KEY, 'code:alice@example.org', '123456'), `h1:${expected}`);
  assert.match(keyedHash(KEY, 'p', 'v'), /^h1:[A-Za-z0-9_-]{43}$/);
});

test('keyedHash separates purposes and keys', () => {
  const base = keyedHash(KEY, 'code:alice@example.org', '123456');
  assert.notEqual(keyedHash(KEY, 'code:bob@example.org', '123456'), base);
  assert.notEqual(keyedHash(Buffer.alloc(32, 1), 'code:alice@example.org', '123456'), base);
  // The NUL separator keeps (purpose, value) pairs apart.
  assert.notEqual(keyedHash(KEY, 'ab', 'c'), keyedHash(KEY, 'a', 'bc'));
  assert.throws(() => keyedHash(KEY, 'a\0b', 'c'), TypeError);
  assert.throws(() => keyedHash(KEY, '', 'c'), TypeError);
  assert.throws(() => keyedHash(Buffer.alloc(8), 'a', 'c'), TypeError);
});

test('verifyKeyedHash accepts the right value only', () => {
  const stored = keyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgh');
  assert.equal(verifyKeyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgh', stored), true);
  assert.equal(verifyKeyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgi', stored), false);
  assert.equal(verifyKeyedHash(KEY, 'recovery:bob@example.org', 'abcd-efgh', stored), false);
  assert.equal(verifyKeyedHash(Buffer.alloc(32, 1), 'recovery:alice@example.org', 'abcd-efgh', stored), false);
  assert.equal(verifyKeyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgh', stored.slice(0, -1)), false);
  assert.equal(verifyKeyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgh', ''), false);
  assert.equal(verifyKeyedHash(KEY, 'recovery:alice@example.org', 'abcd-efgh', `${stored}x`), false);
});

test('randomToken gives base64url of the requested size, different each time', () => {
  const token = randomToken();
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(randomToken(), token);
  assert.equal(Buffer.from(randomToken(16), 'base64url').length, 16);
  assert.throws(() => randomToken(4), RangeError);
  assert.throws(() => randomToken(1.5), RangeError);
});

test('keyedHashIndex finds the stored hash of the value, and nothing for another value, purpose or key', () => {
  const purpose = 'app-password:alice@example.org';
  const stored = ['h1:short', keyedHash(KEY, purpose, 'one'), keyedHash(KEY, purpose, 'two'), keyedHash(KEY, purpose, 'two')];
  assert.equal(keyedHashIndex(KEY, purpose, 'one', stored), 1);
  assert.equal(keyedHashIndex(KEY, purpose, 'two', stored), 2, 'the first match');
  assert.equal(keyedHashIndex(KEY, purpose, 'three', stored), -1);
  assert.equal(keyedHashIndex(KEY, 'app-password:bob@example.org', 'one', stored), -1);
  assert.equal(keyedHashIndex(Buffer.alloc(32, 1), purpose, 'one', stored), -1);
  assert.equal(keyedHashIndex(KEY, purpose, 'one', []), -1);
});
