import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'queue' });
});
after(async () => {
  await w?.stop();
});

test('requests wait in the pool queue while the worker starts; beyond queueLength they get 503 QueueFull', async () => {
  const results = await Promise.all(Array.from({ length: 25 }, () => get(w.port, '/ok.txt')));
  const ok = results.filter((r) => r.status === 200);
  const full = results.filter((r) => r.status === 503);
  assert.equal(ok.length, 10, 'queueLength requests were held and then served');
  assert.equal(full.length, 15);
  for (const r of ok) assert.equal(r.body.toString(), 'ok\n');
  assert.match(full[0]!.body.toString(), /Service Unavailable/);
  assert.match(full[0]!.headers['server'] ?? '', /HTTPAPI/);
  const lines = await eventually(() => {
    const l = w.httpErrLines().filter((x) => x.includes('QueueFull'));
    return l.length === 15 ? l : undefined;
  });
  const f = lines[0]!.split(' ');
  assert.equal(f[10], '503');
  assert.equal(f[11], '5');
  assert.equal(f[12], 'QueueFull');
  assert.equal(f[13], 'SmallQueue');
  // QueueFull answers come from the listener: only the 10 served requests reach the W3C log.
  const logged = await eventually(() => {
    const l = w.logLines(5);
    return l.length >= 10 ? l : undefined;
  });
  assert.equal(logged.length, 10);
});
