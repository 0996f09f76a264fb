import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ListenerError } from '../errors.js';
import { DEFAULT_PARSER_LIMITS, isValidHost } from './http-parser.js';
import { httpSysParameters } from './http-sys-parameters.js';

test('no WHARF_HTTP_PARAMETERS: HTTP.sys defaults (UrlSegmentMaxCount 255, UrlSegmentMaxLength 260, 16 KiB heads)', () => {
  for (const text of [undefined, '', '  ']) assert.deepEqual(httpSysParameters(text), DEFAULT_PARSER_LIMITS);
  assert.equal(DEFAULT_PARSER_LIMITS.urlSegmentMaxCount, 255);
  assert.equal(DEFAULT_PARSER_LIMITS.urlSegmentMaxLength, 260);
});

test('registry value names in any case, separated by ; or ,; MaxRequestBytes also bounds the target', () => {
  const l = httpSysParameters('urlsegmentmaxcount=1000; UrlSegmentMaxLength=0, MaxFieldLength=32768;MaxRequestBytes=65536');
  assert.equal(l.urlSegmentMaxCount, 1000);
  assert.equal(l.urlSegmentMaxLength, 0);
  assert.equal(l.maxFieldLength, 32768);
  assert.equal(l.maxRequestBytes, 65536);
  assert.equal(l.maxUrlBytes, 65536);
  assert.equal(l.maxHeaders, DEFAULT_PARSER_LIMITS.maxHeaders);
});

test('an unknown name or a value out of HTTP.sys\'s range is LSN_HTTP_PARAMETER', () => {
  for (const [text, message] of [
    ['UrlSegmentMaxCnt=5', /unknown parameter 'UrlSegmentMaxCnt'/],
    ['UrlSegmentMaxCount=16384', /UrlSegmentMaxCount must be a whole number from 0 to 16383, not '16384'/],
    ['MaxFieldLength=10', /from 64 to 65534/],
    ['MaxRequestBytes=1e5', /not '1e5'/],
    ['UrlSegmentMaxLength', /not ''/],
  ] as const) {
    assert.throws(() => httpSysParameters(text), (err: unknown) => err instanceof ListenerError && err.code === 'LSN_HTTP_PARAMETER' && message.test(err.message));
  }
});

test('isValidHost: a uri-host and port made of the bytes RFC 3986 allows; no userinfo, no spaces', () => {
  for (const h of ['b.test', 'B.TEST:8080', '[::1]:80', '127.0.0.1']) assert.equal(isValidHost(h), true, h);
  for (const h of ['', 'user@b.test', 'b test', 'b.test/x', 'caf\u00e9.test']) assert.equal(isValidHost(h), false, h);
});
