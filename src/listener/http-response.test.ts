import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  HTTP_SYS_ERROR_PAGES,
  HTTP_SYS_SERVER,
  STATUS_REASONS,
  cachedDateHeader,
  httpSysErrorBody,
  httpSysErrorPageFor,
  httpSysErrorResponse,
  keepsConnectionAlive,
  reasonPhrase,
  serializeResponseHead,
  type HttpSysErrorPage,
  type ResponseHeadOptions,
} from './http-response.js';
import type { HttpParseReason } from './http-parser.js';
import { ListenerError } from '../errors.js';

const DATE = 'Sun, 06 Nov 1994 08:49:37 GMT';
const base: ResponseHeadOptions = {
  keepAlive: true,
  chunked: false,
  contentLength: -1,
  date: DATE,
  server: 'Wharf/1.0',
  isHead: false,
};
const head = (status: number, headers: readonly string[], over: Partial<ResponseHeadOptions>): string =>
  serializeResponseHead(status, reasonPhrase(status), headers, { ...base, ...over }).toString('latin1');

describe('cachedDateHeader', () => {
  test('is an IMF-fixdate, cached within a second and recomputed after it', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37, 0);
    assert.equal(cachedDateHeader(t), DATE);
    const first = cachedDateHeader(t + 10);
    assert.equal(cachedDateHeader(t + 999), first);
    assert.equal(first, DATE);
    assert.equal(cachedDateHeader(t + 1000), 'Sun, 06 Nov 1994 08:49:38 GMT');
    assert.equal(cachedDateHeader(t + 61_000), 'Sun, 06 Nov 1994 08:50:38 GMT');
    // A clock that steps back is followed, not ignored.
    assert.equal(cachedDateHeader(t), DATE);
  });

  test('defaults to now', () => {
    assert.match(cachedDateHeader(), /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  });
});

describe('STATUS_REASONS', () => {
  test('uses RFC 9110 names', () => {
    assert.equal(STATUS_REASONS[200], 'OK');
    assert.equal(STATUS_REASONS[413], 'Content Too Large');
    assert.equal(STATUS_REASONS[414], 'URI Too Long');
    assert.equal(STATUS_REASONS[422], 'Unprocessable Content');
    assert.equal(reasonPhrase(599), '');
  });
});

describe('serializeResponseHead', () => {
  test('exact bytes with Content-Length', () => {
    assert.equal(
      head(200, ['Content-Type', 'text/plain', 'X-A', 'b'], { contentLength: 5 }),
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-A: b\r\n' +
        `Date: ${DATE}\r\nServer: Wharf/1.0\r\nContent-Length: 5\r\n\r\n`,
    );
  });

  test('chunked, no Server, closing', () => {
    assert.equal(
      head(404, [], { chunked: true, server: null, keepAlive: false }),
      `HTTP/1.1 404 Not Found\r\nDate: ${DATE}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
  });

  test('Content-Length wins over chunked', () => {
    assert.equal(
      head(200, [], { chunked: true, contentLength: 0 }),
      `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nContent-Length: 0\r\n\r\n`,
    );
  });

  test('hop-by-hop and framing headers from the worker are dropped', () => {
    assert.equal(
      head(
        200,
        ['Connection', 'keep-alive', 'keep-alive', 'timeout=5', 'TRANSFER-ENCODING', 'gzip', 'Content-Length', '99', 'X', 'y'],
        { contentLength: 2 },
      ),
      `HTTP/1.1 200 OK\r\nX: y\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nContent-Length: 2\r\n\r\n`,
    );
  });

  test('a Date or Server from the worker replaces ours', () => {
    assert.equal(
      head(200, ['date', 'Mon, 07 Nov 1994 00:00:00 GMT', 'Server', 'app'], { contentLength: 0 }),
      'HTTP/1.1 200 OK\r\ndate: Mon, 07 Nov 1994 00:00:00 GMT\r\nServer: app\r\nContent-Length: 0\r\n\r\n',
    );
  });

  test('a body without framing is delimited by close', () => {
    const options = { ...base };
    assert.equal(keepsConnectionAlive(200, options), false);
    assert.equal(
      head(200, [], {}),
      `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nConnection: close\r\n\r\n`,
    );
  });

  test('204, 304 and HEAD keep the connection without framing a body', () => {
    assert.equal(head(204, [], { contentLength: 10 }), `HTTP/1.1 204 No Content\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\n\r\n`);
    assert.equal(head(304, [], { chunked: true }), `HTTP/1.1 304 Not Modified\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\n\r\n`);
    assert.equal(
      head(304, [], { contentLength: 42 }),
      `HTTP/1.1 304 Not Modified\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nContent-Length: 42\r\n\r\n`,
    );
    assert.equal(head(200, [], { isHead: true, chunked: true }), `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\n\r\n`);
    assert.equal(
      head(200, [], { isHead: true, contentLength: 7 }),
      `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nContent-Length: 7\r\n\r\n`,
    );
    assert.equal(keepsConnectionAlive(204, base), true);
    assert.equal(keepsConnectionAlive(200, { ...base, isHead: true }), true);
  });

  test('interim responses: 100 bare, 101 names the upgrade', () => {
    assert.equal(head(100, [], {}), 'HTTP/1.1 100 Continue\r\n\r\n');
    assert.equal(
      head(101, ['Upgrade', 'websocket', 'Connection', 'Upgrade'], {}),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n',
    );
    assert.equal(keepsConnectionAlive(101, base), false);
  });

  test('HTTP/1.0 clients: explicit keep-alive, and no chunked framing', () => {
    assert.equal(
      head(200, [], { http10: true, contentLength: 1 }),
      `HTTP/1.1 200 OK\r\nDate: ${DATE}\r\nServer: Wharf/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n`,
    );
    assert.equal(keepsConnectionAlive(200, { ...base, http10: true, chunked: true }), false);
    assert.throws(
      () => head(200, [], { http10: true, chunked: true }),
      (e: unknown) => e instanceof ListenerError && e.code === 'LSN_PROTOCOL',
    );
  });

  test('CR, LF, NUL and other controls in names or values throw LSN_PROTOCOL', () => {
    const bad: (readonly string[])[] = [
      ['X', 'a\r\nSet-Cookie: evil'],
      ['X', 'a\nb'],
      ['X', 'a\rb'],
      ['X', 'a\x00b'],
      ['X', 'a\x1bb'],
      ['X', '\u0100'],
      ['X\r\nY', 'a'],
      ['X Y', 'a'],
      ['', 'a'],
      ['X:', 'a'],
    ];
    for (const headers of bad) {
      assert.throws(
        () => serializeResponseHead(200, 'OK', headers, base),
        (e: unknown) => e instanceof ListenerError && e.code === 'LSN_PROTOCOL',
        JSON.stringify(headers),
      );
    }
    assert.throws(() => serializeResponseHead(200, 'OK\r\nX: y', [], base), ListenerError);
    assert.throws(() => serializeResponseHead(20, 'OK', [], base), ListenerError);
    assert.throws(() => serializeResponseHead(200, 'OK', ['X'], base), ListenerError);
    assert.throws(() => serializeResponseHead(200, 'OK', [], { ...base, server: 'a\nb' }), ListenerError);
    // HTAB and obs-text are legal in values.
    assert.match(serializeResponseHead(200, 'OK', ['X', 'a\tb\xe9'], base).toString('latin1'), /X: a\tb\xe9\r\n/);
  });
});

describe('httpSysErrorResponse', () => {
  test('Invalid Hostname: exact bytes', () => {
    const res = httpSysErrorResponse({ page: 'invalidHostname', keepAlive: false, date: DATE }).toString('latin1');
    const body =
      '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n' +
      '<html><head><title>Bad Request</title>\r\n' +
      '<meta http-equiv="Content-Type" content="text/html; charset=us-ascii"></head>\r\n' +
      '<body><h2>Bad Request - Invalid Hostname</h2>\r\n' +
      '<hr><p>HTTP Error 400. The request hostname is invalid.</p>\r\n' +
      '</body></html>\r\n';
    assert.equal(
      res,
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=us-ascii\r\n' +
        `Date: ${DATE}\r\nServer: ${HTTP_SYS_SERVER}\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n` +
        body,
    );
    assert.equal(HTTP_SYS_SERVER, 'Wharf-HTTPAPI/1.0');
  });

  test('every page: status line, title, heading and sentence', () => {
    const expected: Record<HttpSysErrorPage, [number, string, string]> = {
      badRequest: [400, 'Bad Request', 'HTTP Error 400. The request is badly formed.'],
      invalidHostname: [400, 'Bad Request - Invalid Hostname', 'HTTP Error 400. The request hostname is invalid.'],
      requestTooLong: [400, 'Bad Request - Request Too Long', 'HTTP Error 400. The size of the request headers is too long.'],
      invalidHeader: [400, 'Bad Request - Invalid Header', 'HTTP Error 400. The request has an invalid header name or value.'],
      fieldTooLong: [400, 'Bad Request - Header Field Too Long', 'HTTP Error 400. A request header field is too long.'],
      invalidUrl: [400, 'Bad Request - Invalid URL', 'HTTP Error 400. The request URL is invalid.'],
      invalidVerb: [400, 'Bad Request - Invalid Verb', 'HTTP Error 400. The request verb is invalid.'],
      urlTooLong: [414, 'Request URL Too Long', 'HTTP Error 414. The request URL is too long.'],
      notImplemented: [501, 'Not Implemented', 'HTTP Error 501. The request uses a feature the server does not implement.'],
      internalError: [500, 'Internal Server Error', 'HTTP Error 500. The server encountered an error processing the request.'],
      unauthorized: [401, 'Unauthorized', 'HTTP Error 401. Access is denied.'],
      forbidden: [403, 'Forbidden', 'HTTP Error 403. Access is denied.'],
      notFound: [404, 'Not Found', 'HTTP Error 404. The requested resource is not found.'],
      badGateway: [502, 'Bad Gateway', 'HTTP Error 502. The worker process serving the request ended before it answered.'],
      serviceUnavailable: [503, 'Service Unavailable', 'HTTP Error 503. The service is unavailable.'],
      versionNotSupported: [505, 'HTTP Version Not Supported', 'HTTP Error 505. The HTTP version of the request is not supported.'],
    };
    assert.deepEqual(Object.keys(expected).sort(), Object.keys(HTTP_SYS_ERROR_PAGES).sort());
    for (const [page, [status, heading, sentence]] of Object.entries(expected) as [HttpSysErrorPage, [number, string, string]][]) {
      const text = httpSysErrorResponse({ page, keepAlive: false }).toString('latin1');
      assert.ok(text.startsWith(`HTTP/1.1 ${status} ${STATUS_REASONS[status as keyof typeof STATUS_REASONS]}\r\n`), page);
      assert.ok(text.includes(`<h2>${heading}</h2>`), page);
      assert.ok(text.includes(`<p>${sentence}</p>`), page);
      assert.ok(/[\x80-\xff]/.test(text) === false, 'us-ascii');
      const [headPart, bodyPart] = text.split('\r\n\r\n', 2) as [string, string];
      const length = Number(/Content-Length: (\d+)/.exec(headPart)![1]);
      assert.equal(text.length - headPart.length - 4, length);
      assert.ok(bodyPart.startsWith('<!DOCTYPE'));
    }
  });

  test('503 kept alive, and HEAD gets the head only', () => {
    const alive = httpSysErrorResponse({ page: 'serviceUnavailable', keepAlive: true, date: DATE }).toString('latin1');
    assert.ok(!alive.includes('Connection:'));
    const res = httpSysErrorResponse({ page: 'serviceUnavailable', keepAlive: true, isHead: true, date: DATE, server: null });
    assert.equal(
      res.toString('latin1'),
      'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=us-ascii\r\n' +
        `Date: ${DATE}\r\nContent-Length: ${httpSysErrorBody('serviceUnavailable').length}\r\n\r\n`,
    );
  });

  test('every parser reason maps to a page with the same status', () => {
    const reasons: [HttpParseReason, number][] = [
      ['BadRequest', 400],
      ['Header', 400],
      ['Verb', 400],
      ['URL', 400],
      ['URL_Length', 414],
      ['Version_N/S', 505],
      ['RequestLength', 400],
      ['FieldLength', 400],
      ['Hostname', 400],
      ['N/I', 501],
    ];
    for (const [reason, status] of reasons) assert.equal(HTTP_SYS_ERROR_PAGES[httpSysErrorPageFor(reason)].status, status, reason);
    assert.equal(httpSysErrorPageFor('Hostname'), 'invalidHostname');
    assert.equal(httpSysErrorPageFor('RequestLength'), 'requestTooLong');
  });
});
