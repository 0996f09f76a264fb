/**
 * What the rest of the listener (pools, workers, the cache, logs) needs from the client connection
 * an exchange arrived on, whatever its protocol: an HTTP/1.x connection (connection.ts) or an
 * HTTP/2 session (h2-connection.ts), where the same methods act on the exchange's own stream.
 */
import type { Exchange } from './exchange.js';
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
