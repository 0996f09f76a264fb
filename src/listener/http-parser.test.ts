import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PARSER_LIMITS,
  HttpParseError,
  RequestParser,
  type ParserLimits,
  type ParserSink,
  type RequestHead,
} from './http-parser.js';
import { ListenerError } from '../errors.js';

/** Records what a parser reports, as comparable events. */
class Recorder implements ParserSink {
  readonly heads: RequestHead[] = [];
  /** One entry per request: its body bytes (latin1). */
  readonly bodies: string[] = [];
  readonly chunks: Buffer[] = [];
  readonly errors: HttpParseError[] = [];
  readonly events: string[] = [];
  /** One entry per request: its trailer fields (undefined when it had none). */
  readonly trailers: Array<readonly string[] | undefined> = [];
  #body = '';
  onRequestEnd: (trailers?: readonly string[]) => void = (trailers) => {
    this.trailers.push(trailers);
    this.end();
  };
  onRequestHead(head: RequestHead): void {
    this.heads.push(head);
    this.events.push(`head ${head.method} ${head.target}`);
  }
  onBody(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.#body += chunk.toString('latin1');
  }
  end(): void {
    this.bodies.push(this.#body);
    this.events.push(`end ${JSON.stringify(this.#body)}`);
    this.#body = '';
  }
  onError(err: HttpParseError): void {
    this.errors.push(err);
    this.events.push(`error ${err.status} ${err.reason}`);
  }
}

type Split = 'whole' | 'bytes' | number;

function feed(parser: RequestParser, input: Buffer, split: Split): void {
  if (split === 'whole') return parser.execute(input);
  const step = split === 'bytes' ? 1 : split;
  for (let i = 0; i < input.length; i += step) parser.execute(input.subarray(i, i + step));
}

function parse(input: string | Buffer, split: Split = 'whole', limits: ParserLimits = DEFAULT_PARSER_LIMITS): Recorder {
  const rec = new Recorder();
  const parser = new RequestParser(limits, rec);
  feed(parser, typeof input === 'string' ? Buffer.from(input, 'latin1') : input, split);
  return rec;
}

/** Same events whether the input comes whole, byte by byte or in odd-sized pieces. */
function parseEverySplit(input: string | Buffer, limits: ParserLimits = DEFAULT_PARSER_LIMITS): Recorder {
  const whole = parse(input, 'whole', limits);
  for (const split of ['bytes', 2, 3, 7, 64] as const) {
    const rec = parse(input, split, limits);
    assert.deepEqual(rec.events, whole.events, `split ${split}`);
    assert.deepEqual(rec.heads, whole.heads, `split ${split}`);
  }
  return whole;
}

function expectReject(input: string | Buffer, status: number, reason: string, limits: ParserLimits = DEFAULT_PARSER_LIMITS): HttpParseError {
  const rec = parseEverySplit(input, limits);
  assert.equal(rec.errors.length, 1, `expected one error, events: ${rec.events.join(' | ')}`);
  const err = rec.errors[0]!;
  assert.equal(err.status, status, err.message);
  assert.equal(err.reason, reason, err.message);
  assert.equal(err.code, 'LSN_PROTOCOL');
  assert.ok(err instanceof ListenerError);
  return err;
}

function one(input: string): { head: RequestHead; body: string } {
  const rec = parseEverySplit(input);
  assert.deepEqual(rec.errors, [], rec.events.join(' | '));
  assert.equal(rec.heads.length, 1);
  assert.equal(rec.bodies.length, 1, 'request ended');
  return { head: rec.heads[0]!, body: rec.bodies[0]! };
}

const small = (over: Partial<ParserLimits>): ParserLimits => ({ ...DEFAULT_PARSER_LIMITS, ...over });

describe('request heads', () => {
  test('a browser GET', () => {
    const raw =
      'GET /path/page.aspx?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: test/1.0\r\n' +
      'Accept:text/html,  */*  \r\nX-Empty:\r\nX-Tab:\t a\tb \t\r\n\r\n';
    const { head, body } = one(raw);
    assert.deepEqual(head, {
      method: 'GET',
      target: '/path/page.aspx?q=1',
      versionMajor: 1,
      versionMinor: 1,
      rawHeaders: ['Host', 'example.com:8080', 'User-Agent', 'test/1.0', 'Accept', 'text/html,  */*', 'X-Empty', '', 'X-Tab', 'a\tb'],
      host: 'example.com:8080',
      contentLength: -1,
      chunked: false,
      keepAlive: true,
      expectContinue: false,
      upgrade: false,
      headBytes: raw.length,
    });
    assert.equal(body, '');
  });

  test('methods: common ones interned, any token accepted', () => {
    for (const m of ['GET', 'PUT', 'POST', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH', 'M-SEARCH', 'PROPFIND', 'get']) {
      assert.equal(one(`${m} / HTTP/1.1\r\nHost: a\r\n\r\n`).head.method, m);
    }
  });

  test('target forms are kept raw; obs-text (raw UTF-8) is accepted and latin1-decoded', () => {
    assert.equal(one('GET http://a.example/x?y HTTP/1.1\r\nHost: a\r\n\r\n').head.target, 'http://a.example/x?y');
    assert.equal(one('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n').head.target, '*');
    assert.equal(one('CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n').head.target, 'a.example:443');
    const utf8 = Buffer.concat([Buffer.from('GET /'), Buffer.from('é', 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: a\r\n\r\n')]);
    const rec = parseEverySplit(utf8);
    assert.equal(Buffer.from(rec.heads[0]!.target, 'latin1').toString('utf8'), '/é');
  });

  test('empty lines before the request line are skipped and not counted in headBytes', () => {
    const req = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const { head } = one('\r\n\r\n' + req);
    assert.equal(head.headBytes, req.length);
  });

  test('HTTP/1.0 without Host is fine; host is undefined', () => {
    const { head } = one('GET / HTTP/1.0\r\n\r\n');
    assert.equal(head.host, undefined);
    assert.equal(head.versionMinor, 0);
  });

  test('an empty Host value is syntactically valid (RFC 9112 §3.2)', () => {
    assert.equal(one('GET / HTTP/1.1\r\nHost:\r\n\r\n').head.host, '');
    assert.equal(one('GET / HTTP/1.1\r\nhOsT: [::1]:80\r\n\r\n').head.host, '[::1]:80');
  });
});

describe('connection semantics', () => {
  const keepAlive = (version: string, headers: string): boolean =>
    one(`GET / HTTP/${version}\r\nHost: a\r\n${headers}\r\n`).head.keepAlive;

  test('HTTP/1.1 is persistent unless Connection: close', () => {
    assert.equal(keepAlive('1.1', ''), true);
    assert.equal(keepAlive('1.1', 'Connection: close\r\n'), false);
    assert.equal(keepAlive('1.1', 'Connection: CLOSE\r\n'), false);
    assert.equal(keepAlive('1.1', 'Connection: keep-alive, Close\r\n'), false);
    assert.equal(keepAlive('1.1', 'Connection: te\r\nConnection: close\r\n'), false);
    assert.equal(keepAlive('1.1', 'Connection: closed\r\n'), true);
  });

  test('HTTP/1.0 is persistent only with Connection: keep-alive', () => {
    assert.equal(keepAlive('1.0', ''), false);
    assert.equal(keepAlive('1.0', 'Connection: keep-alive\r\n'), true);
    assert.equal(keepAlive('1.0', 'Connection: Keep-Alive\r\n'), true);
    assert.equal(keepAlive('1.0', 'Connection: foo ,  keep-alive \r\n'), true);
    assert.equal(keepAlive('1.0', 'Connection: keep-alive, close\r\n'), false);
  });

  test('Expect: 100-continue only counts in HTTP/1.1', () => {
    const req = (v: string, e: string): boolean =>
      one(`POST / HTTP/${v}\r\nHost: a\r\nExpect: ${e}\r\nContent-Length: 0\r\n\r\n`).head.expectContinue;
    assert.equal(req('1.1', '100-continue'), true);
    assert.equal(req('1.1', '100-Continue'), true);
    assert.equal(req('1.1', '101-continue'), false);
    assert.equal(req('1.0', '100-continue'), false);
  });

  test('upgrade needs Connection: upgrade and an Upgrade header, in HTTP/1.1', () => {
    const up = (v: string, h: string): boolean => one(`GET /ws HTTP/${v}\r\nHost: a\r\n${h}\r\n`).head.upgrade;
    assert.equal(up('1.1', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'), true);
    assert.equal(up('1.1', 'Connection: keep-alive, upgrade\r\nUpgrade: h2c\r\n'), true);
    assert.equal(up('1.1', 'Upgrade: websocket\r\n'), false);
    assert.equal(up('1.1', 'Connection: upgrade\r\n'), false);
    assert.equal(up('1.0', 'Connection: upgrade\r\nUpgrade: websocket\r\n'), false);
  });
});

describe('bodies', () => {
  test('Content-Length body in the same buffer, delivered as slices of the input', () => {
    const input = Buffer.from('POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world', 'latin1');
    const rec = new Recorder();
    new RequestParser(DEFAULT_PARSER_LIMITS, rec).execute(input);
    assert.equal(rec.heads[0]!.contentLength, 11);
    assert.deepEqual(rec.bodies, ['hello world']);
    assert.equal(rec.chunks.length, 1);
    assert.equal(rec.chunks[0]!.buffer, input.buffer, 'no copy');
  });

  test('a body split across buffers', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    p.execute(Buffer.from('PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01'));
    assert.deepEqual(rec.events, ['head PUT /x']);
    p.execute(Buffer.from('2345'));
    assert.deepEqual(rec.bodies, []);
    p.execute(Buffer.from('6789GET /next HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.deepEqual(rec.events, ['head PUT /x', 'end "0123456789"', 'head GET /next', 'end ""']);
    assert.deepEqual(rec.chunks.map((c) => c.toString()), ['01', '2345', '6789']);
  });

  test('Content-Length: 0 ends the request at once', () => {
    const rec = parse('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n');
    assert.deepEqual(rec.events, ['head POST /', 'end ""']);
    assert.equal(rec.heads[0]!.contentLength, 0);
  });

  test('Content-Length with leading zeros, OWS and identical repeats folds into one value', () => {
    assert.equal(one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  005 \r\n\r\nabcde').head.contentLength, 5);
    assert.equal(one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nabcde').head.contentLength, 5);
    assert.equal(
      one('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nabcde').head.contentLength,
      5,
    );
  });

  test('chunked body with extensions and trailers', () => {
    const raw =
      'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n' +
      '5;ext\r\nhello\r\n' +
      '1 ; name = "quoted \\" ;x" ; flag\r\n,\r\n' +
      'A;a=b;c=d\r\n 01234567 \r\n' +
      '000;last\r\nX-Trailer: 1\r\nX-Other:  two \r\n\r\n';
    const { head, body } = one(raw);
    assert.equal(head.chunked, true);
    assert.equal(head.contentLength, -1);
    assert.equal(body, 'hello, 01234567 ');
    assert.deepEqual(head.rawHeaders, ['Host', 'a', 'Transfer-Encoding', 'Chunked'], 'trailers are not headers');
  });

  test('trailer fields are reported with the request end, each request its own', () => {
    const input =
      'POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Trailer: 1\r\nX-Other:  two \r\n\r\n' +
      'POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
    for (const split of ['whole', 'bytes', 3] as const) {
      assert.deepEqual(parse(input, split).trailers, [['X-Trailer', '1', 'X-Other', 'two'], undefined], `split ${split}`);
    }
  });

  test('chunk sizes with leading zeros and upper-case hex', () => {
    const { body } = one('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000B\r\n0123456789a\r\n0\r\n\r\n');
    assert.equal(body, '0123456789a');
  });

  test('a chunked body ends only after the trailer section', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    p.execute(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n'));
    assert.deepEqual(rec.events, ['head POST /']);
    p.execute(Buffer.from('\r\n'));
    assert.deepEqual(rec.events, ['head POST /', 'end "abc"']);
  });

  test('chunk data is delivered without copies', () => {
    const input = Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    const rec = new Recorder();
    new RequestParser(DEFAULT_PARSER_LIMITS, rec).execute(input);
    assert.equal(rec.chunks[0]!.buffer, input.buffer);
  });
});

describe('pipelining and incremental input', () => {
  const pipeline =
    'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n' +
    'POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' +
    'POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n' +
    '\r\nGET /4 HTTP/1.0\r\n\r\n';
  const expected = [
    'head GET /1',
    'end ""',
    'head POST /2',
    'end "abc"',
    'head POST /3',
    'end "xy"',
    'head GET /4',
    'end ""',
  ];

  test('several requests in one buffer are all emitted, in order', () => {
    assert.deepEqual(parse(pipeline).events, expected);
  });

  test('byte-by-byte and odd splits give the same events', () => {
    assert.deepEqual(parseEverySplit(pipeline).events, expected);
  });

  test('pseudo-random splits give the same events', () => {
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 23) + 1;
    const input = Buffer.from(pipeline.repeat(20));
    for (let round = 0; round < 20; round++) {
      const rec = new Recorder();
      const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
      for (let i = 0; i < input.length; ) {
        const n = rnd();
        p.execute(input.subarray(i, i + n));
        i += n;
      }
      assert.equal(rec.events.length, expected.length * 20);
      assert.deepEqual(rec.events.slice(-8), expected);
    }
  });

  test('a caller that refills one Buffer object for every read gets correct results', () => {
    const input = Buffer.from(pipeline.repeat(3), 'latin1');
    const k = 5;
    const padded = Buffer.concat([input, Buffer.alloc((k - (input.length % k)) % k, '\r\n')]);
    const reused = Buffer.alloc(k);
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    for (let i = 0; i < padded.length; i += k) {
      padded.copy(reused, 0, i, i + k);
      p.execute(reused);
    }
    assert.deepEqual(rec.events, [...expected, ...expected, ...expected]);
    assert.deepEqual(rec.heads, parse(input).heads);
  });

  test('rawHeaders belong to their request', () => {
    const rec = parse('GET /1 HTTP/1.1\r\nHost: a\r\nX: 1\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n');
    assert.deepEqual(rec.heads[0]!.rawHeaders, ['Host', 'a', 'X', '1']);
    assert.deepEqual(rec.heads[1]!.rawHeaders, ['Host', 'b']);
  });

  test('the parser accepts a long head split at every byte (no quadratic re-scan needed)', () => {
    const big = 'GET / HTTP/1.1\r\nHost: a\r\n' + 'X-Filler: ' + 'f'.repeat(8000) + '\r\n\r\n';
    const rec = parse(big, 'bytes');
    assert.equal(rec.heads[0]!.rawHeaders[3]!.length, 8000);
  });
});

describe('pause and resume', () => {
  test('pausing in onRequestEnd holds the next pipelined request until resume()', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    rec.onRequestEnd = (): void => {
      rec.end();
      p.pause();
    };
    p.execute(Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\n'));
    assert.deepEqual(rec.events, ['head GET /1', 'end ""']);
    assert.equal(p.paused, true);
    assert.ok(p.bufferedBytes > 0);
    p.execute(Buffer.from('Host: a\r\n\r\n'));
    assert.deepEqual(rec.events, ['head GET /1', 'end ""'], 'input while paused is kept');
    p.resume();
    assert.deepEqual(rec.events, ['head GET /1', 'end ""', 'head GET /2', 'end ""']);
    p.resume();
    assert.deepEqual(rec.events.slice(4), ['head GET /3', 'end ""']);
    assert.equal(p.bufferedBytes, 0);
  });

  test('kept bytes are copied, so the caller may reuse its buffer', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    rec.onRequestEnd = (): void => {
      rec.end();
      p.pause();
    };
    const input = Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok');
    p.execute(input);
    input.fill(0x21);
    p.resume();
    assert.deepEqual(rec.events, ['head GET /1', 'end ""', 'head POST /2', 'end "ok"']);
  });

  test('resume() from inside a callback continues the running loop', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    rec.onRequestEnd = (): void => {
      rec.end();
      p.pause();
      p.resume();
    };
    p.execute(Buffer.from('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.deepEqual(rec.events, ['head GET /1', 'end ""', 'head GET /2', 'end ""']);
  });

  test('pausing in onBody stops body delivery until resume()', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    p.execute(Buffer.from('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab'));
    p.pause();
    p.execute(Buffer.from('cdef'));
    assert.equal(rec.bodies.length, 0);
    p.resume();
    assert.deepEqual(rec.bodies, ['abcdef']);
  });

  test('after an upgrade the connection takes the unconsumed bytes', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    rec.onRequestEnd = (): void => {
      rec.end();
      if (rec.heads.at(-1)!.upgrade) p.pause();
    };
    p.execute(Buffer.from('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', 'latin1'));
    assert.deepEqual(rec.events, ['head GET /ws', 'end ""']);
    assert.equal(p.takeUnconsumed().toString('latin1'), '\x81\x05hello');
    assert.equal(p.takeUnconsumed().length, 0);
  });

  test('reset() makes a parser reusable after an error', () => {
    const rec = new Recorder();
    const p = new RequestParser(DEFAULT_PARSER_LIMITS, rec);
    p.execute(Buffer.from('GET / HTTP/9.9\r\n'));
    p.execute(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.deepEqual(rec.events, ['error 505 Version_N/S'], 'nothing consumed after an error');
    p.reset();
    p.execute(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    assert.deepEqual(rec.events.slice(1), ['head GET /', 'end ""']);
  });
});

describe('rejections', () => {
  test('line endings must be CRLF', () => {
    expectReject('GET / HTTP/1.1\nHost: a\r\n\r\n', 400, 'BadRequest');
    expectReject('GET / HTTP/1.1\r\nHost: a\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\n\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\nHost: a\n\n', 400, 'BadRequest');
    expectReject('\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'BadRequest');
  });

  test('the method must be a token', () => {
    expectReject('G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'Verb');
    expectReject(' GET / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'Verb');
    expectReject('GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'Verb');
    expectReject('G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'Verb');
  });

  test('the request line needs a target and a version', () => {
    expectReject('GET\r\n\r\n', 400, 'BadRequest');
    expectReject('GET /\r\n\r\n', 400, 'BadRequest');
    expectReject('GET  HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
  });

  test('the target must not contain controls, spaces, NUL or DEL', () => {
    expectReject('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
    expectReject('GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
    expectReject('GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
    expectReject('GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
    expectReject('GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
    expectReject('GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'URL');
  });

  test('a target over maxUrlBytes is 414 URL_Length', () => {
    const limits = small({ maxUrlBytes: 100 });
    one(`GET /${'a'.repeat(99)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    const ok = parseEverySplit(`GET /${'a'.repeat(99)} HTTP/1.1\r\nHost: a\r\n\r\n`, limits);
    assert.equal(ok.errors.length, 0, 'exactly maxUrlBytes is accepted');
    expectReject(`GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 'URL_Length', limits);
  });

  test('a URL too long for maxRequestBytes is 414, as HTTP.sys answers long query strings', () => {
    expectReject(`GET /?q=${'a'.repeat(17000)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 'URL_Length');
    expectReject(`${'A'.repeat(17000)} / HTTP/1.1\r\nHost: a\r\n\r\n`, 400, 'RequestLength');
  });

  test('versions other than HTTP/1.0 and 1.1 are 505; malformed ones 400', () => {
    expectReject('GET / HTTP/1.2\r\nHost: a\r\n\r\n', 505, 'Version_N/S');
    expectReject('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, 'Version_N/S');
    expectReject('GET / HTTP/0.9\r\n\r\n', 505, 'Version_N/S');
    expectReject('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'Version_N/S');
    expectReject('GET / http/1.1\r\nHost: a\r\n\r\n', 400, 'BadRequest');
    expectReject('GET / HTTP/1\r\nHost: a\r\n\r\n', 400, 'BadRequest');
    expectReject('GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400, 'BadRequest');
    expectReject('GET / HTTP/1.10\r\nHost: a\r\n\r\n', 400, 'BadRequest');
  });

  test('request line + headers over maxRequestBytes is 400 RequestLength; exactly the limit is fine', () => {
    const start = 'GET / HTTP/1.1\r\nHost: a\r\n';
    const filler = (n: number): string => {
      // Lines of "X-N: vvv…\r\n" adding up to exactly n bytes.
      let out = '';
      let i = 0;
      while (n - out.length > 300) out += `X-${i++}: ${'v'.repeat(200)}\r\n`;
      const rest = n - out.length - `X-${i}: \r\n`.length;
      return out + `X-${i}: ${'v'.repeat(rest)}\r\n`;
    };
    const exact = start + filler(16384 - start.length - 2) + '\r\n';
    assert.equal(exact.length, 16384);
    assert.equal(one(exact).head.headBytes, 16384);
    const over = start + filler(16384 - start.length - 1) + '\r\n';
    expectReject(over, 400, 'RequestLength');
  });

  test('a header line over maxFieldLength is 400 FieldLength', () => {
    const limits = small({ maxFieldLength: 100 });
    const ok = parseEverySplit(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(97)}\r\n\r\n`, limits);
    assert.equal(ok.errors.length, 0);
    expectReject(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(98)}\r\n\r\n`, 400, 'FieldLength', limits);
    // With the default limits a single huge field is still reported as a field problem.
    expectReject(`GET / HTTP/1.1\r\nHost: a\r\nCookie: ${'v'.repeat(17000)}\r\n\r\n`, 400, 'FieldLength');
  });

  test('trailers count against maxRequestBytes and maxFieldLength', () => {
    const limits = small({ maxRequestBytes: 200, maxFieldLength: 50 });
    const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n';
    expectReject(head + `T: ${'t'.repeat(60)}\r\n\r\n`, 400, 'FieldLength', limits);
    expectReject(head + `T: ${'t'.repeat(40)}\r\n`.repeat(4) + '\r\n', 400, 'RequestLength', limits);
    expectReject(head + 'T : x\r\n\r\n', 400, 'Header');
    expectReject(head + 'T: x\x00\r\n\r\n', 400, 'Header');
  });

  test('too many headers is 400 Header', () => {
    const limits = small({ maxHeaders: 5 });
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: ${i}\r\n`).join('');
    assert.equal(parseEverySplit(`GET / HTTP/1.1\r\nHost: a\r\n${lines(4)}\r\n`, limits).errors.length, 0);
    expectReject(`GET / HTTP/1.1\r\nHost: a\r\n${lines(5)}\r\n`, 400, 'Header', limits);
  });

  test('header syntax errors are 400 Header', () => {
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n  continued\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tcontinued\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: a\x1bb\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n', 400, 'Header');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: 1\r\n\r\n', 400, 'Header');
  });

  test('Host problems are 400 Hostname', () => {
    expectReject('GET / HTTP/1.1\r\n\r\n', 400, 'Hostname');
    expectReject('GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', 400, 'Hostname');
    expectReject('GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n', 400, 'Hostname');
    expectReject('GET / HTTP/1.1\r\nHost: a b\r\n\r\n', 400, 'Hostname');
    expectReject('GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400, 'Hostname');
    expectReject('GET / HTTP/1.1\r\nHost: user@a\r\n\r\n', 400, 'Hostname');
  });

  test('Content-Length must be digits, consistent and safe', () => {
    const cl = (v: string): string => `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${v}\r\n\r\n`;
    for (const v of ['+5', '-1', '5a', '0x5', '', '5 5', '5,', ',5', '5, 6', '1e3', '99999999999999999999', '9007199254740992']) {
      expectReject(cl(v), 400, 'BadRequest');
    }
    expectReject('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400, 'BadRequest');
    assert.equal(parse(cl('9007199254740991')).heads[0]!.contentLength, Number.MAX_SAFE_INTEGER);
  });
});

describe('request smuggling shapes', () => {
  const te = (value: string, extra = ''): string =>
    `POST / HTTP/1.1\r\nHost: a\r\n${extra}Transfer-Encoding: ${value}\r\n\r\n0\r\n\r\n`;

  test('Content-Length together with Transfer-Encoding is 400', () => {
    expectReject(te('chunked', 'Content-Length: 4\r\n'), 400, 'BadRequest');
    expectReject('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n', 400, 'BadRequest');
  });

  test('Transfer-Encoding other than exactly chunked is 501 N/I', () => {
    for (const v of ['gzip, chunked', 'chunked, chunked', 'identity', 'chunked;q=1', 'chunked, gzip', 'xchunked', '']) {
      expectReject(te(v), 501, 'N/I');
    }
    expectReject(te('chunked', 'Transfer-Encoding: chunked\r\n'), 501, 'N/I');
    expectReject(te('chunked', 'Transfer-Encoding: gzip\r\n'), 501, 'N/I');
  });

  test('Transfer-Encoding in HTTP/1.0 is 400', () => {
    expectReject('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'BadRequest');
  });

  test('Transfer-Encoding hidden by obs-fold or leading whitespace is 400 Header', () => {
    expectReject('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n', 400, 'Header');
    expectReject('POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n', 400, 'Header');
    expectReject('POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'Header');
    expectReject('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400, 'Header');
  });

  const chunked = (body: string): string => `POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;

  test('chunk sizes must be bare hex', () => {
    expectReject(chunked('0x5\r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked(' 5\r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('5 \r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('+5\r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('\r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('g\r\n'), 400, 'BadRequest');
    expectReject(chunked('20000000000001\r\n'), 400, 'BadRequest');
    expectReject(chunked('ffffffffffffffffff\r\n'), 400, 'BadRequest');
  });

  test('chunk extensions are accepted when well-formed and rejected otherwise', () => {
    assert.equal(one(chunked('5;ext\r\nhello\r\n0\r\n\r\n')).body, 'hello');
    assert.equal(one(chunked('5;a="b c";d=e\r\nhello\r\n0;z\r\n\r\n')).body, 'hello');
    for (const ext of [';', ';=x', ';a=', ';a="unterminated', ';a=b c', ';a\x00', ';a="\x01"', 'x', ';a;', ';a ']) {
      expectReject(chunked(`5${ext}\r\nhello\r\n0\r\n\r\n`), 400, 'BadRequest');
    }
  });

  test('chunk data must be followed by CRLF', () => {
    expectReject(chunked('5\r\nhelloX\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('5\r\nhello\rX0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('5\r\nhello\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('3\r\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
  });

  test('LF-only chunk lines are rejected', () => {
    expectReject(chunked('5\nhello\r\n0\r\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('5\r\nhello\r\n0\n\r\n'), 400, 'BadRequest');
    expectReject(chunked('5\r\nhello\r\n0\r\n\n'), 400, 'Header');
  });

  test('an overlong chunk-size line is rejected without buffering it', () => {
    const limits = small({ maxFieldLength: 64 });
    expectReject(chunked(`5;${'a'.repeat(100)}\r\nhello\r\n0\r\n\r\n`), 400, 'BadRequest', limits);
  });

  test('the error stops the parser: nothing after it is reported', () => {
    const rec = parse('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n');
    assert.deepEqual(rec.events, ['error 400 BadRequest']);
  });
});
