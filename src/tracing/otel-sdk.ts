/**
 * The OpenTelemetry trace SDK as Wharf sets it up, in the main process and in each worker.
 *
 * Loaded only by dynamic import, and only when src/tracing/otel-env.ts finds an OTLP endpoint.
 * Everything configurable is the official packages' own environment handling:
 *   - BasicTracerProvider reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG and the span limits;
 *   - BatchSpanProcessor reads OTEL_BSP_SCHEDULE_DELAY, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE,
 *     _EXPORT_TIMEOUT;
 *   - the OTLP exporters read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT,
 *     _COMPRESSION and the certificate variables;
 *   - the resource's envDetector reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
 * Wharf adds only what those packages leave to an SDK distribution: the choice of exporter by
 * OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, 'wharf' as the service name when none is given, and how an
 * export failure is reported.
 *
 * The provider is not registered globally (no trace.setGlobalTracerProvider): a Node app hosted in
 * a worker may bring its own SDK, and Wharf's must not become its default.
 */
import type { Tracer } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { TelemetryError } from '../errors.js';
import { exporterProblems, otlpProtocol, type EnvProblem, type OtlpProtocol } from './otel-env.js';

export interface TracingOptions {
  /** 'main' or 'worker': recorded as the resource's wharf.process.role. */
  readonly role: 'main' | 'worker';
  /** Reports an export failure (once per process) and setup problems, as coded warnings. */
  readonly warn: (error: TelemetryError) => void;
  /** Wharf's version, the resource's service.version. */
  readonly version?: string;
  /** Tests give their own exporter; Wharf itself builds the OTLP one the environment asks for. */
  readonly exporter?: SpanExporter;
}

export interface Tracing {
  readonly tracer: Tracer;
  readonly protocol: OtlpProtocol;
  /** Export what is batched now. */
  forceFlush(): Promise<void>;
  /**
   * Export what is left and stop, within `timeoutMs` (a collector that does not answer must not
   * hold `wharf stop` or a worker's exit longer than that).
   */
  shutdown(timeoutMs: number): Promise<void>;
}

async function otlpExporter(protocol: OtlpProtocol): Promise<SpanExporter> {
  // Each exporter is its own package with its own dependencies (grpc brings @grpc/grpc-js): only
  // the one asked for is loaded. Without arguments each reads its endpoint, headers and timeout
  // from the environment.
  switch (protocol) {
    case 'http/protobuf':
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  }
}

export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const problems: EnvProblem[] = [...exporterProblems()];
  const protocol = otlpProtocol(process.env, problems);
  // Every worker reads the same variables: the main process alone reports what is wrong with them.
  if (options.role === 'main') for (const p of problems) options.warn(new TelemetryError(p.code, p.message));
  const exporter = options.exporter ?? (await otlpExporter(protocol));

  // An unreachable collector fails every batch. The batch processor reports each failure to the
  // SDK's global error handler; one warning says so (the collector's address is in the message),
  // and the requests themselves never wait for an export: spans queue in memory up to
  // OTEL_BSP_MAX_QUEUE_SIZE and are dropped beyond it.
  let reported = false;
  setGlobalErrorHandler((err) => {
    if (reported) return;
    reported = true;
    const text = err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err);
    options.warn(new TelemetryError('OTEL_EXPORT', `spans could not be exported over OTLP (${protocol}): ${text}; further failures are not reported`, { cause: err }));
  });

  // Service name 'wharf' unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise (the
  // envDetector's attributes are merged last, so they win).
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'wharf', ...(options.version === undefined ? {} : { [ATTR_SERVICE_VERSION]: options.version }), 'wharf.process.role': options.role }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporter)] });
  const tracer = provider.getTracer('wharf', options.version);
  return {
    tracer,
    protocol,
    forceFlush: () => provider.forceFlush(),
    shutdown: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      });
      try {
        await Promise.race([provider.shutdown(), late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
