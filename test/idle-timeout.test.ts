// Time-driven worker lifecycle: idleTimeout (Terminate) and periodicRestart time. IIS counts both
// in whole minutes, so this file takes a little over a minute; its two tests run side by side.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { alive, eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';

/** The first whole minute at least 15 s from now, local time, as hh:mm:ss (periodicRestart schedule). */
const scheduleAt = new Date(Math.ceil((Date.now() + 15000) / 60000) * 60000);
const two = (n: number): string => String(n).padStart(2, '0');

let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'idle', files: { 'pools.mjs': 'pools/pools.mjs' }, vars: { SCHEDULE: `${two(scheduleAt.getHours())}:${two(scheduleAt.getMinutes())}:00` } });
});
after(async () => {
  await w?.stop();
});


describe('time-driven lifecycle', { concurrency: true }, () => {
  test('periodicRestart schedule: the worker is recycled at the scheduled time of day', async () => {
    const first = await get(w.port, '/scheduled/who.app');
    assert.equal(first.status, 200);
    const pid = Number(first.headers['x-pid']);
    await w.waitForOutput(new RegExp(`WAS 5076: worker process ${pid} serving application pool 'Scheduled' reached its scheduled recycle time`), scheduleAt.getTime() - Date.now() + 15000);
    assert.ok(Date.now() >= scheduleAt.getTime() - 1000, 'not before the scheduled time');
    // Overlapped: the old worker answers until its replacement is ready, then the new one does.
    const next = await eventually(async () => {
      const r = await get(w.port, '/scheduled/who.app');
      assert.equal(r.status, 200);
      return Number(r.headers['x-pid']) !== pid ? r : undefined;
    }, 10000);
    assert.equal(next.status, 200);
  });

  test('idleTimeout: the worker exits after a minute without requests; the next request starts a new one', async () => {
    const first = await get(w.port, '/who.app');
    assert.equal(first.status, 200);
    const pid = Number(first.headers['x-pid']);
    // Still there well inside the minute …
    await new Promise((r) => setTimeout(r, 45000));
    assert.ok(alive(pid), 'the worker is still running after 45 s');
    // … and gone shortly after it.
    await w.waitForOutput(new RegExp(`WAS 5186: worker process ${pid} serving application pool 'Idle' was shut down due to inactivity \\(idleTimeout 1 minute\\)`), 25000);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(!alive(pid), 'the idle worker process has exited');
    const next = await get(w.port, '/who.app');
    assert.equal(next.status, 200);
    assert.notEqual(Number(next.headers['x-pid']), pid);
  });

  test('periodicRestart time: the worker is recycled after a minute, overlapped, while requests keep succeeding', async () => {
    const first = await get(w.port, '/timed/who.app');
    assert.equal(first.status, 200);
    const pid = Number(first.headers['x-pid']);
    const statuses = new Map<number, number>();
    let newPid = 0;
    const deadline = Date.now() + 75000;
    while (Date.now() < deadline && newPid === 0) {
      const r = await get(w.port, '/timed/who.app');
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (Number(r.headers['x-pid']) !== pid) newPid = Number(r.headers['x-pid']);
      await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.notEqual(newPid, 0, 'a new worker took over');
    assert.deepEqual([...statuses.keys()], [200], `every request succeeded: ${JSON.stringify([...statuses])}`);
    await w.waitForOutput(new RegExp(`WAS 5074: worker process ${pid} serving application pool 'Timed' reached its allowed processing time limit`));
  });
});
