/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) between Wharf's processes and the
 * hosted app: reading a `traceparent`/`tracestate` pair into a parent context, and writing a span's
 * `traceparent`. Loaded only with the SDK (by src/tracing/request-spans.ts and pipeline-spans.ts).
 */
import { ROOT_CONTEXT, type Context, type SpanContext } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const propagator = new W3CTraceContextPropagator();

interface Carrier {
  traceparent: string;
  tracestate: string;
}
const getter = {
  keys: (): string[] => ['traceparent', 'tracestate'],
  get: (c: Carrier, key: string): string | undefined => {
    const v = key === 'traceparent' ? c.traceparent : key === 'tracestate' ? c.tracestate : '';
    return v === '' ? undefined : v;
  },
};

/**
 * The remote parent a client (or the main process) named, or ROOT_CONTEXT when `traceparent` is
 * absent or malformed: the propagator validates version, ids and flags as §3.2 requires, and a
 * request with a bad header starts a new trace rather than failing.
 */
export function parentContext(traceparent: string, tracestate: string): Context {
  if (traceparent === '') return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, { traceparent, tracestate }, getter);
}

/** `00-<trace-id>-<parent-id>-<flags>` for a span (version 00, §3.2.2). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}
