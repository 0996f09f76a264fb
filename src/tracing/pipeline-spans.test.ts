import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanStatusCode } from '@opentelemetry/api';
import { AlwaysOnSampler, InMemorySpanExporter, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import { handlerChanged, moduleEnd, moduleStart, pipelineEnd, pipelineStart, statusSet } from '../diagnostics.js';
import type { RequestHeadMessage } from '../ipc/messages.js';
import { WorkerRequest } from '../worker/http-context.js';
import { PipelineSpans } from './pipeline-spans.js';
import { recorderFor } from '../../test/helpers/span-recorder.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const MAIN_SPAN = 'b7ad6b7169203331';

function head(over: Partial<RequestHeadMessage> = {}): RequestHeadMessage {
  return {
    method: 'GET',
    rawUrl: '/app/orders?id=1',
    path: '/app/orders',
    query: 'id=1',
    protocol: 'HTTP/1.1',
    siteId: 1,
    remoteAddress: '127.0.0.1',
    remotePort: 50000,
    localAddress: '127.0.0.1',
    localPort: 8080,
    contentLength: 0,
    rawHeaders: ['Host', 'localhost', 'traceparent', `00-${TRACE}-${CLIENT_SPAN}-01`, 'tracestate', 'vendor=abc'],
    traceparent: `00-${TRACE}-${MAIN_SPAN}-01`,
    ...over,
  };
}

describe('PipelineSpans (worker)', () => {
  let exporter: InMemorySpanExporter;
  let spans: PipelineSpans;
  beforeEach(() => {
    exporter = new InMemorySpanExporter();
    spans = new PipelineSpans(recorderFor(exporter, new ParentBasedSampler({ root: new AlwaysOnSampler() })), { pid: 777 });
    spans.subscribe();
  });
  afterEach(async () => {
    spans.unsubscribe();
    await exporter.shutdown();
  });

  /** A request as the pipeline runs it: the context-like key, the head's traceparent in the start event. */
  function begin(h = head()): { key: { request: WorkerRequest }; request: WorkerRequest } {
    const request = new WorkerRequest(h, undefined);
    const key = { request };
    pipelineStart.publish({ key, siteId: 1, method: 'GET', url: '/app/orders?id=1', traceparent: h.traceparent ?? '', at: performance.now() });
    return { key, request };
  }

  it('the worker span is the child of the main process\'s span; the app sees the worker span as its parent', () => {
    const { key, request } = begin();
    pipelineEnd.publish({ key, status: 200, subStatus: 0, bytesSent: 10, at: performance.now() });
    const [worker] = exporter.getFinishedSpans();
    assert.ok(worker);
    assert.equal(worker.name, 'worker');
    assert.equal(worker.spanContext().traceId, TRACE);
    assert.equal(worker.parentSpanContext?.spanId, MAIN_SPAN, 'parent: the main process span, not the client\'s');
    assert.equal(request.headers['traceparent'], `00-${TRACE}-${worker.spanContext().spanId}-01`);
    assert.equal(request.headers['tracestate'], 'vendor=abc', 'tracestate passes through');
    assert.equal(request.rawHeaders.filter((n) => n.toLowerCase() === 'traceparent').length, 1);
    assert.deepEqual(
      { ...worker.attributes },
      { 'http.request.method': 'GET', 'url.path': '/app/orders', 'wharf.site.id': 1, 'wharf.worker.pid': 777, 'http.response.status_code': 200, 'wharf.response.sub_status': 0, 'wharf.bytes_sent': 10 },
    );
  });

  it('module calls are children of the worker span, nested calls of the call that ran them', () => {
    const { key } = begin();
    const t = performance.now();
    moduleStart.publish({ key, module: 'UrlRewriteModule', notification: 'BeginRequest', at: t });
    moduleEnd.publish({ key, module: 'UrlRewriteModule', notification: 'BeginRequest', at: t + 1 });
    moduleStart.publish({ key, module: 'DefaultDocumentModule', notification: 'ExecuteRequestHandler', at: t + 2 });
    // A child request (default document) runs its own modules within the first.
    moduleStart.publish({ key, module: 'iisnode', notification: 'ExecuteRequestHandler', at: t + 3 });
    handlerChanged.publish({ key, oldHandler: '', newHandler: 'iisnode', modules: 'iisnode', scriptProcessor: '', type: '' });
    moduleEnd.publish({ key, module: 'iisnode', notification: 'ExecuteRequestHandler', at: t + 4 });
    moduleEnd.publish({ key, module: 'DefaultDocumentModule', notification: 'ExecuteRequestHandler', at: t + 5 });
    pipelineEnd.publish({ key, status: 200, subStatus: 0, bytesSent: 10, at: t + 6 });
    const byName = new Map(exporter.getFinishedSpans().map((s) => [s.name, s]));
    const worker = byName.get('worker')!;
    const rewrite = byName.get('UrlRewriteModule BeginRequest')!;
    const dd = byName.get('DefaultDocumentModule ExecuteRequestHandler')!;
    const node = byName.get('iisnode ExecuteRequestHandler')!;
    assert.equal(rewrite.parentSpanContext?.spanId, worker.spanContext().spanId);
    assert.equal(dd.parentSpanContext?.spanId, worker.spanContext().spanId);
    assert.equal(node.parentSpanContext?.spanId, dd.spanContext().spanId);
    assert.deepEqual({ ...rewrite.attributes }, { 'wharf.module': 'UrlRewriteModule', 'wharf.notification': 'BeginRequest' });
    assert.equal(worker.attributes['wharf.handler'], 'iisnode');
    for (const s of [rewrite, dd, node]) assert.equal(s.spanContext().traceId, TRACE);
  });

  it('a status set by a module is an event on its span; a 500 makes the worker span an error; modules left open end with the request', () => {
    const { key } = begin();
    moduleStart.publish({ key, module: 'StaticFileModule', notification: 'ExecuteRequestHandler', at: performance.now() });
    statusSet.publish({ key, module: 'StaticFileModule', notification: 'ExecuteRequestHandler', status: 500, subStatus: 0, reason: 'Internal Server Error', errorCode: 5, description: '' });
    pipelineEnd.publish({ key, status: 500, subStatus: 0, bytesSent: 0, at: performance.now() });
    const finished = exporter.getFinishedSpans();
    assert.equal(finished.length, 2);
    const mod = finished.find((s) => s.name.startsWith('StaticFileModule'))!;
    const worker = finished.find((s) => s.name === 'worker')!;
    assert.equal(mod.events[0]?.name, 'status set');
    assert.equal(mod.events[0]?.attributes?.['http.response.status_code'], 500);
    assert.equal(mod.events[0]?.attributes?.['wharf.response.win32_status'], 5);
    assert.equal(worker.status.code, SpanStatusCode.ERROR);
    assert.equal(worker.attributes['error.type'], '500');
  });

  it('without a traceparent from the main process the client\'s header is kept and continued', () => {
    const h = head({ traceparent: '' });
    const { key, request } = begin(h);
    pipelineEnd.publish({ key, status: 200, subStatus: 0, bytesSent: 0, at: performance.now() });
    const [worker] = exporter.getFinishedSpans();
    assert.equal(worker!.parentSpanContext?.spanId, CLIENT_SPAN);
    assert.equal(request.headers['traceparent'], `00-${TRACE}-${worker!.spanContext().spanId}-01`);
  });

  it('a request whose configuration failed (the request itself is the key) is traced too', () => {
    const h = head();
    const request = new WorkerRequest(h, undefined);
    pipelineStart.publish({ key: request, siteId: 1, method: 'GET', url: '/x', traceparent: h.traceparent ?? '', at: performance.now() });
    pipelineEnd.publish({ key: request, status: 500, subStatus: 19, bytesSent: 0, at: performance.now() });
    const [worker] = exporter.getFinishedSpans();
    assert.equal(worker!.attributes['wharf.response.sub_status'], 19);
    assert.equal(request.headers['traceparent'], `00-${TRACE}-${worker!.spanContext().spanId}-01`);
  });

});
