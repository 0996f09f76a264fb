/**
 * OpenTelemetry tracing as Wharf sets it up, in the main process and in each worker.
 *
 * Loaded only by dynamic import, and only when src/tracing/otel-env.ts finds an OTLP endpoint.
 * What an operator configures is read as the specification and the official packages read it:
 *   - OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG choose one of the SDK's samplers (samplerFromEnv);
 *   - OTEL_BSP_SCHEDULE_DELAY, _MAX_QUEUE_SIZE, _MAX_EXPORT_BATCH_SIZE, _EXPORT_TIMEOUT drive the
 *     batcher (span-export.ts), which behaves as the SDK's BatchSpanProcessor does;
 *   - the official OTLP transports read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT,
 *     _COMPRESSION and the certificate variables;
 *   - OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT truncates attribute values;
 *   - the resource's envDetector reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
 * Spans themselves are Wharf's records (span-record.ts), not the SDK's Span objects: those cost
 * several microseconds each to make and serialise, five times per request (docs/architecture.md,
 * "OpenTelemetry"). OTLP/HTTP protobuf, the default, is encoded by Wharf (otlp-protobuf.ts, checked
 * byte for byte against the official serializer); OTLP/JSON and gRPC go through the official
 * exporters. Wharf adds the choice of exporter by OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, 'wharf' as
 * the service name when none is given, and how an export failure is reported.
 *
 * Nothing is registered globally (no global tracer provider): a Node app hosted in a worker may
 * bring its own SDK, and Wharf's must not become its default.
 */
import { TraceFlags } from '@opentelemetry/api';
import { getNumberFromEnv, getStringFromEnv, setGlobalErrorHandler } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, TraceIdRatioBasedSampler, type Sampler, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { TelemetryError } from '../errors.js';
import { exporterProblems, limitProblems, otlpProtocol, type EnvProblem, type OtlpProtocol } from './otel-env.js';
import { SpanRecorder } from './recorder.js';
import type { ParentRef } from './span-record.js';
import { batchSettingsFromEnv, exporterSink, protobufSink, SpanBatcher, type SpanSink } from './span-export.js';

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
  readonly recorder: SpanRecorder;
  readonly protocol: OtlpProtocol;
  /** Export what is batched now. */
  forceFlush(): Promise<void>;
  /**
   * Export what is left and stop, within `timeoutMs` (a collector that does not answer must not
   * hold `wharf stop` or a worker's exit longer than that).
   */
  shutdown(timeoutMs: number): Promise<void>;
}

const SCOPE_NAME = 'wharf';

async function otlpSink(protocol: OtlpProtocol, resource: Resource, scope: { name: string; version?: string }): Promise<SpanSink> {
  // Each exporter is its own package with its own dependencies (grpc brings @grpc/grpc-js): only
  // the one asked for is loaded. Without arguments each reads its endpoint, headers and timeout
  // from the environment.
  switch (protocol) {
    case 'http/protobuf':
      return protobufSink(resource, scope);
    case 'http/json':
      return exporterSink(new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(), resource, scope);
    case 'grpc':
      return exporterSink(new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter(), resource, scope);
  }
}

export interface EnvSampler {
  readonly sampler: Sampler;
  /** The decision without asking the sampler, for the samplers whose decision the parent alone fixes. */
  readonly fixedDecision?: (parent: ParentRef | undefined) => boolean;
}

const sampledParent = (parent: ParentRef): boolean => (parent.traceFlags & TraceFlags.SAMPLED) !== 0;

/**
 * The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name, from the SDK's own samplers
 * (the specification's list: always_on, always_off, traceidratio and their parentbased_ forms;
 * parentbased_always_on by default). A value Wharf cannot use is reported, not ignored.
 *
 * For always_on, always_off, parentbased_always_on and parentbased_always_off the decision follows
 * from the parent alone (a parent-based sampler's remote parent sampled → sampled, not sampled →
 * not; no parent → its root sampler), and the recorder takes it without building a context for
 * the sampler on every request.
 */
export function samplerFromEnv(problems: EnvProblem[] = []): EnvSampler {
  const name = (getStringFromEnv('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on').toLowerCase();
  const ratio = (): number => {
    const arg = getNumberFromEnv('OTEL_TRACES_SAMPLER_ARG');
    if (arg === undefined) return 1;
    if (arg < 0 || arg > 1) {
      problems.push({ code: 'OTEL_CONFIG', message: `OTEL_TRACES_SAMPLER_ARG=${arg} is outside [0, 1]; using 1` });
      return 1;
    }
    return arg;
  };
  switch (name) {
    case 'always_on':
      return { sampler: new AlwaysOnSampler(), fixedDecision: () => true };
    case 'always_off':
      return { sampler: new AlwaysOffSampler(), fixedDecision: () => false };
    case 'traceidratio':
      return { sampler: new TraceIdRatioBasedSampler(ratio()) };
    case 'parentbased_always_off':
      return { sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }), fixedDecision: (p) => p !== undefined && sampledParent(p) };
    case 'parentbased_traceidratio':
      return { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) }) };
    case 'parentbased_always_on':
      return { sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), fixedDecision: (p) => p === undefined || sampledParent(p) };
    default:
      problems.push({ code: 'OTEL_CONFIG', message: `OTEL_TRACES_SAMPLER="${name}" is not a sampler Wharf has (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio); using parentbased_always_on` });
      return { sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), fixedDecision: (p) => p === undefined || sampledParent(p) };
  }
}

export async function startTracing(options: TracingOptions): Promise<Tracing> {
  const problems: EnvProblem[] = [...exporterProblems(), ...limitProblems()];
  const protocol = otlpProtocol(process.env, problems);
  const { sampler, fixedDecision } = samplerFromEnv(problems);
  // Every worker reads the same variables: the main process alone reports what is wrong with them.
  if (options.role === 'main') for (const p of problems) options.warn(new TelemetryError(p.code, p.message));

  // An unreachable collector fails every batch. One warning says so (the collector's address is in
  // the message), and the requests themselves never wait for an export: spans queue in memory up
  // to OTEL_BSP_MAX_QUEUE_SIZE and are dropped beyond it.
  let reported = false;
  const report = (text: string, cause?: unknown): void => {
    if (reported) return;
    reported = true;
    options.warn(new TelemetryError('OTEL_EXPORT', `spans could not be exported over OTLP (${protocol}): ${text}; further failures are not reported`, { cause }));
  };
  // The official exporters report some failures to the SDK's global error handler too.
  setGlobalErrorHandler((err) => report(err instanceof Error ? err.message : typeof err === 'string' ? err : JSON.stringify(err), err));

  // Service name 'wharf' unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise (the
  // envDetector's attributes are merged last, so they win).
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'wharf', ...(options.version === undefined ? {} : { [ATTR_SERVICE_VERSION]: options.version }), 'wharf.process.role': options.role }))
    .merge(detectResources({ detectors: [envDetector] }));
  await resource.waitForAsyncAttributes?.();
  const scope = options.version === undefined ? { name: SCOPE_NAME } : { name: SCOPE_NAME, version: options.version };
  const sink = options.exporter !== undefined ? exporterSink(options.exporter, resource, scope) : await otlpSink(protocol, resource, scope);
  const batcher = new SpanBatcher({ sink, settings: batchSettingsFromEnv(), onError: report });
  const recorder = new SpanRecorder({
    sampler,
    ...(fixedDecision === undefined ? {} : { fixedDecision }),
    onEnd: (span) => batcher.add(span),
    valueLengthLimit: getNumberFromEnv('OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? getNumberFromEnv('OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? Infinity,
  });
  return {
    recorder,
    protocol,
    forceFlush: () => batcher.flush(),
    shutdown: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
        timer.unref();
      });
      try {
        await Promise.race([batcher.shutdown(), late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
