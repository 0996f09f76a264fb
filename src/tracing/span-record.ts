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

/**
 * Ids are kept as 32-bit words held as signed integers (`| 0`), which V8 stores in place; an
 * unsigned word of 2^31 or more would be a heap number, one allocation per id per span. Only their
 * bits matter: the encoder and the hex read them with unsigned shifts.
 *
 * A trace id as four such words, shared by every span of the trace in this process: the OTLP
 * encoder writes the words' bytes, compares traces by identity, and the hex is made once, only
 * for a trace whose id leaves the process (a traceparent header, the JSON exporters).
 */
export class TraceId {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  #hex: string | undefined;

  constructor(w0: number, w1: number, w2: number, w3: number, hex?: string) {
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.w3 = w3;
    this.#hex = hex;
  }

  /** 32 lower-case hex digits. */
  get hex(): string {
    return (this.#hex ??= hexOf(this.w0, this.w1, this.w2, this.w3, 0, 0, 4, ''));
  }
}

/** The parent a span continues: a remote one (a parsed `traceparent`) or a span of this process. */
export interface ParentRef {
  readonly trace: TraceId;
  /** The parent's span id as its high and low 32 bits. */
  readonly idHigh: number;
  readonly idLow: number;
  readonly traceFlags: number;
  /** The `tracestate` header's value, '' when none. */
  readonly traceState: string;
  readonly isRemote: boolean;
}

/** A span id's 16 hex digits. */
export function spanIdHex(high: number, low: number): string {
  return hexOf(high, low, 0, 0, 0, 0, 2, '');
}

/** The attributes of a span that has none yet: one shared, frozen list (SpanRecord.attributes). */
export const NO_ATTRIBUTES: readonly (string | AttributeValue)[] = Object.freeze([]);

export class SpanRecord implements ParentRef {
  readonly trace: TraceId;
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
  /**
   * [key, value, key, value, …]; a key appears once (setAttribute replaces). A span made without
   * any shares NO_ATTRIBUTES until its first (most module spans never have one).
   */
  attributes: readonly (string | AttributeValue)[];
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
    trace: TraceId,
    parent: ParentRef | undefined,
    traceFlags: number,
    traceState: string,
    name: string,
    kind: SpanKind,
    start: number,
    attributes: readonly (string | AttributeValue)[],
  ) {
    this.trace = trace;
    let high = randomWord();
    let low = randomWord();
    while (high === 0 && low === 0) {
      high = randomWord();
      low = randomWord();
    }
    this.idHigh = high;
    this.idLow = low;
    if (parent === undefined) {
      this.parentHigh = this.parentLow = 0;
      this.parentIsRemote = false;
    } else {
      this.parentHigh = parent.idHigh;
      this.parentLow = parent.idLow;
      this.parentIsRemote = parent.isRemote;
    }
    this.traceFlags = traceFlags;
    this.traceState = traceState;
    this.name = name;
    this.kind = kind;
    this.start = start;
    this.attributes = attributes;
  }

  get traceId(): string {
    return this.trace.hex;
  }

  get spanId(): string {
    return spanIdHex(this.idHigh, this.idLow);
  }

  /** '' for a root span. */
  get parentSpanId(): string {
    return this.parentHigh === 0 && this.parentLow === 0 ? '' : spanIdHex(this.parentHigh, this.parentLow);
  }

  get sampled(): boolean {
    return (this.traceFlags & TraceFlags.SAMPLED) !== 0;
  }

  setAttribute(key: string, value: AttributeValue): void {
    const a = this.attributes as (string | AttributeValue)[];
    if (a === NO_ATTRIBUTES) {
      this.attributes = [key, value];
      return;
    }
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
    if (this.attributes === NO_ATTRIBUTES) this.attributes = [key, value];
    else (this.attributes as (string | AttributeValue)[]).push(key, value);
  }

  /**
   * Give the span its attributes in one list, written when it ends (a list grown as they arrive is
   * copied each time it grows); any it had already (a sampler's, recorder.ts) are kept after them.
   */
  setAttributes(list: (string | AttributeValue)[]): void {
    const prior = this.attributes;
    this.attributes = list;
    for (let i = 0; i < prior.length; i += 2) list.push(prior[i]!, prior[i + 1]!);
  }

  /** Cut string values to `limit` characters (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT). */
  truncateValues(limit: number): void {
    const a = this.attributes as (string | AttributeValue)[];
    for (let i = 1; i < a.length; i += 2) {
      const v = a[i];
      if (typeof v === 'string' && v.length > limit) a[i] = v.slice(0, limit);
    }
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
    const t = this.trace;
    return hexOf(t.w0, t.w1, t.w2, t.w3, this.idHigh, this.idLow, 6, this.traceFlags & TraceFlags.SAMPLED ? '01' : '00');
  }
}

// Ids: random words from a pool refilled by the CSPRNG (W3C Trace Context §3.2.2.3 asks for random
// ids; one randomFillSync per 2048 words). Ids are kept as numbers: the OTLP encoder writes their
// bytes, and only an id that leaves the process is turned into hex.
const POOL = new Int32Array(2048);
let poolAt = POOL.length;

function randomWord(): number {
  if (poolAt === POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  return POOL[poolAt++]!;
}

// Hex is written as ASCII into one scratch buffer and read out as one string: a third of the cost
// of Number#toString(16) and padStart per word, which matters for the traceparent each request
// hands on.
const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
const SCRATCH = Buffer.alloc(64);
SCRATCH.write('00-', 0, 'latin1');

function putWord(p: number, n: number): number {
  const b = SCRATCH;
  for (let shift = 28; shift >= 0; shift -= 4) b[p++] = DIGITS[(n >>> shift) & 15]!;
  return p;
}

/**
 * The hex of `count` words: 2 (a span id: a, b), 4 (a trace id: a…d), or 6 (a whole traceparent,
 * `00-<a…d>-<e f>-<flags>`, flags given as its two digits).
 */
function hexOf(a: number, b: number, c: number, d: number, e: number, f: number, count: 2 | 4 | 6, flags: string): string {
  if (count === 2) return SCRATCH.toString('latin1', 3, putWord(putWord(3, a), b));
  let p = putWord(putWord(putWord(putWord(3, a), b), c), d);
  if (count === 4) return SCRATCH.toString('latin1', 3, p);
  SCRATCH[p++] = 0x2d;
  p = putWord(putWord(p, e), f);
  SCRATCH[p++] = 0x2d;
  SCRATCH[p++] = flags.charCodeAt(0);
  SCRATCH[p++] = flags.charCodeAt(1);
  return SCRATCH.toString('latin1', 0, p);
}

/** A new trace id (not all zero). */
export function newTraceId(): TraceId {
  for (;;) {
    const a = randomWord();
    const b = randomWord();
    const c = randomWord();
    const d = randomWord();
    if ((a | b | c | d) !== 0) return new TraceId(a, b, c, d);
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
