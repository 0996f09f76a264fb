import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { eventually, rawRequest, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'static' });
});
after(async () => {
  await w?.stop();
});

/** Keep-alive client that keeps fetching while the bad requests fly. */
function backgroundClient(port: number): { stop(): Promise<{ ok: number; bad: number }> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 2 });
  let running = true;
  let ok = 0;
  let bad = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/site.css', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) ok++;
          else bad++;
          resolve();
        });
      });
      req.on('error', () => {
        bad++;
        resolve();
      });
      req.end();
    });
  const loops = [0, 1].map(async () => {
    while (running) await one();
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { ok, bad };
    },
  };
}

const CASES: Array<[string, string, RegExp]> = [
  ['Content-Length with Transfer-Encoding', 'POST /site.css HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /index.html HTTP/1.1\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['unknown transfer coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /^HTTP\/1\.1 501 /],
  ['bad chunk size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['duplicate differing Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', /^HTTP\/1\.1 400 /],
  ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello', /^HTTP\/1\.1 400 /],
  ['bare LF line endings', 'GET / HTTP/1.1\nHost: a\n\n', /^HTTP\/1\.1 400 /],
  ['missing Host', 'GET / HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['two Host headers', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['NUL in the URL', 'GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['control character in the URL', 'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 400 /],
  ['unsupported version', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 505 /],
  ['URL too long', `GET /${'a'.repeat(20000)} HTTP/1.1\r\nHost: a\r\n\r\n`, /^HTTP\/1\.1 414 /],
  ['headers too long', `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 40 }, (_, i) => `X-${i}: ${'v'.repeat(500)}\r\n`).join('')}\r\n`, /^HTTP\/1\.1 400 /],
  ['garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', /^HTTP\/1\.1 400 /],
];

test('malformed and smuggling-shaped requests get 400-class answers; other clients keep being served', async () => {
  const bg = backgroundClient(w.port);
  for (const [name, data, expected] of CASES) {
    const raw = await rawRequest(w.port, data, { timeoutMs: 3000 });
    assert.match(raw, expected, `${name}: got ${JSON.stringify(raw.slice(0, 60))}`);
    // One answer only, and the connection is closed: nothing smuggled after it is served.
    assert.equal(raw.split('HTTP/1.1 ').length - 1, 1, `${name}: exactly one response`);
    assert.match(raw, /Connection: close/i, name);
  }
  const { ok, bad } = await bg.stop();
  assert.ok(ok > 0, 'the background client was served');
  assert.equal(bad, 0, 'no background request failed');
  const reasons = await eventually(() => {
    const r = w.httpErrLines().map((l) => l.split(' ')[12]);
    return r.includes('BadRequest') && r.includes('N/I') && r.includes('URL_Length') ? r : undefined;
  });
  assert.ok(reasons.includes('Header'));
});

test('pipelined requests are answered in order on one connection', async () => {
  const raw = await rawRequest(
    w.port,
    'GET /site.css HTTP/1.1\r\nHost: a\r\n\r\nGET /docs/readme.txt HTTP/1.1\r\nHost: a\r\n\r\nGET /files/one.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  const bodies = ['body { color: red; }', 'plain docs', 'one'];
  let at = 0;
  for (const b of bodies) {
    const i = raw.indexOf(b, at);
    assert.ok(i > at, `${b} in order`);
    at = i;
  }
  assert.equal(raw.split('HTTP/1.1 200 OK').length - 1, 3);
});

test('a deep pipeline (100 requests in one write) is answered completely and in order', async () => {
  let data = '';
  for (let i = 0; i < 100; i++) data += `GET /site.css?n=${i} HTTP/1.1\r\nHost: a\r\n${i === 99 ? 'Connection: close\r\n' : ''}\r\n`;
  const raw = await rawRequest(w.port, data, { timeoutMs: 10000 });
  assert.equal(raw.split('HTTP/1.1 200 OK').length - 1, 100);
});

test('a client that sends half a request and vanishes does not disturb anyone', async () => {
  await rawRequest(w.port, 'GET /site.css HTTP/1.1\r\nHost: a\r\nX-Half', { timeoutMs: 200 });
  const raw = await rawRequest(w.port, 'GET /site.css HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 200 /);
});
