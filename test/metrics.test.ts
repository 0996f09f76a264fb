// Metrics end to end: a real Wharf started with --metrics-address, a scripted scenario (requests, a
// response-cache hit, a kept-alive connection, a recycle, a kill -9 of the worker), and what an
// administrator's Prometheus would see at /metrics and `wharf metrics` after each step; promtool
// must find nothing to fix in either.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { request } from 'node:http';
import { eventually, freePort, get, run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { needs, tool } from './helpers/skip.js';

let w: WharfProcess;
let metricsPort: number;

before(async () => {
  metricsPort = await freePort();
  w = await startWharf({ fixture: 'metrics', files: { 'whoami.mjs': 'sites/whoami.mjs' }, args: ['--metrics-address', `127.0.0.1:${metricsPort}`] });
  // The fixture was just copied: files changed in the last 2 s are not cached yet (response-cache.ts).
  await new Promise((r) => setTimeout(r, 2100));
});
after(async () => {
  await w?.stop();
});

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** Prometheus text format → samples (the lines that are not comments). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function scrape(accept?: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: metricsPort, path: '/metrics', headers: accept === undefined ? {} : { Accept: accept }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one series at /metrics now (undefined when it is not there). */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const { body } = await scrape();
  const want = Object.entries(labels);
  const hit = parse(body).find((s) => s.name === name && want.length === Object.keys(s.labels).length && want.every(([k, v]) => s.labels[k] === v));
  return hit?.value;
}

const SITE = 'Metrics Site';
const POOL = 'MetricsPool';

async function workerPid(): Promise<string> {
  // The response cache may answer /hello.txt; a query string keeps a static request out of it (IIS too).
  const r = await get(w.port, '/hello.txt?pid');
  assert.equal(r.status, 200);
  return String(r.headers['x-pid']);
}

function promtool(text: string): string {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.trim() + (r.status === 0 ? '' : ` (exit ${r.status})`);
}

test('requests, a cache hit and a kept-alive connection move their metrics; the worker\'s process is there by pool and pid', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await get(w.port, '/hello.txt')).status, 200);
  assert.equal((await get(w.port, '/missing.txt')).status, 404);
  const brew = await get(w.port, '/hello.txt', {}, 'BREW');
  // The third GET came from the response cache (frequently hit: the second stored it).
  assert.equal(await metric('wharf_response_cache_hits_total'), 1);
  assert.equal(await metric('wharf_response_cache_entries'), 1);
  assert.ok(((await metric('wharf_response_cache_misses_total')) ?? 0) >= 2);
  assert.equal(await metric('wharf_http_requests_total', { site: SITE, method: 'GET', code: '200' }), 3);
  assert.equal(await metric('wharf_http_requests_total', { site: SITE, method: 'GET', code: '404' }), 1);
  assert.equal(await metric('wharf_http_requests_total', { site: SITE, method: 'OTHER', code: String(brew.status) }), 1, 'an unknown verb counts as OTHER');
  assert.equal(await metric('wharf_http_request_duration_seconds_count', { site: SITE }), 5);
  assert.equal(await metric('wharf_http_request_duration_seconds_bucket', { site: SITE, le: '+Inf' }), 5);
  assert.equal(await metric('wharf_request_queue_length', { pool: POOL }), 0);

  // A keep-alive connection counts for its site while it is open.
  const sock = connect(w.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n');
    sock.once('data', () => resolve());
  });
  assert.equal(await metric('wharf_connections', { site: SITE }), 1);
  sock.end();
  await eventually(async () => (await metric('wharf_connections', { site: SITE })) === 0);

  const pid = await workerPid();
  assert.equal(await metric('wharf_apppool_worker_processes', { pool: POOL }), 1);
  assert.ok(((await metric('wharf_worker_process_resident_memory_bytes', { pool: POOL, pid })) ?? 0) > 1024 * 1024, 'the worker\'s resident memory');
  assert.ok(((await metric('wharf_worker_process_cpu_seconds_total', { pool: POOL, pid })) ?? 0) > 0, 'the worker\'s CPU time');
  const started = (await metric('wharf_worker_process_start_time_seconds', { pool: POOL, pid })) ?? 0;
  assert.ok(Math.abs(started - Date.now() / 1000) < 300, `worker start time ${started} is recent`);
  assert.ok(((await metric('process_resident_memory_bytes')) ?? 0) > 0, 'the main process\'s own metrics');
  assert.equal(await metric('wharf_apppool_state', { pool: POOL, state: 'Started' }), 1);
  assert.equal(await metric('wharf_config_generation'), 1);
});

test('a recycle: counted with its trigger, the new worker replaces the old one in the process metrics', async () => {
  const old = await workerPid();
  const r = await run(process.execPath, [WHARF_BIN, 'recycle', 'apppool', POOL, '--config', w.configFile]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await metric('wharf_apppool_recycles_total', { pool: POOL, reason: 'onDemand' }), 1);
  const fresh = await eventually(async () => {
    const pid = await workerPid();
    return pid !== old ? pid : undefined;
  }, 20000);
  await eventually(async () => (await metric('wharf_apppool_worker_exits_total', { pool: POOL, reason: 'recycle' })) === 1, 20000);
  assert.equal(await metric('wharf_apppool_worker_processes', { pool: POOL }), 1);
  assert.equal(await metric('wharf_worker_process_resident_memory_bytes', { pool: POOL, pid: old }), undefined, 'the old worker\'s series are gone');
  assert.ok(((await metric('wharf_worker_process_resident_memory_bytes', { pool: POOL, pid: fresh })) ?? 0) > 0);
  assert.equal(await metric('wharf_apppool_worker_starts_total', { pool: POOL }), 2);
  assert.equal(await metric('wharf_apppool_worker_failures_total', { pool: POOL }), undefined, 'a recycle is not a failure');
});

test('kill -9 of the worker: a failure and a crash exit; the next request starts another worker', async () => {
  const pid = await workerPid();
  const starts = (await metric('wharf_apppool_worker_starts_total', { pool: POOL })) ?? 0;
  process.kill(Number(pid), 'SIGKILL');
  await eventually(async () => (await metric('wharf_apppool_worker_failures_total', { pool: POOL })) === 1, 20000);
  assert.equal(await metric('wharf_apppool_worker_exits_total', { pool: POOL, reason: 'crash' }), 1);
  assert.equal(await metric('wharf_worker_process_cpu_seconds_total', { pool: POOL, pid }), undefined);
  const next = await workerPid();
  assert.notEqual(next, pid);
  assert.equal(await metric('wharf_apppool_worker_processes', { pool: POOL }), 1);
  assert.equal(await metric('wharf_apppool_worker_starts_total', { pool: POOL }), starts + 1);
});

test('promtool finds nothing to fix at /metrics nor in `wharf metrics`, and both show the same series', async (t) => {
  if (!needs(t, tool('promtool', 'prometheus'))) return;
  const served = await scrape();
  assert.equal(served.status, 200);
  assert.equal(served.type, 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(promtool(served.body), '');
  const cli = await run(process.execPath, [WHARF_BIN, 'metrics', '--config', w.configFile]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(promtool(cli.stdout), '');
  // Wharf's own series; the main process's default metrics vary on their own (nodejs_active_requests
  // has a series only while libuv has a request of some type in flight).
  const names = (text: string): string[] => [...new Set(parse(text).map((s) => s.name).filter((n) => n.startsWith('wharf_')))].sort();
  assert.deepEqual(names(cli.stdout), names(served.body));
  assert.match(cli.stdout, /^process_resident_memory_bytes \d+/m);
  assert.ok(names(served.body).includes('wharf_apppool_recycles_total'));
});

test('the endpoint: OpenMetrics when the scraper asks for it, 404 for any other path', async () => {
  const open = await scrape('application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1');
  assert.equal(open.type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.match(open.body, /^# TYPE wharf_http_requests counter$/m);
  assert.match(open.body, /^wharf_http_requests_total\{site="Metrics Site",method="GET",code="200"\} \d+$/m);
  assert.ok(open.body.endsWith('# EOF\n'));
  const other = await get(metricsPort, '/');
  assert.equal(other.status, 404);
});

test('clear errors: a --metrics-address in use, a malformed one, `wharf metrics` with no server', async () => {
  // Same configuration, same metrics address: the endpoint is opened first and refuses.
  const taken = await run(process.execPath, [WHARF_BIN, 'start', '--config', w.configFile, '--system-drive', w.systemDrive, '--metrics-address', `127.0.0.1:${metricsPort}`]);
  assert.equal(taken.code, 1);
  assert.match(taken.stderr, new RegExp(`^wharf: Cannot serve metrics on 127\\.0\\.0\\.1:${metricsPort}: the port is in use by another program \\(--metrics-address\\)$`, 'm'));
  const bad = await run(process.execPath, [WHARF_BIN, 'start', '--config', w.configFile, '--metrics-address', 'localhost']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^wharf: --metrics-address "localhost": no port; expected HOST:PORT/m);
  const none = await run(process.execPath, [WHARF_BIN, 'metrics', '--config', `${w.root}/nothing-runs-this.config`]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^ERROR \( message:Wharf is not running for .*nothing-runs-this\.config/m);
  assert.equal(none.stdout, '');
});

test('without --metrics-address: no endpoint, and `wharf metrics` says metrics are off', async () => {
  const off = await startWharf({ fixture: 'metrics', files: { 'whoami.mjs': 'sites/whoami.mjs' } });
  try {
    assert.equal((await get(off.port, '/hello.txt')).status, 200);
    assert.doesNotMatch(off.output(), /metrics at/);
    const r = await run(process.execPath, [WHARF_BIN, 'metrics', '--config', off.configFile]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^ERROR \( message:Metrics are off on this server: start it with --metrics-address HOST:PORT/m);
  } finally {
    await off.stop();
  }
});
