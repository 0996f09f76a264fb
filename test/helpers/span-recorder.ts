/**
 * A SpanRecorder for unit tests: every finished, sampled span is handed at once (no batching) to an
 * in-memory exporter, as the SDK's ReadableSpan, so a test reads it with getFinishedSpans().
 */
import type { InMemorySpanExporter, Sampler } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SpanRecorder } from '../../src/tracing/recorder.js';
import { toReadableSpan } from '../../src/tracing/span-record.js';

const resource = resourceFromAttributes({ 'service.name': 'test' });

export function recorderFor(exporter: InMemorySpanExporter, sampler: Sampler): SpanRecorder {
  return new SpanRecorder({ sampler, onEnd: (span) => exporter.export([toReadableSpan(span, resource, { name: 'test' })], () => undefined) });
}
