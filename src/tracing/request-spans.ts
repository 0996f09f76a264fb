/**
 * The main process's spans: one SERVER span per request the listener received, and a child span
 * for the time it waited in its pool's queue. A subscriber of the listener's events
 * (src/diagnostics.ts); loaded only when tracing is on (src/tracing/otel-env.ts).
 *
 * The request span follows the OpenTelemetry HTTP server conventions (semconv 1.x "HTTP spans"):
 * name `{method}` (Wharf knows no route template: a URL maps to files and handlers, not routes),
 * http.request.method, url.path, url.query, server.address, server.port, client.address,
 * client.port, http.response.status_code, error.type and an error status for 5xx only (a 4xx is the
 * client's problem, §"Status"). Wharf's own attributes carry what IIS logs beside the status
 * (sc-substatus, sc-win32-status), the site and the pool.
 *
 * The worker continues the trace: at dispatch this subscriber writes the request span's
 * `traceparent` into the event, and the listener sends it to the worker with the request head.
 */
import { performance } from 'node:perf_hooks';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
} from '@opentelemetry/semantic-conventions';
import {
  cacheHit,
  queueEnter,
  queueLeave,
  requestDispatch,
  requestEnd,
  requestStart,
  type CacheLookupEvent,
  type QueueEnterEvent,
  type QueueLeaveEvent,
  type RequestDispatchEvent,
  type RequestEndEvent,
  type RequestStartEvent,
} from '../diagnostics.js';
import type { SpanRecorder } from './recorder.js';
import { NO_ATTRIBUTES, type AttributeValue, type SpanRecord } from './span-record.js';
import { parseParent } from './trace-context.js';

/** The methods HTTP semconv names (RFC 9110 §9 plus PATCH, RFC 5789); others are `_OTHER`. */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE']);

/** Wharf's attribute names (the `wharf.` namespace, as semconv asks of vendor attributes). */
export const WHARF_ATTRIBUTES = {
  siteId: 'wharf.site.id',
  siteName: 'wharf.site.name',
  pool: 'wharf.app_pool',
  subStatus: 'wharf.response.sub_status',
  win32Status: 'wharf.response.win32_status',
  answeredBy: 'wharf.answered_by',
  workerPid: 'wharf.worker.pid',
  queueLength: 'wharf.queue.length',
  queueOutcome: 'wharf.queue.outcome',
  bytesSent: 'wharf.bytes_sent',
  bytesReceived: 'wharf.bytes_received',
  cache: 'wharf.response_cache',
} as const;

/** A request's span and what goes on it when it ends (written then, in one list). */
class RequestSpanState {
  readonly span: SpanRecord;
  readonly start: RequestStartEvent;
  queue: SpanRecord | undefined = undefined;
  pool = '';
  pid = 0;
  cacheHit = false;

  constructor(span: SpanRecord, start: RequestStartEvent) {
    this.span = span;
    this.start = start;
  }
}

/** `host[:port]` or `[v6]:port` → the host part, as server.address wants it. */
function hostOnly(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

export class RequestSpans {
  readonly #recorder: SpanRecorder;
  readonly #spans = new WeakMap<object, RequestSpanState>();
  #subscribed = false;

  constructor(recorder: SpanRecorder) {
    this.#recorder = recorder;
  }

  subscribe(): void {
    if (this.#subscribed) return;
    this.#subscribed = true;
    requestStart.subscribe(this.#onStart);
    queueEnter.subscribe(this.#onQueueEnter);
    queueLeave.subscribe(this.#onQueueLeave);
    requestDispatch.subscribe(this.#onDispatch);
    cacheHit.subscribe(this.#onCacheHit);
    requestEnd.subscribe(this.#onEnd);
  }

  unsubscribe(): void {
    if (!this.#subscribed) return;
    this.#subscribed = false;
    requestStart.unsubscribe(this.#onStart);
    queueEnter.unsubscribe(this.#onQueueEnter);
    queueLeave.unsubscribe(this.#onQueueLeave);
    requestDispatch.unsubscribe(this.#onDispatch);
    cacheHit.unsubscribe(this.#onCacheHit);
    requestEnd.unsubscribe(this.#onEnd);
  }

  readonly #onStart = (message: unknown): void => {
    const ev = message as RequestStartEvent;
    // A client's traceparent (and tracestate) makes this span its child (W3C Trace Context §2).
    const parent = parseParent(ev.traceparent, ev.tracestate ?? '');
    const span = this.#recorder.start(KNOWN_METHODS.has(ev.method) ? ev.method : 'HTTP', SpanKind.SERVER, ev.startedAt, parent, NO_ATTRIBUTES);
    this.#spans.set(ev.key, new RequestSpanState(span, ev));
  };

  readonly #onQueueEnter = (message: unknown): void => {
    const ev = message as QueueEnterEvent;
    const s = this.#spans.get(ev.key);
    if (s === undefined || s.queue !== undefined) return;
    s.queue = this.#recorder.start('queue', SpanKind.INTERNAL, performance.now(), s.span, [WHARF_ATTRIBUTES.pool, ev.poolName, WHARF_ATTRIBUTES.queueLength, ev.length]);
  };

  readonly #onQueueLeave = (message: unknown): void => {
    const ev = message as QueueLeaveEvent;
    const s = this.#spans.get(ev.key);
    if (s?.queue === undefined) return;
    s.queue.setAttribute(WHARF_ATTRIBUTES.queueOutcome, ev.outcome);
    // An expired or rejected wait is the request's failure (HTTP.sys drops it or answers 503).
    if (ev.outcome === 'expired' || ev.outcome === 'rejected') s.queue.setStatus(SpanStatusCode.ERROR, ev.outcome);
    this.#recorder.end(s.queue, performance.now());
    s.queue = undefined;
  };

  readonly #onDispatch = (message: unknown): void => {
    const ev = message as RequestDispatchEvent;
    const s = this.#spans.get(ev.key);
    if (s === undefined) return;
    s.pool = ev.poolName;
    s.pid = ev.pid;
    // A replay goes to another worker after the first died before answering (src/listener).
    if (ev.replay) s.span.addEvent('replayed', [WHARF_ATTRIBUTES.workerPid, ev.pid]);
    // Publishing is synchronous: the listener reads this back and gives it to the worker, whose
    // span becomes this span's child.
    ev.traceparent = s.span.traceparent();
  };

  readonly #onCacheHit = (message: unknown): void => {
    const s = this.#spans.get((message as CacheLookupEvent).key);
    if (s !== undefined) s.cacheHit = true;
  };

  readonly #onEnd = (message: unknown): void => {
    const ev = message as RequestEndEvent;
    const s = this.#spans.get(ev.key);
    if (s === undefined) return;
    this.#spans.delete(ev.key);
    const span = s.span;
    if (s.queue !== undefined) this.#recorder.end(s.queue, ev.endedAt);
    const st = s.start;
    const known = KNOWN_METHODS.has(st.method);
    const q = st.rawUrl.indexOf('?');
    // prettier-ignore
    const a: (string | AttributeValue)[] = [
      ATTR_HTTP_REQUEST_METHOD, known ? st.method : '_OTHER', ATTR_URL_PATH, q < 0 ? st.rawUrl : st.rawUrl.slice(0, q),
      ATTR_SERVER_PORT, st.localPort, ATTR_CLIENT_ADDRESS, st.clientIp, ATTR_CLIENT_PORT, st.clientPort,
      WHARF_ATTRIBUTES.answeredBy, ev.answeredBy, WHARF_ATTRIBUTES.bytesSent, ev.bytesSent, WHARF_ATTRIBUTES.bytesReceived, ev.bytesReceived,
    ];
    if (!known) a.push(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, st.method);
    if (q >= 0) a.push(ATTR_URL_QUERY, st.rawUrl.slice(q + 1));
    if (st.host !== '') a.push(ATTR_SERVER_ADDRESS, hostOnly(st.host));
    if (st.siteId !== 0) a.push(WHARF_ATTRIBUTES.siteId, st.siteId, WHARF_ATTRIBUTES.siteName, st.siteName);
    const pool = ev.poolName !== '' ? ev.poolName : s.pool;
    if (pool !== '') a.push(WHARF_ATTRIBUTES.pool, pool);
    if (s.pid !== 0) a.push(WHARF_ATTRIBUTES.workerPid, s.pid);
    if (s.cacheHit) a.push(WHARF_ATTRIBUTES.cache, 'hit');
    if (ev.status > 0) a.push(ATTR_HTTP_RESPONSE_STATUS_CODE, ev.status, WHARF_ATTRIBUTES.subStatus, ev.subStatus, WHARF_ATTRIBUTES.win32Status, ev.win32Status);
    span.setAttributes(a);
    if (ev.aborted) {
      // No complete response reached the client (reset, timer, dropped by HTTP.sys's rules).
      span.addAttribute(ATTR_ERROR_TYPE, 'aborted');
      span.setStatus(SpanStatusCode.ERROR, 'the connection closed before the response was complete');
    } else if (ev.status >= 500) {
      span.addAttribute(ATTR_ERROR_TYPE, String(ev.status));
      span.setStatus(SpanStatusCode.ERROR);
    }
    this.#recorder.end(span, ev.endedAt);
  };
}
