import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { get, startWharf, type WharfProcess } from './helpers/wharf.js';
import { workerPids } from '../bench/procs.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'static' });
});
after(async () => {
  await w?.stop();
});

test('kill -9 of the worker during a burst: requests keep being answered by a new worker', async () => {
  const first = await get(w.port, '/site.css');
  assert.equal(first.status, 200);
  const [pid] = workerPids(w.child.pid!);
  assert.ok(pid !== undefined, 'a worker is running');

  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const statuses = new Map<number, number>();
  let errors = 0;
  let killed = false;
  const total = 3000;
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: w.port, path: '/site.css', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end();
    });
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < total) {
        sent++;
        if (!killed && sent > total / 3) {
          killed = true;
          process.kill(pid!, 'SIGKILL');
        }
        await one();
      }
    }),
  );
  agent.destroy();
  const ok = statuses.get(200) ?? 0;
  process.stderr.write(`burst: ${ok} ok, statuses ${JSON.stringify([...statuses])}, ${errors} connection errors\n`);
  // Replay of safe in-flight requests means a crash costs these GETs nothing.
  assert.equal(errors, 0);
  assert.deepEqual([...statuses.keys()], [200]);
  assert.equal(ok, total);
  const after = await get(w.port, '/site.css');
  assert.equal(after.status, 200);
  const now = workerPids(w.child.pid!);
  assert.equal(now.length, 1);
  assert.notEqual(now[0], pid, 'a new worker serves');
  assert.equal(w.child.exitCode, null, 'the listener is alive');
  await w.waitForOutput(new RegExp(`worker ${pid} of pool DefaultAppPool terminated unexpectedly`));
});
