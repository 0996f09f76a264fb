import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CustomLogFields, headerValue, type CustomFieldDefinition } from './custom-log-fields.js';
import { NO_HEADERS, type LogRecord } from './log-record.js';

function record(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    time: 0,
    siteId: 3,
    siteName: 'Shop',
    computerName: 'WEB01',
    serverIp: '10.0.0.4',
    method: 'POST',
    uriStem: '/cart/add',
    uriQuery: 'id=7',
    serverPort: 8080,
    username: '',
    clientIp: '203.0.113.9',
    clientPort: 51234,
    protocolVersion: 'HTTP/1.1',
    secure: false,
    userAgent: '',
    cookie: '',
    referer: '',
    host: 'shop.example:8080',
    status: 200,
    subStatus: 0,
    win32Status: 0,
    bytesSent: 0,
    bytesReceived: 0,
    timeTakenMs: 0,
    appPoolId: 'ShopPool',
    requestHeaders: ['Host', 'shop.example:8080', 'Content-Length', '12', 'X-Trace', 'a b', 'x-trace', 'c'],
    responseHeaders: NO_HEADERS,
    ...overrides,
  };
}

const sv = (name: string): CustomFieldDefinition => ({ logFieldName: name, sourceName: name, sourceType: 'ServerVariable' });

test('server variables the listener knows; unknown ones are -', () => {
  const names = [
    'REMOTE_ADDR', 'REMOTE_PORT', 'LOCAL_ADDR', 'SERVER_PORT', 'SERVER_NAME', 'HTTP_HOST', 'URL', 'QUERY_STRING',
    'REQUEST_METHOD', 'SERVER_PROTOCOL', 'HTTPS', 'CONTENT_LENGTH', 'INSTANCE_ID', 'APP_POOL_ID', 'HTTP_X_TRACE', 'UNKNOWN_VAR',
  ];
  const fields = new CustomLogFields(names.map(sv));
  assert.equal(fields.names, names.join(' '));
  assert.equal(
    fields.format(record()),
    ' 203.0.113.9 51234 10.0.0.4 8080 shop.example shop.example:8080 /cart/add id=7 POST HTTP/1.1 off 12 3 ShopPool a+b,c -',
  );
  assert.equal(fields.needsResponseHeaders, false);
});

test('header sources: any case, repeated headers joined, absent is -', () => {
  assert.equal(headerValue(['A', '1', 'b', '2', 'a', '3'], 'a'), '1,3');
  const fields = new CustomLogFields([
    { logFieldName: 'Trace', sourceName: 'x-TRACE', sourceType: 'RequestHeader' },
    { logFieldName: 'Cache', sourceName: 'Cache-Control', sourceType: 'ResponseHeader' },
  ]);
  assert.equal(fields.needsResponseHeaders, true);
  assert.equal(fields.format(record()), ' a+b,c -');
  assert.equal(fields.format(record({ responseHeaders: ['cache-control', 'max-age=60'] })), ' a+b,c max-age=60');
});

test('values are cut at maxCustomFieldLength before encoding', () => {
  const fields = new CustomLogFields([{ logFieldName: 'T', sourceName: 'X-Long', sourceType: 'RequestHeader' }], 5);
  assert.equal(fields.format(record({ requestHeaders: ['X-Long', 'ab cdefgh'] })), ' ab+cd');
  const def = new CustomLogFields([{ logFieldName: 'T', sourceName: 'X-Long', sourceType: 'RequestHeader' }]);
  assert.equal(def.format(record({ requestHeaders: ['X-Long', 'x'.repeat(5000)] })).length, 1 + 4096);
});

test('a field name with a space cannot break the #Fields line', () => {
  assert.equal(new CustomLogFields([{ logFieldName: 'My Field', sourceName: 'URL', sourceType: 'ServerVariable' }]).names, 'My+Field');
});
