/**
 * Wharf's one event stream (STYLE.md §9): every observable moment of a request, a pool and the
 * configuration is a `node:diagnostics_channel` channel declared here, with its payload type.
 * Logs, Failed Request Tracing, metrics and OpenTelemetry are subscribers; nothing on the hot path
 * calls them directly.
 *
 * Publishing costs nothing measurable while nobody listens: publishers test `hasSubscribers`
 * before they build a payload (`if (requestEnd.hasSubscribers) requestEnd.publish({...})`), so an
 * idle channel is one property read.
 *
 * Channels are process-local. The main process publishes the listener's and WAS's events
 * (`wharf:request:*`, `wharf:queue:*`, `wharf:cache:*`, `wharf:connection:*`, `wharf:worker:*`,
 * `wharf:pool:*`, `wharf:config:*`); a worker publishes its pipeline's (`wharf:pipeline:*`).
 * Events of one request are correlated by `key`, an object identity that lives as long as the
 * request in that process (the listener's exchange, the worker's context): subscribers keep
 * per-request state in a WeakMap keyed by it.
 *
 * Names follow Node's convention for libraries (`<package>:<area>:<event>`). The catalogue is
 * `CHANNELS`; docs/architecture.md lists it, and a test keeps the two in step.
 */
import diagnostics_channel, { type Channel } from 'node:diagnostics_channel';

// ---- main process: listener ------------------------------------------------------------------

/** A request was parsed and routed to a site (or answered before routing: `siteId` 0). */
export interface RequestStartEvent {
  readonly key: object;
  readonly siteId: number;
  readonly siteName: string;
  readonly method: string;
  /** The target as the client sent it. */
  readonly rawUrl: string;
  readonly host: string;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly localPort: number;
  /** The client's `traceparent` header, '' when absent (W3C Trace Context). */
  readonly traceparent: string;
  /**
   * (Added for OpenTelemetry, src/tracing/.) The client's `tracestate` header, continued with its
   * traceparent (W3C Trace Context §3.3); absent or '' when the client sent none.
   */
  readonly tracestate?: string;
  /** performance.now() when the request's head was complete. */
  readonly startedAt: number;
}

/** The request is finished in the listener: its last byte written (or it was dropped). */
export interface RequestEndEvent {
  readonly key: object;
  readonly siteId: number;
  readonly siteName: string;
  readonly poolName: string;
  readonly method: string;
  readonly status: number;
  readonly subStatus: number;
  readonly win32Status: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** performance.now() at the end; with RequestStartEvent.startedAt, the time taken. */
  readonly endedAt: number;
  readonly durationMs: number;
  /** Who answered: a worker, the response cache, or the listener itself (HTTP.sys's own answers). */
  readonly answeredBy: 'worker' | 'cache' | 'listener';
  /** Connection reset or dropped without a complete response. */
  readonly aborted: boolean;
}

/** A request was handed to a worker of its pool (after queueing or at once). */
export interface RequestDispatchEvent {
  readonly key: object;
  readonly poolName: string;
  readonly pid: number;
  /** A replay after the first worker died before answering. */
  readonly replay: boolean;
  readonly dispatchedAt: number;
  /**
   * The W3C `traceparent` the worker is given with the request head ('' for none). Publishing is
   * synchronous: a tracing subscriber sets it, and the listener reads it back after publish().
   */
  traceparent: string;
}

export interface QueueEnterEvent {
  readonly key: object;
  readonly poolName: string;
  /** Queue length after this request joined. */
  readonly length: number;
}

export interface QueueLeaveEvent {
  readonly key: object;
  readonly poolName: string;
  readonly waitedMs: number;
  readonly outcome: 'dispatched' | 'expired' | 'cancelled' | 'rejected';
  readonly length: number;
}

/** The pool's queue refused a request (HTTP.sys's 503 reasons: QueueFull, AppOffline, Disabled, ConnLimit …). */
export interface QueueRejectEvent {
  readonly key: object;
  readonly poolName: string;
  readonly reason: string;
}

export interface CacheLookupEvent {
  readonly key: object;
  readonly siteId: number;
  readonly cacheKey: string;
}

export interface CacheStoreEvent {
  readonly cacheKey: string;
  readonly bytes: number;
  /** Entries after the store. */
  readonly entries: number;
}

export interface CacheRemoveEvent {
  readonly cacheKey: string;
  readonly reason: 'invalidated' | 'expired' | 'evicted' | 'flushed';
  readonly entries: number;
}

/**
 * A client connection starts or stops counting for a site. `open` is published when the
 * connection's first request is routed (the moment HTTP.sys's per-site connection count and
 * maxConnections take it into account); `close` when such a connection closes, with the same
 * `siteId`. A connection whose requests never route (400s before routing) publishes neither.
 */
export interface ConnectionEvent {
  readonly key: object;
  /** The site the connection counts for (its first routed request). */
  readonly siteId: number;
  readonly remoteAddress: string;
  readonly localPort: number;
}

/**
 * HTTP.sys's own error record (the httperr log's line): a request or connection the listener
 * refused, dropped or timed out. `key` is the exchange when there was one, else the connection;
 * `connection` is always the connection (a subscriber in the listener tells its own apart by it).
 */
export interface HttpErrEvent {
  readonly key: object;
  readonly connection: object;
  /** epoch ms. */
  readonly time: number;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp: string;
  readonly serverPort: number;
  /** `HTTP/1.1`, or `-` when the request line never parsed. */
  readonly protocolVersion: string;
  /** '' when unknown. */
  readonly method: string;
  /** The target as received, '' when unknown. */
  readonly uri: string;
  /** The status sent, undefined when none was (timers, dropped connections). */
  readonly status: number | undefined;
  /** The site routed to, undefined before routing. */
  readonly siteId: number | undefined;
  /** HTTP.sys's reason phrase: BadRequest, Hostname, QueueFull, Timer_ConnectionIdle … */
  readonly reason: string;
  /** The application pool's queue, when one was chosen. */
  readonly queueName: string | undefined;
}

// ---- main process: WAS -----------------------------------------------------------------------

export interface WorkerEvent {
  readonly poolName: string;
  readonly pid: number;
}

export interface WorkerStartEvent extends WorkerEvent {
  /** Started from the pre-started spare rather than a fresh process. */
  readonly fromSpare: boolean;
}

export interface WorkerPingEvent extends WorkerEvent {
  /** Round trip of the ping, ms; -1 for a ping that got no answer in pingResponseTime. */
  readonly roundTripMs: number;
}

export interface WorkerExitEvent extends WorkerEvent {
  readonly code: number | null;
  readonly signal: string | null;
  /**
   * Why it went: 'crash' (nobody asked), 'startup' (died or hung before Ready: startupTimeLimit),
   * 'ping' (no pong in pingResponseTime), 'idle' (idleTimeout), 'recycle' (any periodicRestart or
   * admin recycle; the trigger is on wharf:pool:recycle), 'stop' (pool stopped or removed, Wharf
   * stopping), 'shutdownTimeLimit' (killed while draining), 'cpuLimit' (cpu action KillW3wp),
   * 'orphaned' (orphanWorkerProcess: left running, no longer the pool's).
   */
  readonly reason: string;
  /** Counted for rapid-fail protection (WAS did not ask it to go). */
  readonly failure: boolean;
}

export interface PoolRecycleEvent {
  readonly poolName: string;
  readonly pid: number;
  /** periodicRestart's trigger or the admin's: 'time', 'requests', 'schedule', 'memory', 'privateMemory', 'configChange', 'onDemand', 'isapiUnhealthy', 'watchedFiles' … */
  readonly reason: string;
}

export interface PoolStateEvent {
  readonly poolName: string;
  readonly state: 'Started' | 'Stopping' | 'Stopped';
  /** 'autoStart', 'autoStart=false' (a new pool), 'admin' (wharf start/stop apppool), 'rapidFailProtection', 'drained' (Stopping → Stopped). */
  readonly reason: string;
}

export interface ConfigAppliedEvent {
  readonly generation: number;
  readonly file: string;
}

export interface ConfigRejectedEvent {
  readonly file: string;
  readonly code: string;
  readonly message: string;
}

// ---- worker process: the pipeline ------------------------------------------------------------

export interface PipelineRequestEvent {
  readonly key: object;
  readonly siteId: number;
  readonly method: string;
  /** Path and query as the worker received them. */
  readonly url: string;
  /**
   * The `traceparent` of the main process's span for this request (RequestHeadMessage.traceparent),
   * which the worker's span continues; '' when the main process does not trace.
   */
  readonly traceparent: string;
  readonly at: number;
}

/**
 * Notification and module events are the pipeline's most frequent (two per module call): the
 * worker publishes one object per channel again and again, its fields rewritten each time. A
 * subscriber reads it during the call and copies what it keeps; it never holds on to the object.
 */
export interface NotificationEvent {
  readonly key: object;
  /** An IIS stage name: BeginRequest, AuthenticateRequest … EndRequest, SendResponse. */
  readonly notification: string;
  readonly at: number;
}

export interface ModuleEvent {
  readonly key: object;
  readonly module: string;
  readonly notification: string;
  readonly at: number;
}

export interface HandlerChangedEvent {
  readonly key: object;
  readonly oldHandler: string;
  readonly newHandler: string;
  readonly modules: string;
  readonly scriptProcessor: string;
  readonly type: string;
}

export interface StatusSetEvent {
  readonly key: object;
  readonly module: string;
  readonly notification: string;
  readonly status: number;
  readonly subStatus: number;
  readonly reason: string;
  /** Win32 / HRESULT the module gave, 0 when none. */
  readonly errorCode: number;
  readonly description: string;
}

export interface PipelineRequestEndEvent {
  readonly key: object;
  readonly status: number;
  readonly subStatus: number;
  readonly bytesSent: number;
  readonly at: number;
}

/** A module's own trace event (FREB's area events: URL_REWRITE_START, GENERAL_SEND_CUSTOM_ERROR …). */
export interface ModuleTraceEvent {
  readonly key: object;
  readonly module: string;
  /** FREB opcode name, e.g. 'GENERAL_SEND_CUSTOM_ERROR'. */
  readonly opcode: string;
  /** FREB area of the WWW Server provider ('Rewrite', 'StaticFile', 'Cache' …). */
  readonly area: string;
  /** 1 CriticalError … 5 Verbose (FREB levels). */
  readonly level: number;
  readonly data: Readonly<Record<string, string | number | boolean>>;
}

// ---- the catalogue ---------------------------------------------------------------------------

function channel<T>(name: string): TypedChannel<T> {
  return diagnostics_channel.channel(name) as TypedChannel<T>;
}

/** A diagnostics channel whose publish takes one payload type. */
export interface TypedChannel<T> extends Channel {
  publish(message: T): void;
}

export const requestStart = channel<RequestStartEvent>('wharf:request:start');
export const requestDispatch = channel<RequestDispatchEvent>('wharf:request:dispatch');
export const requestEnd = channel<RequestEndEvent>('wharf:request:end');
export const queueEnter = channel<QueueEnterEvent>('wharf:queue:enter');
export const queueLeave = channel<QueueLeaveEvent>('wharf:queue:leave');
export const queueReject = channel<QueueRejectEvent>('wharf:queue:reject');
export const cacheHit = channel<CacheLookupEvent>('wharf:cache:hit');
export const cacheMiss = channel<CacheLookupEvent>('wharf:cache:miss');
export const cacheStore = channel<CacheStoreEvent>('wharf:cache:store');
export const cacheRemove = channel<CacheRemoveEvent>('wharf:cache:remove');
export const connectionOpen = channel<ConnectionEvent>('wharf:connection:open');
export const connectionClose = channel<ConnectionEvent>('wharf:connection:close');
/** Added with the listener's events (issue 15): HTTP.sys's error records; the httperr log subscribes. */
export const httpErr = channel<HttpErrEvent>('wharf:listener:httperr');

export const workerStart = channel<WorkerStartEvent>('wharf:worker:start');
export const workerReady = channel<WorkerEvent>('wharf:worker:ready');
export const workerPing = channel<WorkerPingEvent>('wharf:worker:ping');
export const workerExit = channel<WorkerExitEvent>('wharf:worker:exit');
export const poolRecycle = channel<PoolRecycleEvent>('wharf:pool:recycle');
export const poolState = channel<PoolStateEvent>('wharf:pool:state');
export const configApplied = channel<ConfigAppliedEvent>('wharf:config:applied');
export const configRejected = channel<ConfigRejectedEvent>('wharf:config:rejected');

export const pipelineStart = channel<PipelineRequestEvent>('wharf:pipeline:start');
export const notificationStart = channel<NotificationEvent>('wharf:pipeline:notification:start');
export const notificationEnd = channel<NotificationEvent>('wharf:pipeline:notification:end');
export const moduleStart = channel<ModuleEvent>('wharf:pipeline:module:start');
export const moduleEnd = channel<ModuleEvent>('wharf:pipeline:module:end');
export const handlerChanged = channel<HandlerChangedEvent>('wharf:pipeline:handler');
export const statusSet = channel<StatusSetEvent>('wharf:pipeline:status');
export const moduleTrace = channel<ModuleTraceEvent>('wharf:pipeline:trace');
export const pipelineEnd = channel<PipelineRequestEndEvent>('wharf:pipeline:end');

/** Every channel, by name: the catalogue docs/architecture.md shows. */
export const CHANNELS = [
  requestStart,
  requestDispatch,
  requestEnd,
  queueEnter,
  queueLeave,
  queueReject,
  cacheHit,
  cacheMiss,
  cacheStore,
  cacheRemove,
  connectionOpen,
  connectionClose,
  httpErr,
  workerStart,
  workerReady,
  workerPing,
  workerExit,
  poolRecycle,
  poolState,
  configApplied,
  configRejected,
  pipelineStart,
  notificationStart,
  notificationEnd,
  moduleStart,
  moduleEnd,
  handlerChanged,
  statusSet,
  moduleTrace,
  pipelineEnd,
] as const;
