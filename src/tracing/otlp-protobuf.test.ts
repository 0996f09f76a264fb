import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { OtlpTraceEncoder } from './otlp-protobuf.js';
import { randomBytes } from 'node:crypto';
import { hrTimeOf, newTraceId, SpanRecord, toReadableSpan } from './span-record.js';
import { parseParent } from './trace-context.js';

const resource = defaultResource().merge(resourceFromAttributes({ 'service.name': 'wharf-test', 'wharf.process.role': 'worker', 'deployment.size': 3 }));
const scope = { name: 'wharf', version: '1.2.3' };

function finished(r: SpanRecord, end: number): SpanRecord {
  r.end = end;
  return r;
}

/** Spans of every shape Wharf makes, and a few it does not (long, non-ASCII, numbers of each kind). */
function sample(): SpanRecord[] {
  const t = performance.now();
  const remote = parseParent(`00-${newTraceId().hex}-${randomBytes(8).toString('hex')}-01`, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')!;
  const server = new SpanRecord(remote.trace, remote, TraceFlags.SAMPLED, remote.traceState, 'GET', SpanKind.SERVER, t, [
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
  const child = new SpanRecord(root.trace, root, root.traceFlags, '', 'StaticFileModule ExecuteRequestHandler', SpanKind.INTERNAL, t + 1.234567, []);
  child.addEvent('status set', ['http.response.status_code', 404, 'wharf.reason', ''], t + 2);
  child.setStatus(SpanStatusCode.OK);
  // Module spans: static attributes only (the cached tail), and one that also has a status.
  const moduleAttributes = Object.freeze(['wharf.module', 'RequestFilteringModule', 'wharf.notification', 'BeginRequest']);
  const mod = new SpanRecord(root.trace, root, root.traceFlags, '', 'RequestFilteringModule BeginRequest', SpanKind.INTERNAL, t + 0.01, []);
  mod.staticAttributes = moduleAttributes;
  const failed = new SpanRecord(root.trace, root, root.traceFlags, '', 'RequestFilteringModule BeginRequest', SpanKind.INTERNAL, t + 0.02, []);
  failed.staticAttributes = moduleAttributes;
  failed.setStatus(SpanStatusCode.ERROR);
  // Under 128 bytes: its length takes one byte.
  const tiny = new SpanRecord(root.trace, undefined, TraceFlags.SAMPLED, '', 'x', SpanKind.INTERNAL, t, []);
  return [finished(server, t + 3.000001), finished(root, t + 2.5), finished(child, t + 2.25), finished(mod, t + 0.015), finished(failed, t + 0.03), finished(tiny, t + 0.001)];
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

  it('a batch\'s buffer, once released after its export, takes the next batch, which is exact too', () => {
    const encoder = new OtlpTraceEncoder(resource, scope);
    const serialize = (spans: SpanRecord[]): Buffer => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => toReadableSpan(s, resource, scope)))!);
    const firstSpans = sample();
    const first = encoder.batch();
    for (const s of firstSpans) first.add(s);
    const firstBytes = first.finish();
    assert.ok(Buffer.from(firstBytes).equals(serialize(firstSpans)));
    first.release();
    const secondSpans = sample().slice(1);
    const second = encoder.batch();
    for (const s of secondSpans) second.add(s);
    const secondBytes = second.finish();
    assert.equal(secondBytes.buffer, firstBytes.buffer, 'the same memory');
    assert.ok(Buffer.from(secondBytes).equals(serialize(secondSpans)));
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
