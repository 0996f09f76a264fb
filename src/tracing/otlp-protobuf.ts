/**
 * OTLP/protobuf encoding of Wharf's span records: an ExportTraceServiceRequest
 * (opentelemetry/proto/collector/trace/v1) with one ResourceSpans and one ScopeSpans, since each
 * process has one resource and one instrumentation scope.
 *
 * Why by hand: the official serializer takes the SDK's ReadableSpan (HrTime pairs, hex ids it
 * converts per span, attribute objects walked with for…in) and costs about 2.5 µs per span here;
 * a hello request makes five spans. This encoder writes the same bytes — field order, and
 * `src/tracing/otlp-protobuf.test.ts` checks it byte for byte against the official
 * ProtobufTraceSerializer — from plain records, with attribute keys encoded once per process.
 *
 * Field numbers (trace.proto, common.proto, resource.proto):
 *   ExportTraceServiceRequest.resource_spans 1 · ResourceSpans.resource 1, scope_spans 2 ·
 *   ScopeSpans.scope 1, spans 2 · Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
 *   name 5, kind 6, start 7, end 8, attributes 9, dropped_attributes_count 10, events 11,
 *   dropped_events_count 12, dropped_links_count 14, status 15, flags 16 ·
 *   Event: time 1, name 2, attributes 3, dropped 4 · Status: message 2, code 3 ·
 *   KeyValue: key 1, value 2 · AnyValue: string 1, bool 2, int 3, double 4.
 */
import { performance } from 'node:perf_hooks';
import type { Resource } from '@opentelemetry/resources';
import type { AttributeValue, SpanEventRecord, SpanRecord } from './span-record.js';

// performance.timeOrigin in unix nanoseconds, as the low and high 32 bits of a uint64 (seconds and
// nanoseconds apart first: the whole number has 19 digits, more than a double holds exactly).
const ORIGIN_SECONDS = Math.floor(performance.timeOrigin / 1000);
const ORIGIN_NANOS = Math.round((performance.timeOrigin - ORIGIN_SECONDS * 1000) * 1e6);
const [ORIGIN_LOW, ORIGIN_HIGH] = ((): [number, number] => {
  // seconds × 1e9 + nanos with every product below 2^53: seconds split at bit 16.
  const loPart = (ORIGIN_SECONDS % 0x10000) * 1e9;
  const hiPart = Math.floor(ORIGIN_SECONDS / 0x10000) * 1e9;
  const low = (loPart % 0x100000000) + (hiPart % 0x10000) * 0x10000 + ORIGIN_NANOS;
  const high = Math.floor(loPart / 0x100000000) + Math.floor(hiPart / 0x10000) + Math.floor(low / 0x100000000);
  return [low % 0x100000000, high];
})();

/** OTLP's span flags: the W3C trace flags, plus whether the parent was remote (trace.proto SpanFlags). */
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

/** A growable buffer with the protobuf primitives the encoder needs. */
class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.ensure(10);
    if (v < 0 || v > 0xffffffff) {
      // int64 as protobuf writes it: two's complement in 64 bits, 7 bits a byte.
      let big = BigInt.asUintN(64, BigInt(Math.trunc(v)));
      while (big > 0x7fn) {
        this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.buf[this.pos++] = Number(big);
      return;
    }
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** A performance.now() value as fixed64 unix nanoseconds: timeOrigin's nanoseconds plus the offset's, in 32-bit halves. */
  time(perfNow: number): void {
    const delta = Math.round(perfNow * 1e6); // below 2^53 for 285 years of uptime
    const deltaHigh = Math.floor(delta / 0x100000000);
    let low = ORIGIN_LOW + (delta - deltaHigh * 0x100000000);
    let high = ORIGIN_HIGH + deltaHigh;
    if (low >= 0x100000000) {
      low -= 0x100000000;
      high++;
    }
    this.ensure(8);
    const b = this.buf;
    let p = this.pos;
    b[p++] = low;
    b[p++] = low >>> 8;
    b[p++] = low >>> 16;
    b[p++] = low >>> 24;
    b[p++] = high;
    b[p++] = high >>> 8;
    b[p++] = high >>> 16;
    b[p++] = high >>> 24;
    this.pos = p;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** A length-prefixed UTF-8 string: ASCII under 128 characters copied in one pass, the rest through Buffer.write. */
  string(s: string): void {
    const n = s.length;
    if (n < 128) {
      this.ensure(n + 1);
      const b = this.buf;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        b[p++] = c;
      }
      if (i === n) {
        b[start] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** 8 or 16 id bytes from their lower-case hex (validated where the id came in). */
  hexBytes(hex: string): void {
    const n = hex.length >> 1;
    this.ensure(n + 1);
    const b = this.buf;
    let p = this.pos;
    b[p++] = n;
    for (let i = 0; i < hex.length; i += 2) b[p++] = (HEX[hex.charCodeAt(i)]! << 4) | HEX[hex.charCodeAt(i + 1)]!;
    this.pos = p;
  }

  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.ensure(n);
    if (n > 64) {
      this.buf.set(bytes, this.pos);
      this.pos += n;
      return;
    }
    // TypedArray#set costs more than this loop for the short pieces encoded here (keys, names).
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = bytes[i]!;
    this.pos = p;
  }

  /** Start a length-delimited field: one byte is kept for its length, which most fit in. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** End it: write the length, moving the content when the length needs more than one byte. */
  end(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const size = len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    this.ensure(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    this.pos += size - 1;
    let v = len;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

/** Hex digit values by character code ('0'-'9', 'a'-'f'; ids are lower-case by construction or validation). */
const HEX = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x61 + i] = 10 + i;

/** Attribute keys as KeyValue's field 1, encoded once. */
const KEYS = new Map<string, Uint8Array>();
function keyBytes(key: string): Uint8Array {
  let b = KEYS.get(key);
  if (b === undefined) {
    const w = new Writer(key.length * 3 + 8);
    w.byte(0x0a);
    w.string(key);
    b = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    if (KEYS.size < 4096) KEYS.set(key, b); // keys are Wharf's own, a few dozen; bounded all the same
  }
  return b;
}

function attributes(w: Writer, field: number, flat: readonly (string | AttributeValue)[]): void {
  const tag = (field << 3) | 2;
  for (let i = 0; i < flat.length; i += 2) {
    const key = keyBytes(flat[i] as string);
    const v = flat[i + 1]!;
    // Most attributes are a short key and a short ASCII string or a small non-negative integer:
    // written here in one go, every length one byte. Anything else takes the general path.
    if (typeof v === 'string' ? v.length < 100 && attributeFast(w, tag, key, v) : typeof v === 'number' && v >= 0 && v < 0x10000000 && Number.isInteger(v) && intFast(w, tag, key, v)) continue;
    w.byte(tag);
    const kv = w.begin();
    w.raw(key);
    w.byte(0x12);
    const any = w.begin();
    anyValue(w, v);
    w.end(any);
    w.end(kv);
  }
}

/** KeyValue{key, AnyValue{string_value}} when all of it is ASCII and under 128 bytes; false (nothing written) otherwise. */
function attributeFast(w: Writer, tag: number, key: Uint8Array, v: string): boolean {
  const n = v.length;
  const kvLen = key.length + 4 + n;
  if (kvLen > 0x7f) return false;
  w.ensure(kvLen + 2);
  const b = w.buf;
  let p = w.pos;
  b[p++] = tag;
  b[p++] = kvLen;
  for (let i = 0; i < key.length; i++) b[p++] = key[i]!;
  b[p++] = 0x12;
  b[p++] = n + 2;
  b[p++] = 0x0a;
  b[p++] = n;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c > 0x7f) return false; // w.pos unchanged: the general path writes it
    b[p++] = c;
  }
  w.pos = p;
  return true;
}

/** KeyValue{key, AnyValue{int_value}} for 0 ≤ v < 2^28 with a key under 100 bytes. */
function intFast(w: Writer, tag: number, key: Uint8Array, v: number): boolean {
  if (key.length > 100) return false;
  const size = v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : 4;
  w.ensure(key.length + size + 6);
  const b = w.buf;
  let p = w.pos;
  b[p++] = tag;
  b[p++] = key.length + size + 3;
  for (let i = 0; i < key.length; i++) b[p++] = key[i]!;
  b[p++] = 0x12;
  b[p++] = size + 1;
  b[p++] = 0x18;
  while (v > 0x7f) {
    b[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[p++] = v;
  w.pos = p;
  return true;
}

function anyValue(w: Writer, v: AttributeValue): void {
  if (typeof v === 'string') {
    w.byte(0x0a);
    w.string(v);
  } else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63) {
      w.byte(0x18);
      w.varint(v);
    } else {
      w.byte(0x21);
      w.double(v);
    }
  } else {
    w.byte(0x10);
    w.byte(v ? 1 : 0);
  }
}

function event(w: Writer, e: SpanEventRecord): void {
  w.byte(0x09);
  w.time(e.time);
  w.byte(0x12);
  w.string(e.name);
  attributes(w, 3, e.attributes);
  w.byte(0x20);
  w.byte(0);
}

/** The span names Wharf uses (methods, 'worker', '<module> <notification>'), as field 5, encoded once. */
const NAMES = new Map<string, Uint8Array>();
function nameBytes(name: string): Uint8Array {
  let b = NAMES.get(name);
  if (b === undefined) {
    const w = new Writer(name.length * 3 + 8);
    w.byte(0x2a);
    w.string(name);
    b = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    if (NAMES.size < 4096) NAMES.set(name, b);
  }
  return b;
}

/** Attribute lists that never change (a module span's module and notification), encoded once each. */
const STATIC = new WeakMap<readonly (string | AttributeValue)[], Uint8Array>();
function staticAttributes(flat: readonly (string | AttributeValue)[]): Uint8Array {
  let b = STATIC.get(flat);
  if (b === undefined) {
    const w = new Writer(256);
    attributes(w, 9, flat);
    b = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    STATIC.set(flat, b);
  }
  return b;
}

// Consecutive spans mostly share a trace: its id's 16 bytes (with their length) are kept.
let lastTraceHex = '';
const lastTrace = new Uint8Array(18);

function span(w: Writer, s: SpanRecord): void {
  if (s.traceId !== lastTraceHex) {
    const t = new Writer(18);
    t.byte(0x0a);
    t.hexBytes(s.traceId);
    lastTrace.set(t.buf.subarray(0, 18));
    lastTraceHex = s.traceId;
  }
  const name = nameBytes(s.name);
  // The fixed-size head in one go: trace id (18), span id (10), parent (10), name, kind (2), start
  // and end (18).
  w.ensure(58 + name.length);
  let b = w.buf;
  let p = w.pos;
  for (let i = 0; i < 18; i++) b[p++] = lastTrace[i]!;
  p = writeId(b, p, 0x12, s.idHigh, s.idLow);
  if (s.traceState !== '') {
    w.pos = p;
    w.byte(0x1a);
    w.string(s.traceState);
    w.ensure(38 + name.length);
    b = w.buf;
    p = w.pos;
  }
  if (s.parentHigh !== 0 || s.parentLow !== 0) p = writeId(b, p, 0x22, s.parentHigh, s.parentLow);
  for (let i = 0; i < name.length; i++) b[p++] = name[i]!;
  b[p++] = 0x30;
  b[p++] = s.kind + 1; // the API's SpanKind starts at INTERNAL = 0, OTLP's at UNSPECIFIED = 0
  b[p++] = 0x39;
  w.pos = p;
  w.time(s.start);
  w.byte(0x41);
  w.time(s.end);
  if (s.staticAttributes !== undefined) w.raw(staticAttributes(s.staticAttributes));
  attributes(w, 9, s.attributes);
  w.byte(0x50);
  w.byte(0);
  if (s.events !== undefined) {
    for (const e of s.events) {
      w.byte(0x5a);
      const at = w.begin();
      event(w, e);
      w.end(at);
    }
  }
  if (s.statusMessage === '' && s.statusCode < 0x80) {
    // dropped events 0, dropped links 0, status {code}, flags: field 16 as fixed32 (tag 0x85 0x01)
    w.ensure(16);
    b = w.buf;
    p = w.pos;
    b[p++] = 0x60;
    b[p++] = 0;
    b[p++] = 0x70;
    b[p++] = 0;
    b[p++] = 0x7a;
    b[p++] = 2;
    b[p++] = 0x18;
    b[p++] = s.statusCode;
    b[p++] = 0x85;
    b[p++] = 0x01;
    const flags = (s.traceFlags & 0xff) | HAS_IS_REMOTE | (s.parentIsRemote ? IS_REMOTE : 0);
    b[p++] = flags;
    b[p++] = flags >>> 8;
    b[p++] = 0;
    b[p++] = 0;
    w.pos = p;
    return;
  }
  w.byte(0x60);
  w.byte(0);
  w.byte(0x70);
  w.byte(0);
  w.byte(0x7a);
  const status = w.begin();
  if (s.statusMessage !== '') {
    w.byte(0x12);
    w.string(s.statusMessage);
  }
  w.byte(0x18);
  w.varint(s.statusCode);
  w.end(status);
  w.byte(0x85);
  w.byte(0x01);
  w.fixed32((s.traceFlags & 0xff) | HAS_IS_REMOTE | (s.parentIsRemote ? IS_REMOTE : 0));
}

/** A span id field (tag, length 8, the two words big-endian: the id's hex order) at `p`; the position after it. */
function writeId(b: Buffer, p: number, tag: number, high: number, low: number): number {
  b[p++] = tag;
  b[p++] = 8;
  b[p++] = high >>> 24;
  b[p++] = high >>> 16;
  b[p++] = high >>> 8;
  b[p++] = high;
  b[p++] = low >>> 24;
  b[p++] = low >>> 16;
  b[p++] = low >>> 8;
  b[p++] = low;
  return p;
}

/** Encodes batches for one process: its resource and scope are encoded once. */
export class OtlpTraceEncoder {
  readonly #head: Uint8Array;
  readonly #scope: Uint8Array;
  readonly #schemaUrl: string;
  #size = 64 * 1024;

  constructor(resource: Resource, scope: { name: string; version?: string }) {
    const w = new Writer(1024);
    // ResourceSpans.resource (field 1): Resource { attributes 1, dropped_attributes_count 2 }
    w.byte(0x0a);
    const r = w.begin();
    const flat: AttributeValue[] = [];
    for (const [k, v] of Object.entries(resource.attributes)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') flat.push(k, v);
    }
    attributes(w, 1, flat);
    w.byte(0x10);
    w.byte(0);
    w.end(r);
    // ResourceSpans.scope_spans (field 2) opens here; ScopeSpans.scope (field 1) follows in #scope.
    this.#head = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    const s = new Writer(256);
    s.byte(0x0a);
    const at = s.begin();
    s.byte(0x0a);
    s.string(scope.name);
    if (scope.version !== undefined && scope.version !== '') {
      s.byte(0x12);
      s.string(scope.version);
    }
    s.end(at);
    this.#scope = Uint8Array.prototype.slice.call(s.buf, 0, s.pos);
    this.#schemaUrl = resource.schemaUrl ?? '';
  }

  /**
   * A batch that spans are encoded into as they finish: the records themselves become garbage at
   * once (kept until a batch is full, hundreds of them per second would outlive the young
   * generation and make the garbage collector's old-space work grow with the request rate).
   */
  batch(): ProtobufBatch {
    return new ProtobufBatch(this.#size, (bytes) => this.#wrap(bytes));
  }

  /** One ExportTraceServiceRequest with these (finished) spans. */
  encode(spans: readonly SpanRecord[]): Uint8Array {
    const b = this.batch();
    for (const s of spans) b.add(s);
    return b.finish();
  }

  /** The request around the encoded spans (each already `spans` field 2 of ScopeSpans). */
  #wrap(spans: Uint8Array): Uint8Array {
    const w = new Writer(spans.length + this.#head.length + this.#scope.length + this.#schemaUrl.length * 3 + 32);
    w.byte(0x0a); // resource_spans
    const rs = w.begin();
    w.raw(this.#head);
    w.byte(0x12); // scope_spans
    const ss = w.begin();
    w.raw(this.#scope);
    w.raw(spans);
    w.end(ss);
    if (this.#schemaUrl !== '') {
      w.byte(0x1a); // ResourceSpans.schema_url
      w.string(this.#schemaUrl);
    }
    w.end(rs);
    // The next batch starts with room for what this one needed and a quarter more (growing a
    // 100 KiB buffer by doubling, for the last few spans, would copy it every batch).
    this.#size = Math.max(this.#size, Math.ceil(spans.length * 1.25));
    return w.buf.subarray(0, w.pos);
  }
}

export class ProtobufBatch {
  readonly #w: Writer;
  readonly #wrap: (spans: Uint8Array) => Uint8Array;
  #count = 0;

  constructor(size: number, wrap: (spans: Uint8Array) => Uint8Array) {
    this.#w = new Writer(size);
    this.#wrap = wrap;
  }

  get count(): number {
    return this.#count;
  }

  add(s: SpanRecord): void {
    const w = this.#w;
    w.byte(0x12); // ScopeSpans.spans
    const at = w.begin();
    span(w, s);
    w.end(at);
    this.#count++;
  }

  /** The whole ExportTraceServiceRequest. */
  finish(): Uint8Array {
    return this.#wrap(this.#w.buf.subarray(0, this.#w.pos));
  }
}
