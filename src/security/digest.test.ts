import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestMatches, digestProblem, digestResponse, type DigestFields } from './digest.js';

// RFC 7616 §3.9.1: the example exchange, with the responses the RFC prints for MD5 and SHA-256.
const rfc: Omit<DigestFields, 'response' | 'algorithm'> = {
  user: 'Mufasa',
  realm: 'http-auth@example.org',
  method: 'GET',
  uri: '/dir/index.html',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  qop: 'auth',
};
const password = 'Circle of Life';

test("RFC 7616's example: the MD5 and SHA-256 responses it prints", () => {
  assert.equal(digestResponse({ ...rfc, algorithm: 'MD5' }, password), '8ca523f5e9506fed4657c9700eebdbec');
  assert.equal(digestResponse({ ...rfc, algorithm: 'SHA-256' }, password), '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
});

test('a response matches only the right password; hex case does not matter', () => {
  const f: DigestFields = { ...rfc, algorithm: 'SHA-256', response: '753927FA0E85D155564E2E272A28D1802CA10DAF4496794697CF8DB5856CB6C1' };
  assert.equal(digestMatches(f, password), true);
  assert.equal(digestMatches(f, 'Circle of life'), false);
  assert.equal(digestMatches({ ...f, response: 'abc' }, password), false);
  assert.equal(digestMatches({ ...f, uri: '/dir/other.html' }, password), false);
});

test('-sess variants hash the nonce and cnonce into HA1 (RFC 7616 §3.4.2)', () => {
  const md5 = digestResponse({ ...rfc, algorithm: 'MD5' }, password);
  const sess = digestResponse({ ...rfc, algorithm: 'MD5-sess' }, password);
  assert.notEqual(md5, sess);
  assert.equal(digestMatches({ ...rfc, algorithm: 'MD5-sess', response: sess }, password), true);
  assert.equal(digestMatches({ ...rfc, algorithm: 'SHA-256-sess', response: sess }, password), false);
  assert.match(digestResponse({ ...rfc, algorithm: 'SHA-256-sess' }, password), /^[0-9a-f]{64}$/);
});

test('auth-int and the qop-less RFC 2069 form are refused with a reason', () => {
  const f: DigestFields = { ...rfc, algorithm: 'MD5', response: '' };
  assert.equal(digestProblem(f), undefined);
  assert.match(digestProblem({ ...f, qop: 'auth-int' })!, /auth-int is not supported/);
  assert.match(digestProblem({ ...f, qop: '' })!, /requires qop/);
  assert.match(digestProblem({ ...f, nc: 'zz' })!, /nc/);
});
