/**
 * OpenTelemetry traces: the public face of src/tracing/ for the two processes that trace.
 *
 * Import this file only by `await import()` after `tracingEnabled()` (otel-env.ts) said yes: it
 * loads the SDK. The main process calls startRequestTracing (spans of src/tracing/request-spans.ts),
 * each worker startPipelineTracing (src/tracing/pipeline-spans.ts); each has its own batch
 * exporter, and each is drained by `shutdown` before its process exits.
 */
import type { TelemetryError } from '../errors.js';
import { startTracing, type Tracing } from './otel-sdk.js';
import { PipelineSpans } from './pipeline-spans.js';
import { RequestSpans } from './request-spans.js';

export { PipelineSpans } from './pipeline-spans.js';
export { RequestSpans } from './request-spans.js';

export interface TracingHandle {
  /** Stop subscribing, export what is batched, within `timeoutMs`. */
  shutdown(timeoutMs: number): Promise<void>;
}

export interface StartOptions {
  readonly warn: (error: TelemetryError) => void;
}

export async function startRequestTracing(options: StartOptions): Promise<TracingHandle> {
  const tracing = await startTracing({ role: 'main', warn: options.warn });
  const spans = new RequestSpans(tracing.recorder);
  spans.subscribe();
  return handle(tracing, spans);
}

export interface PipelineTracingHandle extends TracingHandle {
  readonly spans: PipelineSpans;
}

export async function startPipelineTracing(options: StartOptions): Promise<PipelineTracingHandle> {
  const tracing = await startTracing({ role: 'worker', warn: options.warn });
  const spans = new PipelineSpans(tracing.recorder);
  spans.subscribe();
  return { ...handle(tracing, spans), spans };
}

function handle(tracing: Tracing, spans: { unsubscribe(): void }): TracingHandle {
  return {
    shutdown: async (timeoutMs) => {
      spans.unsubscribe();
      await tracing.shutdown(timeoutMs);
    },
  };
}
