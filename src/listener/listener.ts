/**
 * The listener (HTTP.sys's role): owns the listening sockets and every client connection, routes
 * requests to their pool's queue, answers what it must answer itself, and writes the W3C and
 * httperr logs. It never runs application code and never imports worker code.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { AppHostConfig, ApplicationConfig } from '../config/types.js';
import { IpcError, ListenerError } from '../errors.js';
import type { ConfigMessage, LogMessage, ResponseEndMessage, ResponseHeadMessage } from '../ipc/messages.js';
import type { RequestRouting, WorkerSupply } from '../was/activation.js';
import { poolKey, type PoolKey } from '../config/pool-key.js';
import type { PoolSettings } from '../was/pool-settings.js';
import { Connection, type ConnectionHost } from './connection.js';
import type { ClientConnection } from './client-connection.js';
import { createSessionFactory, Http2Connection } from './h2-connection.js';
import type { Http2Server } from 'node:http2';
import { headerValue } from './header-value.js';
import { isFinal, setInvalidTransitionHandler, type Exchange } from './exchange.js';
import { cacheHit, cacheMiss, connectionClose, connectionOpen, httpErr, queueReject, requestEnd, type HttpErrEvent, type RequestEndEvent } from '../diagnostics.js';
import { DEFAULT_PARSER_LIMITS, type ParserLimits, type RequestHead } from './http-parser.js';
import type { HttpSysErrorPage } from './http-response.js';
import { HttpErrLog, type HttpErrEntry, type HttpErrReason } from './logging/httperr-log.js';
import { NO_HEADERS, type LogRecord } from './logging/log-record.js';
import { PoolQueue, type PoolQueueHost } from './pool-queue.js';
import { DEFAULT_SERVER_QOS, SiteQos, serverQos, type ServerQos } from './qos-limits.js';
import { TimerWheel } from './timer-wheel.js';
import { ResponseCache, type CachedResponse } from './response-cache.js';
import type { ExchangeOwner } from './exchange.js';
import { normalizeAddress, RoutingTable, type Endpoint } from './routing.js';
import { SiteLogs } from './logging/site-logs.js';
import { FailedRequestLogs, type TraceFileInfo } from './logging/failed-request-logs.js';
import { WorkerEndpoint, type WorkerEndpointEvents } from './worker-endpoint.js';
import { CONFIG_ERROR, IpRestrictions, PENDING, type IpDenial } from './ip-restrictions.js';
import { NO_CERTIFICATES, TlsTermination, type AlpnChallenges, type CertificateMaterial, type CertificateProvider, type SecureConnection } from './tls-termination.js';

export interface ListenerLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface ListenerOptions {
  readonly logger: ListenerLogger;
  /** Folder for httperr logs (HTTP.sys: %windir%\System32\LogFiles\HTTPERR). */
  readonly httpErrDirectory: string;
  /** The activation service: where workers come from (demand, periodicRestart requests, lost channels). */
  readonly supply: WorkerSupply;
  readonly parserLimits?: ParserLimits;
  /** Certificates for https bindings (the store, the SSL table, the Central Certificate Store). */
  readonly certificates?: CertificateProvider;
}

/** ALPN protocols offered on https bindings, preferred first (sslFlags 4 takes h2 off a binding). */
const ALPN: readonly string[] = ['h2', 'http/1.1'];

/** caching maxCacheSize="0" (IIS: "the system decides"): Wharf keeps up to 64 MiB of responses. */
const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;

/** Cache answers (and the listener's aborts) have no worker behind them. */
const CACHE_OWNER: ExchangeOwner = {
  sendBody() {},
  sendBodyEnd() {},
  pauseResponse() {},
  resumeResponse() {},
  abort() {},
};

/**
 * The cache key of a request the cache may answer, or undefined when HTTP.sys would not serve it
 * from its cache: Authorization, Range / If-Range, Translate, or validators it does not evaluate
 * (If-Match, If-Unmodified-Since) send it to a worker.
 */
function cacheKeyOf(ex: Exchange): string | undefined {
  const raw = ex.head.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    const c = n.charCodeAt(0) | 0x20;
    if (c !== 0x61 && c !== 0x72 && c !== 0x69 && c !== 0x74) continue; // a, r, i, t
    const lower = n.toLowerCase();
    if (lower === 'authorization' || lower === 'range' || lower === 'if-range' || lower === 'translate' || lower === 'if-match' || lower === 'if-unmodified-since') return undefined;
  }
  // https and http answers are kept apart (an absolute Location, HSTS, a page that says which).
  return (ex.conn.secure ? 's' : '') + ex.site!.id + ' ' + (ex.head.host ?? '').toLowerCase() + ' ' + ex.path + (ex.query === '' ? '' : '?' + ex.query);
}

/** If-None-Match (weak comparison) or, without it, If-Modified-Since against the cached validators. */
function notModified(raw: readonly string[], e: CachedResponse): boolean {
  let inm: string | undefined;
  let ims: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === 13 && n.toLowerCase() === 'if-none-match') inm = raw[i + 1];
    else if (n.length === 17 && n.toLowerCase() === 'if-modified-since') ims = raw[i + 1];
  }
  if (inm !== undefined) {
    if (e.etag === undefined) return false;
    if (inm.trim() === '*') return true;
    const strip = (t: string): string => t.trim().replace(/^W\//, '');
    const mine = strip(e.etag);
    return inm.split(',').some((t) => strip(t) === mine);
  }
  if (ims !== undefined && e.lastModifiedMs !== undefined) {
    const t = Date.parse(ims);
    return !Number.isNaN(t) && e.lastModifiedMs <= t;
  }
  return false;
}

/** During shutdown, a keep-alive connection idle this long is closed (see close()). */
const DRAIN_IDLE_MS = 2000;

function endpointKey(e: Endpoint): string {
  return `[${e.address}]:${e.port}`;
}

export class Listener implements ConnectionHost, PoolQueueHost, WorkerEndpointEvents, RequestRouting {
  routing: RoutingTable;
  readonly parserLimits: ParserLimits;
  draining = false;
  readonly serverHeader: string | null = 'Wharf/0.1';
  readonly timers = new TimerWheel();
  qos: ServerQos = DEFAULT_SERVER_QOS;
  /** Per-site limits and connection counts, by site id (kept across configuration changes). */
  readonly #siteQos = new Map<number, SiteQos>();
  /** Requests in progress (submitted, not yet completed): serverRuntime appConcurrentRequestLimit. */
  #inProgress = 0;
  readonly #o: ListenerOptions;
  readonly #servers = new Map<string, Server>();
  readonly #connections = new Set<ClientConnection>();
  readonly #pools = new Map<PoolKey, PoolQueue>();
  /** Application → its pool's queue, so routing a request needs no name lookup. */
  #appPools = new WeakMap<ApplicationConfig, PoolQueue>();
  /** Per-site (or central) W3C, IIS and NCSA request logs. */
  readonly #siteLogs: SiteLogs;
  readonly #httpErr: HttpErrLog;
  /** #onRequestEnd is subscribed to requestEnd (some site writes a request log). */
  #logsSubscribed = false;
  /** Failed Request Tracing files, written here for the workers that traced them. */
  readonly #failedRequests: FailedRequestLogs;
  readonly #cache = new ResponseCache({ maxBytes: DEFAULT_CACHE_BYTES });
  readonly #computerName = hostname();
  #config: ConfigMessage | undefined;
  #appHost: AppHostConfig | undefined;
  /** Sites an administrator started or stopped (`wharf start|stop site`), over serverAutoStart. */
  readonly #siteStateOverrides = new Map<number, boolean>();
  readonly #workers = new Set<WorkerEndpoint>();
  /** The pools' settings of the applied generation (WAS's, parsed once: pool-settings.ts). */
  #poolSettings: readonly PoolSettings[] = [];
  /** ACME HTTP-01: the key authorization for a host's token, answered before any pool (server.ts sets it). */
  acmeChallenges: ((host: string, token: string) => string | undefined) | undefined = undefined;
  /** ACME TLS-ALPN-01: the acme-tls/1 certificate for a host, presented before any binding's (server.ts sets it). */
  set acmeAlpnChallenges(challenges: AlpnChallenges | undefined) {
    this.#tls.alpnChallenges = challenges;
  }
  /** TLS for https bindings: certificate choice, handshakes. */
  readonly #tls: TlsTermination;
  /** Site-level ipSecurity and dynamicIpSecurity, enforced before the cache or a pool (ip-restrictions.ts). */
  readonly #ip: IpRestrictions;

  constructor(options: ListenerOptions) {
    this.#o = options;
    this.#siteLogs = new SiteLogs({
      onError: (err) => options.logger.warn(err.message),
      notice: (message) => options.logger.warn(message),
    });
    this.#failedRequests = new FailedRequestLogs({
      computerName: hostname(),
      onError: (err) => options.logger.warn(`${err.code}: ${err.message}`),
    });
    this.parserLimits = options.parserLimits ?? DEFAULT_PARSER_LIMITS;
    this.#ip = new IpRestrictions({
      warn: (m) => options.logger.warn(m),
      // A host name was looked up: the request goes on unless its client left meanwhile.
      resume: (ex) => {
        if (ex.state === 'received' && !ex.conn.closed) this.submit(ex);
      },
    });
    this.#tls = new TlsTermination({ provider: options.certificates ?? NO_CERTIFICATES, timers: this.timers, warn: (m) => options.logger.warn(m) });
    this.routing = new RoutingTable({ sites: [], applicationPools: [] } as unknown as AppHostConfig);
    this.#httpErr = new HttpErrLog({
      directory: options.httpErrDirectory,
      onError: (err) => options.logger.warn(err.message),
    });
    // The httperr log is a subscriber (HTTP.sys always writes it: subscribed for the listener's life).
    httpErr.subscribe(this.#onHttpErr);
    // An exchange that changes state against its table is a bug: it costs that request, never the process.
    setInvalidTransitionHandler((_ex, _to, err) => options.logger.error(`${err.code}: ${err.message}\n${err.stack ?? ''}`));
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  pool(key: PoolKey): PoolQueue | undefined {
    return this.#pools.get(key);
  }

  get pools(): IterableIterator<PoolQueue> {
    return this.#pools.values();
  }

  /**
   * Apply a (new) configuration: routing table, pools, site logs and listening sockets. Sockets
   * for endpoints that remain are kept open (a config edit never drops connections). Throws
   * LSN_BIND when a new endpoint cannot be listened on; the old endpoints then stay as they were.
   */
  async apply(config: AppHostConfig, message: ConfigMessage, pools: readonly PoolSettings[]): Promise<ListeningChange> {
    this.#poolSettings = pools;
    const started = new Set<number>();
    for (const site of config.sites) if (this.#siteStateOverrides.get(site.id) ?? site.serverAutoStart) started.add(site.id);
    const routing = new RoutingTable(config, { startedSites: started });
    const wanted = new Map(routing.endpoints.map((e) => [endpointKey(e), e]));
    const opened: string[] = [];
    try {
      for (const [key, e] of wanted) {
        if (this.#servers.has(key)) continue;
        this.#servers.set(key, await this.#listen(e));
        opened.push(key);
      }
    } catch (err) {
      for (const key of opened) {
        this.#servers.get(key)?.close();
        this.#servers.delete(key);
      }
      throw err;
    }
    // What changed, for the "generation N applied" line: an administrator who moved a binding
    // wants to read where Wharf listens now and what it stopped listening on.
    const change: ListeningChange = { started: opened.map((key) => shownAddress(this.#servers.get(key)!, key)), stopped: [] };
    for (const [key, server] of this.#servers) {
      if (!wanted.has(key)) {
        change.stopped.push(shownAddress(server, key));
        server.close();
        this.#servers.delete(key);
      }
    }
    this.routing = routing;
    this.#appPools = new WeakMap();
    this.#config = message;
    this.#appHost = config;
    for (const u of routing.unserved) this.#o.logger.warn(`site "${u.site.name}": ${u.binding.protocol} binding ${u.binding.bindingInformation} is not served: ${u.reason}`);
    this.#reportCertificates();
    // Pools: new ones get queues, changed queueLength applies, removed ones stop and drain.
    // The pools' settings are WAS's, parsed once per generation (pool-settings.ts).
    const poolKeys = new Set<PoolKey>();
    for (const p of pools) {
      let q = this.#pools.get(p.key);
      poolKeys.add(p.key);
      if (q === undefined) this.#pools.set(p.key, (q = new PoolQueue(p.name, p.queueLength, this)));
      else q.queueLength = p.queueLength;
      q.maxProcesses = p.maxProcesses;
      q.requestLimit = p.recycling.requests;
    }
    for (const [key, q] of this.#pools) {
      if (poolKeys.has(key)) continue;
      q.stop('AppShutdown');
      for (const w of q.workers) w.drain();
      this.#pools.delete(key);
    }
    this.#siteLogs.apply(config);
    // The request logs subscribe to requestEnd only while some site writes one: with logging off
    // everywhere, requestEnd has no subscriber and completing a request builds nothing.
    if (this.#siteLogs.active !== this.#logsSubscribed) {
      this.#logsSubscribed = !this.#logsSubscribed;
      if (this.#logsSubscribed) requestEnd.subscribe(this.#onRequestEnd);
      else requestEnd.unsubscribe(this.#onRequestEnd);
    }
    this.#failedRequests.apply(config);
    this.#ip.apply(config);
    this.#applyQos(config);
    // A new configuration may change any response: start the cache afresh (IIS flushes too).
    const maxCacheSize = config.section('system.webServer/caching').num('maxCacheSize');
    this.#cache.maxBytes = maxCacheSize > 0 ? maxCacheSize * 1024 * 1024 : DEFAULT_CACHE_BYTES;
    this.#cache.clear();
    for (const w of this.#workers) if (w.state !== 'closed') w.reconfigure(message);
    return change;
  }

  /** Whether a site is being served (its bindings are routed). */
  siteStarted(siteId: number): boolean {
    return this.routing.sites.some((r) => r.site.id === siteId);
  }

  /**
   * Start or stop a site (admin). A stopped site's bindings are no longer routed, and a port
   * only it used stops listening; requests already in progress finish. Throws LSN_BIND when a
   * started site's port cannot be listened on (the site then stays stopped).
   */
  async setSiteStarted(siteId: number, started: boolean): Promise<void> {
    if (this.#appHost === undefined || this.#config === undefined) return;
    const before = this.#siteStateOverrides.get(siteId);
    this.#siteStateOverrides.set(siteId, started);
    try {
      await this.apply(this.#appHost, this.#config, this.#poolSettings);
    } catch (err) {
      if (before === undefined) this.#siteStateOverrides.delete(siteId);
      else this.#siteStateOverrides.set(siteId, before);
      throw err;
    }
  }

  #listen(e: Endpoint): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true, keepAlive: false }, (socket: Socket) => this.#accept(socket));
      const onError = (err: NodeJS.ErrnoException): void => {
        if (e.address === '::' && (err.code === 'EAFNOSUPPORT' || err.code === 'EADDRNOTAVAIL')) {
          // No IPv6 on this host: the wildcard is IPv4 only.
          server.removeListener('error', onError);
          server.once('error', (err2: NodeJS.ErrnoException) => reject(bindError(e, err2)));
          server.listen({ host: '0.0.0.0', port: e.port, backlog: 511 }, () => resolve(server));
          return;
        }
        reject(bindError(e, err));
      };
      server.once('error', onError);
      server.listen({ host: e.address, port: e.port, backlog: 511, ipv6Only: false }, () => {
        server.removeListener('error', onError);
        server.on('error', (err: Error) => this.#o.logger.error(`listening socket ${endpointKey(e)} failed: ${err.message}`));
        resolve(server);
      });
    });
  }

  /** Actual bound addresses (port 0 in a binding is not allowed by IIS, but tests read this). */
  addresses(): Array<{ address: string; port: number }> {
    const out: Array<{ address: string; port: number }> = [];
    for (const s of this.#servers.values()) {
      const a = s.address();
      if (a !== null && typeof a === 'object') out.push({ address: a.address, port: a.port });
    }
    return out;
  }

  #accept(socket: Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    // A flooding address its IP restrictions keep refusing is reset unread (ip-restrictions.ts):
    // an RST ends the connection at once, with no FIN exchange or TIME_WAIT on this side.
    if (this.#ip.active && this.#ip.shunned(normalizeAddress(socket.remoteAddress ?? ''))) {
      socket.resetAndDestroy();
      return;
    }
    // Whether a port speaks TLS is the routing table's answer now: a binding moved from http to
    // https on the same port applies to the next connection without reopening the socket.
    if (this.routing.isSecurePort(socket.localPort ?? 0)) {
      socket.setNoDelay(true);
      this.#tls.accept(socket, this.routing, ALPN, this.#secured);
      return;
    }
    const conn = new Connection(socket, this);
    this.#connections.add(conn);
  }

  readonly #secured = (c: SecureConnection): void => {
    if (this.draining) {
      c.socket.destroy();
      return;
    }
    const conn = c.socket.alpnProtocol === 'h2' ? new Http2Connection(c, this, (this.#h2 ??= createSessionFactory(this.parserLimits))) : new Connection(c.socket, this, c);
    this.#connections.add(conn);
  };

  /** Makes the HTTP/2 sessions (created on the first h2 connection). */
  #h2: Http2Server | undefined;

  /** The certificates changed (store, SSL table, CCS files): new handshakes use the new ones. */
  certificatesChanged(): void {
    this.#tls.invalidate();
    if (this.#appHost !== undefined) this.#reportCertificates();
  }

  /** The certificate a port serves when no SSL table entry names one (the embedded default's development certificate). */
  setFallbackCertificates(byPort: ReadonlyMap<number, CertificateMaterial>): void {
    this.#tls.fallback = byPort;
  }

  /** One line per https binding that cannot present a certificate, and per binding not served. */
  #reportCertificates(): void {
    const bindings: Array<{ site: string; binding: AppHostConfig['sites'][number]['bindings'][number] }> = [];
    for (const r of this.routing.sites) for (const b of r.site.bindings) bindings.push({ site: r.site.name, binding: b });
    for (const line of this.#tls.problems(bindings)) this.#o.logger.warn(line);
  }

  // ---- workers ---------------------------------------------------------------------------------

  #worker(pool: PoolKey, pid: number): WorkerEndpoint | undefined {
    for (const w of this.#workers) if (w.pid === pid && w.poolKey === pool && w.state !== 'closed') return w;
    return undefined;
  }

  // ---- RequestRouting (WAS → listener) ---------------------------------------------------------

  /** Dispatch nothing more to a worker; it finishes its requests and exits (recycle, idle, stop). */
  drainWorker(pool: PoolKey, pid: number): void {
    this.#worker(pool, pid)?.drain();
  }

  /** Treat a worker as gone without waiting for it to exit (orphanWorkerProcess): close its channel. */
  abandonWorker(pool: PoolKey, pid: number): void {
    this.#worker(pool, pid)?.destroy();
  }

  /** Requests in flight on a worker and when it was last busy (WAS's idle timeout). */
  workerActivity(pool: PoolKey, pid: number): { outstanding: number; lastActivity: number; served: number } | undefined {
    const w = this.#worker(pool, pid);
    return w === undefined ? undefined : { outstanding: w.outstanding, lastActivity: w.lastActivity, served: w.served };
  }

  /** WAS heard the worker's Ready on its control channel. */
  workerReady(pool: PoolKey, pid: number): void {
    this.#worker(pool, pid)?.ready();
  }

  /** A worker process is gone: waiting requests may need another one. */
  workerExited(pool: PoolKey): void {
    this.#pools.get(pool)?.ensureCapacity();
  }

  poolStopped(pool: PoolKey, reason: 'Disabled' | 'AppOffline', resetConnections: boolean): void {
    this.#pools.get(pool)?.stop(reason, resetConnections);
  }

  poolStarted(pool: PoolKey): void {
    this.#pools.get(pool)?.start();
  }

  /** Workers keep failing to start: what is queued gets 503 AppOffline; the next request tries again. */
  poolGaveUp(pool: PoolKey): void {
    const q = this.#pools.get(pool);
    if (q === undefined) return;
    q.stop('AppOffline');
    q.start();
  }

  /** The hosted app's process count (bounded by WAS): the web garden grows to it. */
  poolProcessHint(pool: PoolKey, processes: number): void {
    const q = this.#pools.get(pool);
    if (q !== undefined) q.hintedProcesses = processes;
  }

  /** Every request being served by a worker (admin: `wharf list requests`). */
  requestsInFlight(): Array<{ id: string; verb: string; url: string; elapsedMs: number; client: string; siteId: number; pid: number; pool: string }> {
    const now = performance.now();
    const out = [];
    for (const w of this.#workers) {
      for (const [stream, ex] of w.inflight()) {
        out.push({
          id: (w.pid >>> 0).toString(16).padStart(8, '0') + (stream >>> 0).toString(16).padStart(8, '0'),
          verb: ex.method,
          url: ex.head.target,
          elapsedMs: Math.round(now - ex.startedAt),
          client: ex.conn.remoteAddress,
          siteId: ex.site?.id ?? 0,
          pid: w.pid,
          pool: w.poolName,
        });
      }
    }
    return out;
  }

  /** The activation service started a worker: open its request channel and configure it. */
  attachWorker(pool: PoolKey, poolName: string, pid: number, socket: Duplex, assign?: Readonly<Record<string, string>>): void {
    const ep = new WorkerEndpoint(pool, poolName, pid, socket, this);
    this.#workers.add(ep);
    if (this.#config !== undefined) ep.init(assign === undefined ? { ...this.#config, poolName } : { ...this.#config, poolName, assign });
  }

  // ---- WorkerEndpointEvents --------------------------------------------------------------------

  ready(ep: WorkerEndpoint): void {
    const q = this.pool(ep.poolKey);
    if (q === undefined) {
      ep.drain();
      return;
    }
    q.workerReady(ep);
  }

  closed(ep: WorkerEndpoint, orphans: Exchange[]): void {
    this.#workers.delete(ep);
    const q = this.pool(ep.poolKey);
    q?.workerGone(ep);
    let replayed = 0;
    let answered = 0;
    let reset = 0;
    for (const ex of orphans) {
      if (ex.conn.closed) continue;
      if (ex.replayable && !ex.replayed && !ex.wrote && q !== undefined && q.state === 'Started') {
        // Nothing reached the client and the request is safe to repeat: run it again.
        ex.resetForReplay();
        q.requeueFront(ex);
        replayed++;
      } else if (!ex.wrote) {
        answered++;
        // Nothing reached the client: the listener answers in the exchange's slot instead.
        ex.out = [];
        ex.outBytes = 0;
        ex.owner = undefined;
        this.reject(ex, 'badGateway', 'Connection_Abandoned_By_AppPool');
      } else {
        // Part of the response is already on the wire: the only honest signal is a reset.
        this.#httpErrFor(ex.conn, 'Connection_Abandoned_By_AppPool', undefined, ex, ex.head);
        ex.conn.destroy();
        reset++;
      }
    }
    if (replayed + answered + reset !== 0) {
      const err = new IpcError('IPC_CLOSED', `its channel closed with requests in flight: ${replayed} replayed, ${answered} answered 502, ${reset} reset mid-response`);
      this.#o.logger.warn(`[${ep.poolName} pid ${ep.pid}] ${err.code}: ${err.message}`);
    }
    this.#o.supply.requestChannelClosed(ep.poolKey, ep.pid);
    q?.ensureCapacity();
  }

  idle(ep: WorkerEndpoint): void {
    this.pool(ep.poolKey)?.workerIdle();
  }

  refetch(ep: WorkerEndpoint, ex: Exchange): void {
    const q = this.pool(ep.poolKey);
    if (ex.conn.closed || isFinal(ex.state)) return;
    if (q !== undefined && q.state === 'Started') {
      // Nothing reached the client: the same request again, answered with its bytes this time.
      const replayed = ex.replayed;
      ex.resetForReplay();
      ex.replayed = replayed;
      ex.fileReferences = false;
      q.requeueFront(ex);
    } else {
      ex.owner = undefined;
      this.reject(ex, 'badGateway', 'Connection_Abandoned_By_AppPool');
    }
  }

  traceRecord(ep: WorkerEndpoint, json: Buffer): void {
    this.#failedRequests.accept(ep.poolName, ep.pid, json);
  }

  /** Failed-request trace files written since start that still exist (`wharf list traces`). */
  traces(): TraceFileInfo[] {
    return this.#failedRequests.list();
  }

  log(ep: WorkerEndpoint, msg: LogMessage): void {
    const text = `[${ep.poolName} pid ${ep.pid}] ${msg.message}`;
    if (msg.level === 'error') this.#o.logger.error(text);
    else if (msg.level === 'warn') this.#o.logger.warn(text);
    else this.#o.logger.info(text);
  }

  // ---- ConnectionHost / PoolQueueHost ----------------------------------------------------------

  submit(ex: Exchange): void {
    if (this.#ip.active) {
      const denied = this.#ip.check(ex);
      if (denied !== undefined) {
        if (denied !== PENDING) this.#refuse(ex, denied);
        return;
      }
    }
    if (!this.#admit(ex)) return;
    // The response cache answers before any pool is involved (HTTP.sys serves kernel-cached
    // responses even while the application pool is stopped).
    if ((ex.method === 'GET' || ex.method === 'HEAD') && ex.bodyDone) {
      const key = cacheKeyOf(ex);
      if (key !== undefined) {
        const hit = this.#cache.lookup(key, ex.head.rawHeaders, ex.head.versionMinor === 0);
        if (hit !== undefined) {
          if (cacheHit.hasSubscribers) cacheHit.publish({ key: ex, siteId: ex.site!.id, cacheKey: key });
          this.#serveCached(ex, hit);
          return;
        }
        if (cacheMiss.hasSubscribers) cacheMiss.publish({ key: ex, siteId: ex.site!.id, cacheKey: key });
        if (ex.method === 'GET') {
          this.#cache.noteRequest(key);
          ex.cacheKey = key;
        }
      }
    }
    const app = ex.application!;
    let q = this.#appPools.get(app);
    if (q === undefined) {
      q = this.pool(poolKey(ex.poolName));
      if (q !== undefined) this.#appPools.set(app, q);
    }
    if (q === undefined) {
      if (queueReject.hasSubscribers) queueReject.publish({ key: ex, poolName: ex.poolName, reason: 'AppOffline' });
      this.reject(ex, 'serviceUnavailable', 'AppOffline');
      return;
    }
    q.submit(ex);
  }

  /** A worker's response that may be kept (see response-cache.ts for the rules). */
  cacheable(ex: Exchange, head: ResponseHeadMessage, body: Buffer, end: ResponseEndMessage): void {
    if (ex.cacheKey === undefined || ex.cacheHint === undefined || ex.replayed || ex.throttle !== undefined) return;
    // The frame buffer may be shared with other responses: keep a copy of just this body.
    this.#cache.offer(ex.cacheKey, ex.cacheHint, head.status, head.reason, head.headers, Buffer.from(body), end.log);
  }

  /** Answer from the cache: a fresh Date, HEAD without a body, 304 for a matching validator. */
  #serveCached(ex: Exchange, e: CachedResponse): void {
    // The cache takes the worker's place: its owner has nothing to forward or pause.
    ex.answeredBy = 'cache';
    ex.owner = CACHE_OWNER;
    ex.to('dispatched');
    ex.logged = e.log; // httpLogging dontLog / selectiveLogging decided for the URL
    const conn = ex.conn;
    if (notModified(ex.head.rawHeaders, e)) {
      conn.responseHead(ex, 304, '', e.notModifiedHeaders);
    } else if (conn.responseCached?.(ex, e) === true) {
      // written whole, from the entry's prepared head
    } else {
      conn.responseHead(ex, e.status, e.reason, e.headers);
      if (!ex.isHead) conn.responseBody(ex, e.body);
    }
    conn.responseEnd(ex, 0, 0, '', false, false);
  }

  /** Response cache figures (tests, admin). */
  get cacheStats(): { entries: number; bytes: number; hits: number; stored: number; invalidated: number; evicted: number } {
    return { entries: this.#cache.size, bytes: this.#cache.bytes, ...this.#cache.stats };
  }

  // ---- QoS (qos-limits.ts) -----------------------------------------------------------------------

  #applyQos(config: AppHostConfig): void {
    this.qos = serverQos(config, this.qos);
    const seen = new Set<number>();
    for (const site of config.sites) {
      seen.add(site.id);
      let q = this.#siteQos.get(site.id);
      if (q === undefined) this.#siteQos.set(site.id, (q = new SiteQos(site.id)));
      q.configure(site, this.qos);
    }
    for (const id of this.#siteQos.keys()) if (!seen.has(id)) this.#siteQos.delete(id);
  }

  /**
   * The listener's admission checks, before the cache or a pool sees the request: the site's
   * maxConnections (a connection counts for the site its first request routed to; over the
   * limit → 503 ConnLimit and the connection closes) and appConcurrentRequestLimit (→ 503.2,
   * which IIS logs in the site's log as 503 2, not in httperr). Also marks throttled responses.
   */
  #admit(ex: Exchange): boolean {
    const conn = ex.conn;
    const site = this.#siteQos.get(ex.site!.id);
    if (conn.qos === undefined && site !== undefined) {
      if (site.connections >= site.maxConnections) {
        ex.keepAlive = false;
        if (queueReject.hasSubscribers) queueReject.publish({ key: ex, poolName: ex.poolName, reason: 'ConnLimit' });
        this.reject(ex, 'serviceUnavailable', 'ConnLimit');
        return false;
      }
      site.connections++;
      conn.qos = site;
      if (connectionOpen.hasSubscribers) connectionOpen.publish({ key: conn, siteId: site.siteId, remoteAddress: conn.remoteAddress, localPort: conn.localPort });
    }
    if (this.#inProgress >= this.qos.appConcurrentRequestLimit) {
      ex.subStatus = 2;
      conn.respondLocally(ex, 'serviceUnavailable', undefined);
      return false;
    }
    this.#inProgress++;
    ex.concurrencySlot = true;
    const throttle = site?.throttle;
    if (throttle !== undefined) ex.throttle = throttle;
    return true;
  }

  /**
   * An IP restriction's answer: the deny action's page with its sub-status, logged in the site's
   * W3C log (as IIS logs 403.503), or for AbortRequest a reset connection (HTTP/2: the stream),
   * logged with 403 and the sub-status and no bytes sent, as a worker's abort is.
   */
  #refuse(ex: Exchange, d: IpDenial): void {
    if (d !== CONFIG_ERROR) this.#ip.refused(ex);
    ex.subStatus = d.subStatus;
    // The connection closes after the answer: whatever else the client pipelined on it is not
    // read, so a denied flood costs a connection per request, not a parse per request.
    ex.keepAlive = false;
    if (d.status !== 0) {
      ex.conn.respondLocally(ex, d.status === 401 ? 'unauthorized' : d.status === 404 ? 'notFound' : d.status === 403 ? 'forbidden' : 'internalError', undefined);
      return;
    }
    ex.answeredBy = 'listener';
    ex.owner = CACHE_OWNER;
    ex.to('dispatched');
    ex.status = 403;
    ex.conn.responseEnd(ex, d.subStatus, 0, '', true, true);
  }

  #release(ex: Exchange): void {
    this.#ip.release(ex);
    if (!ex.concurrencySlot) return;
    ex.concurrencySlot = false;
    this.#inProgress--;
  }

  demand(pool: PoolQueue): void {
    this.#o.supply.demand(pool.key);
  }

  reject(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason, reset = false): void {
    this.#httpErrFor(ex.conn, reason, undefined, ex, ex.head);
    if (reset) {
      // loadBalancerCapabilities TcpLevel: a load balancer in front sees a dead server at once.
      ex.conn.reset();
      return;
    }
    ex.conn.respondLocally(ex, page, reason);
  }

  queueTimeoutMs(ex: Exchange): number {
    return this.#siteQos.get(ex.site!.id)?.connectionTimeoutMs ?? 120_000;
  }

  expire(ex: Exchange): void {
    // HTTP.sys's timers end silently: the connection is dropped, the reason goes to httperr.
    this.#httpErrFor(ex.conn, 'Timer_AppPool', undefined, ex, ex.head);
    ex.conn.finish(ex, 'dropped');
    ex.conn.destroy();
  }

  requestLimitReached(pool: PoolQueue, w: WorkerEndpoint): void {
    this.#o.supply.requestLimitReached(pool.key, w.pid);
  }

  cancel(ex: Exchange): void {
    this.#release(ex);
    if (ex.state === 'queued') ex.queue?.leave(ex, 'cancelled');
    else if (ex.withOwner) ex.owner!.abort(ex);
    ex.owner = undefined;
  }

  /** Every exchange ends here once (Connection.finish): the requestEnd event, which the W3C log subscribes to. */
  completed(ex: Exchange, _conn: ClientConnection): void {
    this.#release(ex);
    if (requestEnd.hasSubscribers) {
      const now = performance.now();
      const site = ex.site;
      requestEnd.publish({
        key: ex,
        siteId: site === undefined ? 0 : site.id,
        siteName: site === undefined ? '' : site.name,
        poolName: ex.poolName,
        method: ex.method,
        status: ex.status,
        subStatus: ex.subStatus,
        win32Status: ex.win32Status,
        bytesSent: ex.bytesSent,
        bytesReceived: ex.bytesReceived,
        endedAt: now,
        durationMs: now - ex.startedAt,
        answeredBy: ex.answeredBy,
        aborted: ex.aborted,
      });
    }
  }

  /**
   * The site logs' subscriber to requestEnd (subscribed while some site logs). It reads the
   * exchange (the event's key) for the fields only the W3C line needs, and builds nothing for a
   * request its site does not log.
   */
  readonly #onRequestEnd = (message: unknown): void => {
    // A subscriber's exception would surface as an uncaught exception on the next tick (that is
    // how diagnostics_channel reports them): never let a log line cost the process.
    try {
      this.#writeRequestLog(message as RequestEndEvent);
    } catch (err) {
      this.#o.logger.error(`request log: ${(err as Error).stack ?? String(err)}`);
    }
  };

  #writeRequestLog(ev: RequestEndEvent): void {
    const ex = ev.key as Exchange;
    // Another listener in this process (tests): not ours.
    if (!this.#connections.has(ex.conn)) return;
    // A dropped request has no line; a listener answer with an httperr reason is logged there
    // (503.2, which has none, goes to the site log); dontLog.
    if (ex.state !== 'done' || (ex.answeredBy === 'listener' && ex.httpErrReason !== undefined) || ex.site === undefined || !ex.logged) return;
    const log = this.#siteLogs.get(ex.site.id);
    if (log === undefined) return;
    const conn = ex.conn;
    const raw = ex.head.rawHeaders;
    const rec: LogRecord = {
      time: Date.now(),
      siteId: ex.site.id,
      siteName: ex.site.name,
      computerName: this.#computerName,
      serverIp: conn.localAddress,
      method: ex.method,
      uriStem: ex.logPath ?? ex.path,
      uriQuery: ex.logPath === undefined ? ex.query : ex.logQuery,
      serverPort: conn.localPort,
      username: ex.username,
      clientIp: conn.remoteAddress,
      clientPort: conn.remotePort,
      protocolVersion: ex.protocol,
      secure: conn.secure,
      userAgent: headerValue(raw, 'user-agent'),
      cookie: headerValue(raw, 'cookie'),
      referer: headerValue(raw, 'referer'),
      host: ex.head.host ?? '',
      status: ex.status,
      subStatus: ex.subStatus,
      win32Status: ex.win32Status,
      bytesSent: ex.bytesSent,
      bytesReceived: ex.bytesReceived,
      timeTakenMs: Math.round(ev.durationMs),
      appPoolId: ex.poolName,
      requestHeaders: raw,
      responseHeaders: ex.responseHeaders ?? NO_HEADERS,
    };
    log.write(rec);
  }

  /** The httperr log's subscriber: this listener's records only. */
  readonly #onHttpErr = (message: unknown): void => {
    try {
      this.#writeHttpErr(message as HttpErrEvent);
    } catch (err) {
      this.#o.logger.error(`httperr log: ${(err as Error).stack ?? String(err)}`);
    }
  };

  #writeHttpErr(ev: HttpErrEvent): void {
    if (!this.#connections.has(ev.connection as ClientConnection)) return;
    const entry: HttpErrEntry = {
      time: ev.time,
      clientIp: ev.clientIp,
      clientPort: ev.clientPort,
      serverIp: ev.serverIp,
      serverPort: ev.serverPort,
      protocolVersion: ev.protocolVersion,
      method: ev.method,
      uri: ev.uri,
      status: ev.status,
      siteId: ev.siteId,
      reason: ev.reason as HttpErrReason,
      queueName: ev.queueName,
    };
    this.#httpErr.write(entry);
  }

  /** The site's log has custom fields reading response headers: the connection keeps them on the exchange. */
  keepsResponseHeaders(ex: Exchange): boolean {
    return ex.site !== undefined && this.#siteLogs.needsResponseHeaders(ex.site.id);
  }

  httpErr(conn: ClientConnection, reason: HttpErrReason, status: number | undefined, ex: Exchange | undefined, head?: RequestHead): void {
    this.#httpErrFor(conn, reason, status, ex, head);
  }

  #httpErrFor(conn: ClientConnection, reason: HttpErrReason, status: number | undefined, ex: Exchange | undefined, head?: RequestHead): void {
    if (!httpErr.hasSubscribers) return;
    const h = head ?? ex?.head;
    const known = h !== undefined && h.method !== '';
    httpErr.publish({
      key: ex ?? conn,
      connection: conn,
      time: Date.now(),
      clientIp: conn.remoteAddress,
      clientPort: conn.remotePort,
      serverIp: conn.localAddress,
      serverPort: conn.localPort,
      protocolVersion: known ? 'HTTP/' + h.versionMajor + '.' + h.versionMinor : '-',
      method: known ? h.method : '',
      uri: known ? h.target : '',
      status: status ?? statusForReason(reason),
      siteId: ex?.site?.id,
      reason,
      queueName: ex !== undefined && ex.poolName !== '' ? ex.poolName : undefined,
    });
  }

  connectionClosed(conn: ClientConnection): void {
    const site = conn.qos;
    if (site !== undefined) {
      site.connections--;
      if (connectionClose.hasSubscribers) connectionClose.publish({ key: conn, siteId: site.siteId, remoteAddress: conn.remoteAddress, localPort: conn.localPort });
    }
    this.#connections.delete(conn);
  }

  internalError(conn: ClientConnection, err: unknown): void {
    this.#o.logger.error(`internal error on the connection from ${conn.remoteAddress}:${conn.remotePort}: ${(err as Error).stack ?? String(err)}`);
    this.#httpErrFor(conn, 'Internal', undefined, undefined);
  }

  /**
   * Stop accepting, let every connection finish its outstanding requests (answered with
   * Connection: close), then resolve. Connections still open after `timeoutMs` are destroyed.
   */
  async close(timeoutMs: number): Promise<void> {
    this.draining = true;
    for (const s of this.#servers.values()) s.close();
    this.#servers.clear();
    // A busy keep-alive connection is never closed under its client: the client may be writing
    // its next request on it right now, and closing would lose that request (BRIEF.md, "keep-alive
    // close race"). Its next request is answered with Connection: close instead. A connection that
    // has been quiet for DRAIN_IDLE_MS has no request on the way in all likelihood: it is closed,
    // so an idle browser tab does not hold the shutdown for the whole shutdownTimeLimit.
    // HTTP/2 has no such race: a GOAWAY tells the client which streams were taken.
    for (const c of this.#connections) c.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      const now = this.timers.now();
      for (const c of this.#connections) if (c.idleFor(now) >= DRAIN_IDLE_MS) c.destroy();
      await new Promise((r) => setTimeout(r, 25));
    }
    for (const c of this.#connections) c.destroy();
    for (const w of this.#workers) w.drain();
    this.timers.stop();
    if (this.#logsSubscribed) requestEnd.unsubscribe(this.#onRequestEnd);
    this.#logsSubscribed = false;
    httpErr.unsubscribe(this.#onHttpErr);
    await this.#siteLogs.close();
    await this.#httpErr.close();
    await this.#failedRequests.flush();
  }

  async flushLogs(): Promise<void> {
    await this.#siteLogs.flush();
    await this.#httpErr.flush();
  }
}

/** Sockets opened and closed by one apply(), as `address:port` (IPv6 in brackets). */
export interface ListeningChange {
  readonly started: string[];
  readonly stopped: string[];
}

/** The address a server is bound to, as the start-up "listening on" lines show it. */
function shownAddress(server: Server, key: string): string {
  const a = server.address();
  if (a === null || typeof a !== 'object') return key;
  return `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
}

function bindError(e: Endpoint, err: NodeJS.ErrnoException): ListenerError {
  const hint =
    err.code === 'EACCES' && e.port < 1024
      ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE: setcap cap_net_bind_service=+ep "$(command -v node)")'
      : err.code === 'EADDRINUSE'
        ? ' (another process listens there)'
        : '';
  return new ListenerError('LSN_BIND', `cannot listen on ${endpointKey(e)}: ${err.message}${hint}`, { cause: err });
}


function statusForReason(reason: HttpErrReason): number | undefined {
  switch (reason) {
    case 'QueueFull':
    case 'AppOffline':
    case 'Disabled':
    case 'AppShutdown':
    case 'ConnLimit':
      return 503;
    case 'Timer_ConnectionIdle':
    case 'Timer_HeaderWait':
    case 'Timer_EntityBody':
    case 'Timer_MinBytesPerSecond':
    case 'Connection_Abandoned_By_AppPool':
    case 'Connection_Dropped':
      return undefined;
    default:
      return 400;
  }
}
