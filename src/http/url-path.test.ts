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
