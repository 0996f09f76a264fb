import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceParent } from '@opentelemetry/core';
import { spanIdHex } from './span-record.js';
import { parseParent, parseTraceparent } from './trace-context.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

/** Valid, malformed and borderline values (W3C Trace Context §3.2 and the official parser's edges). */
const CASES = [
  `00-${T}-${S}-01`,
  `00-${T}-${S}-00`,
  `00-${T}-${S}-ff`,
  `01-${T}-${S}-01`,
  `cc-${T}-${S}-01-what-the-future-will-be-like`,
  `00-${T}-${S}-01-extra`,
  `01-${T}-${S}-01-`,
  `01-${T}-${S}-01x`,
  `ff-${T}-${S}-01`,
  `fe-${T}-${S}-01`,
  `00-${'0'.repeat(32)}-${S}-01`,
  `00-${T}-${'0'.repeat(16)}-01`,
  `00-${T.toUpperCase()}-${S}-01`,
  `00-${T}-${S.toUpperCase()}-01`,
  `00-${T}-${S}-0`,
  `00-${T}-${S}01`,
  `00_${T}-${S}-01`,
  `0-${T}-${S}-01`,
  `00-${T.slice(1)}-${S}-01`,
  `00-${T}-${S}-0g`,
  `g0-${T}-${S}-01`,
  ` 00-${T}-${S}-01`,
  `00-${T}-${S}-01 `,
  ` 00-${T}-${S}-01 `,
  `  00-${T}-${S}-01`,
  `00-${T}-${S}-01  `,
  `\t00-${T}-${S}-01\n`,
  `\u00a000-${T}-${S}-01`,
  `01-${T}-${S}-01-a b\t`,
  `01-${T}-${S}-01-a\nb`,
  `01-${T}-${S}-01-a\n`,
  `01-${T}-${S}-01-a\n\n`,
  `01-${T}-${S}-01-\u00e9`,
  `00-${T}-${S}-01\u2028`,
  '',
  '00',
  `00-${T}-${S}`,
  `00-${T.slice(0, 31)}\u0661-${S}-01`,
];

describe('traceparent parsing', () => {
  it('accepts and rejects exactly what the official parser does, with the same ids and flags', () => {
    for (const value of CASES) {
      const official = parseTraceParent(value);
      const ours = parseTraceparent(value);
      if (official === null) {
        assert.equal(ours, undefined, JSON.stringify(value));
        continue;
      }
      assert.ok(ours, JSON.stringify(value));
      assert.equal(ours.trace.hex, official.traceId, JSON.stringify(value));
      assert.equal(spanIdHex(ours.idHigh, ours.idLow), official.spanId);
      assert.equal(ours.traceFlags, official.traceFlags);
    }
  });

  it('keeps tracestate only beside a valid traceparent, normalised', () => {
    assert.equal(parseParent(`00-${T}-${S}-01`, 'rojo=00f067aa0ba902b7, congo=t61rcWkgMzE')?.traceState, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
    assert.equal(parseParent(`00-${T}-${S}-01`, '')?.traceState, '');
    assert.equal(parseParent('garbage', 'rojo=1'), undefined);
    assert.equal(parseParent('', 'rojo=1'), undefined);
  });
});
