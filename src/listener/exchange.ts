/**
 * One request/response pair as the listener tracks it, from the parsed head to the last byte
 * written to the client. States are explicit (STYLE.md: no boolean soup for the lifecycle):
 *
 *   queued ──dispatch──▶ dispatched ──response end──▶ done
 *     │                      │ worker died, replay-safe ──▶ queued (once)
 *     └──────────────▶ local (the listener answers itself: 400, 502, 503) ──▶ done
 */
import type { ApplicationConfig, SiteConfig } from '../config/types.js';
import type { Connection } from './connection.js';
import type { RequestHead } from './http-parser.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import type { BandwidthThrottle } from './bandwidth-throttle.js';
import type { CacheableMessage } from '../ipc/messages.js';

export type ExchangeState = 'queued' | 'dispatched' | 'local' | 'done';

/** The listener side of a worker, as an exchange sees it. */
export interface ExchangeOwner {
  sendBody(ex: Exchange, chunk: Buffer): void;
  sendBodyEnd(ex: Exchange): void;
  pauseResponse(ex: Exchange): void;
  resumeResponse(ex: Exchange): void;
  abort(ex: Exchange): void;
}

export class Exchange {
  state: ExchangeState = 'queued';
  readonly conn: Connection;
  readonly head: RequestHead;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** What the W3C line logs instead of path and query (URL Rewrite logRewrittenUrl). */
  logPath: string | undefined = undefined;
  logQuery = '';
  readonly site: SiteConfig | undefined;
  readonly application: ApplicationConfig | undefined;
  readonly poolName: string;
  /** performance.now() when the head was parsed (time-taken starts here). */
  readonly startedAt: number;
  /** GET/HEAD/OPTIONS/TRACE without a body: may be replayed once on another worker. */
  readonly replayable: boolean;
  replayed = false;

  // Worker side
  owner: ExchangeOwner | undefined = undefined;
  stream = 0;

  // Request body
  bodyQueue: Buffer[] | undefined = undefined; // held while not dispatched
  bodyQueued = 0;
  bodyDone: boolean;
  /** Trailer fields after a chunked body (flat name/value pairs), for the worker's RequestEnd. */
  requestTrailers: readonly string[] | undefined = undefined;
  bytesReceived: number;

  // Response
  responded = false;
  status = 0;
  subStatus = 0;
  win32Status = 0;
  username = '';
  /** Bytes produced for the client but not yet written (this exchange is not head-of-line). */
  out: Buffer[] = [];
  outBytes = 0;
  /** Some byte of the response reached the client socket: replay is impossible from here. */
  wrote = false;
  bytesSent = 0;
  noBody = false;
  chunked = false;
  /** Content-Length bytes still expected from the worker (-1: not counting). */
  remaining = -1;
  keepAlive: boolean;
  /** The response was a 101: the connection carries the new protocol's bytes both ways. */
  tunnel = false;
  ended = false;
  responsePaused = false;
  /** Write a W3C line when done (the worker's HttpLoggingModule may say no). */
  logged = true;
  /** httperr reason for a listener-generated answer (or a dropped request). */
  httpErrReason: HttpErrReason | undefined = undefined;

  /** The worker asked us to stop reading this request's body (undone if the worker dies). */
  bodyPausedByWorker = false;

  // QoS (qos-limits.ts)
  /** Paced by maxBandwidth / maxGlobalBandwidth: never stored in the response cache (IIS doesn't either). */
  throttled = false;
  /** The pacing applied to this response's bytes, when throttled. */
  throttle: BandwidthThrottle | undefined = undefined;
  /** Counted against serverRuntime appConcurrentRequestLimit until completed or cancelled. */
  concurrencySlot = false;

  /** The response's headers, kept only when the site's log has ResponseHeader custom fields. */
  responseHeaders: readonly string[] | undefined = undefined;
  /** The worker allowed the listener to cache this response (kernel cache policy). */
  cacheHint: CacheableMessage | undefined = undefined;
  /** Response cache key when the request could be served from (and fill) the cache. */
  cacheKey: string | undefined = undefined;

  constructor(init: {
    conn: Connection;
    head: RequestHead;
    path: string;
    query: string;
    site: SiteConfig | undefined;
    application: ApplicationConfig | undefined;
    poolName: string;
    startedAt: number;
  }) {
    const head = init.head;
    this.conn = init.conn;
    this.head = head;
    this.method = head.method;
    this.path = init.path;
    this.query = init.query;
    this.site = init.site;
    this.application = init.application;
    this.poolName = init.poolName;
    this.startedAt = init.startedAt;
    const hasBody = head.chunked || head.contentLength > 0;
    this.bodyDone = !hasBody;
    this.bytesReceived = head.headBytes;
    this.keepAlive = head.keepAlive;
    const m = head.method;
    this.replayable = !hasBody && (m === 'GET' || m === 'HEAD' || m === 'OPTIONS' || m === 'TRACE');
  }

  /** 'HTTP/1.1' or 'HTTP/1.0' without building the string per request. */
  get protocol(): string {
    const h = this.head;
    if (h.versionMajor === 1) return h.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    return 'HTTP/' + h.versionMajor + '.' + h.versionMinor;
  }

  get isHead(): boolean {
    return this.method === 'HEAD';
  }

  /** Content-Length for the worker: -1 chunked, 0 none. */
  get requestContentLength(): number {
    if (this.head.chunked) return -1;
    return this.head.contentLength > 0 ? this.head.contentLength : 0;
  }

  /** Forget everything the dead worker produced, so the request can run again. */
  resetForReplay(): void {
    this.state = 'queued';
    this.replayed = true;
    this.owner = undefined;
    this.stream = 0;
    this.responded = false;
    this.status = 0;
    this.subStatus = 0;
    this.win32Status = 0;
    this.username = '';
    this.out = [];
    this.outBytes = 0;
    this.bytesSent = 0;
    this.noBody = false;
    this.chunked = false;
    this.remaining = -1;
    this.keepAlive = this.head.keepAlive;
    this.ended = false;
    this.responsePaused = false;
    this.logged = true;
    this.cacheHint = undefined;
    this.responseHeaders = undefined;
  }
}
