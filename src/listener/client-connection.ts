/**
 * What the rest of the listener (pools, workers, the cache, logs) needs from the client connection
 * an exchange arrived on, whatever its protocol: an HTTP/1.x connection (connection.ts) or an
 * HTTP/2 session (h2-connection.ts), where the same methods act on the exchange's own stream.
 */
import { requestStart } from '../diagnostics.js';
import type { ConnectionHost } from './connection.js';
import { isFinal, type Exchange } from './exchange.js';
import { headerValue } from './header-value.js';
import type { HttpSysErrorPage } from './http-response.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import type { SiteQos } from './qos-limits.js';
import type { CachedResponse } from './response-cache.js';

export interface ClientConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** TLS (an https binding). */
  readonly secure: boolean;
  /** The TLS facts for the worker, encoded once ('' on plain http). */
  readonly tlsInfo: string;
  /** The site this connection counts for (its first routed request): maxConnections, connectionTimeout. */
  qos: SiteQos | undefined;
  readonly closed: boolean;
  /** The exchange was handed to a worker: forward the body held so far. */
  dispatched(ex: Exchange): void;
  /** The listener answers this request itself (503 queue full, 502 worker lost …). */
  respondLocally(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason | undefined): void;
  responseInterim(ex: Exchange, status: number, headers: readonly string[]): void;
  responseHead(ex: Exchange, status: number, reason: string, headers: readonly string[]): void;
  responseBody(ex: Exchange, chunk: Buffer): void;
  /**
   * A whole cache hit at once, when the connection has a faster way than head + body (HTTP/1.1:
   * the entry's prepared head); false: use responseHead/responseBody.
   */
  responseCached?(ex: Exchange, entry: CachedResponse): boolean;
  responseEnd(ex: Exchange, subStatus: number, win32Status: number, username: string, close: boolean, abort: boolean, trailers?: readonly string[]): void;
  /** Stop reading this exchange's request body (its worker or channel is behind) … */
  pauseForBody(ex: Exchange): void;
  /** … and read it again (one resume per pause). */
  resumeReading(ex: Exchange): void;
  /** Finish the exchange ('done' or 'dropped'), once. */
  finish(ex: Exchange, final: 'done' | 'dropped'): void;
  /** Close the connection at once (an RST where the protocol has one). */
  reset(): void;
  destroy(): void;
  /** Nothing outstanding for this long (ms on the timer wheel's clock); -1 while busy. For the shutdown drain. */
  idleFor(now: number): number;
  /** Shutdown: finish what is in progress, take nothing new (HTTP/2: GOAWAY). */
  drain(): void;
}

/** Request body bytes held for an exchange not yet dispatched before its reading is paused. */
export const MAX_HELD_BODY = 1024 * 1024;

/** wharf:request:start for a new exchange (the caller checks hasSubscribers). */
export function publishRequestStart(ex: Exchange): void {
  const h = ex.head;
  const conn = ex.conn;
  requestStart.publish({
    key: ex,
    siteId: ex.site?.id ?? 0,
    siteName: ex.site?.name ?? '',
    method: ex.method,
    rawUrl: h.target,
    host: h.host ?? '',
    clientIp: conn.remoteAddress,
    clientPort: conn.remotePort,
    localPort: conn.localPort,
    traceparent: headerValue(h.rawHeaders, 'traceparent'),
    tracestate: headerValue(h.rawHeaders, 'tracestate'),
    startedAt: ex.startedAt,
  });
}

/**
 * The exchange was handed to a worker: forward the body held while it waited, and its end if it
 * came; reading resumes if it had paused for the held bytes (MAX_HELD_BODY).
 */
export function forwardHeldBody(ex: Exchange): void {
  const q = ex.bodyQueue;
  if (q !== undefined) {
    const wasOver = ex.bodyQueued > MAX_HELD_BODY;
    ex.bodyQueue = undefined;
    ex.bodyQueued = 0;
    for (const c of q) ex.owner!.sendBody(ex, c);
    if (wasOver) ex.conn.resumeReading(ex);
  }
  if (ex.bodyDone) ex.owner!.sendBodyEnd(ex);
}

/**
 * ClientConnection.finish for both protocols: leave the queue or worker, take the final state and
 * tell the listener, once. False when the exchange was final already.
 */
export function finishExchange(host: ConnectionHost, ex: Exchange, final: 'done' | 'dropped'): boolean {
  const s = ex.state;
  if (isFinal(s)) return false;
  if (s === 'queued' || s === 'dispatched' || s === 'responding') host.cancel(ex);
  if (final === 'dropped') ex.aborted = true;
  ex.to(final);
  host.completed(ex, ex.conn);
  return true;
}
