/**
 * Starts and ends Wharf's spans (src/tracing/span-record.ts): ids, the sampling decision, the
 * attribute value length limit, and the hand-over of finished, sampled spans to the batcher.
 *
 * Sampling is the configured OpenTelemetry sampler's (OTEL_TRACES_SAMPLER, built in otel-sdk.ts),
 * asked once per span whose parent is not in this process: the request span in the main process
 * (its parent is the client's traceparent, or none) and the worker span (its parent is the main
 * process's span). Spans beneath them in the same process take their parent's decision, which is
 * what each sampler the variable can name decides for them: parent-based ones follow the parent,
 * always_on/always_off do not vary, and traceidratio decides by the trace id, which they share.
 */
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace as otelTrace, type Attributes } from '@opentelemetry/api';
import { SamplingDecision, type Sampler } from '@opentelemetry/sdk-trace-base';
import { newTraceId, SpanRecord, spanIdHex, type AttributeValue, type ParentRef } from './span-record.js';

export interface SpanRecorderOptions {
  readonly sampler: Sampler;
  /**
   * The sampler's decision when it is fixed by the parent alone (always_on, always_off and their
   * parentbased_ forms, by the specification's definitions), so that the sampler need not be
   * asked with a context built for it; undefined for a sampler that must be asked (traceidratio).
   */
  readonly fixedDecision?: (parent: ParentRef | undefined) => boolean;
  /** Finished, sampled spans go here (the batcher). */
  readonly onEnd: (span: SpanRecord) => void;
  /** OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT (else OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT); Infinity when unset. */
  readonly valueLengthLimit?: number;
}

/** The samplers Wharf builds read no attributes; none are built for them. */
const SAMPLER_ATTRIBUTES: Attributes = Object.freeze({});

export class SpanRecorder {
  readonly #sampler: Sampler;
  readonly #fixed: ((parent: ParentRef | undefined) => boolean) | undefined;
  readonly #onEnd: (span: SpanRecord) => void;
  readonly #limit: number;

  constructor(options: SpanRecorderOptions) {
    this.#sampler = options.sampler;
    this.#fixed = options.fixedDecision;
    this.#onEnd = options.onEnd;
    this.#limit = options.valueLengthLimit ?? Infinity;
  }

  /**
   * A span beneath `parent`: a span of this process (a SpanRecord), a remote parent (a parsed
   * traceparent), or none (a new trace). `attributes` is kept, not copied (span-record.ts NO_ATTRIBUTES for none).
   */
  start(name: string, kind: SpanKind, at: number, parent: ParentRef | undefined, attributes: readonly (string | AttributeValue)[]): SpanRecord {
    if (parent instanceof SpanRecord) {
      return new SpanRecord(parent.trace, parent, parent.traceFlags, parent.traceState, name, kind, at, attributes);
    }
    const trace = parent === undefined ? newTraceId() : parent.trace;
    if (this.#fixed !== undefined) {
      const flags = this.#fixed(parent) ? TraceFlags.SAMPLED : TraceFlags.NONE;
      return new SpanRecord(trace, parent, flags, parent === undefined ? '' : parent.traceState, name, kind, at, attributes);
    }
    const context =
      parent === undefined
        ? ROOT_CONTEXT
        : otelTrace.setSpanContext(ROOT_CONTEXT, { traceId: trace.hex, spanId: spanIdHex(parent.idHigh, parent.idLow), traceFlags: parent.traceFlags, isRemote: parent.isRemote });
    const result = this.#sampler.shouldSample(context, trace.hex, name, kind, SAMPLER_ATTRIBUTES, []);
    const flags = result.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE;
    const traceState = result.traceState !== undefined ? result.traceState.serialize() : parent === undefined ? '' : parent.traceState;
    const span = new SpanRecord(trace, parent, flags, traceState, name, kind, at, attributes);
    if (result.attributes !== undefined) {
      for (const [k, v] of Object.entries(result.attributes)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') span.addAttribute(k, v);
      }
    }
    return span;
  }

  /** End `span` at `at` (performance.now()); a sampled span goes to the exporter. Ending twice does nothing. */
  end(span: SpanRecord, at: number): void {
    if (!Number.isNaN(span.end)) return;
    span.end = at;
    if (!span.sampled) return;
    if (this.#limit !== Infinity) span.truncateValues(this.#limit);
    this.#onEnd(span);
  }
}
