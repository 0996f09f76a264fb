/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) between Wharf's processes and the
 * hosted app: reading a `traceparent`/`tracestate` pair into the parent a span continues. Writing
 * one is SpanRecord.traceparent(). Loaded only with tracing on.
 */
import { parseTraceParent, TraceState } from '@opentelemetry/core';
import type { ParentRef } from './span-record.js';

/**
 * The remote parent a client (or the main process) named, or undefined when `traceparent` is
 * absent or malformed: the official parser validates version, ids and flags as §3.2 requires, and
 * a request with a bad header starts a new trace rather than failing. `tracestate` is kept only
 * with a valid traceparent (§3.3), normalised by the official TraceState (bad members dropped,
 * at most 32 kept).
 */
export function parseParent(traceparent: string, tracestate: string): ParentRef | undefined {
  if (traceparent === '') return undefined;
  const p = parseTraceParent(traceparent);
  if (p === null) return undefined;
  return { traceId: p.traceId, spanId: p.spanId, traceFlags: p.traceFlags, traceState: tracestate === '' ? '' : new TraceState(tracestate).serialize(), isRemote: true };
}
