import { test, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs, notRoot } from '../../../test/helpers/skip.js';
import { StaticFileModule, STATIC_CONTENT_SECTION, clearStaticFileCache, fileEtag, parseRange, STREAM_CHUNK } from './index.js';
import { TestContext, RecordingResponse, makeTempDir, removeDir, runHandler, type ElementSpec, type TestContextOptions } from '../../../test/helpers/module-harness.js';

const root = makeTempDir();
const outside = makeTempDir();
after(() => {
  removeDir(root);
  removeDir(outside);
});
beforeEach(() => clearStaticFileCache());

const MTIME = new Date('2024-01-02T03:04:05Z');
const LAST_MODIFIED = 'Tue, 02 Jan 2024 03:04:05 GMT';
const ETAG = fileEtag(MTIME.getTime());

function file(name: string, content: string | Buffer, mtime = MTIME): string {
  const p = join(root, name);
  writeFileSync(p, content);
  utimesSync(p, mtime, mtime);
  return p;
}

const TEXT = 'hello, static world\n';
file('hello.txt', TEXT);
file('UPPER.TXT', 'upper');
file('noext', 'no extension');
file('page.unknownext', 'x');
mkdirSync(join(root, 'folder'));
writeFileSync(join(outside, 'secret.txt'), 'secret');
symlinkSync(join(outside, 'secret.txt'), join(root, 'escape.txt'));
symlinkSync(join(root, 'hello.txt'), join(root, 'alias.txt'));
const DIGITS = '0123456789';
file('digits.txt', DIGITS);
const BIG = Buffer.alloc(300 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = i % 251;
file('big.bin', BIG);

async function get(url: string, options: Omit<TestContextOptions, 'url' | 'root'> = {}): Promise<TestContext> {
  const ctx = new TestContext({ root, url, ...options });
  await runHandler(ctx, [StaticFileModule]);
  return ctx;
}

test('ETag is the hex FILETIME of the last write with change number 0', () => {
  // 1970-01-01 is 116444736000000000 (0x19db1ded53e8000) ticks after 1601-01-01.
  assert.equal(fileEtag(0), '"19db1ded53e8000:0"');
  assert.equal(fileEtag(1.5), '"19db1ded53eba98:0"'); // 15 000 ticks later
});

test('GET of a small file: 200 with type, length, validators and body', async () => {
  const ctx = await get('/hello.txt');
  const res = ctx.response;
  assert.equal(res.statusCode, 200);
  assert.equal(res.header('Content-Type'), 'text/plain');
  assert.equal(res.header('Content-Length'), String(TEXT.length));
  assert.equal(res.header('Last-Modified'), LAST_MODIFIED);
  assert.equal(res.header('ETag'), ETAG);
  assert.match(ETAG, /^"[0-9a-f]+:0"$/);
  assert.equal(res.header('Accept-Ranges'), 'bytes');
  assert.equal(res.header('Cache-Control'), undefined);
  assert.equal(res.text(), TEXT);
  assert.equal(ctx.finished, true);
  assert.equal(res.writeCount, 1);
});

test('the same answers whether the worker\'s stat cache is warm (synchronous) or cold (asynchronous)', async () => {
  for (const cold of [false, true]) {
    const ctx = new TestContext({ root, url: '/hello.txt' });
    ctx.statCacheCold = cold;
    const r = runHandler(ctx, [StaticFileModule]);
    await r;
    assert.equal(ctx.response.statusCode, 200, `cold=${cold}`);
    assert.equal(ctx.response.text(), TEXT);
    const missing = new TestContext({ root, url: '/nope.txt' });
    missing.statCacheCold = cold;
    await runHandler(missing, [StaticFileModule]);
    assert.deepEqual([missing.response.statusCode, missing.response.subStatus], [404, 0]);
  }
});

test('a cache hit serves the cached bytes while the file identity is unchanged, and rereads after a change', async () => {
  await get('/digits.txt');
  // Same size, inode and mtime: the worker-local cache must answer without reading.
  file('digits.txt', 'abcdefghij');
  assert.equal((await get('/digits.txt')).response.text(), DIGITS);
  file('digits.txt', 'abcdefghij', new Date('2024-01-03T00:00:00Z'));
  assert.equal((await get('/digits.txt')).response.text(), 'abcdefghij');
  file('digits.txt', DIGITS);
});

test('HEAD: same headers, no body', async () => {
  const ctx = await get('/hello.txt', { method: 'HEAD' });
  assert.equal(ctx.response.statusCode, 200);
  assert.equal(ctx.response.header('Content-Length'), String(TEXT.length));
  assert.equal(ctx.response.header('ETag'), ETAG);
  assert.equal(ctx.response.bodyLength, 0);
});

test('other verbs → 405.0 with Allow: GET, HEAD, OPTIONS, TRACE', async () => {
  const ctx = await get('/hello.txt', { method: 'POST' });
  assert.equal(ctx.response.statusCode, 405);
  assert.equal(ctx.response.subStatus, 0);
  assert.equal(ctx.response.header('Allow'), 'GET, HEAD, OPTIONS, TRACE');
  assert.equal(ctx.errorDetail?.module, 'StaticFileModule');
  assert.equal(ctx.response.bodyLength, 0);
});

test('missing file → 404.0 with win32 status 2 and HRESULT 0x80070002', async () => {
  const ctx = await get('/nope.txt');
  assert.equal(ctx.response.statusCode, 404);
  assert.equal(ctx.response.subStatus, 0);
  assert.equal(ctx.response.win32Status, 2);
  assert.equal(ctx.errorDetail?.hresult, 0x80070002);
  assert.equal(ctx.finished, true);
});

test('a folder is left to DirectoryListingModule; without it in the handler → 403.14', async () => {
  const mine = await get('/folder/');
  assert.equal(mine.response.statusCode, 200);
  assert.equal(mine.finished, false);
  const alone = await get('/folder/', { handler: { name: 'StaticOnly', modules: ['StaticFileModule'] } });
  assert.equal(alone.response.statusCode, 403);
  assert.equal(alone.response.subStatus, 14);
});

test('no mimeMap for the extension → 404.3; lookup is case-insensitive; "." and ".*" entries', async () => {
  const unknown = await get('/page.unknownext');
  assert.equal(unknown.response.statusCode, 404);
  assert.equal(unknown.response.subStatus, 3);
  assert.equal((await get('/UPPER.TXT')).response.header('Content-Type'), 'text/plain');
  assert.equal((await get('/noext')).response.subStatus, 3);
  const sections: Record<string, ElementSpec> = {
    [STATIC_CONTENT_SECTION]: {
      items: [
        { attributes: { fileExtension: '.', mimeType: 'text/x-none' } },
        { attributes: { fileExtension: '.*', mimeType: 'application/x-any' } },
      ],
    },
  };
  assert.equal((await get('/noext', { sections })).response.header('Content-Type'), 'text/x-none');
  assert.equal((await get('/page.unknownext', { sections })).response.header('Content-Type'), 'application/x-any');
});

test('a symlink leading outside the virtual directory → 404.0; one inside is served', async () => {
  const escape = await get('/escape.txt');
  assert.equal(escape.response.statusCode, 404);
  assert.equal(escape.response.subStatus, 0);
  assert.equal(escape.response.bodyLength, 0);
  const alias = await get('/alias.txt');
  assert.equal(alias.response.statusCode, 200);
  assert.equal(alias.response.text(), TEXT);
});

test('Accept that excludes the type → 406.0', async () => {
  assert.equal((await get('/hello.txt', { headers: { accept: 'image/png' } })).response.statusCode, 406);
  assert.equal((await get('/hello.txt', { headers: { accept: 'text/*, image/png' } })).response.statusCode, 200);
  assert.equal((await get('/hello.txt', { headers: { accept: 'text/plain;q=0, */*' } })).response.statusCode, 406);
});

test('unreadable file → 401.3 (IIS answer to an ACL denial)', async (t) => {
  // As root, test/identity.test.ts covers the same answer end to end, in another pool's user.
  if (!needs(t, notRoot('root reads a mode 000 file, so the denial cannot happen in this process'))) return;
  file('locked.txt', 'locked');
  chmodSync(join(root, 'locked.txt'), 0o000);
  const ctx = await get('/locked.txt');
  assert.equal(ctx.response.statusCode, 401);
  assert.equal(ctx.response.subStatus, 3);
});

// ------------------------------------------------------------------ conditional requests

test('If-None-Match (strong or weak, or *) → 304 with validators and no body', async () => {
  for (const inm of [ETAG, `W/${ETAG}`, `"other", ${ETAG}`, '*']) {
    const ctx = await get('/hello.txt', { headers: { 'if-none-match': inm } });
    assert.equal(ctx.response.statusCode, 304, inm);
    assert.equal(ctx.response.header('ETag'), ETAG);
    assert.equal(ctx.response.header('Last-Modified'), LAST_MODIFIED);
    assert.equal(ctx.response.bodyLength, 0);
  }
  assert.equal((await get('/hello.txt', { headers: { 'if-none-match': '"other"' } })).response.statusCode, 200);
});

test('If-Modified-Since → 304 when not modified since; ignored when If-None-Match is present', async () => {
  assert.equal((await get('/hello.txt', { headers: { 'if-modified-since': LAST_MODIFIED } })).response.statusCode, 304);
  assert.equal((await get('/hello.txt', { headers: { 'if-modified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' } })).response.statusCode, 200);
  assert.equal((await get('/hello.txt', { headers: { 'if-modified-since': 'not a date' } })).response.statusCode, 200);
  const both = await get('/hello.txt', { headers: { 'if-none-match': '"other"', 'if-modified-since': LAST_MODIFIED } });
  assert.equal(both.response.statusCode, 200);
});

test('If-Match that does not match strongly → 412; If-Unmodified-Since in the past → 412', async () => {
  const a = await get('/hello.txt', { headers: { 'if-match': '"other"' } });
  assert.equal(a.response.statusCode, 412);
  assert.equal(a.response.subStatus, 0);
  assert.equal((await get('/hello.txt', { headers: { 'if-match': `W/${ETAG}` } })).response.statusCode, 412);
  assert.equal((await get('/hello.txt', { headers: { 'if-match': ETAG } })).response.statusCode, 200);
  assert.equal((await get('/hello.txt', { headers: { 'if-match': '*' } })).response.statusCode, 200);
  assert.equal((await get('/hello.txt', { headers: { 'if-unmodified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' } })).response.statusCode, 412);
  assert.equal((await get('/hello.txt', { headers: { 'if-unmodified-since': LAST_MODIFIED } })).response.statusCode, 200);
  // If-Match is evaluated first and wins over If-Unmodified-Since (RFC 9110 §13.2.2).
  const order = await get('/hello.txt', { headers: { 'if-match': ETAG, 'if-unmodified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' } });
  assert.equal(order.response.statusCode, 200);
});

// ------------------------------------------------------------------ ranges

test('Range parsing: forms, unsatisfiable, invalid, coalescing', () => {
  assert.deepEqual(parseRange('bytes=0-3', 10), { kind: 'ranges', ranges: [{ start: 0, end: 3 }] });
  assert.deepEqual(parseRange('bytes=7-', 10), { kind: 'ranges', ranges: [{ start: 7, end: 9 }] });
  assert.deepEqual(parseRange('bytes=-4', 10), { kind: 'ranges', ranges: [{ start: 6, end: 9 }] });
  assert.deepEqual(parseRange('bytes=-40', 10), { kind: 'ranges', ranges: [{ start: 0, end: 9 }] });
  assert.deepEqual(parseRange('bytes=5-100', 10), { kind: 'ranges', ranges: [{ start: 5, end: 9 }] });
  assert.deepEqual(parseRange('bytes=10-', 10), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=10-20, 30-', 10), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRange('bytes=10-20, 2-3', 10), { kind: 'ranges', ranges: [{ start: 2, end: 3 }] });
  assert.deepEqual(parseRange('bytes=5-2', 10), { kind: 'ignore' });
  assert.deepEqual(parseRange('items=0-1', 10), { kind: 'ignore' });
  assert.deepEqual(parseRange('bytes=abc', 10), { kind: 'ignore' });
  assert.deepEqual(parseRange('bytes=0-4,3-6', 10), { kind: 'ranges', ranges: [{ start: 0, end: 6 }] });
  assert.deepEqual(parseRange('bytes=6-7,0-1', 10), { kind: 'ranges', ranges: [{ start: 6, end: 7 }, { start: 0, end: 1 }] });
  assert.deepEqual(parseRange('bytes=' + Array.from({ length: 65 }, (_, i) => `${i}-${i}`).join(','), 100), { kind: 'ignore' });
});

test('single Range → 206 with Content-Range and just those bytes', async () => {
  const ctx = await get('/digits.txt', { headers: { range: 'bytes=2-5' } });
  const res = ctx.response;
  assert.equal(res.statusCode, 206);
  assert.equal(res.header('Content-Range'), 'bytes 2-5/10');
  assert.equal(res.header('Content-Length'), '4');
  assert.equal(res.header('Content-Type'), 'text/plain');
  assert.equal(res.text(), '2345');
  const suffix = await get('/digits.txt', { headers: { range: 'bytes=-3' } });
  assert.equal(suffix.response.text(), '789');
  assert.equal(suffix.response.header('Content-Range'), 'bytes 7-9/10');
});

test('several ranges → 206 multipart/byteranges with a random boundary', async () => {
  const ctx = await get('/digits.txt', { headers: { range: 'bytes=0-1,5-6' } });
  const res = ctx.response;
  assert.equal(res.statusCode, 206);
  const m = /^multipart\/byteranges; boundary=([0-9a-f]{24})$/.exec(res.header('Content-Type') ?? '');
  assert.ok(m, res.header('Content-Type'));
  const b = m[1];
  const expected =
    `--${b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01` +
    `\r\n--${b}\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-6/10\r\n\r\n56` +
    `\r\n--${b}--\r\n`;
  assert.equal(res.text(), expected);
  assert.equal(res.header('Content-Length'), String(Buffer.byteLength(expected)));
  const other = await get('/digits.txt', { headers: { range: 'bytes=0-1,5-6' } });
  assert.notEqual(other.response.header('Content-Type'), res.header('Content-Type'));
});

test('unsatisfiable Range → 416 with Content-Range: bytes */size', async () => {
  const ctx = await get('/digits.txt', { headers: { range: 'bytes=20-30' } });
  assert.equal(ctx.response.statusCode, 416);
  assert.equal(ctx.response.header('Content-Range'), 'bytes */10');
  assert.equal(ctx.response.bodyLength, 0);
});

test('If-Range: a matching ETag or date keeps the range, anything else sends the whole file', async () => {
  assert.equal((await get('/digits.txt', { headers: { range: 'bytes=0-1', 'if-range': ETAG } })).response.statusCode, 206);
  assert.equal((await get('/digits.txt', { headers: { range: 'bytes=0-1', 'if-range': LAST_MODIFIED } })).response.statusCode, 206);
  const stale = await get('/digits.txt', { headers: { range: 'bytes=0-1', 'if-range': '"old"' } });
  assert.equal(stale.response.statusCode, 200);
  assert.equal(stale.response.text(), DIGITS);
  const weak = await get('/digits.txt', { headers: { range: 'bytes=0-1', 'if-range': `W/${ETAG}` } });
  assert.equal(weak.response.statusCode, 200);
});

test('Range is ignored for HEAD and when its syntax is invalid', async () => {
  const head = await get('/digits.txt', { method: 'HEAD', headers: { range: 'bytes=0-1' } });
  assert.equal(head.response.statusCode, 200);
  assert.equal(head.response.header('Content-Length'), '10');
  const bad = await get('/digits.txt', { headers: { range: 'bytes=x-y' } });
  assert.equal(bad.response.statusCode, 200);
  assert.equal(bad.response.text(), DIGITS);
});

// ------------------------------------------------------------------ clientCache

function clientCache(attributes: ElementSpec['attributes']): Record<string, ElementSpec> {
  return { [STATIC_CONTENT_SECTION]: { children: { clientCache: { attributes } } } };
}

test('clientCache: DisableCache, UseMaxAge (+custom), UseExpires, setEtag=false', async () => {
  assert.equal((await get('/hello.txt', { sections: clientCache({ cacheControlMode: 'DisableCache' }) })).response.header('Cache-Control'), 'no-cache');
  const maxAge = await get('/hello.txt', {
    sections: clientCache({ cacheControlMode: 'UseMaxAge', cacheControlMaxAge: 7 * 86_400_000, cacheControlCustom: 'public' }),
  });
  assert.equal(maxAge.response.header('Cache-Control'), 'max-age=604800, public');
  const expires = await get('/hello.txt', {
    sections: clientCache({ cacheControlMode: 'UseExpires', httpExpires: 'Fri, 01 Jan 2038 00:00:00 GMT' }),
  });
  assert.equal(expires.response.header('Expires'), 'Fri, 01 Jan 2038 00:00:00 GMT');
  assert.equal(expires.response.header('Cache-Control'), undefined);
  const noEtag = await get('/hello.txt', { sections: clientCache({ setEtag: false }) });
  assert.equal(noEtag.response.header('ETag'), undefined);
  assert.equal(noEtag.response.header('Last-Modified'), LAST_MODIFIED);
  // Without our ETag, If-None-Match cannot match.
  const inm = await get('/hello.txt', { sections: clientCache({ setEtag: false }), headers: { 'if-none-match': ETAG } });
  assert.equal(inm.response.statusCode, 200);
  const notModified = await get('/hello.txt', { sections: clientCache({ cacheControlMode: 'DisableCache' }), headers: { 'if-none-match': ETAG } });
  assert.equal(notModified.response.statusCode, 304);
  assert.equal(notModified.response.header('Cache-Control'), 'no-cache');
});

// ------------------------------------------------------------------ large files

test('a large file is streamed in 64 KiB chunks after flush(), honouring backpressure', async () => {
  const response = new RecordingResponse({ highWaterMark: 2 * STREAM_CHUNK });
  const ctx = await get('/big.bin', { response });
  assert.equal(response.statusCode, 200);
  assert.equal(response.header('Content-Length'), String(BIG.length));
  assert.equal(response.header('Content-Type'), 'application/octet-stream');
  assert.equal(response.flushCount, 1);
  assert.equal(response.writeCount, Math.ceil(BIG.length / STREAM_CHUNK));
  assert.ok(response.drainCount >= 2, `drained ${response.drainCount} times`);
  assert.ok(response.body().equals(BIG));
  assert.equal(ctx.finished, true);
});

test('a large file: HEAD sends no body, ranges are read from the file', async () => {
  const head = await get('/big.bin', { method: 'HEAD' });
  assert.equal(head.response.header('Content-Length'), String(BIG.length));
  assert.equal(head.response.bodyLength, 0);
  const start = 100_000;
  const end = 200_000;
  const range = await get('/big.bin', { headers: { range: `bytes=${start}-${end}` } });
  assert.equal(range.response.statusCode, 206);
  assert.equal(range.response.header('Content-Range'), `bytes ${start}-${end}/${BIG.length}`);
  assert.ok(range.response.body().equals(BIG.subarray(start, end + 1)));
  const multi = await get('/big.bin', { headers: { range: 'bytes=0-9,300000-300009' } });
  assert.equal(multi.response.statusCode, 206);
  assert.equal(Number(multi.response.header('Content-Length')), multi.response.bodyLength);
});
