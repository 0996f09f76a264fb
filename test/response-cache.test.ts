// The listener's response cache (HTTP.sys's kernel cache), observed from outside: once a URL is
// frequently hit, its response is answered without a worker — so it keeps being answered while
// the application pool is stopped, which is how these tests tell a cache hit from a miss.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, get, run, startWharf, WHARF_BIN, type RawResponse, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'cache', files: { 'pools.mjs': 'pools/pools.mjs' } });
  // The fixture was just copied: files (and folders) changed in the last 2 s are not cached yet.
  await new Promise((r) => setTimeout(r, 2100));
});
after(async () => {
  await w?.stop();
});

async function wharf(...args: string[]): Promise<void> {
  const r = await run(process.execPath, [WHARF_BIN, ...args, '--config', w.configFile]);
  assert.equal(r.code, 0, r.stderr);
}

/** Ask three times (frequently hit: 2 within 10 s makes an entry; the third is a hit). */
async function warm(path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  let r!: RawResponse;
  for (let i = 0; i < 3; i++) r = await get(w.port, path, headers);
  return r;
}

/** While the pool is stopped, only the cache can answer 200. */
async function withPoolStopped(fn: () => Promise<void>): Promise<void> {
  await wharf('stop', 'apppool', 'CachePool');
  try {
    await fn();
  } finally {
    await wharf('start', 'apppool', 'CachePool');
  }
}

test('a frequently hit static file is answered from the cache: also HEAD and 304, with a fresh Date, and logged', async () => {
  const first = await warm('/site.css');
  assert.equal(first.status, 200);
  await new Promise((r) => setTimeout(r, 1100)); // a later second: the Date must move
  await withPoolStopped(async () => {
    const hit = await get(w.port, '/site.css');
    assert.equal(hit.status, 200);
    assert.equal(hit.body.toString(), 'body { color: navy; }\n');
    assert.equal(hit.headers['content-type'], 'text/css');
    assert.equal(hit.headers['x-generation'], 'one');
    assert.notEqual(hit.headers['date'], first.headers['date'], 'a fresh Date header');
    const head = await get(w.port, '/site.css', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(hit.body.length));
    assert.equal(head.body.length, 0);
    const cond = await get(w.port, '/site.css', { 'If-None-Match': hit.headers['etag']! });
    assert.equal(cond.status, 304);
    assert.equal(cond.headers['etag'], hit.headers['etag']);
    const since = await get(w.port, '/site.css', { 'If-Modified-Since': hit.headers['last-modified']! });
    assert.equal(since.status, 304);
    // Not from the cache: a query string on a static file, credentials, a range.
    assert.equal((await get(w.port, '/site.css?v=2')).status, 503);
    assert.equal((await get(w.port, '/site.css', { Authorization: 'Basic dTpw' })).status, 503);
    assert.equal((await get(w.port, '/site.css', { Range: 'bytes=0-3' })).status, 503);
  });
  await eventually(() => w.logLines(61).filter((l) => l.includes(' /site.css ') && / 304 0 0 /.test(l)).length >= 2, 5000);
});

test('a static file with a query string is never cached', async () => {
  await warm('/site.css?v=3');
  await withPoolStopped(async () => {
    assert.equal((await get(w.port, '/site.css?v=3')).status, 503);
  });
});

test('caching enableKernelCache="false" in a web.config keeps its folder out of the cache', async () => {
  const r = await warm('/nocache/plain.txt');
  assert.equal(r.status, 200);
  await withPoolStopped(async () => {
    assert.equal((await get(w.port, '/nocache/plain.txt')).status, 503);
  });
});

test('editing a cached file: the next answers have the new content, and the old one never comes back', async () => {
  const path = join(w.root, 'www', 'edit.css');
  writeFileSync(path, 'a { }\n');
  await new Promise((r) => setTimeout(r, 2100)); // settled: a fresh file is not cached at once
  assert.equal((await warm('/edit.css')).body.toString(), 'a { }\n');
  await withPoolStopped(async () => assert.equal((await get(w.port, '/edit.css')).status, 200, 'cached'));
  writeFileSync(path, 'b { }\n');
  const seen: string[] = [];
  await eventually(async () => {
    const r = await get(w.port, '/edit.css');
    seen.push(r.body.toString());
    return r.body.toString() === 'b { }\n';
  }, 5000);
  // Keep asking for a while: a stale copy must not be cached again.
  for (let i = 0; i < 30; i++) {
    assert.equal((await get(w.port, '/edit.css')).body.toString(), 'b { }\n');
    await new Promise((r) => setTimeout(r, 100));
  }
});

test('a caching profile with kernelCachePolicy CacheForTimePeriod caches dynamic responses for its duration', async () => {
  const first = await warm('/app/who.app');
  assert.equal(first.status, 200);
  await withPoolStopped(async () => {
    const hit = await get(w.port, '/app/who.app');
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['x-pid'], first.headers['x-pid']);
    await new Promise((r) => setTimeout(r, 2200)); // duration 00:00:02
    assert.equal((await get(w.port, '/app/who.app')).status, 503, 'expired');
  });
});

test('a configuration change empties the cache', async () => {
  await warm('/site.css');
  const text = readFileSync(w.configFile, 'utf8');
  writeFileSync(w.configFile, text.replace('value="one"', 'value="two"'));
  await w.waitForOutput(/configuration generation 2 applied/);
  await eventually(async () => (await get(w.port, '/site.css')).headers['x-generation'] === 'two', 5000);
});
