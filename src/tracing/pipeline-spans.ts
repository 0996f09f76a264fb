/**
 * A worker's spans: one "worker" span per request the pipeline ran, the child of the main process's
 * request span, and one span per module call (module × notification) beneath it. A subscriber of
 * the pipeline's events (src/diagnostics.ts); loaded only when tracing is on (otel-env.ts).
 *
 * The worker exports its own spans (docs/architecture.md, "OpenTelemetry"): the span ids the hosted
 * app must see are made here, synchronously, when the pipeline starts, and the app's request
 * carries this worker span's `traceparent` in place of the client's, so the app's own
 * instrumentation hangs its spans under the worker span, in the same trace.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_URL_PATH } from '@opentelemetry/semantic-conventions';
import {
  handlerChanged,
  moduleEnd,
  moduleStart,
  pipelineEnd,
  pipelineStart,
  statusSet,
  type HandlerChangedEvent,
  type ModuleEvent,
  type PipelineRequestEndEvent,
  type PipelineRequestEvent,
  type StatusSetEvent,
} from '../diagnostics.js';
import type { SpanRecorder } from './recorder.js';
import { NO_ATTRIBUTES, type AttributeValue, type SpanRecord } from './span-record.js';
import { parseParent } from './trace-context.js';
import { WHARF_ATTRIBUTES } from './request-spans.js';

/** The request a pipeline event's key leads to: a WorkerContext's, or the request itself (a request whose configuration failed). */
interface KeyedRequest {
  readonly rawHeaders: readonly string[];
  setHeader(name: string, value: string): void;
}
function requestOf(key: object): KeyedRequest | undefined {
  const r = (key as { request?: KeyedRequest }).request ?? (key as KeyedRequest);
  return typeof r.setHeader === 'function' ? r : undefined;
}

/**
 * A header's value from a flat [name, value, …] list, repeats joined with ',' (RFC 9110 §5.3; W3C
 * Trace Context §3.3.1.1 for tracestate), '' when absent. Names of another length are passed over
 * without lower-casing them: this runs for every traced request.
 */
function rawHeader(raw: readonly string[], lowerName: string): string {
  let value = '';
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) value = value === '' ? raw[i + 1]! : `${value},${raw[i + 1]!}`;
  }
  return value;
}

/**
 * A request's worker span and what goes on it when it ends: its attributes are written once then,
 * in one list (growing a list as they arrive would copy it).
 */
class WorkerSpanState {
  readonly span: SpanRecord;
  /** Module spans open now, innermost last (a module may run a child request whose modules nest). */
  readonly modules: SpanRecord[] = [];
  readonly method: string;
  readonly path: string;
  readonly siteId: number;
  handler = '';

  constructor(span: SpanRecord, method: string, path: string, siteId: number) {
    this.span = span;
    this.method = method;
    this.path = path;
    this.siteId = siteId;
  }
}

/** The module a module span is for: its static attributes are [wharf.module, module, wharf.notification, notification]. */
function moduleOf(span: SpanRecord): unknown {
  return span.staticAttributes?.[1];
}

export const WORKER_ATTRIBUTES = {
  module: 'wharf.module',
  notification: 'wharf.notification',
  handler: 'wharf.handler',
  reason: 'wharf.reason',
} as const;

/** A module call's span name and attributes, made once per (module, notification) pair: a request makes several, the pairs are few. */
interface ModuleSpanShape {
  readonly name: string;
  readonly attributes: readonly string[];
}
const shapes = new Map<string, Map<string, ModuleSpanShape>>();
function moduleSpanShape(module: string, notification: string): ModuleSpanShape {
  let byNotification = shapes.get(module);
  if (byNotification === undefined) {
    byNotification = new Map();
    if (shapes.size < 256) shapes.set(module, byNotification);
  }
  let shape = byNotification.get(notification);
  if (shape === undefined) {
    shape = { name: `${module} ${notification}`, attributes: Object.freeze([WORKER_ATTRIBUTES.module, module, WORKER_ATTRIBUTES.notification, notification]) };
    if (byNotification.size < 64) byNotification.set(notification, shape);
  }
  return shape;
}

export class PipelineSpans {
  readonly #recorder: SpanRecorder;
  readonly #pid: number;
  readonly #spans = new WeakMap<object, WorkerSpanState>();
  // The request the last event was about: a request's module events come in runs, and this saves
  // the WeakMap lookup for all but the first of each run.
  #lastKey: object | undefined;
  #last: WorkerSpanState | undefined;
  #subscribed = false;

  constructor(recorder: SpanRecorder, options: { pid?: number } = {}) {
    this.#recorder = recorder;
    this.#pid = options.pid ?? process.pid;
  }

  subscribe(): void {
    if (this.#subscribed) return;
    this.#subscribed = true;
    pipelineStart.subscribe(this.#onStart);
    moduleStart.subscribe(this.#onModuleStart);
    moduleEnd.subscribe(this.#onModuleEnd);
    handlerChanged.subscribe(this.#onHandler);
    statusSet.subscribe(this.#onStatus);
    pipelineEnd.subscribe(this.#onEnd);
  }

  unsubscribe(): void {
    if (!this.#subscribed) return;
    this.#subscribed = false;
    pipelineStart.unsubscribe(this.#onStart);
    moduleStart.unsubscribe(this.#onModuleStart);
    moduleEnd.unsubscribe(this.#onModuleEnd);
    handlerChanged.unsubscribe(this.#onHandler);
    statusSet.unsubscribe(this.#onStatus);
    pipelineEnd.unsubscribe(this.#onEnd);
  }

  #state(key: object): WorkerSpanState | undefined {
    if (key === this.#lastKey) return this.#last;
    const s = this.#spans.get(key);
    this.#lastKey = key;
    this.#last = s;
    return s;
  }

  readonly #onStart = (message: unknown): void => {
    const ev = message as PipelineRequestEvent;
    const req = requestOf(ev.key);
    const raw = req === undefined ? [] : req.rawHeaders;
    // The main process's span is the parent (it continued the client's traceparent already); with
    // no main span (the main process does not trace) the client's header is.
    const parent = parseParent(ev.traceparent !== '' ? ev.traceparent : rawHeader(raw, 'traceparent'), rawHeader(raw, 'tracestate'));
    const q = ev.url.indexOf('?');
    const span = this.#recorder.start('worker', SpanKind.INTERNAL, ev.at, parent, NO_ATTRIBUTES);
    const state = new WorkerSpanState(span, ev.method, q < 0 ? ev.url : ev.url.slice(0, q), ev.siteId);
    this.#spans.set(ev.key, state);
    this.#lastKey = ev.key;
    this.#last = state;
    // What the hosted app (and any module reading the header) sees: this span as the parent. A
    // non-sampled span still passes its ids with flag 00, so the app keeps the trace's decision.
    req?.setHeader('traceparent', span.traceparent());
  };

  readonly #onModuleStart = (message: unknown): void => {
    const ev = message as ModuleEvent;
    const s = this.#state(ev.key);
    if (s === undefined) return;
    const parentSpan = s.modules.length === 0 ? s.span : s.modules[s.modules.length - 1]!;
    const shape = moduleSpanShape(ev.module, ev.notification);
    const span = this.#recorder.start(shape.name, SpanKind.INTERNAL, ev.at, parentSpan, NO_ATTRIBUTES);
    span.staticAttributes = shape.attributes;
    s.modules.push(span);
  };

  readonly #onModuleEnd = (message: unknown): void => {
    const ev = message as ModuleEvent;
    const s = this.#state(ev.key);
    if (s === undefined) return;
    // The innermost open call of this module; calls opened inside it and left open end with it.
    const open = s.modules;
    let i = open.length - 1;
    while (i >= 0 && moduleOf(open[i]!) !== ev.module) i--;
    if (i < 0) return;
    for (let j = open.length - 1; j >= i; j--) this.#recorder.end(open[j]!, ev.at);
    open.length = i;
  };

  readonly #onHandler = (message: unknown): void => {
    const ev = message as HandlerChangedEvent;
    const s = this.#state(ev.key);
    if (s !== undefined) s.handler = ev.newHandler;
  };

  readonly #onStatus = (message: unknown): void => {
    const ev = message as StatusSetEvent;
    // FREB's MODULE_SET_RESPONSE_ERROR_STATUS, as a span event where it happened. A success status
    // is on the worker span already (http.response.status_code); an event for it would repeat it.
    if (ev.status < 400) return;
    const s = this.#state(ev.key);
    if (s === undefined) return;
    const target = s.modules.length === 0 ? s.span : s.modules[s.modules.length - 1]!;
    const attributes: (string | AttributeValue)[] = [
      ATTR_HTTP_RESPONSE_STATUS_CODE,
      ev.status,
      WHARF_ATTRIBUTES.subStatus,
      ev.subStatus,
      WORKER_ATTRIBUTES.module,
      ev.module,
      WORKER_ATTRIBUTES.notification,
      ev.notification,
    ];
    if (ev.reason !== '') attributes.push(WORKER_ATTRIBUTES.reason, ev.reason);
    if (ev.errorCode !== 0) attributes.push(WHARF_ATTRIBUTES.win32Status, ev.errorCode);
    target.addEvent('status set', attributes);
  };

  readonly #onEnd = (message: unknown): void => {
    const ev = message as PipelineRequestEndEvent;
    const s = this.#state(ev.key);
    if (s === undefined) return;
    this.#spans.delete(ev.key);
    this.#lastKey = this.#last = undefined;
    for (let j = s.modules.length - 1; j >= 0; j--) this.#recorder.end(s.modules[j]!, ev.at);
    const span = s.span;
    // prettier-ignore
    const attributes: (string | AttributeValue)[] = s.handler === ''
      ? [ATTR_HTTP_REQUEST_METHOD, s.method, ATTR_URL_PATH, s.path, WHARF_ATTRIBUTES.siteId, s.siteId, WHARF_ATTRIBUTES.workerPid, this.#pid,
         ATTR_HTTP_RESPONSE_STATUS_CODE, ev.status, WHARF_ATTRIBUTES.subStatus, ev.subStatus, WHARF_ATTRIBUTES.bytesSent, ev.bytesSent]
      : [ATTR_HTTP_REQUEST_METHOD, s.method, ATTR_URL_PATH, s.path, WHARF_ATTRIBUTES.siteId, s.siteId, WHARF_ATTRIBUTES.workerPid, this.#pid,
         ATTR_HTTP_RESPONSE_STATUS_CODE, ev.status, WHARF_ATTRIBUTES.subStatus, ev.subStatus, WHARF_ATTRIBUTES.bytesSent, ev.bytesSent,
         WORKER_ATTRIBUTES.handler, s.handler];
    span.setAttributes(attributes);
    if (ev.status >= 500) {
      span.addAttribute(ATTR_ERROR_TYPE, String(ev.status));
      span.setStatus(SpanStatusCode.ERROR);
    }
    this.#recorder.end(span, ev.at);
  };
}
