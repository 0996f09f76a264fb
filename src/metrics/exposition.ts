/**
 * The two text formats a scraper may ask for: Prometheus's text format (version 0.0.4, what every
 * scraper reads) and OpenMetrics 1.0 (what Prometheus asks for first in its Accept header). Both
 * are written by prom-client from the same metric objects.
 */
import { Registry, type Metric, type OpenMetricsContentType } from 'prom-client';

export type ExpositionFormat = 'prometheus' | 'openmetrics';

export const CONTENT_TYPES: Readonly<Record<ExpositionFormat, string>> = {
  prometheus: Registry.PROMETHEUS_CONTENT_TYPE,
  openmetrics: Registry.OPENMETRICS_CONTENT_TYPE,
};

/**
 * OpenMetrics when the Accept header (RFC 9110 §12.5.1) ranks `application/openmetrics-text` at
 * least as high as `text/plain` (Prometheus sends `application/openmetrics-text;…;q=0.5,…,
 * text/plain;…;q=0.2,*\/*;q=0.1`); otherwise, and with no Accept at all, Prometheus's text format,
 * which every scraper understands.
 */
export function negotiate(accept: string | undefined): ExpositionFormat {
  if (accept === undefined) return 'prometheus';
  let open = 0;
  let text = 0;
  for (const range of accept.split(',')) {
    const parts = range.split(';');
    const type = parts[0]!.trim().toLowerCase();
    let q = 1;
    for (let i = 1; i < parts.length; i++) {
      const [k, v] = parts[i]!.split('=');
      if (k?.trim().toLowerCase() === 'q') q = Number(v?.trim());
    }
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') open = Math.max(open, q);
    else if (type === 'text/plain') text = Math.max(text, q);
  }
  return open > 0 && open >= text ? 'openmetrics' : 'prometheus';
}

/**
 * prom-client writes OpenMetrics from a registry whose content type says so, and renames each
 * counter it writes (`x_total` → `x`, the OpenMetrics family name) on the metric object itself.
 * So the OpenMetrics registry holds views of the real metrics, built for each scrape: the rename
 * lands on the view, and the Prometheus exposition keeps its `_total` names.
 */
function openMetricsRegistry(source: Registry): Registry<OpenMetricsContentType> {
  // (prom-client's types omit the constructor's content type; setContentType is typed.)
  const view = new Registry<OpenMetricsContentType>();
  view.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of source.getMetricsAsArray()) {
    const m = metric as unknown as { name: string; help: string; type: string; get(): Promise<{ name: string }> };
    const family = m.type === 'counter' ? m.name.replace(/_total$/, '') : m.name;
    view.registerMetric({
      name: family,
      help: m.help,
      type: m.type,
      get: async () => ({ ...(await m.get()), name: family }),
    } as unknown as Metric);
  }
  return view;
}

export function exposition(registry: Registry, format: ExpositionFormat): Promise<string> {
  return format === 'openmetrics' ? openMetricsRegistry(registry).metrics() : registry.metrics();
}
