/**
 * From finished span records to the collector: a batcher that keeps the standard batch span
 * processor's settings and behaviour (OTEL_BSP_SCHEDULE_DELAY, _MAX_QUEUE_SIZE,
 * _MAX_EXPORT_BATCH_SIZE, _EXPORT_TIMEOUT; one export in flight; a full queue drops), and the
 * sinks it hands batches to:
 *   - OTLP/HTTP protobuf (the default protocol): encoded by src/tracing/otlp-protobuf.ts and sent by
 *     the official OTLP HTTP transport (@opentelemetry/otlp-exporter-base: endpoint, headers,
 *     timeout, compression, certificates and retries from the standard variables);
 *   - any official SpanExporter (OTLP/JSON, gRPC; tests' in-memory exporter), given the SDK's
 *     ReadableSpan view of each record.
 */
import { getNumberFromEnv, type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { Resource } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OtlpTraceEncoder, type ProtobufBatch } from './otlp-protobuf.js';
import { toReadableSpan, type SpanRecord } from './span-record.js';

/** Spans gathered for one export. */
export interface SpanBatch {
  readonly count: number;
  add(span: SpanRecord): void;
}

export interface SpanSink<B extends SpanBatch = SpanBatch> {
  newBatch(): B;
  /** Send one batch; resolves when the collector accepted it, rejects with why it did not. */
  export(batch: B): Promise<void>;
  shutdown(): Promise<void>;
}

export interface Scope {
  readonly name: string;
  readonly version?: string;
}

function settle(resolve: () => void, reject: (e: unknown) => void): (r: ExportResult) => void {
  return (r) => (r.code === ExportResultCode.SUCCESS ? resolve() : reject(r.error ?? new Error('the collector did not accept the spans')));
}

interface EncodedBatch {
  readonly bytes: Uint8Array;
  readonly count: number;
}

/** OTLP/HTTP protobuf: spans encoded by Wharf as they end, sent by the official transport. */
export function protobufSink(resource: Resource, scope: Scope): SpanSink<ProtobufBatch> {
  const encoder = new OtlpTraceEncoder(resource, scope);
  const delegate = createOtlpHttpExportDelegate<EncodedBatch, unknown>(
    convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' }),
    { serializeRequest: (b) => b.bytes, deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data) },
    'otlp_http_span_exporter',
    { name: 'span', countItems: (b) => b.count },
    undefined,
  );
  return {
    newBatch: () => encoder.batch(),
    export: (batch) =>
      new Promise((resolve, reject) => {
        const done = settle(resolve, reject);
        // The transport is finished with the bytes (sent, or failed after its retries) when it
        // answers: the batch's buffer can take the next batch's spans.
        delegate.export({ bytes: batch.finish(), count: batch.count }, (result) => {
          batch.release();
          done(result);
        });
      }),
    shutdown: () => delegate.shutdown(),
  };
}

class RecordBatch implements SpanBatch {
  readonly spans: SpanRecord[] = [];
  get count(): number {
    return this.spans.length;
  }
  add(span: SpanRecord): void {
    this.spans.push(span);
  }
}

/** An official exporter (OTLP/JSON, gRPC, in-memory), given ReadableSpans. */
export function exporterSink(exporter: SpanExporter, resource: Resource, scope: Scope): SpanSink<RecordBatch> {
  return {
    newBatch: () => new RecordBatch(),
    export: (batch) => new Promise((resolve, reject) => exporter.export(batch.spans.map((s) => toReadableSpan(s, resource, scope)), settle(resolve, reject))),
    shutdown: () => exporter.shutdown(),
  };
}

export interface BatchSettings {
  readonly scheduleDelayMs: number;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly exportTimeoutMs: number;
}

/**
 * The batch span processor's settings from the environment. The schedule delay and export timeout
 * default as the specification says (5 s, 30 s); the queue and batch sizes default larger than its
 * 2048 and 512, because a web server makes spans faster than an application does: at 20,000
 * requests a second and six spans each, a 2048-span queue is 17 ms of spans (one slow export and
 * the rest are dropped), and each 512-span batch is its own HTTP request to the collector.
 */
export function batchSettingsFromEnv(): BatchSettings {
  const maxQueueSize = getNumberFromEnv('OTEL_BSP_MAX_QUEUE_SIZE') ?? DEFAULT_MAX_QUEUE_SIZE;
  let maxExportBatchSize = getNumberFromEnv('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? DEFAULT_MAX_EXPORT_BATCH_SIZE;
  // The specification: the batch size must not exceed the queue size.
  if (maxExportBatchSize > maxQueueSize) maxExportBatchSize = maxQueueSize;
  return {
    scheduleDelayMs: getNumberFromEnv('OTEL_BSP_SCHEDULE_DELAY') ?? 5000,
    maxQueueSize: Math.max(1, maxQueueSize),
    maxExportBatchSize: Math.max(1, maxExportBatchSize),
    exportTimeoutMs: getNumberFromEnv('OTEL_BSP_EXPORT_TIMEOUT') ?? 30000,
  };
}

export const DEFAULT_MAX_QUEUE_SIZE = 16384;
export const DEFAULT_MAX_EXPORT_BATCH_SIZE = 2048;

export interface SpanBatcherOptions {
  readonly sink: SpanSink;
  readonly settings: BatchSettings;
  /** A batch was not exported (the collector failed or timed out, or the queue was full). */
  readonly onError: (reason: string, cause?: unknown) => void;
}

/**
 * Finished spans go into the open batch; a batch is exported when it holds `maxExportBatchSize`
 * spans or `scheduleDelayMs` after its first, one export at a time. A request never waits for an
 * export; beyond `maxQueueSize` spans waiting, new ones are dropped (and said once per run of drops).
 */
export class SpanBatcher {
  readonly #o: SpanBatcherOptions;
  #open: SpanBatch;
  /** Full batches waiting for the export in flight. */
  readonly #ready: SpanBatch[] = [];
  /** Spans in #open and #ready. */
  #queued = 0;
  #timer: NodeJS.Timeout | undefined;
  #exporting = false;
  #dropped = 0;
  #closed = false;

  constructor(options: SpanBatcherOptions) {
    this.#o = options;
    this.#open = options.sink.newBatch();
  }

  add(span: SpanRecord): void {
    if (this.#closed) return;
    const s = this.#o.settings;
    if (this.#queued >= s.maxQueueSize) {
      if (this.#dropped++ === 0) this.#o.onError(`the span queue is full (OTEL_BSP_MAX_QUEUE_SIZE=${s.maxQueueSize}): spans are dropped until the collector catches up`);
      return;
    }
    this.#dropped = 0;
    this.#open.add(span);
    this.#queued++;
    if (this.#open.count >= s.maxExportBatchSize) {
      this.#seal();
      if (!this.#exporting) {
        // Not inside the request's own end event: the export starts on the next turn.
        this.#clearTimer();
        this.#exporting = true;
        setImmediate(() => void this.#exportLoop());
      }
    } else if (this.#timer === undefined && !this.#exporting) {
      this.#startTimer();
    }
  }

  #seal(): void {
    if (this.#open.count === 0) return;
    this.#ready.push(this.#open);
    this.#open = this.#o.sink.newBatch();
  }

  #startTimer(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#exporting) return;
      this.#seal();
      this.#exporting = true;
      void this.#exportLoop();
    }, this.#o.settings.scheduleDelayMs);
    this.#timer.unref();
  }

  /** Export the sealed batches; what is still open waits for its timer. */
  async #exportLoop(): Promise<void> {
    try {
      for (let b = this.#ready.shift(); b !== undefined; b = this.#ready.shift()) await this.#exportOne(b);
    } finally {
      this.#exporting = false;
      if (this.#open.count > 0 && !this.#closed && this.#timer === undefined) this.#startTimer();
    }
  }

  async #exportOne(batch: SpanBatch): Promise<void> {
    const s = this.#o.settings;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#o.sink.export(batch),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${s.exportTimeoutMs} ms (OTEL_BSP_EXPORT_TIMEOUT)`)), s.exportTimeoutMs);
          timer.unref();
        }),
      ]);
    } catch (err) {
      this.#o.onError(err instanceof Error ? err.message : String(err), err);
    } finally {
      clearTimeout(timer);
      this.#queued -= batch.count;
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Export everything now (after the export in flight). */
  async flush(): Promise<void> {
    this.#clearTimer();
    while (this.#exporting) await new Promise((r) => setImmediate(r));
    this.#exporting = true;
    try {
      this.#seal();
      for (let b = this.#ready.shift(); b !== undefined; b = this.#ready.shift()) await this.#exportOne(b);
    } finally {
      this.#exporting = false;
    }
  }

  /** Export what is queued, then stop taking spans and close the sink. */
  async shutdown(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#o.sink.shutdown();
  }
}
