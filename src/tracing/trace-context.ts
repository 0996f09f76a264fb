/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) between Wharf's processes and the
 * hosted app: reading a `traceparent`/`tracestate` pair into the parent a span continues. Writing
 * one is SpanRecord.traceparent(). Loaded only with tracing on.
 */
import { TraceState } from '@opentelemetry/core';
import { TraceId, type ParentRef } from './span-record.js';

/** Hex digit values by character code, -1 for anything else: lower-case only (§3.2.2: "lowercase hex"). */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) HEX[0x61 + i] = 10 + i;

/** The 8 hex digits at `at` as a word, or -1 when one of them is not a lower-case hex digit. */
function word(s: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const c = s.charCodeAt(i);
    const d = c < 128 ? HEX[c]! : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0b || c === 0x0c || c === 0x0d || c === 0xa0 || c === 0xfeff || (c >= 0x2000 && c <= 0x200a) || c === 0x1680 || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/**
 * A `traceparent` value's parts, or undefined when it is malformed. Accepts exactly what the
 * official W3CTraceContextPropagator's parser accepts (a unit test compares the two): one optional
 * white-space character at either end, a two-digit version other than `ff`, a non-zero trace id
 * and span id, two flag digits, and for versions after 00 further `-`-separated data, which is
 * ignored (§3.2.4).
 * Written by hand because the official parser's regular expression and result object cost more
 * than the rest of a span.
 */
export function parseTraceparent(value: string): { trace: TraceId; idHigh: number; idLow: number; traceFlags: number } | undefined {
  let start = 0;
  let end = value.length;
  if (end > 0 && isSpace(value.charCodeAt(0))) start++;
  if (end > start && isSpace(value.charCodeAt(end - 1))) end--;
  const n = end - start;
  if (n < 55) return undefined;
  const s = start;
  const v0 = HEX[value.charCodeAt(s)] ?? -1;
  const v1 = HEX[value.charCodeAt(s + 1)] ?? -1;
  if (v0 < 0 || v1 < 0 || (v0 === 15 && v1 === 15)) return undefined;
  // A longer value must go on with '-' (the regex's `(-.*)?`, `.` stopping at line terminators),
  // and version 00 has nothing more (§3.2.4; the official parser rejects it too).
  if (n > 55) {
    if (v0 === 0 && v1 === 0) return undefined;
    if (value.charCodeAt(start + 55) !== 0x2d) return undefined;
    for (let i = start + 56; i < end; i++) {
      const c = value.charCodeAt(i);
      if (c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029) return undefined;
    }
  }
  if (value.charCodeAt(s + 2) !== 0x2d || value.charCodeAt(s + 35) !== 0x2d || value.charCodeAt(s + 52) !== 0x2d) return undefined;
  const w0 = word(value, s + 3);
  const w1 = word(value, s + 11);
  const w2 = word(value, s + 19);
  const w3 = word(value, s + 27);
  const idHigh = word(value, s + 36);
  const idLow = word(value, s + 44);
  const f0 = HEX[value.charCodeAt(s + 53)] ?? -1;
  const f1 = HEX[value.charCodeAt(s + 54)] ?? -1;
  if (w0 < 0 || w1 < 0 || w2 < 0 || w3 < 0 || idHigh < 0 || idLow < 0 || f0 < 0 || f1 < 0) return undefined;
  if ((w0 | w1 | w2 | w3) === 0 || (idHigh | idLow) === 0) return undefined;
  // Words as the signed integers span-record.ts keeps.
  return { trace: new TraceId(w0 | 0, w1 | 0, w2 | 0, w3 | 0, value.slice(s + 3, s + 35)), idHigh: idHigh | 0, idLow: idLow | 0, traceFlags: f0 * 16 + f1 };
}

/**
 * The remote parent a client (or the main process) named, or undefined when `traceparent` is
 * absent or malformed: a request with a bad header starts a new trace rather than failing.
 * `tracestate` is kept only with a valid traceparent (§3.3), normalised by the official TraceState
 * (bad members dropped, at most 32 kept).
 */
export function parseParent(traceparent: string, tracestate: string): ParentRef | undefined {
  if (traceparent === '') return undefined;
  const p = parseTraceparent(traceparent);
  if (p === undefined) return undefined;
  return { trace: p.trace, idHigh: p.idHigh, idLow: p.idLow, traceFlags: p.traceFlags, traceState: tracestate === '' ? '' : new TraceState(tracestate).serialize(), isRemote: true };
}
