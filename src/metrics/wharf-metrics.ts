/**
 * Wharf's Prometheus metrics: IIS's performance counters (Web Service, W3SVC_W3WP, APP_POOL_WAS,
 * HTTP Service Request Queues, Web Service Cache) kept by prom-client, fed only by the
 * `node:diagnostics_channel` events of src/diagnostics.ts. Nothing on the request path calls this
 * file: while no WharfMetrics is subscribed, the channels have no subscriber and publishers build
 * nothing.
 *
 * A request costs one Map lookup (its site's cells), two comparisons (the site's last method and
 * status, which the next request almost always repeats) and field increments: about 20 ns,
 * against about 540 ns through prom-client's labelled children. Its series are cells (cells.ts),
 * cached per site/method/status, and nothing is allocated per request. Rarer events (queueing, workers,
 * recycles) use prom-client's children, cached per pool/reason. Label values are bounded: a site's name, a pool's name (as configured), a known HTTP
 * verb else OTHER, the status code, and reasons from fixed sets (docs/configuration.md, "Metrics").
 */
import { poolKey, type PoolKey } from '../config/pool-key.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './cells.js';
import type { Channel } from 'node:diagnostics_channel';
import * as events from '../diagnostics.js';
import type {
  CacheRemoveEvent,
  CacheStoreEvent,
  ConnectionEvent,
  PoolRecycleEvent,
  PoolStateEvent,
  QueueEnterEvent,
  QueueLeaveEvent,
  QueueRejectEvent,
  RequestEndEvent,
  WorkerExitEvent,
  WorkerStartEvent,
} from '../diagnostics.js';
import { WorkerProcessMetrics } from './worker-process-metrics.js';

/**
 * The verbs that get their own `method` label value; any other becomes OTHER, so a client
 * inventing verbs cannot grow the series without bound (the methods of RFC 9110 §9 and PATCH,
 * RFC 5789, plus the WebDAV verbs IIS's WebDAV module handles, RFC 4918).
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK',
]);

/**
 * Request durations, seconds: from 100 µs (a response-cache hit) to 2 minutes (connectionTimeout's
 * default), about ×2.5 apart, so the p50 of a cache hit and of a slow application both land
 * between close bounds.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/** prom-client's default gauges named like counters (see the constructor). */
const GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** What a label for a site or a pool is: the configuration's names. */
export interface MetricsCatalogue {
  /** Site id → name, for the connection events (which carry the id only). */
  readonly sites: ReadonlyMap<number, string>;
  /** The application pools' names as configured (`<add name=…>`). */
  readonly pools: readonly string[];
}

export interface WharfMetricsOptions {
  /**
   * The running configuration's sites and pools; read at subscribe() and on every
   * wharf:config:applied, so renamed or removed ones leave the gauges.
   */
  readonly catalogue: () => MetricsCatalogue;
  /** prom-client's metrics of this (the main) process: CPU, memory, event loop, GC. Default true. */
  readonly defaultMetrics?: boolean;
}

interface CounterChild {
  inc(value?: number): void;
}
interface GaugeChild {
  inc(value?: number): void;
  dec(value?: number): void;
  set(value: number): void;
}

/** A site's per-request cells (see #requestCell). */
interface SiteCells {
  readonly name: string;
  readonly duration: HistogramCell;
  /** method label → status code → cell. */
  readonly requests: Map<string, Map<number, CounterCell>>;
  lastMethod: string;
  lastCode: number;
  last: CounterCell | undefined;
}

/** Status label values: the three-digit code, or 0 when nothing was sent (a dropped request). */
function codeOf(status: number): number {
  return Number.isInteger(status) && status >= 100 && status <= 999 ? status : 0;
}

export class WharfMetrics {
  /** Prometheus text format; the OpenMetrics exposition is rendered from the same metrics (exposition.ts). */
  readonly registry = new Registry();
  readonly #o: WharfMetricsOptions;

  readonly #requests: CellCounter<'site' | 'method' | 'code'>;
  readonly #duration: CellHistogram<'site'>;
  readonly #connections: Gauge<'site'>;
  readonly #queueLength: Gauge<'pool'>;
  readonly #queueRejected: Counter<'pool' | 'reason'>;
  readonly #cacheHits: CounterCell;
  readonly #cacheMisses: CounterCell;
  readonly #cacheEntries: Gauge;
  readonly #poolState: Gauge<'pool' | 'state'>;
  readonly #recycles: Counter<'pool' | 'reason'>;
  readonly #failures: Counter<'pool'>;
  readonly #starts: Counter<'pool'>;
  readonly #exits: Counter<'pool' | 'reason'>;
  readonly #configGeneration: Gauge;
  readonly #configRejected: Counter;
  readonly #workers: WorkerProcessMetrics;

  /** site name → its cells: no key string is built per request. */
  readonly #siteCells = new Map<string, SiteCells>();
  readonly #connectionChildren = new Map<string, GaugeChild>();
  /** The site label of each child in #connectionChildren (and of children since removed). */
  readonly #connectionSites = new WeakMap<GaugeChild, string>();
  /** The connection's site child, so its close counts where its open did even across a rename. */
  readonly #openConnections = new WeakMap<object, GaugeChild>();
  readonly #queueChildren = new Map<string, GaugeChild>();
  readonly #rejectChildren = new Map<string, Map<string, CounterChild>>();
  readonly #recycleChildren = new Map<string, Map<string, CounterChild>>();
  readonly #failureChildren = new Map<string, CounterChild>();

  #siteNames: ReadonlyMap<number, string> = new Map();
  /** Any spelling of a pool's name (the listener has the application's, WAS the pool's) → the configured name. */
  readonly #poolLabels = new Map<string, string>();
  #configuredPools = new Map<PoolKey, string>();
  #subscribed = false;

  constructor(options: WharfMetricsOptions) {
    this.#o = options;
    const registers = [this.registry];
    // The per-request series are cells (cells.ts): an increment, no label hashing.
    this.#requests = new CellCounter(
      'wharf_http_requests_total',
      'Requests finished, by site, method (known verbs, else OTHER) and status code (0: dropped before a status was sent). IIS: Web Service Total Method Requests.',
      this.registry,
    );
    this.#duration = new CellHistogram(
      'wharf_http_request_duration_seconds',
      'Time from a request\'s complete head to its last byte written (time-taken), by site.',
      DURATION_BUCKETS,
      this.registry,
    );
    this.#connections = new Gauge({
      name: 'wharf_connections',
      help: 'Client connections counting for a site (from their first routed request). IIS: Web Service Current Connections.',
      labelNames: ['site'],
      registers,
    });
    this.#queueLength = new Gauge({
      name: 'wharf_request_queue_length',
      help: 'Requests waiting in an application pool\'s queue for a worker. IIS: HTTP Service Request Queues CurrentQueueSize.',
      labelNames: ['pool'],
      registers,
    });
    this.#queueRejected = new Counter({
      name: 'wharf_request_queue_rejected_total',
      help: 'Requests an application pool\'s queue refused with 503, by HTTP.sys reason (QueueFull, AppOffline, Disabled, AppShutdown, ConnLimit). IIS: HTTP Service Request Queues RejectedRequests.',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.#cacheHits = new CellCounter('wharf_response_cache_hits_total', 'Requests answered from the listener\'s response cache. IIS: Web Service Cache Kernel: URI Cache Hits.', this.registry).cell({});
    this.#cacheMisses = new CellCounter(
      'wharf_response_cache_misses_total',
      'Cacheable requests that found no entry in the response cache. IIS: Web Service Cache Kernel: URI Cache Misses.',
      this.registry,
    ).cell({});
    this.#cacheEntries = new Gauge({
      name: 'wharf_response_cache_entries',
      help: 'Responses held in the response cache. IIS: Web Service Cache Kernel: Current URIs Cached.',
      registers,
    });
    this.#poolState = new Gauge({
      name: 'wharf_apppool_state',
      help: 'An application pool\'s state: 1 for the current one (Started, Stopping, Stopped). IIS: APP_POOL_WAS Current Application Pool State.',
      labelNames: ['pool', 'state'],
      registers,
    });
    this.#recycles = new Counter({
      name: 'wharf_apppool_recycles_total',
      help: 'Worker recycles, by trigger (time, requests, schedule, memory, privateMemory, configChange, onDemand, isapiUnhealthy). IIS: APP_POOL_WAS Total Application Pool Recycles.',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.#failures = new Counter({
      name: 'wharf_apppool_worker_failures_total',
      help: 'Workers that exited without WAS asking (crash, failed ping, failed start, orphaned): what rapid-fail protection counts. IIS: APP_POOL_WAS Total Worker Process Failures.',
      labelNames: ['pool'],
      registers,
    });
    this.#starts = new Counter({
      name: 'wharf_apppool_worker_starts_total',
      help: 'Worker processes started for a pool. IIS: APP_POOL_WAS Total Worker Processes Created.',
      labelNames: ['pool'],
      registers,
    });
    this.#exits = new Counter({
      name: 'wharf_apppool_worker_exits_total',
      help: 'Worker processes gone, by WAS\'s reason (crash, startup, ping, idle, recycle, stop, shutdownTimeLimit, cpuLimit, orphaned). IIS: APP_POOL_WAS Total Worker Process Ping/Startup/Shutdown Failures.',
      labelNames: ['pool', 'reason'],
      registers,
    });
    this.#configGeneration = new Gauge({
      name: 'wharf_config_generation',
      help: 'The configuration generation being served (1 at start, +1 for each change applied).',
      registers,
    });
    this.#configRejected = new Counter({
      name: 'wharf_config_rejected_total',
      help: 'Changes to applicationHost.config that were refused (the previous generation kept serving).',
      registers,
    });
    this.#workers = new WorkerProcessMetrics({ registry: this.registry, pools: () => this.#configuredPools.values() });
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges whose names end in _total break Prometheus's naming rule (promtool check metrics
      // flags them); their by-type twins (nodejs_active_handles{type} …) carry the same numbers.
      for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    }
  }

  /** Starts listening to the channels (and reads the catalogue). Idempotent. */
  subscribe(): void {
    if (this.#subscribed) return;
    this.#subscribed = true;
    this.#applyCatalogue();
    for (const [channel, fn] of this.#subscriptions()) channel.subscribe(fn);
  }

  /** Stops listening: every channel is back to no subscriber (the metrics keep their values). */
  unsubscribe(): void {
    if (!this.#subscribed) return;
    this.#subscribed = false;
    for (const [channel, fn] of this.#subscriptions()) channel.unsubscribe(fn);
  }

  /** Each channel listened to, and its subscriber. */
  #subscriptions(): ReadonlyArray<readonly [Channel, (message: unknown) => void]> {
    return [
      [events.requestEnd, this.#onRequestEnd],
      [events.queueEnter, this.#onQueueLength],
      [events.queueLeave, this.#onQueueLength],
      [events.queueReject, this.#onQueueReject],
      [events.cacheHit, this.#onCacheHit],
      [events.cacheMiss, this.#onCacheMiss],
      [events.cacheStore, this.#onCacheEntries],
      [events.cacheRemove, this.#onCacheEntries],
      [events.connectionOpen, this.#onConnectionOpen],
      [events.connectionClose, this.#onConnectionClose],
      [events.workerStart, this.#onWorkerStart],
      [events.workerExit, this.#onWorkerExit],
      [events.poolRecycle, this.#onRecycle],
      [events.poolState, this.#onPoolState],
      [events.configApplied, this.#onConfigApplied],
      [events.configRejected, this.#onConfigRejected],
    ];
  }

  /** The Prometheus text exposition (text/plain; version=0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  // ---- names --------------------------------------------------------------------------------

  /**
   * Reads the configuration's sites and pools: pool gauges start at 0 for every configured pool
   * (a dashboard shows an idle pool, not a missing one), and those of removed pools and sites go.
   */
  #applyCatalogue(): void {
    const { sites, pools } = this.#o.catalogue();
    this.#siteNames = sites;
    const configured = new Map<PoolKey, string>();
    for (const p of pools) configured.set(poolKey(p), p);
    for (const [key, name] of this.#configuredPools) {
      if (configured.get(key) === name) continue;
      this.#queueLength.remove(name);
      this.#queueChildren.delete(name);
      for (const state of ['Started', 'Stopping', 'Stopped']) this.#poolState.remove(name, state);
    }
    this.#configuredPools = configured;
    this.#poolLabels.clear();
    for (const p of pools) this.#queueChild(p);
    const names = new Set(sites.values());
    for (const name of this.#connectionChildren.keys()) {
      if (names.has(name)) continue;
      this.#connections.remove(name);
      this.#connectionChildren.delete(name);
    }
    // Every site shows, 0 while it has no connection (IIS's counters list every site too).
    for (const name of names) this.#connectionChild(name).inc(0);
  }

  /** The configured spelling of a pool name (IIS pool names are case-insensitive). */
  #pool(name: string): string {
    let label = this.#poolLabels.get(name);
    if (label === undefined) {
      label = this.#configuredPools.get(poolKey(name)) ?? name;
      // Bounded: spellings of configured pools, and names the events carry (pools WAS still
      // drains after a configuration removed them); cleared on every configuration change.
      this.#poolLabels.set(name, label);
    }
    return label;
  }

  // ---- children -----------------------------------------------------------------------------

  #site(site: string): SiteCells {
    let cells = this.#siteCells.get(site);
    if (cells === undefined) {
      cells = { name: site, duration: this.#duration.cell({ site }), requests: new Map(), lastMethod: '', lastCode: -1, last: undefined };
      this.#siteCells.set(site, cells);
    }
    return cells;
  }

  /** The requests_total cell of a site's method and status (the last one's, most of the time). */
  #requestCell(cells: SiteCells, method: string, code: number): CounterCell {
    if (method === cells.lastMethod && code === cells.lastCode) return cells.last!;
    const label = KNOWN_METHODS.has(method) ? method : 'OTHER';
    let byMethod = cells.requests.get(label);
    if (byMethod === undefined) cells.requests.set(label, (byMethod = new Map()));
    let cell = byMethod.get(code);
    if (cell === undefined) byMethod.set(code, (cell = this.#requests.cell({ site: cells.name, method: label, code: String(code) })));
    // Remembered by the method as sent: a verb outside KNOWN_METHODS hits its OTHER cell again too.
    cells.lastMethod = method;
    cells.lastCode = code;
    cells.last = cell;
    return cell;
  }

  #queueChild(pool: string): GaugeChild {
    let child = this.#queueChildren.get(pool);
    if (child === undefined) {
      this.#queueChildren.set(pool, (child = this.#queueLength.labels(pool)));
      child.set(0);
    }
    return child;
  }

  #connectionChild(site: string): GaugeChild {
    let child = this.#connectionChildren.get(site);
    if (child === undefined) {
      this.#connectionChildren.set(site, (child = this.#connections.labels(site)));
      this.#connectionSites.set(child, site);
    }
    return child;
  }

  #siteNameOf(child: GaugeChild): string {
    return this.#connectionSites.get(child) ?? '';
  }

  static #nested(map: Map<string, Map<string, CounterChild>>, a: string, b: string, make: () => CounterChild): CounterChild {
    let inner = map.get(a);
    if (inner === undefined) map.set(a, (inner = new Map()));
    let child = inner.get(b);
    if (child === undefined) inner.set(b, (child = make()));
    return child;
  }

  // ---- subscribers (arrow functions: one identity to subscribe and unsubscribe) -------------

  readonly #onRequestEnd = (message: unknown): void => {
    const ev = message as RequestEndEvent;
    const cells = this.#site(ev.siteName);
    this.#requestCell(cells, ev.method, codeOf(ev.status)).inc();
    // A clock oddity must not turn the histogram's sum into NaN for good.
    if (ev.durationMs >= 0) cells.duration.observe(ev.durationMs / 1000);
  };

  readonly #onQueueLength = (message: unknown): void => {
    const ev = message as QueueEnterEvent | QueueLeaveEvent;
    this.#queueChild(this.#pool(ev.poolName)).set(ev.length);
  };

  readonly #onQueueReject = (message: unknown): void => {
    const ev = message as QueueRejectEvent;
    const pool = this.#pool(ev.poolName);
    WharfMetrics.#nested(this.#rejectChildren, pool, ev.reason, () => this.#queueRejected.labels(pool, ev.reason)).inc();
  };

  readonly #onCacheHit = (_message: unknown): void => {
    this.#cacheHits.inc();
  };

  readonly #onCacheMiss = (_message: unknown): void => {
    this.#cacheMisses.inc();
  };

  readonly #onCacheEntries = (message: unknown): void => {
    this.#cacheEntries.set((message as CacheStoreEvent | CacheRemoveEvent).entries);
  };

  readonly #onConnectionOpen = (message: unknown): void => {
    const ev = message as ConnectionEvent;
    const child = this.#connectionChild(this.#siteNames.get(ev.siteId) ?? String(ev.siteId));
    child.inc();
    this.#openConnections.set(ev.key, child);
  };

  readonly #onConnectionClose = (message: unknown): void => {
    const ev = message as ConnectionEvent;
    const child = this.#openConnections.get(ev.key);
    if (child === undefined) return; // opened before metrics were on
    this.#openConnections.delete(ev.key);
    // Not if its site left the configuration meanwhile: its series is gone, and must not come back negative.
    if (this.#connectionChildren.get(this.#siteNameOf(child)) === child) child.dec();
  };

  readonly #onWorkerStart = (message: unknown): void => {
    const ev = message as WorkerStartEvent;
    const pool = this.#pool(ev.poolName);
    this.#starts.labels(pool).inc();
    this.#workers.started(pool, ev.pid);
  };

  readonly #onWorkerExit = (message: unknown): void => {
    const ev = message as WorkerExitEvent;
    const pool = this.#pool(ev.poolName);
    this.#exits.labels(pool, ev.reason).inc();
    if (ev.failure) {
      let child = this.#failureChildren.get(pool);
      if (child === undefined) this.#failureChildren.set(pool, (child = this.#failures.labels(pool)));
      child.inc();
    }
    this.#workers.exited(ev.pid);
  };

  readonly #onRecycle = (message: unknown): void => {
    const ev = message as PoolRecycleEvent;
    const pool = this.#pool(ev.poolName);
    WharfMetrics.#nested(this.#recycleChildren, pool, ev.reason, () => this.#recycles.labels(pool, ev.reason)).inc();
  };

  readonly #onPoolState = (message: unknown): void => {
    const ev = message as PoolStateEvent;
    const pool = this.#pool(ev.poolName);
    for (const state of ['Started', 'Stopping', 'Stopped'] as const) this.#poolState.labels(pool, state).set(state === ev.state ? 1 : 0);
  };

  readonly #onConfigApplied = (message: unknown): void => {
    this.#configGeneration.set((message as events.ConfigAppliedEvent).generation);
    this.#applyCatalogue();
  };

  readonly #onConfigRejected = (_message: unknown): void => {
    this.#configRejected.inc();
  };
}
