import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { needs, tool } from './helpers/skip.js';
import { eventually, get, rawRequest, run, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
let base: string;
const BIG = Buffer.alloc(100 * 1024);
for (let i = 0; i < BIG.length; i++) BIG[i] = 0x41 + (i % 26);

before(async () => {
  w = await startWharf({ fixture: 'static' });
  writeFileSync(join(w.root, 'wwwroot', 'big.txt'), BIG);
  // A symlink leading out of the site's folder must never be followed.
  writeFileSync(join(w.root, 'secret.txt'), 'top secret');
  symlinkSync(join(w.root, 'secret.txt'), join(w.root, 'wwwroot', 'escape.txt'));
  base = `http://127.0.0.1:${w.port}`;
});
after(async () => {
  await w?.stop();
});

async function curl(...args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string }> {
  const r = await run('curl', ['-s', '-i', '--max-time', '10', ...args]);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  // With -i and ranges/redirects curl prints one head; split head/body at the first blank line.
  const raw = r.stdout;
  const end = raw.indexOf('\r\n\r\n');
  const lines = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: raw.slice(end + 4), raw };
}

test('GET serves the file with validators and clientCache headers', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const r = await curl(`${base}/big.txt`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers['content-length'], String(BIG.length));
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.match(r.headers['etag'] ?? '', /^"[0-9a-f]+:0"$/);
  assert.match(r.headers['last-modified'] ?? '', /GMT$/);
  assert.equal(r.headers['cache-control'], 'max-age=3600');
  assert.equal(r.headers['x-powered-by'], 'Wharf');
  assert.equal(r.body, BIG.toString('latin1'));
});

test('HEAD answers the same headers without a body', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const r = await curl('-I', `${base}/big.txt`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], String(BIG.length));
  assert.equal(r.body, '');
});

test('single and multiple ranges, and unsatisfiable ones', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const one = await curl('-r', '10-19', `${base}/big.txt`);
  assert.equal(one.status, 206);
  assert.equal(one.headers['content-range'], `bytes 10-19/${BIG.length}`);
  assert.equal(one.body, BIG.subarray(10, 20).toString('latin1'));
  const suffix = await curl('-r', '-5', `${base}/big.txt`);
  assert.equal(suffix.status, 206);
  assert.equal(suffix.body, BIG.subarray(BIG.length - 5).toString('latin1'));
  const multi = await curl('-r', '0-1,100-102', `${base}/big.txt`);
  assert.equal(multi.status, 206);
  const ct = multi.headers['content-type'] ?? '';
  assert.match(ct, /^multipart\/byteranges; boundary=/);
  const boundary = ct.split('boundary=')[1]!;
  assert.ok(multi.body.includes(`--${boundary}\r\n`));
  assert.ok(multi.body.includes(`Content-Range: bytes 0-1/${BIG.length}`));
  assert.ok(multi.body.includes(`Content-Range: bytes 100-102/${BIG.length}`));
  assert.ok(multi.body.includes(BIG.subarray(100, 103).toString('latin1')));
  assert.ok(multi.body.trimEnd().endsWith(`--${boundary}--`));
  const bad = await curl('-r', '999999-', `${base}/big.txt`);
  assert.equal(bad.status, 416);
  assert.equal(bad.headers['content-range'], `bytes */${BIG.length}`);
});

test('conditional requests: 304 for a matching ETag or date, 412 for a failed If-Match', async (t) => {
  if (!needs(t, tool('curl'))) return;
  const first = await curl(`${base}/site.css`);
  const etag = first.headers['etag']!;
  const nm = await curl('-H', `If-None-Match: ${etag}`, `${base}/site.css`);
  assert.equal(nm.status, 304);
  assert.equal(nm.body, '');
  assert.equal(nm.headers['etag'], etag);
  const ims = await curl('-z', first.headers['last-modified']!, `${base}/site.css`);
  assert.equal(ims.status, 304);
  const im = await curl('-H', 'If-Match: "nope:0"', `${base}/site.css`);
  assert.equal(im.status, 412);
  const ok = await curl('-H', `If-Match: ${etag}`, `${base}/site.css`);
  assert.equal(ok.status, 200);
  const stale = await curl('-H', 'If-Range: "old:0"', '-r', '0-3', `${base}/site.css`);
  assert.equal(stale.status, 200);
  assert.equal(stale.body, 'body { color: red; }\n');
});

test('folders: 301 without slash, default document, 403.14, and a listing where enabled', async () => {
  const redirect = await get(w.port, '/docs?x=1');
  assert.equal(redirect.status, 301);
  assert.match(redirect.headers['location'] ?? '', /\/docs\/\?x=1$/);
  const home = await get(w.port, '/');
  assert.equal(home.status, 200);
  assert.match(home.body.toString(), /static home/);
  const forbidden = await get(w.port, '/docs/', { Host: 'localhost' });
  assert.equal(forbidden.status, 403);
  const listing = await get(w.port, '/files/');
  assert.equal(listing.status, 200);
  assert.match(listing.headers['content-type'] ?? '', /^text\/html/);
  const html = listing.body.toString();
  assert.match(html, /\[To Parent Directory\]/);
  assert.match(html, /<A HREF="\/files\/one.txt">one.txt<\/A>/i);
  assert.match(html, /<A HREF="\/files\/Two.txt">Two.txt<\/A>/i);
  assert.match(html, /&lt;dir&gt;/);
  assert.ok(!html.includes('web.config'), 'hidden segments are not listed');
  // 403.14 is logged with its sub-status; httpLogging dontLog under /files keeps those out.
  const lines = await eventually(() => {
    const l = w.logLines(7);
    return l.some((x) => x.includes(' /docs/ ')) ? l : undefined;
  });
  const f = lines.find((x) => x.includes(' /docs/ '))!.split(' ');
  assert.deepEqual([f[11], f[12]], ['403', '14']);
  assert.ok(!lines.some((x) => x.includes('/files/')), 'dontLog honoured');
});

test('status codes IIS gives: 405 for POST, 404.3 without a mimeMap, 404.8 for web.config', async () => {
  const post = await get(w.port, '/site.css', { 'Content-Length': '0' }, 'POST');
  assert.equal(post.status, 405);
  const unknown = await get(w.port, '/unknown.xyz');
  assert.equal(unknown.status, 404);
  const hidden = await get(w.port, '/files/web.config');
  assert.equal(hidden.status, 404);
  const hiddenCase = await get(w.port, '/files/WEB.CONFIG');
  assert.equal(hiddenCase.status, 404);
  // errorMode="Custom": even a local client gets the custom page, not the detailed one.
  const missing = await get(w.port, '/nope.html');
  assert.equal(missing.status, 404);
  assert.doesNotMatch(missing.body.toString(), /Detailed Error/);
});

test('a URL never resolves outside the site folder', async () => {
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/files/..%2f..%2fsecret.txt', '/..%5csecret.txt', '/a%00.txt']) {
    const raw = await rawRequest(w.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 (400|404) /, `${path} → ${raw.slice(0, 40)}`);
    assert.ok(!raw.includes('top secret'), path);
  }
  const link = await get(w.port, '/escape.txt');
  assert.equal(link.status, 404);
  assert.ok(!link.body.toString().includes('top secret'));
});

test('OPTIONS is answered by ProtocolSupportModule with the verbs the server allows', async () => {
  const r = await get(w.port, '/site.css', {}, 'OPTIONS');
  assert.equal(r.status, 200);
  assert.match(r.headers['allow'] ?? '', /GET/);
  assert.match(r.headers['allow'] ?? '', /OPTIONS/);
  assert.equal(r.headers['content-length'], '0');
  assert.equal(r.headers['x-powered-by'], 'Wharf', 'customHeaders go on every response');
});
