// HTTP compression observed from outside (issue 16, scope 6): static files compressed once
// frequently hit and served from the compressed copy in the pool's folder, precompressed
// siblings, the listener's cache keeping one entry per coding, and a hosted node:http app's
// responses compressed as they stream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { eventually, parseResponse, rawRequest, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { needs, tool } from './helpers/skip.js';

let w: WharfProcess;
let www: string;
let copies: string;

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as sent (still encoded). */
  readonly body: Buffer;
}

function fetch(path: string, headers: Record<string, string> = {}, method = 'GET', host = 'localhost'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w.port, path, method, headers: { Host: host, ...headers }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function decode(r: Reply): Buffer {
  const coding = r.headers['content-encoding'];
  if (coding === 'gzip') return gunzipSync(r.body);
  if (coding === 'br') return brotliDecompressSync(r.body);
  assert.equal(coding, undefined, `unexpected coding ${String(coding)}`);
  return r.body;
}

function words(n: number, seed: number): string {
  const list = ['alpha', 'beta', 'gamma', 'delta', 'wharf', 'compress', 'static', 'listener', 'worker', 'pool'];
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(list[x % list.length]!);
  }
  return out.join(' ') + '\n';
}

/** Files changed in the last 2 s are not kept by the listener's cache: write, then wait once. */
function writeFiles(): void {
  writeFileSync(join(www, 'big.txt'), words(20000, 1));
  writeFileSync(join(www, 'br.txt'), words(5000, 2));
  writeFileSync(join(www, 'edit.txt'), words(4000, 3));
  writeFileSync(join(www, 'q.txt'), words(4000, 4));
  writeFileSync(join(www, 'cached.txt'), words(6000, 5));
  writeFileSync(join(www, 'small.txt'), 'tiny file\n');
  writeFileSync(join(www, 'image.png'), Buffer.alloc(10240, 7));
  writeFileSync(join(www, 'sub', 'site.css'), Array.from({ length: 300 }, (_, i) => `.c${i} { margin: ${i % 40}px; }\n`).join(''));
  writeFileSync(join(www, 'sub', 'index.html'), `<!doctype html><title>x</title>${'<p>hello compression</p>'.repeat(300)}`);
}

before(async () => {
  w = await startWharf({ fixture: 'compression' });
  www = join(w.root, 'www');
  copies = join(w.systemDrive, 'inetpub', 'temp', 'IIS Temporary Compressed Files', 'staticpool');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(www, 'sub'), { recursive: true });
  writeFiles();
  await new Promise((r) => setTimeout(r, 2100));
});
after(async () => {
  await w?.stop();
});

function copyFiles(scheme: string, file: string): string[] {
  if (!existsSync(copies)) return [];
  const encoded = join(www, file).replaceAll('/', '^');
  return readdirSync(copies).filter((n) => n.startsWith(`$^_${scheme}_${encoded}~`));
}

describe('static compression', () => {
  it('compresses a frequently hit file once: the second request gets gzip, which decodes to the file, with Vary and its own ETag', async () => {
    const original = readFileSync(join(www, 'big.txt'));
    const first = await fetch('/big.txt', { 'Accept-Encoding': 'gzip' });
    assert.equal(first.status, 200);
    assert.equal(first.headers['content-encoding'], undefined, 'not frequently hit yet (2 within 10 s)');
    assert.equal(first.headers['vary'], 'Accept-Encoding');
    const second = await fetch('/big.txt', { 'Accept-Encoding': 'gzip' });
    assert.equal(second.headers['content-encoding'], 'gzip');
    assert.equal(second.headers['vary'], 'Accept-Encoding');
    assert.equal(Number(second.headers['content-length']), second.body.length, 'a static copy keeps its length');
    assert.ok(second.body.length < original.length / 2);
    assert.deepEqual(decode(second), original);
    assert.notEqual(second.headers['etag'], first.headers['etag']);
    assert.match(second.headers['etag'] ?? '', /-gzip"$/);
    // The copy is in the pool's folder, named after the file as IIS names them.
    assert.equal(copyFiles('gzip', 'big.txt').length, 1);
    // A validator of the gzip representation: 304 for it, 200 for the plain one's.
    assert.equal((await fetch('/big.txt', { 'Accept-Encoding': 'gzip', 'If-None-Match': second.headers['etag']! })).status, 304);
  });

  it('br when the client prefers it (the br scheme is listed first), decoding to the file', async () => {
    const original = readFileSync(join(www, 'br.txt'));
    await fetch('/br.txt', { 'Accept-Encoding': 'gzip, deflate, br' });
    const r = await fetch('/br.txt', { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(r.headers['content-encoding'], 'br');
    assert.deepEqual(decode(r), original);
    assert.equal(copyFiles('br', 'br.txt').length, 1);
  });

  it('q-values: q=0 refuses a coding, the higher q wins', async () => {
    await fetch('/q.txt', { 'Accept-Encoding': 'gzip' });
    assert.equal((await fetch('/q.txt', { 'Accept-Encoding': 'gzip;q=0, br;q=0' })).headers['content-encoding'], undefined);
    assert.equal((await fetch('/q.txt', { 'Accept-Encoding': 'br;q=0.5, gzip' })).headers['content-encoding'], 'gzip');
    assert.equal((await fetch('/q.txt', { 'Accept-Encoding': 'br;q=0, *' })).headers['content-encoding'], 'gzip');
    assert.equal((await fetch('/q.txt', {})).headers['content-encoding'], undefined, 'no Accept-Encoding: as it is');
  });

  it('HTTP/1.0, Range and proxied (Via) requests are not compressed', async () => {
    await fetch('/big.txt', { 'Accept-Encoding': 'gzip' });
    const raw = await rawRequest(w.port, 'GET /big.txt HTTP/1.0\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n');
    const http10 = parseResponse(raw);
    assert.equal(http10.status, 200);
    assert.equal(http10.headers['content-encoding'], undefined);
    assert.equal(http10.body.length, readFileSync(join(www, 'big.txt')).length);
    const range = await fetch('/big.txt', { 'Accept-Encoding': 'gzip', Range: 'bytes=0-99' });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined);
    assert.deepEqual(range.body, readFileSync(join(www, 'big.txt')).subarray(0, 100));
    const via = await fetch('/big.txt', { 'Accept-Encoding': 'gzip', Via: '1.1 proxy' });
    assert.equal(via.headers['content-encoding'], undefined);
  });

  it('a type outside staticTypes is never compressed; a file under minFileSizeForComp is sent as it is', async () => {
    for (let i = 0; i < 3; i++) {
      const png = await fetch('/image.png', { 'Accept-Encoding': 'gzip' });
      assert.equal(png.headers['content-encoding'], undefined);
      assert.equal(png.headers['vary'], undefined);
      const small = await fetch('/small.txt', { 'Accept-Encoding': 'gzip' });
      assert.equal(small.headers['content-encoding'], undefined);
      assert.equal(small.body.toString(), 'tiny file\n');
    }
  });

  it('a changed file gets a new copy (the old one is deleted), never the old bytes', async () => {
    const path = join(www, 'edit.txt');
    await fetch('/edit.txt', { 'Accept-Encoding': 'gzip' });
    assert.equal((await fetch('/edit.txt', { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], 'gzip');
    const before = copyFiles('gzip', 'edit.txt');
    assert.equal(before.length, 1);
    const changed = words(4500, 9);
    writeFileSync(path, changed);
    await eventually(async () => {
      const r = await fetch('/edit.txt', { 'Accept-Encoding': 'gzip' });
      return r.headers['content-encoding'] === 'gzip' && decode(r).toString() === changed;
    }, 8000);
    const afterCopies = copyFiles('gzip', 'edit.txt');
    assert.equal(afterCopies.length, 1);
    assert.notEqual(afterCopies[0], before[0]);
    for (let i = 0; i < 5; i++) assert.equal(decode(await fetch('/edit.txt', { 'Accept-Encoding': 'gzip' })).toString(), changed);
  });

  it('serves later requests from the compressed copy: in memory, and from disk after the worker is replaced (FREB shows the source)', async () => {
    const css = readFileSync(join(www, 'sub', 'site.css'));
    for (let i = 0; i < 3; i++) {
      const r = await fetch('/sub/site.css', { 'Accept-Encoding': 'gzip' });
      if (i > 0) assert.deepEqual(decode(r), css);
    }
    assert.equal(copyFiles('gzip', 'sub/site.css').length, 1);
    const r = await run(process.execPath, [WHARF_BIN, 'recycle', 'apppool', 'StaticPool', '--config', w.configFile]);
    assert.equal(r.code, 0, r.stderr);
    await new Promise((res) => setTimeout(res, 500));
    for (let i = 0; i < 2; i++) assert.deepEqual(decode(await fetch('/sub/site.css', { 'Accept-Encoding': 'gzip' })), css);
    const folder = join(w.systemDrive, 'inetpub', 'logs', 'FailedReqLogFiles', 'W3SVC71');
    const sources = await eventually(() => {
      if (!existsSync(folder)) return false;
      const text = readdirSync(folder)
        .filter((f) => f.endsWith('.xml'))
        .map((f) => readFileSync(join(folder, f), 'utf8'))
        .join('\n');
      const found = [...text.matchAll(/<Data Name="Source">(\w+)<\/Data>/g)].map((m) => m[1]);
      return found.includes('copy') ? found : false;
    }, 8000).catch((err: Error) => {
      throw new Error(`${err.message}; traces: ${existsSync(folder) ? readdirSync(folder).join(' ') : 'none'}`);
    });
    assert.ok(sources.includes('compressed'), `sources seen: ${sources.join(',')}`);
    const notSuccess = readdirSync(folder).map((f) => readFileSync(join(folder, f), 'utf8')).join('\n');
    assert.match(notSuccess, /STATIC_COMPRESSION_NOT_SUCCESS[\s\S]*?<Data Name="Reason">NOT_FREQUENTLY_HIT<\/Data>/);
  });

  it('a default document (a child request) is compressed too', async () => {
    await fetch('/sub/', { 'Accept-Encoding': 'gzip' });
    const r = await fetch('/sub/', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.deepEqual(decode(r), readFileSync(join(www, 'sub', 'index.html')));
  });

  it('a precompressed sibling (file.gz newer than the file) is served at once; an older one is ignored', async () => {
    const js = 'console.log("original");\n'.repeat(300);
    writeFileSync(join(www, 'app.js'), js);
    const marker = 'console.log("from the precompressed sibling");\n'.repeat(300);
    writeFileSync(join(www, 'app.js.gz'), gzipSync(marker));
    const now = Date.now() / 1000;
    utimesSync(join(www, 'app.js'), now - 60, now - 60);
    utimesSync(join(www, 'app.js.gz'), now - 30, now - 30);
    const r = await fetch('/app.js', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(decode(r).toString(), marker);
    assert.match(r.headers['etag'] ?? '', /-gzip"$/);
    const plain = await fetch('/app.js', {});
    assert.equal(plain.body.toString(), js);
    assert.notEqual(plain.headers['etag'], r.headers['etag']);
    // The source is newer than its sibling now: the sibling is stale.
    utimesSync(join(www, 'app.js.gz'), now - 90, now - 90);
    await eventually(async () => {
      const s = await fetch('/app.js', { 'Accept-Encoding': 'gzip' });
      return s.headers['content-encoding'] === undefined || decode(s).toString() === js;
    }, 5000);
  });

  it('curl --compressed gets the file back', async (t) => {
    if (!needs(t, tool('curl'))) return;
    // Twice: the first may be the one that makes the URL frequently hit (with curl's preferred coding).
    await run('curl', ['-s', '-o', '/dev/null', '--compressed', `http://127.0.0.1:${w.port}/big.txt`]);
    const r = await run('curl', ['-s', '--compressed', '-D', '-', `http://127.0.0.1:${w.port}/big.txt`]);
    assert.equal(r.code, 0, r.stderr);
    const end = r.stdout.indexOf('\r\n\r\n');
    assert.match(r.stdout.slice(0, end), /content-encoding: (gzip|br)/i);
    assert.ok(r.stdout.slice(end + 4) === readFileSync(join(www, 'big.txt'), 'utf8'), 'curl decoded the file');
  });

  it('the listener keeps one cache entry per coding: while the pool is stopped, gzip and plain clients each get theirs', async () => {
    const original = readFileSync(join(www, 'cached.txt'));
    // Other tests just wrote into the folder: the cache keeps nothing whose folder changed in the last 2 s.
    await new Promise((r) => setTimeout(r, 2100));
    for (let i = 0; i < 3; i++) {
      await fetch('/cached.txt', { 'Accept-Encoding': 'gzip' });
      await fetch('/cached.txt', {});
    }
    const wharf = async (...args: string[]): Promise<void> => {
      const r = await run(process.execPath, [WHARF_BIN, ...args, '--config', w.configFile]);
      assert.equal(r.code, 0, r.stderr);
    };
    await wharf('stop', 'apppool', 'StaticPool');
    try {
      const gz = await fetch('/cached.txt', { 'Accept-Encoding': 'gzip' });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.deepEqual(decode(gz), original);
      const plain = await fetch('/cached.txt', { 'Accept-Encoding': 'identity' });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.deepEqual(plain.body, original);
      // br is preferred by this client and was never stored: only a worker could answer.
      assert.equal((await fetch('/cached.txt', { 'Accept-Encoding': 'br, gzip' })).status, 503);
    } finally {
      await wharf('start', 'apppool', 'StaticPool');
    }
  });
});

describe('dynamic compression (a hosted node:http app)', () => {
  const app = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> => fetch(path, headers, method, 'app.test');

  it('compresses JSON (gzip and br): decodes to the app\'s bytes, with its length, Vary and a weak ETag', async () => {
    const plain = await app('/json');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['vary'], 'Accept-Encoding');
    const gz = await app('/json', { 'Accept-Encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.deepEqual(decode(gz), plain.body);
    assert.equal(Number(gz.headers['content-length']), gz.body.length);
    assert.equal(gz.headers['etag'], 'W/"v1"');
    assert.equal(gz.headers['vary'], 'Accept-Encoding');
    const br = await app('/json', { 'Accept-Encoding': 'br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(decode(br), plain.body);
    assert.deepEqual(JSON.parse(decode(br).toString()).items.length, 400);
  });

  it('stops at dynamicCompressionDisableCpuUsage (0 here: always reached)', async () => {
    const r = await app('/busy/json', { 'Accept-Encoding': 'gzip' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(JSON.parse(r.body.toString()).items.length, 400);
  });

  it('leaves alone HEAD, Cache-Control: no-transform, an empty body, HTTP/1.0', async () => {
    assert.equal((await app('/json', { 'Accept-Encoding': 'gzip' }, 'HEAD')).headers['content-encoding'], undefined);
    const nt = await app('/no-transform', { 'Accept-Encoding': 'gzip' });
    assert.equal(nt.headers['content-encoding'], undefined);
    assert.equal(nt.body.length, 5000);
    const empty = await app('/empty', { 'Accept-Encoding': 'gzip' });
    assert.equal(empty.headers['content-encoding'], undefined);
    assert.equal(empty.body.length, 0);
    const raw = parseResponse(await rawRequest(w.port, 'GET /json HTTP/1.0\r\nHost: app.test\r\nAccept-Encoding: gzip\r\n\r\n'));
    assert.equal(raw.headers['content-encoding'], undefined);
  });

  it('Server-Sent Events are left alone by the shipped type list, and arrive as written', async () => {
    const t0 = Date.now();
    const first = await firstData('/events', { 'Accept-Encoding': 'gzip' });
    assert.equal(first.headers['content-encoding'], undefined);
    assert.match(first.text, /data: first/);
    assert.ok(first.at - t0 < 1200, `first event after ${first.at - t0} ms`);
  });

  it('a compressed event stream is flushed per write: the first event decodes before the stream ends', async () => {
    const t0 = Date.now();
    const first = await firstData('/live/events', { 'Accept-Encoding': 'gzip' });
    assert.equal(first.headers['content-encoding'], 'gzip');
    assert.equal(first.headers['content-length'], undefined);
    assert.equal(first.headers['transfer-encoding'], 'chunked');
    assert.match(first.text, /data: first/);
    assert.ok(first.at - t0 < 1200, `first event decoded after ${first.at - t0} ms (the second comes at 1500 ms)`);
    assert.match(await first.rest, /data: first\n\ndata: second\n\n$/);
  });
});

/** The first decoded text of a streamed response, when it arrived, and the whole text later. */
function firstData(path: string, headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; text: string; at: number; rest: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w.port, path, headers: { Host: 'app.test', ...headers }, agent: false }, (res) => {
      const gz = res.headers['content-encoding'] === 'gzip';
      const stream = gz ? res.pipe(createGunzip()) : res;
      let all = '';
      let resolved = false;
      let done!: (s: string) => void;
      const rest = new Promise<string>((r) => (done = r));
      stream.on('data', (d: Buffer) => {
        all += d.toString();
        if (!resolved) {
          resolved = true;
          resolve({ headers: res.headers, text: all, at: Date.now(), rest });
        }
      });
      stream.on('end', () => done(all));
      stream.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
