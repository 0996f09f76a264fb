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
import { SpanStatusCode } from '@opentelemetry/api';
import type { AttributeValue, SpanEventRecord, SpanRecord, TraceId } from './span-record.js';

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

  constructor(size: number, reuse?: Buffer) {
    this.buf = reuse !== undefined && reuse.length >= size ? reuse : Buffer.allocUnsafe(size);
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

  /**
   * Start a length-delimited field two bytes are kept for (a span: 128 bytes to 16 KiB almost
   * always), so that ending it moves nothing; endLong moves the content when it was shorter or
   * longer, and the bytes are the same as with begin/end.
   */
  beginLong(): number {
    this.ensure(2);
    const at = this.pos;
    this.pos += 2;
    return at;
  }

  endLong(at: number): void {
    const len = this.pos - at - 2;
    if (len >= 0x80 && len < 0x4000) {
      this.buf[at] = (len & 0x7f) | 0x80;
      this.buf[at + 1] = len >>> 7;
      return;
    }
    if (len < 0x80) {
      this.buf.copyWithin(at + 1, at + 2, this.pos);
      this.buf[at] = len;
      this.pos--;
      return;
    }
    // Longer: give back the second byte and let end() widen the prefix as it needs.
    this.buf.copyWithin(at + 1, at + 2, this.pos);
    this.pos--;
    this.end(at);
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

/**
 * A string field's whole encoding (tag, length, UTF-8), made once per distinct string: attribute
 * keys (KeyValue.key, field 1) and span names (Span.name, field 5) are Wharf's own, a few dozen
 * of each. Bounded all the same.
 */
function cachedField(cache: Map<string, Uint8Array>, tag: number, text: string): Uint8Array {
  let b = cache.get(text);
  if (b === undefined) {
    const w = new Writer(text.length * 3 + 8);
    w.byte(tag);
    w.string(text);
    b = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    if (cache.size < 4096) cache.set(text, b);
  }
  return b;
}
const KEYS = new Map<string, Uint8Array>();
const NAMES = new Map<string, Uint8Array>();

function attributes(w: Writer, field: number, flat: readonly (string | AttributeValue)[]): void {
  const tag = (field << 3) | 2;
  for (let i = 0; i < flat.length; i += 2) {
    const key = cachedField(KEYS, 0x0a, flat[i] as string);
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

// Consecutive spans mostly share a trace: its id's 16 bytes (with tag and length) are kept.
let lastTraceObject: TraceId | undefined;
const lastTrace = new Uint8Array(18);
lastTrace[0] = 0x0a;
lastTrace[1] = 16;

function putWord(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24;
  b[p + 1] = v >>> 16;
  b[p + 2] = v >>> 8;
  b[p + 3] = v;
}

/**
 * The end of a span whose only attributes are its static ones and whose status is unset, which is
 * every module span: attributes, dropped counts, status and flags, the same bytes each time.
 */
interface Tail {
  readonly flags: number;
  readonly bytes: Uint8Array;
}
const TAILS = new WeakMap<readonly (string | AttributeValue)[], Tail>();
function tailOf(flat: readonly (string | AttributeValue)[], flags: number): Uint8Array {
  const t = TAILS.get(flat);
  if (t !== undefined && t.flags === flags) return t.bytes;
  const w = new Writer(256);
  attributes(w, 9, flat);
  w.byte(0x50);
  w.byte(0);
  w.byte(0x60);
  w.byte(0);
  w.byte(0x70);
  w.byte(0);
  w.byte(0x7a);
  w.byte(2);
  w.byte(0x18);
  w.byte(SpanStatusCode.UNSET);
  w.byte(0x85);
  w.byte(0x01);
  w.fixed32(flags);
  const bytes = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
  TAILS.set(flat, { flags, bytes });
  return bytes;
}

function span(w: Writer, s: SpanRecord): void {
  if (s.trace !== lastTraceObject) {
    const t = s.trace;
    putWord(lastTrace, 2, t.w0);
    putWord(lastTrace, 6, t.w1);
    putWord(lastTrace, 10, t.w2);
    putWord(lastTrace, 14, t.w3);
    lastTraceObject = t;
  }
  const name = cachedField(NAMES, 0x2a, s.name);
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
  const flags = (s.traceFlags & 0xff) | HAS_IS_REMOTE | (s.parentIsRemote ? IS_REMOTE : 0);
  if (s.staticAttributes !== undefined) {
    if (s.attributes.length === 0 && s.events === undefined && s.statusCode === SpanStatusCode.UNSET && s.statusMessage === '') {
      w.raw(tailOf(s.staticAttributes, flags));
      return;
    }
    w.raw(staticAttributes(s.staticAttributes));
  }
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
  w.fixed32(flags);
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

/** Bytes a varint of `v` takes (v < 2^35). */
function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/**
 * Encodes batches for one process: its resource and scope are encoded once. A batch's spans are
 * written after room for the request's head (resource, scope, and the lengths of the two
 * messages around the spans), which is filled in when the batch is finished, so the request is
 * never copied; and the buffer of an exported batch is used again for a later one, so a process
 * exporting thousands of spans a second does not make the garbage collector free a large buffer
 * every export.
 */
export class OtlpTraceEncoder {
  readonly #head: Uint8Array;
  readonly #scope: Uint8Array;
  /** ResourceSpans.schema_url (field 3), after the scope spans; empty when the resource has none. */
  readonly #schemaField: Uint8Array;
  /** Room kept before the spans: the head and scope, two tags, two lengths of up to five bytes. */
  readonly #room: number;
  #size = 64 * 1024;
  readonly #free: Buffer[] = [];

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
    this.#head = Uint8Array.prototype.slice.call(w.buf, 0, w.pos);
    // ScopeSpans.scope (field 1).
    const sw = new Writer(256);
    sw.byte(0x0a);
    const at = sw.begin();
    sw.byte(0x0a);
    sw.string(scope.name);
    if (scope.version !== undefined && scope.version !== '') {
      sw.byte(0x12);
      sw.string(scope.version);
    }
    sw.end(at);
    this.#scope = Uint8Array.prototype.slice.call(sw.buf, 0, sw.pos);
    const schemaUrl = resource.schemaUrl ?? '';
    const uw = new Writer(schemaUrl.length * 3 + 8);
    if (schemaUrl !== '') {
      uw.byte(0x1a);
      uw.string(schemaUrl);
    }
    this.#schemaField = Uint8Array.prototype.slice.call(uw.buf, 0, uw.pos);
    this.#room = 2 + 2 * 5 + this.#head.length + this.#scope.length;
  }

  /** A batch that spans are encoded into as they finish (the records become garbage at once). */
  batch(): ProtobufBatch {
    return new ProtobufBatch(new Writer(this.#room + this.#size, this.#free.pop()), this.#room, this);
  }

  /** One ExportTraceServiceRequest with these (finished) spans. */
  encode(spans: readonly SpanRecord[]): Uint8Array {
    const b = this.batch();
    for (const s of spans) b.add(s);
    return b.finish();
  }

  /**
   * The request around the spans written from `room` to w.pos: the schema field is appended, the
   * head written just before the spans; the request's bytes are returned in place.
   */
  wrap(w: Writer, room: number): Uint8Array {
    const spansLength = w.pos - room;
    w.raw(this.#schemaField);
    const scopeSpans = this.#scope.length + spansLength;
    const resourceSpans = this.#head.length + 1 + varintSize(scopeSpans) + scopeSpans + this.#schemaField.length;
    const start = room - (1 + varintSize(resourceSpans) + this.#head.length + 1 + varintSize(scopeSpans) + this.#scope.length);
    const b = w.buf;
    let p = start;
    b[p++] = 0x0a; // resource_spans
    p = putVarint(b, p, resourceSpans);
    b.set(this.#head, p);
    p += this.#head.length;
    b[p++] = 0x12; // scope_spans
    p = putVarint(b, p, scopeSpans);
    b.set(this.#scope, p);
    // The next batch starts with room for what this one needed and a quarter more (growing a
    // 100 KiB buffer by doubling, for the last few spans, would copy it every batch).
    this.#size = Math.max(this.#size, Math.ceil(spansLength * 1.25));
    return b.subarray(start, w.pos);
  }

  /** A batch's buffer is free again (its export finished); a spare or two are kept. */
  release(buf: Buffer): void {
    if (this.#free.length < 2 && buf.length >= this.#room + this.#size) this.#free.push(buf);
  }
}

function putVarint(b: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    b[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  b[p++] = v;
  return p;
}

export class ProtobufBatch {
  readonly #w: Writer;
  readonly #room: number;
  readonly #encoder: OtlpTraceEncoder;
  #count = 0;
  #finished = false;

  constructor(w: Writer, room: number, encoder: OtlpTraceEncoder) {
    this.#w = w;
    this.#room = room;
    this.#encoder = encoder;
    w.pos = room;
  }

  get count(): number {
    return this.#count;
  }

  add(s: SpanRecord): void {
    const w = this.#w;
    w.byte(0x12); // ScopeSpans.spans
    const at = w.beginLong();
    span(w, s);
    w.endLong(at);
    this.#count++;
  }

  /** The whole ExportTraceServiceRequest, in this batch's buffer (valid until release). */
  finish(): Uint8Array {
    if (this.#finished) throw new Error('ProtobufBatch.finish called twice');
    this.#finished = true;
    return this.#encoder.wrap(this.#w, this.#room);
  }

  /** The export of finish()'s bytes is over: the buffer may be written again. */
  release(): void {
    this.#encoder.release(this.#w.buf);
  }
}
