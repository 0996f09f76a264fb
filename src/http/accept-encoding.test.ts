import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptableCodings, acceptEncodingOf, EncodingNegotiator, IDENTITY } from './accept-encoding.js';

const OFFER = ['br', 'gzip'];
const pick = (v: string | undefined): string => {
  const i = new EncodingNegotiator(OFFER).negotiate(v);
  return i === IDENTITY ? 'identity' : OFFER[i]!;
};

test('the highest q wins; equal q goes to the server\'s first scheme', () => {
  assert.equal(pick('gzip, deflate, br'), 'br');
  assert.equal(pick('gzip, deflate'), 'gzip');
  assert.equal(pick('br;q=0.5, gzip'), 'gzip');
  assert.equal(pick('GZIP;Q=0.8, br;q=0.9'), 'br');
  assert.equal(pick('x-gzip'), 'gzip');
});

test('q=0 refuses a coding; * covers unlisted ones; identity wins only when ranked higher', () => {
  assert.equal(pick('br;q=0, gzip;q=0'), 'identity');
  assert.equal(pick('br;q=0, *'), 'gzip');
  assert.equal(pick('*;q=0'), 'identity');
  assert.equal(pick('identity;q=1, gzip;q=0.5'), 'identity');
  assert.equal(pick('identity;q=0.1, gzip;q=0.5'), 'gzip');
  assert.equal(pick('identity;q=0'), 'identity', 'nothing offered is acceptable: identity all the same');
  assert.equal(pick(undefined), 'identity');
  assert.equal(pick(''), 'identity');
  assert.equal(pick('deflate'), 'identity');
});

test('acceptableCodings lists every acceptable offered coding, best first', () => {
  assert.deepEqual(acceptableCodings('gzip, br;q=0.9', ['br', 'gzip', 'deflate']), [1, 0]);
  assert.deepEqual(acceptableCodings('*', ['br', 'gzip']), [0, 1]);
});

test('acceptEncodingOf joins repeated fields', () => {
  assert.equal(acceptEncodingOf(['Host', 'x', 'Accept-Encoding', 'gzip', 'accept-encoding', 'br']), 'gzip, br');
  assert.equal(acceptEncodingOf(['Host', 'x']), undefined);
});
