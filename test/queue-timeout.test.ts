// HTTP.sys's app-pool queue timer: a request that waits in its pool's queue longer than the site's
// limits connectionTimeout is dropped (connection closed, no response) with httperr Timer_AppPool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, get, rawRequest, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'queue-timeout', files: { 'slow-start.mjs': 'queue/slow-start.mjs' } });
});
after(async () => {
  await w?.stop();
});

test('a request queued longer than connectionTimeout (worker still starting) is dropped with Timer_AppPool', async () => {
  const started = Date.now();
  // The pool's worker needs 4 s to start; the site's connectionTimeout is 1 s.
  const raw = await rawRequest(w.port, 'GET /hi.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', { timeoutMs: 8000 });
  const waited = Date.now() - started;
  assert.equal(raw, '', 'no response: the connection was dropped');
  assert.ok(waited < 3900, `dropped after ${waited} ms, before the worker was ready`);
  await eventually(() => w.httpErrLines().some((l) => l.includes('/hi.txt') && l.includes('Timer_AppPool')), 5000);
  // Once the worker is up, requests are served.
  const ok = await eventually(async () => {
    const r = await get(w.port, '/hi.txt');
    return r.status === 200 ? r : undefined;
  }, 10000);
  assert.equal(ok.body.toString(), 'hi\n');
});
