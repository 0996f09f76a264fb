/**
 * One span as Wharf records it: plain fields, the times as performance.now() values, attributes
 * as a flat [key, value, …] list. A request makes about five of these (the listener's request span,
 * the worker span, one per module call); the OpenTelemetry SDK's Span objects cost several
 * microseconds each to make and as much again to serialise, which a hello request (~40 µs of CPU
 * in all) cannot afford (bench: `BENCH_ONLY=observability`). What stays the SDK's is everything an
 * operator configures: the sampler, the resource, the OTLP transports and their environment
 * variables (src/tracing/otel-sdk.ts).
 *
 * `toReadableSpan` gives the SDK's view of a record, for the exporters Wharf does not encode itself
 * (OTLP/JSON, gRPC) and for tests.
 */
import { performance } from 'node:perf_hooks';
import { SpanKind, SpanStatusCode, TraceFlags, type HrTime, type SpanContext } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { randomFillSync } from 'node:crypto';

export type AttributeValue = string | number | boolean;

export interface SpanEventRecord {
  readonly name: string;
  /** performance.now() */
  readonly time: number;
  readonly attributes: readonly (string | AttributeValue)[];
}

/** The parent a span continues: a remote one (a `traceparent`) or a span of this process. */
export interface ParentRef {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  /** The `tracestate` header's value, '' when none. */
  readonly traceState: string;
  readonly isRemote: boolean;
}

export class SpanRecord implements ParentRef {
  readonly traceId: string;
  /** The span id's high and low 32 bits (never both 0); spanId is their hex. */
  readonly idHigh: number;
  readonly idLow: number;
  /** The parent's id the same way; both 0 for a root span. */
  readonly parentHigh: number;
  readonly parentLow: number;
  readonly parentIsRemote: boolean;
  readonly traceFlags: number;
  readonly traceState: string;
  readonly isRemote = false;
  readonly name: string;
  readonly kind: SpanKind;
  /** performance.now() at start and end (end is NaN while the span is open). */
  readonly start: number;
  end = Number.NaN;
  /** [key, value, key, value, …]; a key appears once (setAttribute replaces). */
  readonly attributes: (string | AttributeValue)[];
  /**
   * Attributes shared by many spans and never changed (a module span's module and notification):
   * the same frozen list each time, which the OTLP encoder encodes once. Keys here are not repeated
   * in `attributes`.
   */
  staticAttributes: readonly (string | AttributeValue)[] | undefined = undefined;
  events: SpanEventRecord[] | undefined = undefined;
  statusCode: SpanStatusCode = SpanStatusCode.UNSET;
  statusMessage = '';

  constructor(
    traceId: string,
    parent: ParentRef | undefined,
    traceFlags: number,
    traceState: string,
    name: string,
    kind: SpanKind,
    start: number,
    attributes: (string | AttributeValue)[],
  ) {
    this.traceId = traceId;
    let high = randomUint32();
    let low = randomUint32();
    while (high === 0 && low === 0) {
      high = randomUint32();
      low = randomUint32();
    }
    this.idHigh = high;
    this.idLow = low;
    if (parent === undefined) {
      this.parentHigh = this.parentLow = 0;
    } else if (parent instanceof SpanRecord) {
      this.parentHigh = parent.idHigh;
      this.parentLow = parent.idLow;
    } else {
      // A remote parent's id, validated lower-case hex (trace-context.ts).
      this.parentHigh = parseInt(parent.spanId.slice(0, 8), 16);
      this.parentLow = parseInt(parent.spanId.slice(8, 16), 16);
    }
    this.parentIsRemote = parent !== undefined && parent.isRemote;
    this.traceFlags = traceFlags;
    this.traceState = traceState;
    this.name = name;
    this.kind = kind;
    this.start = start;
    this.attributes = attributes;
  }

  get spanId(): string {
    return hex8(this.idHigh) + hex8(this.idLow);
  }

  /** '' for a root span. */
  get parentSpanId(): string {
    return this.parentHigh === 0 && this.parentLow === 0 ? '' : hex8(this.parentHigh) + hex8(this.parentLow);
  }

  get sampled(): boolean {
    return (this.traceFlags & TraceFlags.SAMPLED) !== 0;
  }

  setAttribute(key: string, value: AttributeValue): void {
    const a = this.attributes;
    for (let i = 0; i < a.length; i += 2) {
      if (a[i] === key) {
        a[i + 1] = value;
        return;
      }
    }
    a.push(key, value);
  }

  /** Add an attribute the span cannot have yet (set once, when the span ends): no search for it. */
  addAttribute(key: string, value: AttributeValue): void {
    this.attributes.push(key, value);
  }

  addEvent(name: string, attributes: (string | AttributeValue)[], time: number = performance.now()): void {
    (this.events ??= []).push({ name, time, attributes });
  }

  setStatus(code: SpanStatusCode, message = ''): void {
    this.statusCode = code;
    this.statusMessage = message;
  }

  /** `00-<trace-id>-<span-id>-<flags>` (W3C Trace Context §3.2.2), what a child is given. */
  traceparent(): string {
    return `00-${this.traceId}-${hex8(this.idHigh)}${hex8(this.idLow)}-${this.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
  }
}

// Ids: random words from a pool refilled by the CSPRNG (W3C Trace Context §3.2.2.3 asks for random
// ids; one randomFillSync per 2048 words). A span id is two words, kept as numbers: the OTLP
// encoder writes their bytes, and only a span whose id leaves the process is turned into hex.
const POOL = new Uint32Array(2048);
let poolAt = POOL.length;

function randomUint32(): number {
  if (poolAt === POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  return POOL[poolAt++]!;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** A new trace id (32 lower-case hex digits, not all zero). */
export function newTraceId(): string {
  for (;;) {
    const a = randomUint32();
    const b = randomUint32();
    const c = randomUint32();
    const d = randomUint32();
    if ((a | b | c | d) !== 0) return hex8(a) + hex8(b) + hex8(c) + hex8(d);
  }
}

/** performance.timeOrigin as whole seconds and nanoseconds, for OTLP's unix-nanosecond times. */
const ORIGIN_SECONDS = Math.floor(performance.timeOrigin / 1000);
const ORIGIN_NANOS = Math.round((performance.timeOrigin - ORIGIN_SECONDS * 1000) * 1e6);

/** A performance.now() value as [unix seconds, nanoseconds], without losing the nanoseconds. */
export function hrTimeOf(perfNow: number): HrTime {
  const nanos = ORIGIN_NANOS + Math.round(perfNow * 1e6);
  const carry = Math.floor(nanos / 1e9);
  return [ORIGIN_SECONDS + carry, nanos - carry * 1e9];
}

function attributeObject(...lists: (readonly (string | AttributeValue)[] | undefined)[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const flat of lists) {
    if (flat === undefined) continue;
    for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1]!;
  }
  return out;
}

/** The SDK's ReadableSpan for a finished record (the OTLP/JSON and gRPC exporters take these). */
export function toReadableSpan(r: SpanRecord, resource: Resource, scope: { name: string; version?: string }): ReadableSpan {
  const state = r.traceState === '' ? undefined : new TraceState(r.traceState);
  const spanContext: SpanContext = { traceId: r.traceId, spanId: r.spanId, traceFlags: r.traceFlags, ...(state === undefined ? {} : { traceState: state }) };
  const parentSpanContext: SpanContext | undefined =
    r.parentSpanId === '' ? undefined : { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: r.traceFlags, isRemote: r.parentIsRemote, ...(state === undefined ? {} : { traceState: state }) };
  const startTime = hrTimeOf(r.start);
  const endTime = hrTimeOf(r.end);
  const durationNanos = Math.max(0, Math.round((r.end - r.start) * 1e6));
  return {
    name: r.name,
    kind: r.kind,
    spanContext: () => spanContext,
    parentSpanContext,
    startTime,
    endTime,
    status: r.statusMessage === '' ? { code: r.statusCode } : { code: r.statusCode, message: r.statusMessage },
    attributes: attributeObject(r.staticAttributes, r.attributes),
    links: [],
    events: (r.events ?? []).map((e) => ({ name: e.name, time: hrTimeOf(e.time), attributes: attributeObject(e.attributes), droppedAttributesCount: 0 })),
    duration: [Math.floor(durationNanos / 1e9), durationNanos % 1e9],
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

export { SpanKind, SpanStatusCode };
