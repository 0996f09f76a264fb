import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { OtlpTraceEncoder } from './otlp-protobuf.js';
import { randomBytes } from 'node:crypto';
import { hrTimeOf, newTraceId, SpanRecord, toReadableSpan, type ParentRef } from './span-record.js';

const resource = defaultResource().merge(resourceFromAttributes({ 'service.name': 'wharf-test', 'wharf.process.role': 'worker', 'deployment.size': 3 }));
const scope = { name: 'wharf', version: '1.2.3' };

function finished(r: SpanRecord, end: number): SpanRecord {
  r.end = end;
  return r;
}

/** Spans of every shape Wharf makes, and a few it does not (long, non-ASCII, numbers of each kind). */
function sample(): SpanRecord[] {
  const t = performance.now();
  const remote: ParentRef = { traceId: newTraceId(), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.SAMPLED, traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', isRemote: true };
  const server = new SpanRecord(remote.traceId, remote, TraceFlags.SAMPLED, remote.traceState, 'GET', SpanKind.SERVER, t, [
    'http.request.method', 'GET', 'url.path', '/caf\u00e9/\u{1F600}.html', 'server.port', 8080, 'client.address', '192.0.2.1',
  ]);
  server.setAttribute('http.response.status_code', 503);
  server.setAttribute('wharf.ratio', 0.25);
  server.setAttribute('wharf.negative', -42);
  server.setAttribute('wharf.flag', true);
  server.setAttribute('wharf.long', 'x'.repeat(200));
  server.setAttribute('wharf.longer', 'y'.repeat(20000));
  server.addEvent('replayed', ['wharf.worker.pid', 4242], t + 0.5);
  server.setStatus(SpanStatusCode.ERROR, 'the connection closed before the response was complete');
  const root = new SpanRecord(newTraceId(), undefined, TraceFlags.SAMPLED, '', 'worker', SpanKind.INTERNAL, t + 0.0001, ['wharf.worker.pid', 777]);
  const child = new SpanRecord(root.traceId, root, root.traceFlags, '', 'StaticFileModule ExecuteRequestHandler', SpanKind.INTERNAL, t + 1.234567, []);
  child.addEvent('status set', ['http.response.status_code', 404, 'wharf.reason', ''], t + 2);
  child.setStatus(SpanStatusCode.OK);
  return [finished(server, t + 3.000001), finished(root, t + 2.5), finished(child, t + 2.25)];
}

describe('OTLP/protobuf encoder', () => {
  it('writes exactly the bytes of the official ProtobufTraceSerializer', () => {
    const spans = sample();
    const ours = new OtlpTraceEncoder(resource, scope).encode(spans);
    const official = ProtobufTraceSerializer.serializeRequest(spans.map((s) => toReadableSpan(s, resource, scope)));
    assert.ok(official);
    assert.equal(Buffer.from(ours).toString('hex'), Buffer.from(official).toString('hex'));
  });

  it('a batch of 600 spans (buffers grow, lengths take several bytes) still matches', () => {
    const spans: SpanRecord[] = [];
    for (let i = 0; i < 200; i++) spans.push(...sample());
    const encoder = new OtlpTraceEncoder(resource, scope);
    const official = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => toReadableSpan(s, resource, scope)))!);
    assert.ok(official.length > 2 ** 21, 'large enough for a 4-byte length');
    assert.ok(Buffer.from(encoder.encode(spans)).equals(official));
    // The encoder's next buffer starts at this size; a small batch after a large one is still right.
    const one = sample().slice(0, 1);
    assert.ok(Buffer.from(encoder.encode(one)).equals(Buffer.from(ProtobufTraceSerializer.serializeRequest(one.map((s) => toReadableSpan(s, resource, scope)))!)));
  });

  it('times are unix nanoseconds, with the nanoseconds kept (a 19-digit number does not fit a double)', () => {
    const at = 1234.567891;
    const [s, ns] = hrTimeOf(at);
    assert.ok(Number.isInteger(ns) && ns >= 0 && ns < 1e9);
    const got = BigInt(s) * 1_000_000_000n + BigInt(ns);
    // timeOrigin + at, to within the microsecond timeOrigin itself is given to.
    const want = BigInt(Math.round(performance.timeOrigin * 1000)) * 1000n + BigInt(Math.round(at * 1e6));
    const diff = got > want ? got - want : want - got;
    assert.ok(diff < 1000n, `${got} vs ${want}`);
    // And the sub-microsecond part of `at` survives: 891 ns.
    assert.equal((got - BigInt(hrTimeOf(1234.567)[0]) * 1_000_000_000n - BigInt(hrTimeOf(1234.567)[1])), 891n);
});
});
