/**
 * "Never drops a request" (BRIEF.md, invariant 1 and "how peers lose requests"), measured the
 * way peers were: 64 keep-alive clients, a fault every 2 s, every request accounted for by a
 * client that does not retry (test/helpers/load.ts). Pool B, on another site, must not notice.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { runLoad, type LoadResult } from './helpers/load.js';
import { WHARF_BIN, freePort, get, startWharf, type WharfProcess } from './helpers/wharf.js';
import { workerPids } from '../bench/procs.js';

const FAULT_EVERY_MS = 2000;
const LOAD_MS = 20000;
const FAULTS = LOAD_MS / FAULT_EVERY_MS;
const CONNECTIONS = 64;
const UPLOAD = Buffer.alloc(256 * 1024, 0x5a);
/** Far below what one core serves (≈ 15k req/s here), far above what a stalled pool would. */
const MIN_COMPLETED_A = 10000;
const MIN_COMPLETED_B = 1000;

let running: WharfProcess | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function start(): Promise<{ w: WharfProcess; portB: number }> {
  const portB = await freePort();
  const wharf = await startWharf({ fixture: 'zerodrop', vars: { PORT_B: String(portB) } });
  running = wharf;
  return { w: wharf, portB };
}

/** Worker pids of a pool. */
function poolPids(serverPid: number, pool: string): number[] {
  return workerPids(serverPid, pool);
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function summary(name: string, r: LoadResult): string {
  const lost = r.sent - r.completed;
  return (
    `${name}: sent ${r.sent}, completed ${r.completed} (${((r.completed * 1000) / r.durationMs).toFixed(0)} req/s), ` +
    `statuses ${JSON.stringify(r.statuses)}, failed ${r.failed}, bad bodies ${r.badBodies}, connection errors ${r.connectionErrors} ${JSON.stringify(r.errors)}, ` +
    `server closed ${r.serverClosed}, closed with notice ${r.closedWithNotice}, timed out ${r.timedOut}, unanswered ${r.unanswered}, ` +
    `protocol errors ${r.protocolErrors}, lost ${lost}, max latency ${r.maxLatencyMs.toFixed(0)} ms`
  );
}

/** Nothing lost, nothing failed: what a user of a zero-drop server sees. */
function assertNoDrops(name: string, r: LoadResult, minCompleted: number): void {
  assert.equal(r.connectionErrors, 0, `${name}: connection errors ${JSON.stringify(r.errors)}`);
  assert.equal(r.serverClosed, 0, `${name}: connections closed by the server without notice`);
  assert.equal(r.failed, 0, `${name}: statuses ${JSON.stringify(r.statuses)}`);
  assert.equal(r.badBodies, 0, `${name}: wrong response bodies`);
  assert.equal(r.timedOut, 0, `${name}: hung responses`);
  assert.equal(r.unanswered, 0, `${name}: unanswered at the end`);
  assert.equal(r.protocolErrors, 0, `${name}: malformed responses`);
  assert.equal(r.completed, r.sent, `${name}: ${r.sent - r.completed} requests lost`);
  assert.ok(r.completed >= minCompleted, `${name}: only ${r.completed} requests completed (expected at least ${minCompleted})`);
}

/** `wharf recycle apppool <pool> --config <file>`: exit code and output. */
function recycle(configFile: string, pool: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [WHARF_BIN, 'recycle', 'apppool', pool, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    c.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const t = setTimeout(() => c.kill('SIGKILL'), 10000);
    c.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/**
 * Apply `fault` every 2 s while the 20 s load runs (at 1 s, 3 s … 19 s: ten faults, each with
 * load before and after it). The first error stops the faults and ends the load early (through
 * `abort`), so a broken fault fails the test quickly.
 */
async function faultLoop(abort: AbortController, fault: (i: number) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  try {
    for (let i = 0; i < FAULTS; i++) {
      await sleep(Math.max(0, t0 + (i + 0.5) * FAULT_EVERY_MS - Date.now()));
      await fault(i);
    }
  } catch (err) {
    abort.abort();
    throw err;
  }
}

test('kill -9 of pool A\'s worker every 2 s under 64 keep-alive clients: no request is lost; pool B keeps answering', { timeout: 50000 }, async () => {
  const { w, portB } = await start();
  assert.equal((await get(w.port, '/small.txt')).status, 200);
  assert.equal((await get(portB, '/b.txt')).status, 200);
  const serverPid = w.child.pid!;
  const abort = new AbortController();
  const loadMs = LOAD_MS;
  const loadA = runLoad({ port: w.port, paths: ['/small.txt', '/count'], connections: CONNECTIONS, durationMs: loadMs, signal: abort.signal });
  const loadB = runLoad({ port: portB, path: '/b.txt', connections: 2, durationMs: loadMs, signal: abort.signal });
  const killed: number[] = [];
  const faults = faultLoop(abort, async () => {
    // The worker that is serving right now (a replacement starts on demand within milliseconds).
    const pid = await waitFor('a worker of pool A', () => poolPids(serverPid, 'A')[0], 1500);
    process.kill(pid, 'SIGKILL');
    killed.push(pid);
  });
  const [a, b] = await Promise.all([loadA, loadB, faults.catch(() => undefined)]);
  await faults;
  process.stderr.write(`${summary('pool A under kill -9', a)}\n${summary('pool B beside it', b)}\nkilled ${killed.length} workers: ${killed.join(' ')}\n`);

  assert.equal(killed.length, FAULTS);
  assert.equal(new Set(killed).size, killed.length, 'every kill hit a new worker (the pid changed each time)');
  await waitFor('the killed workers to be gone', () => (killed.every((pid) => !existsSync(`/proc/${pid}`)) ? true : undefined), 2000);
  assert.equal(poolPids(serverPid, 'A').length, 1, 'one replacement serves pool A');
  assertNoDrops('pool A', a, MIN_COMPLETED_A);
  assertNoDrops('pool B', b, MIN_COMPLETED_B);
  assert.equal(w.child.exitCode, null, 'the listener is alive');
});

test('on-demand recycle of pool A every 2 s under 64 keep-alive clients and slow 256 KiB uploads: no request is lost', { timeout: 50000 }, async () => {
  const { w, portB } = await start();
  assert.equal((await get(w.port, '/small.txt')).status, 200);
  const serverPid = w.child.pid!;
  const abort = new AbortController();
  const loadMs = LOAD_MS;
  const loadA = runLoad({ port: w.port, paths: ['/small.txt', '/count'], connections: CONNECTIONS, durationMs: loadMs, signal: abort.signal });
  // 16 KiB every 40 ms: each upload is in flight for about 0.6 s, so recycles land mid-body.
  const uploads = runLoad({
    port: w.port,
    path: '/count',
    method: 'POST',
    body: UPLOAD,
    bodyChunkSize: 16 * 1024,
    bodyChunkDelayMs: 40,
    connections: 4,
    durationMs: loadMs,
    signal: abort.signal,
    checkBody: (body) => body.toString() === String(UPLOAD.length),
  });
  const loadB = runLoad({ port: portB, path: '/b.txt', connections: 2, durationMs: loadMs, signal: abort.signal });
  const replaced: Array<[number, number]> = [];
  const faults = faultLoop(abort, async () => {
    const before = await waitFor('a worker of pool A', () => (poolPids(serverPid, 'A').length > 0 ? poolPids(serverPid, 'A') : undefined), 1500);
    const r = await recycle(w.configFile, 'A');
    assert.equal(r.code, 0, `wharf recycle apppool A exited with ${r.code}: ${r.out}`);
    assert.match(r.out, /"A" successfully recycled\./);
    // Replaced: every worker from before is gone and a new one serves.
    const after = await waitFor(
      'the recycled worker to be replaced',
      () => {
        const now = poolPids(serverPid, 'A');
        return now.length > 0 && !now.some((p) => before.includes(p)) ? now : undefined;
      },
      5000,
    );
    replaced.push([before[0]!, after[0]!]);
  });
  const [a, up, b] = await Promise.all([loadA, uploads, loadB, faults.catch(() => undefined)]);
  await faults;
  process.stderr.write(
    `${summary('pool A under recycles', a)}\n${summary('uploads under recycles', up)}\n${summary('pool B beside it', b)}\n` +
      `recycled ${replaced.length} times: ${replaced.map(([x, y]) => `${x}→${y}`).join(' ')}\n`,
  );

  assert.equal(replaced.length, FAULTS);
  assert.equal(new Set(replaced.map(([, y]) => y)).size, replaced.length, 'each recycle brought a new worker');
  assertNoDrops('pool A', a, MIN_COMPLETED_A);
  assertNoDrops('uploads', up, 40);
  assert.deepEqual(up.statuses, { 200: up.completed }, 'every upload was answered 200 with its full byte count');
  assertNoDrops('pool B', b, MIN_COMPLETED_B);
  assert.equal(w.child.exitCode, null, 'the listener is alive');
});
