import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, ParentBasedSampler, AlwaysOnSampler, AlwaysOffSampler, type Sampler } from '@opentelemetry/sdk-trace-base';
import { cacheHit, queueEnter, queueLeave, requestDispatch, requestEnd, requestStart, type RequestDispatchEvent, type RequestEndEvent, type RequestStartEvent } from '../diagnostics.js';
import { RequestSpans } from './request-spans.js';
import { recorderFor } from '../../test/helpers/span-recorder.js';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

function start(key: object, over: Partial<RequestStartEvent> = {}): RequestStartEvent {
  return {
    key,
    siteId: 3,
    siteName: 'Shop',
    method: 'GET',
    rawUrl: '/catalog/item.html?id=7',
    host: 'shop.example:8080',
    clientIp: '192.0.2.10',
    clientPort: 51000,
    localPort: 8080,
    traceparent: '',
    startedAt: performance.now(),
    ...over,
  };
}

function end(key: object, over: Partial<RequestEndEvent> = {}): RequestEndEvent {
  return {
    key,
    siteId: 3,
    siteName: 'Shop',
    poolName: 'ShopPool',
    method: 'GET',
    status: 200,
    subStatus: 0,
    win32Status: 0,
    bytesSent: 512,
    bytesReceived: 90,
    endedAt: performance.now(),
    durationMs: 1,
    answeredBy: 'worker',
    aborted: false,
    ...over,
  };
}

function dispatch(key: object): RequestDispatchEvent {
  const ev: RequestDispatchEvent = { key, poolName: 'ShopPool', pid: 4242, replay: false, dispatchedAt: performance.now(), traceparent: '' };
  requestDispatch.publish(ev);
  return ev;
}

describe('RequestSpans (main process)', () => {
  let exporter: InMemorySpanExporter;
  let spans: RequestSpans;

  function setUp(sampler: Sampler): void {
    exporter = new InMemorySpanExporter();
    spans = new RequestSpans(recorderFor(exporter, sampler));
    spans.subscribe();
  }
  beforeEach(() => setUp(new ParentBasedSampler({ root: new AlwaysOnSampler() })));
  afterEach(async () => {
    spans.unsubscribe();
    await exporter.shutdown();
  });

  it('a request answered by a worker: one SERVER span with the HTTP server attributes, its traceparent given to the worker', () => {
    const key = {};
    requestStart.publish(start(key));
    const ev = dispatch(key);
    requestEnd.publish(end(key));
    const [span] = exporter.getFinishedSpans();
    assert.ok(span);
    assert.equal(exporter.getFinishedSpans().length, 1);
    assert.equal(span.name, 'GET');
    assert.equal(span.kind, SpanKind.SERVER);
    assert.deepEqual(
      { ...span.attributes },
      {
        'http.request.method': 'GET',
        'url.path': '/catalog/item.html',
        'url.query': 'id=7',
        'server.address': 'shop.example',
        'server.port': 8080,
        'client.address': '192.0.2.10',
        'client.port': 51000,
        'wharf.site.id': 3,
        'wharf.site.name': 'Shop',
        'wharf.app_pool': 'ShopPool',
        'wharf.worker.pid': 4242,
        'wharf.answered_by': 'worker',
        'wharf.bytes_sent': 512,
        'wharf.bytes_received': 90,
        'http.response.status_code': 200,
        'wharf.response.sub_status': 0,
        'wharf.response.win32_status': 0,
      },
    );
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    const sc = span.spanContext();
    assert.equal(ev.traceparent, `00-${sc.traceId}-${sc.spanId}-01`);
    assert.equal(span.parentSpanContext, undefined, 'no client traceparent: a new trace');
  });

  it('continues the client\'s traceparent and tracestate (W3C Trace Context)', () => {
    const key = {};
    requestStart.publish(start(key, { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=abc' }));
    const ev = dispatch(key);
    requestEnd.publish(end(key));
    const [span] = exporter.getFinishedSpans();
    assert.equal(span!.spanContext().traceId, CLIENT_TRACE);
    assert.equal(span!.parentSpanContext?.spanId, CLIENT_SPAN);
    assert.equal(span!.spanContext().traceState?.get('vendor'), 'abc');
    assert.match(ev.traceparent, new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-01$`));
  });

  it('a malformed traceparent starts a new trace rather than failing', () => {
    const key = {};
    requestStart.publish(start(key, { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }));
    requestEnd.publish(end(key));
    const [span] = exporter.getFinishedSpans();
    assert.notEqual(span!.spanContext().traceId, '00000000000000000000000000000000');
    assert.equal(span!.parentSpanContext, undefined);
  });

  it('queueing is a child span with its pool, length and outcome', () => {
    const key = {};
    requestStart.publish(start(key));
    queueEnter.publish({ key, poolName: 'ShopPool', length: 2 });
    queueLeave.publish({ key, poolName: 'ShopPool', waitedMs: 5, outcome: 'dispatched', length: 1 });
    dispatch(key);
    requestEnd.publish(end(key));
    const finished = exporter.getFinishedSpans();
    const queue = finished.find((s) => s.name === 'queue');
    const server = finished.find((s) => s.name === 'GET');
    assert.ok(queue && server);
    assert.equal(queue.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.equal(queue.spanContext().traceId, server.spanContext().traceId);
    assert.deepEqual({ ...queue.attributes }, { 'wharf.app_pool': 'ShopPool', 'wharf.queue.length': 2, 'wharf.queue.outcome': 'dispatched' });
    assert.equal(queue.status.code, SpanStatusCode.UNSET);
  });

  it('an expired wait marks the queue span as an error; a request that ends while queued closes it', () => {
    const key = {};
    requestStart.publish(start(key));
    queueEnter.publish({ key, poolName: 'ShopPool', length: 1 });
    queueLeave.publish({ key, poolName: 'ShopPool', waitedMs: 120_000, outcome: 'expired', length: 0 });
    requestEnd.publish(end(key, { status: 0, aborted: true, answeredBy: 'listener' }));
    const queue = exporter.getFinishedSpans().find((s) => s.name === 'queue');
    assert.equal(queue?.status.code, SpanStatusCode.ERROR);

    const key2 = {};
    requestStart.publish(start(key2));
    queueEnter.publish({ key: key2, poolName: 'ShopPool', length: 1 });
    requestEnd.publish(end(key2, { status: 503, subStatus: 0, answeredBy: 'listener' }));
    assert.equal(exporter.getFinishedSpans().filter((s) => s.name === 'queue').length, 2);
  });

  it('5xx and aborted requests have an error status and error.type; 4xx do not', () => {
    const cases: [Partial<RequestEndEvent>, SpanStatusCode, string | undefined][] = [
      [{ status: 500, subStatus: 19, win32Status: 13 }, SpanStatusCode.ERROR, '500'],
      [{ status: 503, subStatus: 2 }, SpanStatusCode.ERROR, '503'],
      [{ status: 404, subStatus: 0, win32Status: 2 }, SpanStatusCode.UNSET, undefined],
      [{ status: 200, aborted: true }, SpanStatusCode.ERROR, 'aborted'],
    ];
    for (const [over] of cases) {
      const key = {};
      requestStart.publish(start(key));
      requestEnd.publish(end(key, over));
    }
    const finished = exporter.getFinishedSpans();
    assert.equal(finished.length, cases.length);
    cases.forEach(([over, code, type], i) => {
      assert.equal(finished[i]!.status.code, code, JSON.stringify(over));
      assert.equal(finished[i]!.attributes['error.type'], type);
    });
    assert.equal(finished[0]!.attributes['wharf.response.sub_status'], 19);
    assert.equal(finished[0]!.attributes['wharf.response.win32_status'], 13);
  });

  it('an unknown method is _OTHER with the original kept; a cache hit is marked', () => {
    const key = {};
    requestStart.publish(start(key, { method: 'PROPFIND', rawUrl: '/dav/' }));
    cacheHit.publish({ key, siteId: 3, cacheKey: 'k' });
    requestEnd.publish(end(key, { answeredBy: 'cache' }));
    const [span] = exporter.getFinishedSpans();
    assert.equal(span!.name, 'HTTP');
    assert.equal(span!.attributes['http.request.method'], '_OTHER');
    assert.equal(span!.attributes['http.request.method_original'], 'PROPFIND');
    assert.equal(span!.attributes['url.query'], undefined);
    assert.equal(span!.attributes['wharf.response_cache'], 'hit');
  });

  it('times come from the events: the span lasts from startedAt to endedAt', () => {
    const key = {};
    const t0 = performance.now() - 250;
    requestStart.publish(start(key, { startedAt: t0 }));
    requestEnd.publish(end(key, { endedAt: t0 + 200 }));
    const [span] = exporter.getFinishedSpans();
    const ms = span!.duration[0] * 1000 + span!.duration[1] / 1e6;
    assert.ok(Math.abs(ms - 200) < 1, `duration ${ms} ms`);
  });

  it('sampled out: the worker still gets the trace ids, flagged not sampled, and nothing is exported', async () => {
    spans.unsubscribe();
    await exporter.shutdown();
    setUp(new ParentBasedSampler({ root: new AlwaysOffSampler() }));
    const key = {};
    requestStart.publish(start(key));
    const ev = dispatch(key);
    requestEnd.publish(end(key));
    assert.equal(exporter.getFinishedSpans().length, 0);
    assert.match(ev.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('unsubscribed: the channels have no subscriber left', () => {
    spans.unsubscribe();
    for (const ch of [requestStart, requestDispatch, requestEnd, queueEnter, queueLeave, cacheHit]) assert.equal(ch.hasSubscribers, false, ch.name.toString());
    spans.subscribe();
  });
});
