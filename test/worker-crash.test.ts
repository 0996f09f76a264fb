// kill -9 of a worker mid-burst: the listener replays the safe requests the dead worker held and a
// new worker serves the rest. The response cache is off (fixture crash/) so that no answer can
// come from the listener alone, and X-Pid (whoami.mjs) names the worker that served each one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { get, startWharf, type WharfProcess } from './helpers/wharf.js';
import { workerPids } from '../bench/procs.js';

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'crash', files: { wwwroot: 'static/wwwroot', 'whoami.mjs': 'sites/whoami.mjs' } });
});
after(async () => {
  await w?.stop();
});

test('kill -9 of the worker during a burst: requests keep being answered by a new worker', async () => {
  const first = await get(w.port, '/site.css');
  assert.equal(first.status, 200);
  const [pid] = workerPids(w.child.pid!);
  assert.ok(pid !== undefined, 'a worker is running');
  assert.equal(first.headers['x-pid'], String(pid), 'the worker answered, not a cache');

  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const statuses = new Map<number, number>();
  /** Responses per serving worker, before and after the kill. */
  const servedBy = { before: new Map<string, number>(), after: new Map<string, number>() };
  let errors = 0;
  let killed = false;
  const total = 3000;
  let sent = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port: w.port, path: '/site.css', agent }, (res) => {
        res.resume();
        // Headers that arrive after the kill come from the new worker, or from the old one if it wrote them before it died.
        const when = killed ? servedBy.after : servedBy.before;
        res.on('end', () => {
          statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
          const by = String(res.headers['x-pid']);
          when.set(by, (when.get(by) ?? 0) + 1);
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
  process.stderr.write(
    `burst: ${ok} ok, statuses ${JSON.stringify([...statuses])}, ${errors} connection errors, ` +
      `served before the kill by ${JSON.stringify([...servedBy.before])}, after by ${JSON.stringify([...servedBy.after])}\n`,
  );
  // Replay of safe in-flight requests means a crash costs these GETs nothing.
  assert.equal(errors, 0);
  assert.deepEqual([...statuses.keys()], [200]);
  assert.equal(ok, total);
  const after = await get(w.port, '/site.css');
  assert.equal(after.status, 200);
  const now = workerPids(w.child.pid!);
  assert.equal(now.length, 1);
  assert.notEqual(now[0], pid, 'a new worker serves');
  assert.equal(after.headers['x-pid'], String(now[0]));
  // Every answer came from a worker: the killed one before the kill, and the new one served
  // after it (the responses that began after the kill cannot come from a dead process).
  assert.deepEqual([...servedBy.before.keys()], [String(pid)]);
  assert.ok((servedBy.after.get(String(now[0])) ?? 0) > 0, `the new worker ${now[0]} served after the kill: ${JSON.stringify([...servedBy.after])}`);
  assert.deepEqual([...servedBy.after.keys()].filter((p) => p !== String(pid) && p !== String(now[0])), [], 'no answer without a worker');
  assert.equal(w.child.exitCode, null, 'the listener is alive');
  await w.waitForOutput(new RegExp(`worker ${pid} of pool DefaultAppPool terminated unexpectedly`));
});
