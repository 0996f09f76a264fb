import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as events from '../diagnostics.js';
import { needs, tool } from '../../test/helpers/skip.js';
import { exposition, negotiate } from './exposition.js';
import { WharfMetrics, type MetricsCatalogue } from './wharf-metrics.js';

/** The channels WharfMetrics listens to. */
const WATCHED = [
  events.requestEnd,
  events.queueEnter,
  events.queueLeave,
  events.queueReject,
  events.cacheHit,
  events.cacheMiss,
  events.cacheStore,
  events.cacheRemove,
  events.connectionOpen,
  events.connectionClose,
  events.workerStart,
  events.workerExit,
  events.poolRecycle,
  events.poolState,
  events.configApplied,
  events.configRejected,
];

function catalogue(over: Partial<MetricsCatalogue> = {}): { current: MetricsCatalogue; get: () => MetricsCatalogue } {
  const holder = {
    current: { sites: new Map([[1, 'Default Web Site'], [2, 'Shop']]), pools: ['DefaultAppPool', 'ShopPool'], ...over } as MetricsCatalogue,
    get: () => holder.current,
  };
  return holder;
}

/** A subscribed WharfMetrics (no default metrics: they would tie the test to this process). */
function subscribed(t: { after(fn: () => void): void }, cat = catalogue()): WharfMetrics {
  const m = new WharfMetrics({ catalogue: cat.get, defaultMetrics: false });
  m.subscribe();
  t.after(() => m.unsubscribe());
  return m;
}

/** The value of one series (undefined when it is not exposed). */
async function value(m: WharfMetrics, name: string, labels: Record<string, string | number> = {}): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name.replace(/_(bucket|sum|count)$/, ''));
  assert.ok(metric !== undefined, `${name} is registered`);
  const data = await metric.get();
  const want = Object.entries(labels);
  const hit = data.values.find(
    (v) => ((v as { metricName?: string }).metricName ?? data.name) === name && want.every(([k, x]) => String((v.labels as Record<string, unknown>)[k]) === String(x)) && Object.keys(v.labels).length === want.length,
  );
  return hit?.value;
}

function end(over: Partial<events.RequestEndEvent> = {}): events.RequestEndEvent {
  return {
    key: {},
    siteId: 1,
    siteName: 'Default Web Site',
    poolName: 'DefaultAppPool',
    method: 'GET',
    status: 200,
    subStatus: 0,
    win32Status: 0,
    bytesSent: 100,
    bytesReceived: 80,
    endedAt: 0,
    durationMs: 3,
    answeredBy: 'worker',
    aborted: false,
    ...over,
  };
}

test('with metrics off nothing listens: no channel has a subscriber before subscribe() or after unsubscribe()', () => {
  const m = new WharfMetrics({ catalogue: catalogue().get, defaultMetrics: false });
  assert.deepEqual(WATCHED.filter((c) => c.hasSubscribers).map((c) => c.name), []);
  m.subscribe();
  assert.deepEqual(WATCHED.filter((c) => !c.hasSubscribers).map((c) => c.name), []);
  m.unsubscribe();
  assert.deepEqual(WATCHED.filter((c) => c.hasSubscribers).map((c) => c.name), []);
});

test('requests count by site, method and status; an invented verb is OTHER; a dropped request is code 0; durations land in their bucket', async (t) => {
  const m = subscribed(t);
  for (let i = 0; i < 3; i++) events.requestEnd.publish(end());
  events.requestEnd.publish(end({ status: 404, durationMs: 0.2 }));
  events.requestEnd.publish(end({ method: 'BREW', status: 501 }));
  events.requestEnd.publish(end({ method: 'FROB', status: 501 }));
  events.requestEnd.publish(end({ siteId: 2, siteName: 'Shop', method: 'POST', status: 0, aborted: true, durationMs: 1500 }));
  events.requestEnd.publish(end({ siteId: 0, siteName: '', status: 400, answeredBy: 'listener' }));
  assert.equal(await value(m, 'wharf_http_requests_total', { site: 'Default Web Site', method: 'GET', code: 200 }), 3);
  assert.equal(await value(m, 'wharf_http_requests_total', { site: 'Default Web Site', method: 'GET', code: 404 }), 1);
  assert.equal(await value(m, 'wharf_http_requests_total', { site: 'Default Web Site', method: 'OTHER', code: 501 }), 2);
  assert.equal(await value(m, 'wharf_http_requests_total', { site: 'Default Web Site', method: 'BREW', code: 501 }), undefined);
  assert.equal(await value(m, 'wharf_http_requests_total', { site: 'Shop', method: 'POST', code: 0 }), 1);
  assert.equal(await value(m, 'wharf_http_requests_total', { site: '', method: 'GET', code: 400 }), 1);
  // 0.2 ms is within 0.00025 s; 3 ms within 0.005 but not 0.0025; 1.5 s within 2.5.
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_bucket', { site: 'Default Web Site', le: 0.00025 }), 1);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_bucket', { site: 'Default Web Site', le: 0.0025 }), 1);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_bucket', { site: 'Default Web Site', le: 0.005 }), 6);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_count', { site: 'Default Web Site' }), 6);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_bucket', { site: 'Shop', le: 1 }), 0);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_bucket', { site: 'Shop', le: 2.5 }), 1);
});

test('connections count per site name while open; a close counts where its open did, even after the site was renamed', async (t) => {
  const cat = catalogue();
  const m = subscribed(t, cat);
  const a = {};
  const b = {};
  assert.equal(await value(m, 'wharf_connections', { site: 'Shop' }), 0, 'a configured site shows before its first connection');
  events.connectionOpen.publish({ key: a, siteId: 2, remoteAddress: '127.0.0.1', localPort: 80 });
  events.connectionOpen.publish({ key: b, siteId: 2, remoteAddress: '127.0.0.1', localPort: 80 });
  assert.equal(await value(m, 'wharf_connections', { site: 'Shop' }), 2);
  events.connectionClose.publish({ key: a, siteId: 2, remoteAddress: '127.0.0.1', localPort: 80 });
  assert.equal(await value(m, 'wharf_connections', { site: 'Shop' }), 1);
  // A close the metrics never saw open (metrics were off then) changes nothing.
  events.connectionClose.publish({ key: {}, siteId: 2, remoteAddress: '127.0.0.1', localPort: 80 });
  assert.equal(await value(m, 'wharf_connections', { site: 'Shop' }), 1);
  cat.current = { ...cat.current, sites: new Map([[1, 'Default Web Site'], [2, 'Store']]) };
  events.configApplied.publish({ generation: 2, file: '/x' });
  events.connectionClose.publish({ key: b, siteId: 2, remoteAddress: '127.0.0.1', localPort: 80 });
  assert.equal(await value(m, 'wharf_connections', { site: 'Shop' }), undefined, 'the renamed site\'s old series went with the configuration');
  assert.equal(await value(m, 'wharf_connections', { site: 'Store' }), 0, 'the close did not go negative under the new name');
});

test('queues: length per configured pool (0 for an idle one), rejections by reason, whatever case the event spells the pool in', async (t) => {
  const m = subscribed(t);
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'ShopPool' }), 0);
  events.queueEnter.publish({ key: {}, poolName: 'DefaultAppPool', length: 1 });
  events.queueEnter.publish({ key: {}, poolName: 'DefaultAppPool', length: 2 });
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'DefaultAppPool' }), 2);
  events.queueLeave.publish({ key: {}, poolName: 'DefaultAppPool', waitedMs: 5, outcome: 'dispatched', length: 1 });
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'DefaultAppPool' }), 1);
  events.queueReject.publish({ key: {}, poolName: 'defaultapppool', reason: 'QueueFull' });
  events.queueReject.publish({ key: {}, poolName: 'DefaultAppPool', reason: 'QueueFull' });
  events.queueReject.publish({ key: {}, poolName: 'ShopPool', reason: 'Disabled' });
  assert.equal(await value(m, 'wharf_request_queue_rejected_total', { pool: 'DefaultAppPool', reason: 'QueueFull' }), 2);
  assert.equal(await value(m, 'wharf_request_queue_rejected_total', { pool: 'ShopPool', reason: 'Disabled' }), 1);
  assert.equal(await value(m, 'wharf_request_queue_rejected_total', { pool: 'defaultapppool', reason: 'QueueFull' }), undefined);
});

test('the response cache: hits, misses, and entries as the cache reports them', async (t) => {
  const m = subscribed(t);
  events.cacheMiss.publish({ key: {}, siteId: 1, cacheKey: 'a' });
  events.cacheStore.publish({ cacheKey: 'a', bytes: 1024, entries: 1 });
  events.cacheStore.publish({ cacheKey: 'b', bytes: 1024, entries: 2 });
  events.cacheHit.publish({ key: {}, siteId: 1, cacheKey: 'a' });
  events.cacheHit.publish({ key: {}, siteId: 1, cacheKey: 'a' });
  events.cacheRemove.publish({ cacheKey: 'b', reason: 'invalidated', entries: 1 });
  assert.equal(await value(m, 'wharf_response_cache_hits_total'), 2);
  assert.equal(await value(m, 'wharf_response_cache_misses_total'), 1);
  assert.equal(await value(m, 'wharf_response_cache_entries'), 1);
});

test('pools: recycles by trigger, failures only for exits WAS did not ask for, exits by reason, state, worker count', async (t) => {
  const m = subscribed(t);
  events.poolState.publish({ poolName: 'DefaultAppPool', state: 'Started', reason: 'autoStart' });
  events.workerStart.publish({ poolName: 'DefaultAppPool', pid: 999_991, fromSpare: true });
  events.workerStart.publish({ poolName: 'DefaultAppPool', pid: 999_992, fromSpare: false });
  assert.equal(await value(m, 'wharf_apppool_worker_processes', { pool: 'DefaultAppPool' }), 2);
  assert.equal(await value(m, 'wharf_apppool_worker_processes', { pool: 'ShopPool' }), 0);
  events.poolRecycle.publish({ poolName: 'DefaultAppPool', pid: 999_991, reason: 'onDemand' });
  events.workerExit.publish({ poolName: 'DefaultAppPool', pid: 999_991, code: 0, signal: null, reason: 'recycle', failure: false });
  events.workerExit.publish({ poolName: 'DefaultAppPool', pid: 999_992, code: null, signal: 'SIGKILL', reason: 'crash', failure: true });
  assert.equal(await value(m, 'wharf_apppool_recycles_total', { pool: 'DefaultAppPool', reason: 'onDemand' }), 1);
  assert.equal(await value(m, 'wharf_apppool_worker_failures_total', { pool: 'DefaultAppPool' }), 1);
  assert.equal(await value(m, 'wharf_apppool_worker_exits_total', { pool: 'DefaultAppPool', reason: 'recycle' }), 1);
  assert.equal(await value(m, 'wharf_apppool_worker_exits_total', { pool: 'DefaultAppPool', reason: 'crash' }), 1);
  assert.equal(await value(m, 'wharf_apppool_worker_starts_total', { pool: 'DefaultAppPool' }), 2);
  assert.equal(await value(m, 'wharf_apppool_worker_processes', { pool: 'DefaultAppPool' }), 0);
  events.poolState.publish({ poolName: 'DefaultAppPool', state: 'Stopped', reason: 'rapidFailProtection' });
  assert.equal(await value(m, 'wharf_apppool_state', { pool: 'DefaultAppPool', state: 'Stopped' }), 1);
  assert.equal(await value(m, 'wharf_apppool_state', { pool: 'DefaultAppPool', state: 'Started' }), 0);
});

test('a live worker\'s process metrics come from /proc, labelled by pool and pid, and go when it exits', async (t) => {
  const m = subscribed(t);
  // A real process stands in for a worker: what /proc says about it is what the metrics must say.
  const child = spawn(process.execPath, ['-e', 'console.log("ready"); setInterval(() => {}, 1000)'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((r) => child.stdout.once('data', r)); // node is up, not still exec'ing
  const pid = child.pid!;
  events.workerStart.publish({ poolName: 'ShopPool', pid, fromSpare: false });
  const labels = { pool: 'ShopPool', pid };
  const rss = await value(m, 'wharf_worker_process_resident_memory_bytes', labels);
  assert.ok(rss !== undefined && rss > 1024 * 1024, `resident memory ${rss}`);
  const started = await value(m, 'wharf_worker_process_start_time_seconds', labels);
  assert.ok(started !== undefined && Math.abs(started - Date.now() / 1000) < 60, `start time ${started} is about now`);
  assert.ok(((await value(m, 'wharf_worker_process_threads', labels)) ?? 0) >= 1);
  assert.ok(((await value(m, 'wharf_worker_process_virtual_memory_bytes', labels)) ?? 0) >= (rss ?? 0));
  assert.ok(((await value(m, 'wharf_worker_process_private_memory_bytes', labels)) ?? 0) > 0);
  assert.ok(((await value(m, 'wharf_worker_process_cpu_seconds_total', labels)) ?? -1) >= 0);
  assert.equal(await value(m, 'wharf_apppool_worker_processes', { pool: 'ShopPool' }), 1);
  events.workerExit.publish({ poolName: 'ShopPool', pid, code: 0, signal: null, reason: 'idle', failure: false });
  assert.equal(await value(m, 'wharf_worker_process_resident_memory_bytes', labels), undefined);
  assert.equal(await value(m, 'wharf_worker_process_cpu_seconds_total', labels), undefined);
});

test('configuration: generation applied, rejections counted, a removed pool leaves the gauges', async (t) => {
  const cat = catalogue();
  const m = subscribed(t, cat);
  events.configApplied.publish({ generation: 1, file: '/x' });
  events.configRejected.publish({ file: '/x', code: 'CFG_XML', message: 'bad' });
  assert.equal(await value(m, 'wharf_config_generation'), 1);
  assert.equal(await value(m, 'wharf_config_rejected_total'), 1);
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'ShopPool' }), 0);
  cat.current = { ...cat.current, pools: ['DefaultAppPool'] };
  events.configApplied.publish({ generation: 2, file: '/x' });
  assert.equal(await value(m, 'wharf_config_generation'), 2);
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'ShopPool' }), undefined);
  assert.equal(await value(m, 'wharf_apppool_worker_processes', { pool: 'ShopPool' }), undefined);
  assert.equal(await value(m, 'wharf_request_queue_length', { pool: 'DefaultAppPool' }), 0);
});

test('Accept negotiation: OpenMetrics only when the scraper ranks it at least as high as text/plain', () => {
  assert.equal(negotiate(undefined), 'prometheus');
  assert.equal(negotiate('*/*'), 'prometheus');
  assert.equal(negotiate('text/plain'), 'prometheus');
  // What Prometheus 2.x/3.x sends.
  assert.equal(negotiate('application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.1'), 'openmetrics');
  assert.equal(negotiate('application/openmetrics-text; version=1.0.0'), 'openmetrics');
  assert.equal(negotiate('text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5'), 'prometheus');
  assert.equal(negotiate('application/openmetrics-text;q=0'), 'prometheus');
});

test('both expositions: OpenMetrics names counter families without _total and ends with # EOF; the Prometheus text keeps _total after it', async (t) => {
  const m = subscribed(t);
  events.requestEnd.publish(end());
  const open = await exposition(m.registry, 'openmetrics');
  assert.match(open, /^# TYPE wharf_http_requests counter$/m);
  assert.match(open, /^wharf_http_requests_total\{site="Default Web Site",method="GET",code="200"\} 1$/m);
  assert.match(open, /^# TYPE wharf_http_request_duration_seconds histogram$/m);
  assert.ok(open.endsWith('# EOF\n'));
  const text = await exposition(m.registry, 'prometheus');
  assert.match(text, /^# TYPE wharf_http_requests_total counter$/m);
  assert.match(text, /^wharf_http_requests_total\{site="Default Web Site",method="GET",code="200"\} 1$/m);
  assert.doesNotMatch(text, /# EOF/);
});

test('promtool check metrics finds nothing to fix in the Prometheus text, default metrics included', async (t) => {
  if (!needs(t, tool('promtool', 'prometheus'))) return;
  const m = new WharfMetrics({ catalogue: catalogue().get });
  m.subscribe();
  t.after(() => m.unsubscribe());
  events.requestEnd.publish(end());
  events.queueReject.publish({ key: {}, poolName: 'DefaultAppPool', reason: 'QueueFull' });
  events.poolRecycle.publish({ poolName: 'DefaultAppPool', pid: 1, reason: 'time' });
  events.workerStart.publish({ poolName: 'DefaultAppPool', pid: process.pid, fromSpare: false });
  events.workerExit.publish({ poolName: 'DefaultAppPool', pid: 999_993, code: 1, signal: null, reason: 'crash', failure: true });
  const text = await m.text();
  assert.match(text, /^process_cpu_seconds_total /m, 'the main process\'s own metrics are there');
  assert.match(text, /^wharf_worker_process_cpu_seconds_total\{pool="DefaultAppPool",pid="\d+"\} /m);
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.stdout + r.stderr, '', 'promtool has nothing to say');
  assert.equal(r.status, 0);
});

test('requests alternating sites, verbs and statuses each count in their own series (the per-site cell cache)', async (t) => {
  const m = subscribed(t);
  const sequence: Array<Partial<events.RequestEndEvent>> = [
    { method: 'GET', status: 200 },
    { method: 'GET', status: 200 },
    { method: 'POST', status: 200 },
    { method: 'GET', status: 404 },
    { method: 'GET', status: 200 },
    { method: 'BREW', status: 405 },
    { method: 'MAKE', status: 405 },
    { method: 'GET', status: 200, siteName: 'Shop', siteId: 2 },
    { method: 'GET', status: 200 },
  ];
  for (const e of sequence) events.requestEnd.publish(end(e));
  const series = async (site: string, method: string, code: number) => value(m, 'wharf_http_requests_total', { site, method, code });
  assert.equal(await series('Default Web Site', 'GET', 200), 4);
  assert.equal(await series('Default Web Site', 'POST', 200), 1);
  assert.equal(await series('Default Web Site', 'GET', 404), 1);
  assert.equal(await series('Default Web Site', 'OTHER', 405), 2, 'unknown verbs share OTHER');
  assert.equal(await series('Shop', 'GET', 200), 1);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_count', { site: 'Default Web Site' }), 8);
  assert.equal(await value(m, 'wharf_http_request_duration_seconds_count', { site: 'Shop' }), 1);
});
