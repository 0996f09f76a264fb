import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListenerChannel, WorkerChannel } from './channel.js';
import type { ListenerInbound, WorkerInbound, RequestHeadMessage, ResponseEndMessage, ResponseHeadMessage } from './messages.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/** A connected pair of real unix sockets, like the socketpair a worker inherits. */
async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(tracked(mkdtempSync(join(tmpdir(), 'wharf-ipc-'))), 's');
  return new Promise((resolve) => {
    const server = createServer((a) => {
      server.close();
      resolve([a, b]);
    });
    let b: Socket;
    server.listen(path, () => {
      b = connect(path);
    });
  });
}

function noopListener(over: Partial<ListenerInbound>): ListenerInbound {
  return {
    responseHead() {},
    responseInterim() {},
    responseBody() {},
    responseEnd() {},
    responseComplete() {},
    responseFile() {},
    responseCacheable() {},
    responseLogUrl() {},
    requestPause() {},
    requestResume() {},
    log() {},
    traceRecord() {},
    closed() {},
    ...over,
  };
}
function noopWorker(over: Partial<WorkerInbound>): WorkerInbound {
  return {
    init() {},
    config() {},
    requestHead() {},
    requestBody() {},
    requestEnd() {},
    requestAbort() {},
    responsePause() {},
    responseResume() {},
    shutdown() {},
    closed() {},
    ...over,
  };
}

test('request heads, bodies and responses cross the channel intact', async () => {
  const [a, b] = await socketPair();
  const heads: Array<[number, RequestHeadMessage]> = [];
  const bodies: Buffer[] = [];
  let ended = 0;
  const gotAll = new Promise<void>((resolve) => {
    const worker = new WorkerChannel(
      b,
      noopWorker({
        requestHead: (s, h) => heads.push([s, h]),
        requestBody: (_s, c) => bodies.push(Buffer.from(c)),
        requestEnd: () => {
          ended++;
          worker.sendResponseHead(7, { status: 404, reason: 'Not Found', headers: ['Content-Type', 'text/html', 'X-A', ''] });
          worker.sendResponseBody(7, Buffer.alloc(100000, 0x61));
          worker.sendResponseEnd(7, { subStatus: 3, win32Status: 0, username: 'josé', close: false, abort: false, log: true });
        },
      }),
    );
    void worker;
    resolve();
  });
  await gotAll;
  const responses: { status?: number; headers?: readonly string[]; body: number; end?: ResponseEndMessage } = { body: 0 };
  const done = new Promise<void>((resolve) => {
    const listener = new ListenerChannel(
      a,
      noopListener({
        responseHead: (_s, h) => {
          responses.status = h.status;
          responses.headers = h.headers;
        },
        responseBody: (_s, c) => (responses.body += c.length),
        responseEnd: (_s, e) => {
          responses.end = e;
          resolve();
        },
      }),
    );
    listener.sendRequestHead(7, {
      method: 'GET',
      rawUrl: '/caf%C3%A9?x=1',
      path: '/café',
      query: 'x=1',
      protocol: 'HTTP/1.1',
      siteId: 3,
      remoteAddress: '127.0.0.1',
      remotePort: 5555,
      localAddress: '127.0.0.1',
      localPort: 80,
      contentLength: -1,
      rawHeaders: ['Host', 'example', 'Empty', ''],
    });
    listener.sendRequestBody(7, Buffer.alloc(3000, 1));
    listener.sendRequestBody(7, Buffer.from('xy'));
    listener.sendRequestEnd(7);
  });
  await done;
  assert.equal(heads.length, 1);
  const [stream, h] = heads[0]!;
  assert.equal(stream, 7);
  assert.equal(h.path, '/café');
  assert.equal(h.rawUrl, '/caf%C3%A9?x=1');
  assert.equal(h.siteId, 3);
  assert.equal(h.contentLength, -1);
  assert.deepEqual(h.rawHeaders, ['Host', 'example', 'Empty', '']);
  assert.equal(Buffer.concat(bodies).length, 3002);
  assert.equal(ended, 1);
  assert.equal(responses.status, 404);
  assert.deepEqual(responses.headers, ['Content-Type', 'text/html', 'X-A', '']);
  assert.equal(responses.body, 100000);
  assert.deepEqual(responses.end, { subStatus: 3, win32Status: 0, username: 'josé', close: false, abort: false, log: true });
  a.destroy();
  b.destroy();
});

test('frames written in one tick are delivered in order, and closing is reported', async () => {
  const [a, b] = await socketPair();
  const seen: number[] = [];
  let closedWith: Error | undefined | 'not-closed' = 'not-closed';
  const done = new Promise<void>((resolve) => {
    new ListenerChannel(
      a,
      noopListener({
        log: (m) => seen.push(Number(m.message)),
        closed: (e) => {
          closedWith = e;
          resolve();
        },
      }),
    );
  });
  const w = new WorkerChannel(b, noopWorker({}));
  for (let i = 1; i <= 1000; i++) w.sendLog({ level: 'info', message: String(i) });
  setTimeout(() => w.close(), 50);
  await done;
  assert.equal(seen.length, 1000);
  assert.deepEqual(seen.slice(0, 3), [1, 2, 3]);
  assert.equal(seen[999], 1000);
  assert.equal(closedWith, undefined);
});

test('a corrupt frame length closes the channel with IPC_PROTOCOL', async () => {
  const [a, b] = await socketPair();
  const err = await new Promise<Error | undefined>((resolve) => {
    new ListenerChannel(a, noopListener({ closed: (e) => resolve(e) }));
    const bad = Buffer.alloc(9);
    bad.writeUInt32BE(0xffffffff, 0);
    b.write(bad);
  });
  assert.equal((err as { code?: string } | undefined)?.code, 'IPC_PROTOCOL');
  b.destroy();
});

test('a corrupt frame length after a partial read still closes the channel (nothing is buffered waiting for it)', { timeout: 5000 }, async () => {
  const [a, b] = await socketPair();
  const err = await new Promise<Error | undefined>((resolve) => {
    new ListenerChannel(a, noopListener({ closed: (e) => resolve(e) }));
    const bad = Buffer.alloc(9);
    bad.writeUInt32BE(0x7fffffff, 0);
    // The length arrives in two reads: the reader holds the first bytes, then sees the length.
    b.write(bad.subarray(0, 2));
    setTimeout(() => b.write(bad.subarray(2)), 20);
  });
  assert.equal((err as { code?: string } | undefined)?.code, 'IPC_PROTOCOL');
  b.destroy();
});

test('a buffered response travels as one ResponseComplete frame, small or large', async () => {
  const [a, b] = await socketPair();
  const got: Array<{ status: number; headers: readonly string[]; body: Buffer; user: string; log: boolean; close: boolean }> = [];
  const done = new Promise<void>((resolve) => {
    new ListenerChannel(
      a,
      noopListener({
        responseComplete: (_s, h, body, end) => {
          got.push({ status: h.status, headers: h.headers, body: Buffer.from(body), user: end.username, log: end.log, close: end.close });
          if (got.length === 2) resolve();
        },
      }),
    );
  });
  const w = new WorkerChannel(b, noopWorker({}));
  const end = { subStatus: 0, win32Status: 0, username: 'zoë', close: true, abort: false, log: false };
  w.sendResponseComplete(1, { status: 200, reason: '', headers: ['Content-Length', '5'] }, [Buffer.from('he'), Buffer.from('llo')], 5, end);
  const big = Buffer.alloc(100000, 7);
  w.sendResponseComplete(2, { status: 404, reason: 'Not Found', headers: [] }, [big, big], 200000, { ...end, username: '' });
  await done;
  assert.deepEqual(got[0], { status: 200, headers: ['Content-Length', '5'], body: Buffer.from('hello'), user: 'zoë', log: false, close: true });
  assert.equal(got[1]!.status, 404);
  assert.deepEqual(got[1]!.headers, []);
  assert.equal(got[1]!.body.length, 200000);
  assert.equal(got[1]!.user, '');
  a.destroy();
  b.destroy();
});

test('a file body travels by reference: head, the file\'s identity and range, end; a request may ask for bytes instead', async () => {
  const [a, b] = await socketPair();
  const got = new Promise<{ head: ResponseHeadMessage; file: unknown; end: ResponseEndMessage }>((resolve) => {
    new ListenerChannel(a, noopListener({ responseFile: (_s, head, file, end) => resolve({ head, file, end }) }));
  });
  const heads: boolean[] = [];
  const asked = new Promise<void>((resolve) => {
    new WorkerChannel(
      b,
      noopWorker({
        requestHead: (_s, h) => {
          heads.push(h.bytes === true);
          assert.deepEqual(h.rawHeaders, ['Host', 'x']);
          if (heads.length === 2) resolve();
        },
      }),
    ).sendResponseFile(
      9,
      { status: 206, reason: '', headers: ['Content-Range', 'bytes 10-19/100000'] },
      { fd: 27, dev: 2049, ino: 1234567, size: 100000, mtimeMs: 1733500000123.4567, offset: 10, length: 10 },
      { subStatus: 0, win32Status: 0, username: 'zoë', close: false, abort: false, log: true },
    );
  });
  const r = await got;
  assert.equal(r.head.status, 206);
  assert.deepEqual(r.head.headers, ['Content-Range', 'bytes 10-19/100000']);
  assert.deepEqual(r.file, { fd: 27, dev: 2049, ino: 1234567, size: 100000, mtimeMs: 1733500000123.4567, offset: 10, length: 10 });
  assert.equal(r.end.username, 'zoë');
  const l = new ListenerChannel(a, noopListener({}));
  const head = { method: 'GET', rawUrl: '/', path: '/', query: '', protocol: 'HTTP/1.1', siteId: 1, remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2, contentLength: 0, rawHeaders: ['Host', 'x'] };
  l.sendRequestHead(1, head);
  l.sendRequestHead(2, { ...head, bytes: true });
  await asked;
  assert.deepEqual(heads, [false, true]);
  a.destroy();
  b.destroy();
});

test('frames split across reads at any boundary arrive intact; a large body frame is handed on in pieces without being joined', async () => {
  // Frame bytes as the listener would write them, then delivered to the worker in slices of
  // awkward sizes (inside the length, the header, the body, between frames).
  const [sa, sb] = await socketPair();
  const capture: Buffer[] = [];
  sb.on('data', (c: Buffer) => capture.push(c));
  const l = new ListenerChannel(sa, noopListener({}));
  const body = Buffer.alloc(200_000);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  l.sendRequestBody(1, Buffer.from('small'));
  l.sendRequestBody(1, body);
  l.sendResponsePause(42);
  l.sendRequestBody(2, body.subarray(0, 70_000));
  l.sendRequestEnd(1);
  const total = 9 + 5 + 9 + 200_000 + 9 + 9 + 70_000 + 9;
  while (capture.reduce((n, c) => n + c.length, 0) < total) await new Promise((r) => setTimeout(r, 5));
  const wire = Buffer.concat(capture);
  sa.destroy();
  sb.destroy();

  for (const sizes of [[1, 4093], [7, 2, 1000], [4096], [65536, 10], [20, 65536, 1]]) {
    const [x, y] = await socketPair();
    try {
      const got = new Map<number, Buffer[]>();
      const order: string[] = [];
      const done = new Promise<void>((resolve) => {
        new WorkerChannel(
          y,
          noopWorker({
            requestBody: (s, c) => {
              // Pieces are views on the socket's reads: copy to keep them past this call.
              (got.get(s) ?? got.set(s, []).get(s)!).push(Buffer.from(c));
              if (order[order.length - 1] !== `body ${s}`) order.push(`body ${s}`);
            },
            responsePause: (id) => order.push(`pause ${id}`),
            requestEnd: (s) => {
              order.push(`end ${s}`);
              resolve();
            },
          }),
        );
      });
      // Write slice by slice, letting each reach the reader on its own.
      let off = 0;
      for (let i = 0; off < wire.length; i++) {
        const n = sizes[i % sizes.length]!;
        x.write(wire.subarray(off, off + n));
        off += n;
        if (i % 64 === 0) await new Promise((r) => setImmediate(r));
      }
      await done;
      assert.deepEqual(order, ['body 1', 'pause 42', 'body 2', 'end 1'], `slices of ${sizes.join(',')}`);
      assert.deepEqual(Buffer.concat(got.get(1)!), Buffer.concat([Buffer.from('small'), body]), `stream 1 with slices of ${sizes.join(',')}`);
      assert.deepEqual(Buffer.concat(got.get(2)!), body.subarray(0, 70_000));
      // 'small', then the 200 KB frame in several pieces (it never fits one read).
      assert.ok(got.get(1)!.length >= 3, `stream 1 came in ${got.get(1)!.length} pieces`);
    } finally {
      x.destroy();
      y.destroy();
    }
  }
});

test('interim responses, request trailers and log URLs cross the channel', async () => {
  const [a, b] = await socketPair();
  const ends: Array<[number, readonly string[]]> = [];
  const interims: Array<[number, number, readonly string[]]> = [];
  const logUrls: Array<[number, string, string]> = [];
  let endsDone!: () => void;
  let interimDone!: () => void;
  let logUrlDone!: () => void;
  const gotEnds = new Promise<void>((r) => (endsDone = r));
  const gotInterim = new Promise<void>((r) => (interimDone = r));
  const gotLogUrls = new Promise<void>((r) => (logUrlDone = r));
  const w = new WorkerChannel(
    b,
    noopWorker({
      requestEnd: (s, trailers) => {
        ends.push([s, trailers]);
        if (ends.length === 2) endsDone();
      },
    }),
  );
  const l = new ListenerChannel(
    a,
    noopListener({
      responseInterim: (s, status, headers) => {
        interims.push([s, status, headers]);
        interimDone();
      },
      responseLogUrl: (s, path, query) => {
        logUrls.push([s, path, query]);
        if (logUrls.length === 2) logUrlDone();
      },
    }),
  );
  l.sendRequestEnd(1);
  l.sendRequestEnd(2, ['X-Digest', 'sha-256=abc', 'Empty', '']);
  w.sendResponseInterim(3, 103, ['Link', '</a.css>; rel=preload']);
  w.sendResponseLogUrl(4, '/content/show.txt', 'id=42');
  w.sendResponseLogUrl(5, '/café/ü', '');
  await Promise.all([gotEnds, gotInterim, gotLogUrls]);
  assert.deepEqual(logUrls, [[4, '/content/show.txt', 'id=42'], [5, '/café/ü', '']]);
  assert.deepEqual(ends, [[1, []], [2, ['X-Digest', 'sha-256=abc', 'Empty', '']]]);
  assert.deepEqual(interims, [[3, 103, ['Link', '</a.css>; rel=preload']]]);
  a.destroy();
  b.destroy();
});
