import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingResponse } from '../../../test/helpers/module-harness.js';
import { applyCgiHead, CgiHeadError, CgiHeadParser, MAX_CGI_HEAD_BYTES, type CgiHead } from './response-head.js';

/** Feed the text to a new parser in pieces of `size` bytes; the head and the body bytes after it. */
function parse(text: string | Buffer, size = Infinity): { head: CgiHead; rest: string } | undefined {
  const data = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const p = new CgiHeadParser();
  for (let i = 0; i < data.length; i += size) {
    const r = p.push(data.subarray(i, Math.min(data.length, i + size)));
    if (r !== undefined) {
      // What came after the chunk that completed the head is body too.
      const after = data.subarray(Math.min(data.length, i + size));
      return { head: r.head, rest: Buffer.concat([r.rest, after]).toString('latin1') };
    }
  }
  return undefined;
}

describe('CgiHeadParser', () => {
  it('parses an LF head and keeps the body bytes that came with it', () => {
    const r = parse('Content-Type: text/plain\nX-One: 1\n\nhello\n');
    assert.ok(r);
    assert.equal(r.head.status, 200);
    assert.equal(r.head.reason, '');
    assert.deepEqual(r.head.headers, ['Content-Type', 'text/plain', 'X-One', '1']);
    assert.equal(r.head.localRedirect, undefined);
    assert.equal(r.rest, 'hello\n');
  });

  it('parses a CRLF head, and a head that mixes CRLF and LF', () => {
    const crlf = parse('Content-Type: text/html\r\nX-A:  spaced value  \r\n\r\n<p>x</p>');
    assert.deepEqual(crlf?.head.headers, ['Content-Type', 'text/html', 'X-A', 'spaced value']);
    assert.equal(crlf?.rest, '<p>x</p>');
    const mixed = parse('Content-Type: text/plain\r\nX-B: 2\n\r\nbody');
    assert.deepEqual(mixed?.head.headers, ['Content-Type', 'text/plain', 'X-B', '2']);
    assert.equal(mixed?.rest, 'body');
  });

  it('finds the blank line whatever the chunk boundaries, byte by byte included', () => {
    for (const text of ['Content-Type: text/plain\r\nStatus: 201 Created\r\n\r\nBODY', 'Content-Type: text/plain\nStatus: 201 Created\n\nBODY']) {
      for (const size of [1, 2, 3, 4, 5, 7, 13]) {
        const r = parse(text, size);
        assert.ok(r, `size ${size}`);
        assert.equal(r.head.status, 201, `size ${size}`);
        assert.equal(r.head.reason, 'Created');
        assert.equal(r.rest, 'BODY', `size ${size}`);
      }
    }
  });

  it('waits while the head is incomplete, and counts what it holds', () => {
    const p = new CgiHeadParser();
    assert.equal(p.push(Buffer.from('Content-Type: text/plain\r\n')), undefined);
    assert.equal(p.push(Buffer.from('\r')), undefined);
    assert.equal(p.buffered, 27);
    const r = p.push(Buffer.from('\nrest'));
    assert.equal(r?.rest.toString(), 'rest');
    assert.equal(p.buffered, 0);
  });

  it('reads Status with and without a reason phrase', () => {
    assert.deepEqual([parse('Status: 404 Not Here\n\n')?.head.status, parse('Status: 404 Not Here\n\n')?.head.reason], [404, 'Not Here']);
    const bare = parse('Status: 418\nContent-Type: text/plain\n\n')!.head;
    assert.deepEqual([bare.status, bare.reason], [418, '']);
    // Status is not passed on as a header of its own.
    assert.deepEqual(bare.headers, ['Content-Type', 'text/plain']);
  });

  it('tells a local redirect (a path, no Status) from a client redirect', () => {
    const local = parse('Location: /other/page.cgi?x=1\n\n')!.head;
    assert.equal(local.localRedirect, '/other/page.cgi?x=1');
    const client = parse('Location: http://example.com/x\n\n')!.head;
    assert.deepEqual([client.status, client.localRedirect], [302, undefined]);
    assert.deepEqual(client.headers, ['Location', 'http://example.com/x']);
    // A path with a Status is the client's to follow (RFC 3875 §6.2.4, client-redirect with document).
    const withStatus = parse('Status: 301 Moved\nLocation: /new\n\n')!.head;
    assert.deepEqual([withStatus.status, withStatus.localRedirect], [301, undefined]);
    // A network-path reference (//host/x) is not local.
    const other = parse('Location: //evil.example/x\n\n')!.head;
    assert.deepEqual([other.status, other.localRedirect], [302, undefined]);
  });

  it('refuses malformed lines with CgiHeadError naming the problem', () => {
    const bad = (text: string, re: RegExp): void => {
      assert.throws(() => parse(text), (err: unknown) => err instanceof CgiHeadError && re.test(err.message), text);
    };
    bad('Content-Type text/plain\n\n', /has no name and colon/);
    bad(': value\n\n', /has no name and colon/);
    bad('Bad Name: x\n\n', /not a valid header name/);
    bad('Content-Type: text/plain\n continued\n\n', /has no name and colon|not a valid header name/);
    bad('Status: abc\n\n', /not a status code/);
    bad('Status: 42 Too Low\n\n', /not a status code/);
    bad('Status: 2000\n\n', /not a status code/);
    bad('\r\nbody without headers', /no headers/);
    bad('\nbody without headers', /no headers/);
    bad('X-Only: header\n\n', /neither Content-Type, Location nor Status/);
    // A control character inside a value would split the response head.
    bad('Content-Type: text/plain\nX-Bad: a\rb\n\n', /control character/);
  });

  it('refuses a head longer than MAX_CGI_HEAD_BYTES, complete or not', () => {
    const p = new CgiHeadParser();
    const line = Buffer.from(`X-Filler: ${'a'.repeat(1000)}\n`);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) p.push(line);
    }, /longer than 65536 bytes/);
    const whole = `Content-Type: text/plain\n${'X-F: y\n'.repeat(MAX_CGI_HEAD_BYTES / 7 + 1)}\nbody`;
    assert.throws(() => parse(whole), CgiHeadError);
    // Just under the limit is fine.
    const fits = `Content-Type: text/plain\n${'X-F: y\n'.repeat(9000)}\nbody`;
    assert.equal(parse(fits, 4096)?.rest, 'body');
  });
});

describe('applyCgiHead', () => {
  it('sets status, reason and headers; repeated headers keep one line each; framing headers are the server\u2019s', () => {
    const res = new RecordingResponse();
    res.subStatus = 7;
    const head = parse(
      'Status: 201 Made Here\nContent-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\nSet-Cookie: c=3\nContent-Length: 999\nTransfer-Encoding: chunked\nConnection: close\nX-Custom: yes\n\n',
    )!.head;
    applyCgiHead(res, head);
    assert.equal(res.statusCode, 201);
    assert.equal(res.subStatus, 0);
    assert.equal(res.statusReason, 'Made Here');
    assert.deepEqual(res.getHeader('Set-Cookie'), ['a=1', 'b=2', 'c=3']);
    assert.equal(res.getHeader('Content-Type'), 'text/plain');
    assert.equal(res.getHeader('X-Custom'), 'yes');
    assert.equal(res.getHeader('Content-Length'), undefined);
    assert.equal(res.getHeader('Transfer-Encoding'), undefined);
    assert.equal(res.getHeader('Connection'), undefined);
  });

  it('a client redirect becomes 302 with its Location', () => {
    const res = new RecordingResponse();
    applyCgiHead(res, parse('Location: https://example.com/there\n\n')!.head);
    assert.equal(res.statusCode, 302);
    assert.equal(res.getHeader('Location'), 'https://example.com/there');
  });
});
