/**
 * Whether OpenTelemetry tracing is on, read from the standard OTEL_* variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
 *
 * This file imports nothing from OpenTelemetry: the main process and every worker read it at start,
 * and only when it says yes do they load the SDK (src/tracing/otel-sdk.ts, by dynamic import). A
 * Wharf without an OTLP endpoint pays one environment read, no module load and no subscriber.
 */

/** The OTLP transports of the official exporters; the specification's default is http/protobuf. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

function value(env: NodeJS.ProcessEnv, name: string): string {
  return (env[name] ?? '').trim();
}

/**
 * On when an OTLP endpoint is given (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
 * OTEL_EXPORTER_OTLP_ENDPOINT), unless the SDK is disabled (OTEL_SDK_DISABLED=true) or the traces
 * exporter is 'none' (OTEL_TRACES_EXPORTER), as the specification words both.
 */
export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if (value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') === '' && value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') === '') return false;
  if (value(env, 'OTEL_SDK_DISABLED').toLowerCase() === 'true') return false;
  const exporters = value(env, 'OTEL_TRACES_EXPORTER').toLowerCase();
  return exporters !== 'none';
}

export interface EnvProblem {
  readonly code: 'OTEL_CONFIG';
  readonly message: string;
}

/**
 * The OTLP protocol for traces: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
 * else http/protobuf. The official exporters each speak one protocol and do not read these
 * variables (the Node SDK's auto-configuration does, and Wharf does not load that package), so the
 * choice of exporter is made here. A value outside the three is reported, not ignored silently.
 */
export function otlpProtocol(env: NodeJS.ProcessEnv = process.env, problems: EnvProblem[] = []): OtlpProtocol {
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const v = value(env, name);
    if (v === '') continue;
    if ((OTLP_PROTOCOLS as readonly string[]).includes(v)) return v as OtlpProtocol;
    problems.push({ code: 'OTEL_CONFIG', message: `${name}="${v}" is not an OTLP protocol (${OTLP_PROTOCOLS.join(', ')}); using http/protobuf` });
    return 'http/protobuf';
  }
  return 'http/protobuf';
}

/**
 * OTEL_TRACES_EXPORTER may list several exporters; Wharf ships the OTLP one only. Other names are
 * reported (console, zipkin … would need packages Wharf does not load).
 */
export function exporterProblems(env: NodeJS.ProcessEnv = process.env): EnvProblem[] {
  const v = value(env, 'OTEL_TRACES_EXPORTER');
  if (v === '') return [];
  const others = v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '' && s !== 'otlp' && s !== 'none');
  return others.length === 0 ? [] : [{ code: 'OTEL_CONFIG', message: `OTEL_TRACES_EXPORTER names ${others.join(', ')}; Wharf exports traces over OTLP only` }];
}

/** The SDK's count limits Wharf does not apply (its spans are small and fixed); setting one is reported, not ignored. */
const COUNT_LIMITS = ['OTEL_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_EVENT_COUNT_LIMIT', 'OTEL_SPAN_LINK_COUNT_LIMIT', 'OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT', 'OTEL_LINK_ATTRIBUTE_COUNT_LIMIT'];

export function limitProblems(env: NodeJS.ProcessEnv = process.env): EnvProblem[] {
  const set = COUNT_LIMITS.filter((n) => value(env, n) !== '');
  return set.length === 0
    ? []
    : [{ code: 'OTEL_CONFIG', message: `${set.join(', ')} ${set.length === 1 ? 'is' : 'are'} not applied: a Wharf span has at most about 20 attributes and a few events, below the limits' defaults` }];
}
