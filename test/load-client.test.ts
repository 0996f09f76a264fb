/**
 * The load client counts what it claims: each counter is checked against what a small local
 * node:http server actually did (requests seen, sockets opened, sockets destroyed or reset).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ResponseParser, runLoad } from './helpers/load.js';
import { freePort } from './helpers/wharf.js';

const BODY = Buffer.from('0123456789abcdef'.repeat(200)); // 3200 bytes

interface TestServer {
  readonly port: number;
  /** Requests the server saw (including ones it then refused to answer). */
  requests: number;
  /** TCP connections accepted. */
  connections: number;
  /** Answers by kind, counted by the handler. */
  readonly counts: Map<string, number>;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number, count: (kind: string) => void) => void;

async function serve(handler: Handler): Promise<TestServer> {
  const counts = new Map<string, number>();
  const count = (kind: string): void => {
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  };
  const server = createServer({ keepAliveTimeout: 30000 });
  const state: TestServer = {
    port: 0,
    requests: 0,
    connections: 0,
    counts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => state.connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const n = ++state.requests;
    handler(req, res, n, count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  (state as { port: number }).port = typeof a === 'object' && a !== null ? a.port : 0;
  return state;
}

/** Content-Length or chunked, by path: the same bytes either way. */
const framed: Handler = (req, res, _n, count) => {
  if (req.url === '/chunked') {
    count('chunked');
    // No Content-Length: node:http sends Transfer-Encoding: chunked, one chunk per write.
    res.write(BODY.subarray(0, 1000));
    setImmediate(() => {
      res.write(BODY.subarray(1000, 1001));
      res.end(BODY.subarray(1001));
    });
    return;
  }
  count('length');
  res.setHeader('Content-Length', BODY.length);
  res.end(BODY);
};

test('keep-alive with Content-Length and chunked responses: every request completes on one connection per client', async () => {
  const srv = await serve(framed);
  try {
    const r = await runLoad({ port: srv.port, paths: ['/length', '/chunked'], connections: 4, durationMs: 300, checkBody: (b) => b.equals(BODY) });
    assert.ok(r.completed > 20, `only ${r.completed} responses`);
    assert.equal(r.sent, srv.requests);
    assert.equal(r.completed, r.sent);
    assert.deepEqual(r.statuses, { 200: r.completed });
    assert.equal(srv.counts.get('chunked')! + srv.counts.get('length')!, r.completed);
    assert.ok(srv.counts.get('chunked')! >= 10);
    assert.equal(r.failed, 0);
    assert.equal(r.badBodies, 0);
    assert.equal(r.connectionErrors, 0);
    assert.equal(r.serverClosed, 0);
    assert.equal(r.closedWithNotice, 0);
    assert.equal(r.timedOut, 0);
    assert.equal(r.unanswered, 0);
    assert.equal(r.protocolErrors, 0);
    assert.equal(srv.connections, 4, 'keep-alive: one connection per client');
    assert.ok(r.durationMs >= 300 && r.durationMs < 2000);
  } finally {
    await srv.close();
  }
});

test('checkBody: a body that does not match is counted as bad, per response', async () => {
  const wrong = Buffer.from(BODY);
  wrong[BODY.length - 1] = 0x21; // the last byte differs
  const srv = await serve((_req, res, n, count) => {
    const b = n % 3 === 0 ? wrong : BODY;
    if (b === wrong) count('wrong');
    res.setHeader('Content-Length', b.length);
    res.end(b);
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 2, durationMs: 200, checkBody: (b) => b.equals(BODY) });
    assert.ok((srv.counts.get('wrong') ?? 0) >= 3);
    assert.equal(r.badBodies, srv.counts.get('wrong'));
    assert.equal(r.completed, r.sent);
    assert.equal(r.failed, 0);
  } finally {
    await srv.close();
  }
});

test('a non-expected status counts as failed, per response', async () => {
  const srv = await serve((_req, res, n, count) => {
    const status = n % 4 === 0 ? 503 : 200;
    count(String(status));
    res.writeHead(status, { 'Content-Length': 2 });
    res.end('ok');
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 3, durationMs: 250 });
    assert.ok((srv.counts.get('503') ?? 0) >= 5);
    assert.equal(r.failed, srv.counts.get('503'));
    assert.deepEqual(r.statuses, { 200: srv.counts.get('200'), 503: srv.counts.get('503') });
    assert.equal(r.completed, r.sent);
    assert.equal(r.connectionErrors + r.serverClosed + r.closedWithNotice, 0);
  } finally {
    await srv.close();
  }
});

test('a destroyed socket with no response counts once as serverClosed, and the client reconnects', async () => {
  const srv = await serve((req, res, n) => {
    if (n === 5) {
      req.socket.destroy(); // FIN without a response: the request is lost
      return;
    }
    res.setHeader('Content-Length', 2);
    res.end('ok');
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 1, durationMs: 250 });
    assert.ok(r.completed > 10);
    assert.equal(r.serverClosed, 1);
    assert.equal(r.connectionErrors, 0);
    assert.equal(r.closedWithNotice, 0);
    assert.equal(r.sent, r.completed + 1, 'exactly one request went unanswered');
    assert.equal(r.sent, srv.requests);
    assert.equal(r.failed, 0);
    assert.equal(srv.connections, 2, 'one reconnect');
  } finally {
    await srv.close();
  }
});

test('a socket ended right after a keep-alive response (no Connection: close) counts as serverClosed', async () => {
  const srv = await serve((req, res, n) => {
    res.setHeader('Content-Length', 2);
    res.end('ok');
    // The response says keep-alive, then the server half-closes: the client has already written
    // its next request on this connection, which is lost (the keep-alive close race).
    if (n === 3) res.once('finish', () => req.socket.end());
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 1, durationMs: 250 });
    assert.ok(r.completed > 10);
    assert.equal(r.serverClosed, 1);
    assert.equal(r.connectionErrors, 0);
    assert.equal(r.closedWithNotice, 0);
    assert.equal(r.sent, r.completed + 1);
    assert.deepEqual(r.statuses, { 200: r.completed });
  } finally {
    await srv.close();
  }
});

test('a reset connection counts once as a connection error (ECONNRESET), not as serverClosed', async () => {
  const srv = await serve((req, res, n) => {
    if (n === 5) {
      req.socket.resetAndDestroy(); // RST
      return;
    }
    res.setHeader('Content-Length', 2);
    res.end('ok');
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 1, durationMs: 250 });
    assert.ok(r.completed > 10);
    assert.equal(r.connectionErrors, 1);
    assert.deepEqual(r.errors, { ECONNRESET: 1 });
    assert.equal(r.serverClosed, 0);
    assert.equal(r.sent, r.completed + 1);
    assert.equal(srv.connections, 2);
  } finally {
    await srv.close();
  }
});

test('Connection: close is honoured: counted as closedWithNotice, a new connection follows, nothing is lost', async () => {
  const srv = await serve((_req, res, n, count) => {
    res.setHeader('Content-Length', 2);
    if (n % 3 === 0) {
      count('close');
      res.setHeader('Connection', 'close');
    }
    res.end('ok');
  });
  try {
    const r = await runLoad({ port: srv.port, path: '/', connections: 2, durationMs: 250 });
    const closes = srv.counts.get('close') ?? 0;
    assert.ok(closes >= 5);
    assert.equal(r.closedWithNotice, closes);
    assert.equal(r.serverClosed, 0);
    assert.equal(r.connectionErrors, 0);
    assert.equal(r.completed, r.sent);
    assert.equal(r.failed, 0);
    // Each announced close was followed by a new connection, except perhaps at the very end.
    assert.ok(srv.connections >= 2 + closes - 2 && srv.connections <= 2 + closes, `${srv.connections} connections for ${closes} closes`);
  } finally {
    await srv.close();
  }
});

test('nothing listening: every attempt is a connection error (ECONNREFUSED) and nothing counts as sent', async () => {
  const port = await freePort();
  const r = await runLoad({ port, path: '/', connections: 1, durationMs: 200 });
  assert.ok(r.connectionErrors >= 2, `${r.connectionErrors} errors`);
  assert.deepEqual(r.errors, { ECONNREFUSED: r.connectionErrors });
  assert.equal(r.sent, 0);
  assert.equal(r.completed, 0);
});

test('at the end the client waits for outstanding responses (bounded), and counts those that never come', async () => {
  const slow = await serve((req, res) => {
    if (req.url === '/never') return; // no answer at all
    setTimeout(() => {
      res.setHeader('Content-Length', 2);
      res.end('ok');
    }, 250);
  });
  try {
    const waited = await runLoad({ port: slow.port, path: '/slow', connections: 2, durationMs: 100 });
    assert.equal(waited.sent, 2);
    assert.equal(waited.completed, 2, 'responses due after durationMs are still collected');
    assert.ok(waited.durationMs >= 240);
    assert.ok(waited.maxLatencyMs >= 240 && waited.maxLatencyMs < 3000, `max latency ${waited.maxLatencyMs}`);

    const given = await runLoad({ port: slow.port, path: '/never', connections: 2, durationMs: 100, drainTimeoutMs: 300 });
    assert.equal(given.sent, 2);
    assert.equal(given.completed, 0);
    assert.equal(given.unanswered, 2);
    assert.equal(given.timedOut, 0);
    assert.ok(given.durationMs >= 380 && given.durationMs < 3000, `took ${given.durationMs} ms`);

    const timed = await runLoad({ port: slow.port, path: '/never', connections: 1, durationMs: 500, responseTimeoutMs: 150 });
    assert.ok(timed.timedOut >= 2, `${timed.timedOut} timeouts`);
    assert.equal(timed.sent, timed.timedOut, 'each request that hung was counted once');
    assert.equal(timed.unanswered, 0);
    assert.equal(timed.completed, 0);
  } finally {
    await slow.close();
  }
});

test('POST bodies go out with Content-Length, slowly, in pieces; the server receives every byte', async () => {
  const body = Buffer.alloc(64 * 1024, 7);
  let received = 0;
  let wrongLength = 0;
  const srv = await serve((req, res) => {
    if (req.headers['content-length'] !== String(body.length) || req.headers['transfer-encoding'] !== undefined) wrongLength++;
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      received += n;
      const text = String(n);
      res.writeHead(200, { 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  try {
    const r = await runLoad({
      port: srv.port,
      path: '/upload',
      method: 'POST',
      body,
      bodyChunkSize: 8 * 1024,
      bodyChunkDelayMs: 10,
      connections: 3,
      durationMs: 300,
      checkBody: (b) => b.toString() === String(body.length),
    });
    assert.ok(r.completed >= 3);
    assert.equal(r.completed, r.sent);
    assert.equal(r.badBodies, 0);
    assert.equal(wrongLength, 0);
    assert.equal(received, r.sent * body.length);
    // Eight pieces with 10 ms between them: each upload takes at least 70 ms.
    assert.ok(r.maxLatencyMs >= 70, `max latency ${r.maxLatencyMs}`);
  } finally {
    await srv.close();
  }
});

test('onTick reports progress while the load runs', async () => {
  const srv = await serve(framed);
  try {
    const ticks: number[] = [];
    const r = await runLoad({ port: srv.port, path: '/length', connections: 2, durationMs: 500, tickMs: 100, onTick: (p) => ticks.push(p.completed) });
    assert.ok(ticks.length >= 3, `${ticks.length} ticks`);
    assert.ok(ticks[0]! > 0 && ticks[ticks.length - 1]! <= r.completed);
    assert.ok(ticks.every((v, i) => i === 0 || v >= ticks[i - 1]!));
  } finally {
    await srv.close();
  }
});

test('the client refuses a non-loopback host', () => {
  assert.throws(() => runLoad({ port: 80, host: '10.1.2.3', path: '/', connections: 1, durationMs: 10 }), /loopback/);
});

/** Feed a response one byte at a time (the hardest split) and return the parser. */
function parseBytewise(raw: string, head = false): { p: ResponseParser; outcome: string } {
  const p = new ResponseParser();
  p.reset(head, true);
  let outcome = 'More';
  const b = Buffer.from(raw, 'latin1');
  for (let i = 0; i < b.length && outcome === 'More'; i++) outcome = p.feed(b.subarray(i, i + 1));
  return { p, outcome };
}

test('ResponseParser: framing by Content-Length, chunked (extensions, trailers), 1xx, HEAD, 304, close-delimited', () => {
  let r = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
  assert.equal(r.outcome, 'Complete');
  assert.equal(r.p.body().toString(), 'hello');
  assert.equal(r.p.closes, false);

  r = parseBytewise('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n');
  assert.equal(r.outcome, 'Complete');
  assert.equal(r.p.status, 201);
  assert.equal(r.p.body().toString(), 'abc0123456789');
  assert.equal(r.p.closes, true);

  r = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n', true);
  assert.equal(r.outcome, 'Complete', 'a HEAD response has no body');
  r = parseBytewise('HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n');
  assert.equal(r.outcome, 'Complete');

  r = parseBytewise('HTTP/1.0 200 OK\r\n\r\nuntil the end');
  assert.equal(r.outcome, 'More');
  assert.equal(r.p.closes, true);
  assert.equal(r.p.end(), true);
  assert.equal(r.p.body().toString(), 'until the end');

  r = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
  assert.equal(r.outcome, 'More');
  assert.equal(r.p.end(), false, 'a truncated response is not complete');

  // Bytes beyond the response (nothing was asked for), in the same read or a later one.
  const whole = new ResponseParser();
  whole.reset(false, false);
  assert.equal(whole.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA')), 'Invalid');
  r = parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  assert.equal(r.outcome, 'Complete');
  assert.equal(r.p.feed(Buffer.from('X')), 'Invalid');
  assert.equal(parseBytewise('HTTP/1.1 2000 OK\r\n\r\n').outcome, 'Invalid');
  assert.equal(parseBytewise('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n').outcome, 'Invalid');
  assert.equal(parseBytewise('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n').outcome, 'Invalid');
});
