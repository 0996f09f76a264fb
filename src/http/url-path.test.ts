import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalizePath, isUnderUrlPath, parseRequestTarget } from './url-path.js';

test('plain paths pass through unchanged', () => {
  assert.equal(canonicalizePath('/a/b.html'), '/a/b.html');
  assert.equal(canonicalizePath('/'), '/');
  assert.equal(canonicalizePath('/dir/'), '/dir/');
});

test('dot segments, backslashes and duplicate slashes are resolved', () => {
  assert.equal(canonicalizePath('/a/./b/../c'), '/a/c');
  assert.equal(canonicalizePath('/a\\b'), '/a/b');
  assert.equal(canonicalizePath('//a///b/'), '/a/b/');
  assert.equal(canonicalizePath('/a/%2e%2E/b'), '/b');
  assert.equal(canonicalizePath('/a%5cb'), '/a/b');
});

test('paths that climb above the root or carry NUL/control bytes are refused', () => {
  assert.equal(canonicalizePath('/../etc/passwd'), undefined);
  assert.equal(canonicalizePath('/a/../../etc/passwd'), undefined);
  assert.equal(canonicalizePath('/%2e%2e/etc/passwd'), undefined);
  assert.equal(canonicalizePath('/..%5c..%5cetc/passwd'), undefined);
  assert.equal(canonicalizePath('/a%00.html'), undefined);
  assert.equal(canonicalizePath('/a%0d%0aX: y'), undefined);
  assert.equal(canonicalizePath('/bad%zz'), undefined);
  assert.equal(canonicalizePath('/trunc%4'), undefined);
});

test('UTF-8 is decoded; invalid UTF-8 is refused', () => {
  assert.equal(canonicalizePath('/caf%C3%A9.html'), '/café.html');
  assert.equal(canonicalizePath('/%ff%fe'), undefined);
});

test('request targets split into path and query; absolute-form carries a host', () => {
  assert.deepEqual(parseRequestTarget('/a/b?x=1&y=%20'), { ok: true, path: '/a/b', query: 'x=1&y=%20', host: undefined });
  assert.deepEqual(parseRequestTarget('http://Example.com:8080/x?q'), { ok: true, path: '/x', query: 'q', host: 'Example.com:8080' });
  assert.deepEqual(parseRequestTarget('http://example.com'), { ok: true, path: '/', query: '', host: 'example.com' });
  assert.equal(parseRequestTarget('example.com/x').ok, false);
  assert.equal(parseRequestTarget('*').ok, true);
});

test('URL prefixes match whole segments case-insensitively', () => {
  assert.equal(isUnderUrlPath('/App/x', '/app'), true);
  assert.equal(isUnderUrlPath('/app', '/app'), true);
  assert.equal(isUnderUrlPath('/apple', '/app'), false);
  assert.equal(isUnderUrlPath('/anything', '/'), true);
});

test('a request target decodes raw bytes and %-escapes alike: UTF-8 first, else Windows-1252 (HTTP.sys FavorUTF8, EnableNonUTF8)', () => {
  const path = (t: string): string | undefined => {
    const r = parseRequestTarget(t);
    return r.ok ? r.path : undefined;
  };
  assert.equal(path('/caf\u00c3\u00a9.txt'), '/caf\u00e9.txt', 'raw UTF-8 bytes (a latin1 string: one character per byte)');
  assert.equal(path('/caf%C3%A9.txt'), '/caf\u00e9.txt');
  assert.equal(path('/caf\u00c3%A9.txt'), '/caf\u00e9.txt', 'raw and escaped bytes of one character');
  assert.equal(path('/caf\u00e9.txt'), '/caf\u00e9.txt', 'E9 alone is not UTF-8: Windows-1252');
  assert.equal(path('/%80%ff'), '/\u20ac\u00ff');
  assert.equal(path('/%ff%fe'), '/\u00ff\u00fe');
  // C1 controls are refused like C0 ones (AllowRestrictedChars=0), whichever way they arrive.
  assert.equal(path('/a%C2%85b'), undefined);
  assert.equal(path('/a\u00c2\u0085b'), undefined);
  assert.equal(path('/a%81'), undefined, '0x81 is unassigned in Windows-1252: U+0081');
});

test('canonicalizePath takes a JavaScript string: its characters stand for themselves, escapes are UTF-8', () => {
  assert.equal(canonicalizePath('/\u4e2d/%C3%A9'), '/\u4e2d/\u00e9');
  assert.equal(canonicalizePath('/caf\u00e9'), '/caf\u00e9');
});

test('UrlSegmentMaxCount and UrlSegmentMaxLength: counted on the decoded path; 0 is no limit', () => {
  const limits = { urlSegmentMaxCount: 3, urlSegmentMaxLength: 4 };
  assert.equal(parseRequestTarget('/a/b/c', limits).ok, true);
  assert.equal(parseRequestTarget('/a/b/c/', limits).ok, true);
  assert.equal(parseRequestTarget('/a/b/c/d', limits).ok, false);
  assert.equal(parseRequestTarget('/a/b/c/x/../', limits).ok, true, 'dot segments are resolved first');
  assert.equal(parseRequestTarget('/abcd', limits).ok, true);
  assert.equal(parseRequestTarget('/abcde', limits).ok, false);
  assert.equal(parseRequestTarget('/abcde/', limits).ok, false);
  assert.equal(parseRequestTarget('/%C3%A9%C3%A9%C3%A9%C3%A9', limits).ok, true, '4 characters, 8 bytes');
  assert.equal(parseRequestTarget('/ab%2Fcde', limits).ok, true, 'an escaped slash separates segments');
  assert.equal(parseRequestTarget('/' + 'a/'.repeat(10_000), { urlSegmentMaxCount: 0, urlSegmentMaxLength: 0 }).ok, true);
});
