/**
 * Metrics, the public face: WharfMetrics subscribes to the event stream and keeps the counters;
 * the endpoint serves them at /metrics; `wharf metrics` reads the same text over the admin socket.
 * docs/configuration.md, "Metrics", lists every metric.
 */
import { WharfMetrics, type MetricsCatalogue } from './wharf-metrics.js';
import { startMetricsServer, type MetricsAddress, type MetricsServer } from './metrics-server.js';

export { WharfMetrics, KNOWN_METHODS, DURATION_BUCKETS, type MetricsCatalogue, type WharfMetricsOptions } from './wharf-metrics.js';
export { parseMetricsAddress, formatAddress, startMetricsServer, type MetricsAddress, type MetricsServer } from './metrics-server.js';
export { negotiate, exposition, CONTENT_TYPES, type ExpositionFormat } from './exposition.js';

export interface Metrics {
  readonly metrics: WharfMetrics;
  readonly server: MetricsServer;
  /** Stops the endpoint and unsubscribes: the channels go back to no subscriber. */
  close(): Promise<void>;
}

export interface StartMetricsOptions {
  readonly address: MetricsAddress;
  readonly catalogue: () => MetricsCatalogue;
  readonly log: { warn(message: string): void };
}

/**
 * Subscribes, then listens. Rejects with MetricsError MET_LISTEN (nothing left subscribed) when
 * the address cannot be listened on.
 */
export async function startMetrics(o: StartMetricsOptions): Promise<Metrics> {
  const metrics = new WharfMetrics({ catalogue: o.catalogue });
  metrics.subscribe();
  let server: MetricsServer;
  try {
    server = await startMetricsServer(o.address, metrics.registry, o.log);
  } catch (err) {
    metrics.unsubscribe();
    throw err;
  }
  return {
    metrics,
    server,
    async close() {
      metrics.unsubscribe();
      await server.close();
    },
  };
}
