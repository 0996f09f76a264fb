import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'hang' });
});
after(async () => {
  await w?.stop();
});

test('a worker whose application busy-loops is found by pings and replaced; another pool keeps answering', async () => {
  const first = await get(w.port, '/fine.txt');
  assert.equal(first.status, 200);
  // OkPool's worker is started first, so its start-up on a busy machine is not counted below.
  assert.equal((await get(w.port, '/other/ok.txt')).status, 200);
  const started = Date.now();
  const spinning = get(w.port, '/spin');
  // While HangPool's worker is stuck, OkPool answers every time.
  let okCount = 0;
  while (Date.now() - started < 2500) {
    const r = await get(w.port, '/other/ok.txt');
    assert.equal(r.status, 200);
    okCount++;
    await new Promise((r2) => setTimeout(r2, 100));
  }
  assert.ok(okCount >= 3, `OkPool answered ${okCount} requests while HangPool's worker spun`);
  // The GET is replayed once on a fresh worker (it had sent nothing), spins again, and after the
  // second replacement the listener answers 502: the request is not left hanging.
  const r = await spinning;
  assert.equal(r.status, 502);
  assert.ok(Date.now() - started < 15000);
  await w.waitForOutput(/did not answer a ping within pingResponseTime \(1000 ms\); killing it/);
  // A fresh worker serves the pool's other URLs.
  const after = await get(w.port, '/fine.txt');
  assert.equal(after.status, 200);
  assert.equal(after.body.toString(), 'fine\n');
});

test('failure orphanWorkerProcess: a hung worker is left running for debugging, orphanActionExe runs, a new worker serves', async () => {
  const o = await startWharf({ fixture: 'orphan', files: { 'spin.mjs': 'hang/spin.mjs' } });
  try {
    const first = await get(o.port, '/fine.txt');
    assert.equal(first.status, 200);
    const spinning = get(o.port, '/spin', { 'Content-Length': '0' }, 'POST');
    const line = await o.waitForOutput(/worker (\d+) of pool OrphanPool did not answer a ping within pingResponseTime \(1000 ms\); orphaning it/, 10000);
    const pid = Number(/worker (\d+)/.exec(line)![1]);
    // The POST had reached the application: not replayed, answered 502.
    assert.equal((await spinning).status, 502);
    await eventually(() => existsSync(join(o.root, `orphaned-${pid}`)), 5000);
    assert.ok(existsSync(`/proc/${pid}/stat`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), 'the orphan is still running');
    const after = await get(o.port, '/fine.txt');
    assert.equal(after.status, 200);
  } finally {
    await o.stop();
  }
});
