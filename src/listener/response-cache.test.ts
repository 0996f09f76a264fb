import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CacheableMessage } from '../ipc/messages.js';
import { ResponseCache } from './response-cache.js';

/** A cache on a fake clock and fake file system: `changed(path)` fires the folder watcher. */
function harness(maxBytes = 1 << 20) {
  let now = 1_000_000;
  const ctimes = new Map<string, number>();
  const watchers = new Map<string, (file: string | null) => void>();
  const cache = new ResponseCache({
    maxBytes,
    now: () => now,
    watchFolder: (folder, onChange) => {
      watchers.set(folder, onChange);
      return { close: () => watchers.delete(folder) };
    },
    changedAt: (path) => ctimes.get(path) ?? 0,
  });
  return {
    cache,
    watchers,
    advance(ms: number) {
      now += ms;
    },
    touch(path: string) {
      ctimes.set(path, now);
      const slash = path.lastIndexOf('/');
      watchers.get(path.slice(0, slash))?.(path.slice(slash + 1));
    },
  };
}

const untilChange = (deps: string[], threshold = 2): CacheableMessage => ({
  policy: 'untilChange',
  durationMs: 0,
  dependencies: deps,
  frequentHitThreshold: threshold,
  frequentHitTimePeriodMs: 10_000,
});
const HEADERS = ['Content-Type', 'text/css', 'ETag', '"abc:0"', 'Last-Modified', 'Sun, 22 Nov 2026 05:00:00 GMT', 'Content-Length', '5'];
const body = Buffer.from('hello');

test('an entry is stored only once the URL is frequently hit (2 within 10 s), then served', () => {
  const h = harness();
  const hint = untilChange(['/www/a.css', '/www/web.config']);
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), false, 'first request: not frequently hit yet');
  h.advance(3000);
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), true);
  const e = h.cache.lookup('k');
  assert.ok(e);
  assert.equal(e.body.toString(), 'hello');
  assert.equal(e.etag, '"abc:0"');
  assert.deepEqual(e.notModifiedHeaders, ['ETag', '"abc:0"', 'Last-Modified', 'Sun, 22 Nov 2026 05:00:00 GMT']);
});

test('two requests further apart than frequentHitTimePeriod do not make an entry', () => {
  const h = harness();
  const hint = untilChange(['/www/a.css']);
  h.cache.noteRequest('k');
  h.advance(11_000);
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), false);
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), true, 'two within the new window');
});

test('a change to the file, a web.config of the URL, or a file replaced in the folder invalidates', () => {
  const h = harness();
  const hint = untilChange(['/www/css/a.css', '/www/web.config', '/www/css/web.config']);
  const fill = (): void => {
    h.cache.noteRequest('k');
    h.cache.noteRequest('k');
    assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), true);
  };
  fill();
  h.touch('/www/css/other.css');
  assert.ok(h.cache.lookup('k'), 'another file in the folder does not matter');
  h.touch('/www/css/a.css');
  assert.equal(h.cache.lookup('k'), undefined);
  h.advance(5000);
  fill();
  h.touch('/www/Web.config'); // any case: Wharf reads web.config and Web.config
  assert.equal(h.cache.lookup('k'), undefined);
  h.advance(5000);
  fill();
  h.watchers.get('/www/css')!(null); // the folder itself changed
  assert.equal(h.cache.lookup('k'), undefined);
  assert.equal(h.watchers.size, 0, 'watchers go with the last entry that needs them');
});

test('a response whose file (or folder) changed in the last 2 s is not stored: the worker may not have seen it yet', () => {
  const h = harness();
  const hint = untilChange(['/www/a.css']);
  h.touch('/www/a.css');
  h.advance(500);
  h.cache.noteRequest('k');
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), false);
  h.touch('/www'); // a file created or deleted in the folder
  h.advance(2500);
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), true);
});

test('CacheForTimePeriod entries expire; clear() empties everything', () => {
  const h = harness();
  const hint: CacheableMessage = { policy: 'timePeriod', durationMs: 30_000, dependencies: [], frequentHitThreshold: 1, frequentHitTimePeriodMs: 10_000 };
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', HEADERS, body), true);
  h.advance(29_000);
  assert.ok(h.cache.lookup('k'));
  h.advance(2000);
  assert.equal(h.cache.lookup('k'), undefined);
  h.cache.noteRequest('k');
  h.cache.offer('k', hint, 200, '', HEADERS, body);
  h.cache.clear();
  assert.equal(h.cache.size, 0);
  assert.equal(h.cache.bytes, 0);
});

test('the cache stays under maxBytes, evicting the least recently used entry', () => {
  const per = body.length + HEADERS.reduce((n, s) => n + s.length + 2, 0);
  const h = harness(per * 2);
  const hint = untilChange(['/www/a.css'], 1);
  for (const k of ['a', 'b']) {
    h.cache.noteRequest(k);
    assert.equal(h.cache.offer(k, hint, 200, '', HEADERS, body), true);
  }
  h.cache.lookup('a'); // a is now more recently used than b
  h.cache.noteRequest('c');
  h.cache.offer('c', hint, 200, '', HEADERS, body);
  assert.equal(h.cache.size, 2);
  assert.ok(h.cache.lookup('a'));
  assert.equal(h.cache.lookup('b'), undefined);
  assert.ok(h.cache.bytes <= per * 2);
  assert.equal(h.cache.stats.evicted, 1);
});

test('a dependency that cannot be watched makes the response uncacheable', () => {
  const cache = new ResponseCache({ maxBytes: 1 << 20, watchFolder: () => undefined, changedAt: () => 0 });
  cache.noteRequest('k');
  cache.noteRequest('k');
  assert.equal(cache.offer('k', untilChange(['/gone/a.css']), 200, '', HEADERS, body), false);
});

test('one entry per content coding: a hit only for requests that negotiate to the entry\'s coding', () => {
  const h = harness();
  const hint: CacheableMessage = { ...untilChange(['/www/a.css']), encodings: ['br', 'gzip'] };
  const gz = ['Content-Type', 'text/css', 'Content-Encoding', 'gzip', 'Vary', 'Accept-Encoding', 'ETag', '"abc:0-gzip"'];
  const plain = ['Content-Type', 'text/css', 'Vary', 'Accept-Encoding', 'ETag', '"abc:0"'];
  h.cache.noteRequest('k');
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', hint, 200, '', gz, Buffer.from('GZ')), true);
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'gzip'])?.body.toString(), 'GZ');
  assert.equal(h.cache.lookup('k', ['accept-encoding', 'gzip, deflate, br']), undefined, 'br is preferred: not stored yet');
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'br;q=0.5, gzip']), h.cache.lookup('k', ['Accept-Encoding', 'gzip']));
  assert.equal(h.cache.lookup('k'), undefined, 'no Accept-Encoding: identity, not stored yet');
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'gzip;q=0']), undefined);
  assert.equal(h.cache.offer('k', hint, 200, '', plain, Buffer.from('plain')), true);
  assert.equal(h.cache.lookup('k')?.body.toString(), 'plain');
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'gzip;q=0, identity'])?.body.toString(), 'plain');
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'gzip'])?.body.toString(), 'GZ', 'both kept');
  assert.equal(h.cache.size, 2);
  // The file changes: every coding of the URL goes.
  h.touch('/www/a.css');
  assert.equal(h.cache.size, 0);
  assert.equal(h.cache.lookup('k', ['Accept-Encoding', 'gzip']), undefined);
});

test('a response without Vary is one entry for every request, whatever it accepts', () => {
  const h = harness();
  h.cache.noteRequest('k');
  h.cache.noteRequest('k');
  assert.equal(h.cache.offer('k', untilChange(['/www/a.css']), 200, '', HEADERS, body), true);
  assert.ok(h.cache.lookup('k', ['Accept-Encoding', 'gzip, br']));
  assert.ok(h.cache.lookup('k'));
});
