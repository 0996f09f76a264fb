/**
 * One client connection: parses requests (pipelined or not), hands each to its pool's queue and
 * writes the responses back strictly in request order. The connection is never closed because a
 * worker died or recycled — only because the client or the protocol asks for it (BRIEF.md
 * invariant 1).
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseRequestTarget } from '../http/url-path.js';
import { lastChunk } from '../http/chunked.js';
import { isValidHost, RequestParser, type HttpParseError, type ParserLimits, type ParserSink, type RequestHead } from './http-parser.js';
import {
  cachedDateHeader,
  HTTP_SYS_ERROR_PAGES,
  httpSysErrorPageFor,
  httpSysErrorResponse,
  reasonPhrase,
  serializeResponseHead,
  type HttpSysErrorPage,
} from './http-response.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import { Exchange, isFinal } from './exchange.js';
import { requestStart } from '../diagnostics.js';
import { writeBatch } from '../ipc/write-batch.js';
import { RoutingTable, normalizeAddress } from './routing.js';
import { BandwidthThrottle } from './bandwidth-throttle.js';
import type { ServerQos, SiteQos } from './qos-limits.js';
import { WheelTimer, type TimerOwner, type TimerWheel } from './timer-wheel.js';
import type { SecureConnection } from './tls-termination.js';
import { finishExchange, forwardHeldBody, MAX_HELD_BODY, publishRequestStart, type ClientConnection } from './client-connection.js';
import type { CachedResponse } from './response-cache.js';
import { tlsInfoOf } from './tls-info.js';
import { hstsHeaderLine, httpsRedirectLocation } from './hsts.js';

/** What a connection needs from the listener. */
export interface ConnectionHost {
  readonly routing: RoutingTable;
  readonly parserLimits: ParserLimits;
  /** Draining: answer with Connection: close and take no new requests after the current ones. */
  readonly draining: boolean;
  readonly serverHeader: string | null;
  /** The one wheel every connection timer lives in. */
  readonly timers: TimerWheel;
  /** webLimits (and server-level serverRuntime) values, read live. */
  readonly qos: ServerQos;
  submit(ex: Exchange, conn: ClientConnection): void;
  /** The exchange leaves its pool queue or worker without completing there (client went away …). */
  cancel(ex: Exchange): void;
  /** The exchange is finished (done or dropped): called exactly once for every exchange. */
  completed(ex: Exchange, conn: ClientConnection): void;
  /** The site's log reads response headers (custom fields): keep them on the exchange. */
  keepsResponseHeaders?(ex: Exchange): boolean;
  /** ACME HTTP-01 (RFC 8555 §8.3): the key authorization for a host's token, if one is pending. */
  readonly acmeChallenges?: ((host: string, token: string) => string | undefined) | undefined;
  httpErr(conn: ClientConnection, reason: HttpErrReason, status: number | undefined, ex: Exchange | undefined, head?: RequestHead): void;
  connectionClosed(conn: ClientConnection): void;
  /** An unexpected exception while handling this connection (logged; the connection is dropped). */
  internalError(conn: ClientConnection, err: unknown): void;
}

/** How many requests one connection may have outstanding before we stop reading it. */
const MAX_PIPELINE = 32;
/** Response bytes buffered for a not-yet-head-of-line exchange before its worker is paused. */
const MAX_HELD_OUTPUT = 256 * 1024;
/** Request body bytes held for a queued (not yet dispatched) request before reading pauses. */
/**
 * Request-body bytes read and thrown away once the answer to that request is complete (an early
 * 413, 404.13, 405, a local 503 …), so the connection can carry the client's next request.
 * HTTP.sys gives up draining after its DrainEntityBody timer (2 minutes), which at LAN speed is
 * gigabytes read for nothing; Wharf bounds the bytes: beyond this much it closes the connection.
 */
const MAX_DRAIN_BYTES = 256 * 1024;
/**
 * After closing a connection whose client is still sending: how long its unread bytes may wait
 * (reading stopped, our FIN sent, so the client sees the whole answer and stops) before a reset.
 */
const LINGER_MS = 2000;
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const ACME_PREFIX = '/.well-known/acme-challenge/';

/** The HTTP.sys timer running on a connection: at most one at a time (see #nextTimer). */
type ConnectionTimer = 'Timer_ConnectionIdle' | 'Timer_HeaderWait' | 'Timer_EntityBody' | 'Timer_MinBytesPerSecond';

export class Connection implements ClientConnection, ParserSink, TimerOwner {
  readonly socket: Socket;
  /** The TLS session of an https connection (undefined on plain http). */
  readonly tls: SecureConnection | undefined;
  #tlsInfo: string | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly #host: ConnectionHost;
  readonly #parser: RequestParser;
  /** Outstanding exchanges in request order; [0] owns the socket's output. */
  readonly exchanges: Exchange[] = [];
  /** The exchange whose request body the parser is reading. */
  #receiving: Exchange | undefined;
  /** The exchange whose 101 switched this connection to another protocol (a WebSocket). */
  #tunnel: Exchange | undefined;
  #closing = false;
  #closed = false;
  #out: Buffer[] = [];
  #outBytes = 0;
  #outputBlocked = false;
  #readPauses = 0;
  /** Reading is paused because MAX_PIPELINE requests are outstanding (one pause, one resume). */
  #pipelineFull = false;
  /** The site this connection counts for (its first routed request): maxConnections, connectionTimeout. */
  qos: SiteQos | undefined = undefined;
  readonly #timer: WheelTimer;
  #timerKind: ConnectionTimer = 'Timer_ConnectionIdle';
  /** Last progress in either direction, on the timer wheel's clock. */
  #lastIo: number;
  /** When the first byte of a still incomplete request head arrived (wheel clock); -1: none. */
  #headStartedAt = -1;
  /** When everything handed to the socket should have been sent at minBytesPerSecond (wheel clock). */
  #sendDeadline = 0;
  /** Pacing of the bytes being written (the writing exchange's bandwidth throttle). */
  #throttle: BandwidthThrottle | undefined = undefined;
  #paceTimer: NodeJS.Timeout | undefined = undefined;
  /** #endSocket() was asked for while paced output was still waiting. */
  #endAfterFlush = false;
  /** Body bytes that may still be discarded: of an answered request's body, or after closing. */
  #drainLeft = MAX_DRAIN_BYTES;
  /** Reading stopped for good; the socket is reset when this fires (see LINGER_MS). */
  #lingerTimer: NodeJS.Timeout | undefined = undefined;

  constructor(socket: Socket, host: ConnectionHost, tls?: SecureConnection) {
    this.socket = socket;
    this.tls = tls;
    this.#host = host;
    // A TLS socket's addresses are its TCP socket's.
    const tcp = tls?.raw ?? socket;
    this.remoteAddress = normalizeAddress(tcp.remoteAddress ?? '');
    this.remotePort = tcp.remotePort ?? 0;
    this.localAddress = normalizeAddress(tcp.localAddress ?? '');
    this.localPort = tcp.localPort ?? 0;
    this.#parser = new RequestParser(host.parserLimits, this);
    this.#timer = new WheelTimer(this);
    this.#lastIo = host.timers.now();
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.#lastIo = host.timers.now();
      const tunnel = this.#tunnel;
      if (tunnel !== undefined) {
        // After a 101 the client's bytes are the new protocol's: they go to the worker as they are.
        tunnel.bytesReceived += d.length;
        if (tunnel.withOwner) tunnel.owner!.sendBody(tunnel, d);
        return;
      }
      if (this.#closing && this.#parser.paused) {
        // Nothing more will be parsed: the bytes are no one's. Bounded, then reading stops.
        this.#discard(d.length);
        return;
      }
      try {
        this.#parser.execute(d);
      } catch (err) {
        // A bug must cost this connection, never the listener and everyone else's requests.
        host.internalError(this, err);
        socket.destroy();
        return;
      }
      if (this.#headStartedAt < 0 && this.#parser.inHead) this.#headStartedAt = this.#lastIo;
      this.#armTimer();
    });
    socket.on('drain', () => this.#onDrain());
    socket.on('error', () => undefined); // 'close' follows; resets by clients are routine
    socket.on('close', () => this.#onClose());
    socket.on('end', () => {
      // Half-close from the client: finish what is outstanding, then close our side. In a tunnel
      // the worker's side hears of it and decides when the tunnel ends.
      this.#closing = true;
      const tunnel = this.#tunnel;
      if (tunnel !== undefined) {
        if (tunnel.withOwner) tunnel.owner!.sendBodyEnd(tunnel);
        return;
      }
      if (this.exchanges.length === 0) this.#endSocket();
    });
    this.#armTimer();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get secure(): boolean {
    return this.tls !== undefined;
  }

  /** The connection's TLS facts for the worker, encoded once ('' on plain http). */
  get tlsInfo(): string {
    if (this.tls === undefined) return '';
    return (this.#tlsInfo ??= tlsInfoOf(this.tls));
  }

  /**
   * Reset the connection (RST): a stalled transfer, a load balancer that should see a dead
   * server. A TLS socket is reset through its TCP socket.
   */
  reset(): void {
    try {
      (this.tls?.raw ?? this.socket).resetAndDestroy();
    } catch {
      this.socket.destroy();
    }
    this.socket.destroy();
  }

  /**
   * Nothing outstanding and no byte received or response finished for this long (ms, on the
   * timer wheel's clock); -1 while a request is in progress. For the shutdown drain.
   */
  idleFor(now: number): number {
    return this.exchanges.length === 0 ? now - this.#lastIo : -1;
  }

  // ---- ParserSink ----------------------------------------------------------------------------

  onRequestHead(head: RequestHead): void {
    this.#headStartedAt = -1;
    if (this.#closing) {
      // Requests after we decided to close are not served; their bytes are not anyone's body.
      this.#receiving = undefined;
      this.#parser.pause();
      return;
    }
    const startedAt = performance.now();
    // Decoded once, with HTTP.sys's UrlSegmentMaxCount / UrlSegmentMaxLength: a URL past them
    // never reaches a worker (each segment is a configuration level there).
    const target = parseRequestTarget(head.target, this.#host.parserLimits);
    if (!target.ok || (target.path === '*' && head.method !== 'OPTIONS')) {
      // RFC 9112 §3.2.4: the asterisk-form is only for a server-wide OPTIONS.
      this.#rejectHead(head, 'invalidUrl', 'URL', startedAt);
      return;
    }
    if (target.host !== undefined && target.host !== head.host) {
      // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host, for routing, the
      // worker (HTTP_HOST, SERVER_NAME, the application's req.headers.host) and the logs alike.
      if (!isValidHost(target.host)) {
        this.#rejectHead(head, 'invalidHostname', 'Hostname', startedAt);
        return;
      }
      head = withHost(head, target.host);
    }
    const route = this.#host.routing.site(this.localAddress, this.localPort, head.host);
    if (route === undefined) {
      this.#rejectHead(head, 'invalidHostname', 'Hostname', startedAt);
      return;
    }
    const app = RoutingTable.application(route, target.path);
    const ex = new Exchange({
      conn: this,
      head,
      path: target.path,
      query: target.query,
      site: route.site,
      application: app,
      poolName: app.applicationPool,
      startedAt,
    });
    if (this.#host.draining) ex.keepAlive = false;
    this.exchanges.push(ex);
    if (requestStart.hasSubscribers) publishRequestStart(ex);
    this.#receiving = ex;
    if (this.tls === undefined) {
      // Answered by the listener on the host's http binding before any pool, as an ACME CA
      // expects; a token Wharf did not ask for goes on to the site (which may serve its own).
      const acme = this.#host.acmeChallenges;
      if (acme !== undefined && target.path.startsWith(ACME_PREFIX) && (head.method === 'GET' || head.method === 'HEAD')) {
        const answer = acme(head.host ?? '', target.path.slice(ACME_PREFIX.length));
        if (answer !== undefined) {
          this.#respondSimple(ex, 200, 'OK', ['Content-Type', 'application/octet-stream'], Buffer.from(answer, 'latin1'));
          return;
        }
      }
      if (route.site.hsts.redirectHttpToHttps) {
        const location = httpsRedirectLocation(route.site, head.host, head.target);
        if (location !== undefined) {
          const html = `<head><title>Document Moved</title></head>\n<body><h1>Object Moved</h1>This document may be found <a HREF="${location.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}">here</a></body>`;
          this.#respondSimple(ex, 301, 'Moved Permanently', ['Location', location, 'Content-Type', 'text/html; charset=UTF-8'], Buffer.from(html, 'utf8'));
          return;
        }
      }
    }
    if (this.exchanges.length >= MAX_PIPELINE && !this.#pipelineFull) {
      this.#pipelineFull = true;
      this.#pauseReading();
    }
    if (head.expectContinue && !ex.bodyDone) this.enqueue(ex, CONTINUE);
    this.#host.submit(ex, this);
  }

  onBody(chunk: Buffer): void {
    const ex = this.#receiving;
    if (ex === undefined || ex.bodyDone) return;
    ex.bytesReceived += chunk.length;
    if (ex.withOwner) {
      ex.owner!.sendBody(ex, chunk);
    } else if (ex.state === 'queued' || ex.state === 'received') {
      (ex.bodyQueue ??= []).push(chunk);
      ex.bodyQueued += chunk.length;
      if (ex.bodyQueued > MAX_HELD_BODY && ex.bodyQueued - chunk.length <= MAX_HELD_BODY) this.#pauseReading();
    } else if (ex.ended) {
      // The answer is complete: the rest of the body is read and discarded, within a budget.
      this.#drainLeft -= chunk.length;
      if (this.#drainLeft < 0 && !this.#closing) this.#closeAfterOutput();
    }
    // answered by the listener, not yet ended: the answer is decided; the body is read and discarded.
  }

  onRequestEnd(trailers?: readonly string[]): void {
    const ex = this.#receiving;
    if (ex === undefined) return;
    ex.bodyDone = true;
    if (trailers !== undefined) ex.requestTrailers = trailers;
    if (ex.withOwner) ex.owner!.sendBodyEnd(ex);
    // Bytes after an upgrade request may already be the new protocol's: hold them until the
    // response says whether the protocol switched (101) or not (#advance resumes parsing).
    if (ex.head.upgrade && !isFinal(ex.state) && !(ex.answeredBy === 'listener' && ex.responded)) this.#parser.pause();
  }

  onError(err: HttpParseError): void {
    // The stream cannot be resynchronised: answer after the outstanding responses, then close.
    const cur = this.#receiving;
    let ex: Exchange;
    if (cur !== undefined && !cur.bodyDone && (cur.state === 'queued' || cur.state === 'dispatched' || cur.state === 'responding') && !cur.wrote) {
      // Malformed body framing: the request never completed, so it is answered in its own slot.
      this.#host.cancel(cur);
      ex = cur;
      ex.out = [];
      ex.outBytes = 0;
    } else {
      ex = this.#localExchange(undefined, performance.now());
    }
    this.#receiving = undefined;
    this.#host.httpErr(this, err.reason, err.status, ex, ex.head);
    this.#respondLocal(ex, httpSysErrorPageFor(err.reason), err.reason, false);
  }

  // ---- dispatch hooks -------------------------------------------------------------------------

  /** Called when an exchange is handed to a worker: forward the body held so far. */
  dispatched(ex: Exchange): void {
    forwardHeldBody(ex);
  }

  /** The listener answers this request itself (503 queue full, 502 worker lost …). */
  respondLocally(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason | undefined): void {
    this.#respondLocal(ex, page, reason, ex.keepAlive && !this.#host.draining);
  }

  // ---- responses from the worker --------------------------------------------------------------

  /**
   * An interim 102 or 103 from the application, before its final head. HTTP/1.0 clients get none
   * (RFC 9110 §15.2); one that cannot be serialised is dropped, the response goes on.
   */
  responseInterim(ex: Exchange, status: number, headers: readonly string[]): void {
    if (ex.state !== 'dispatched' || ex.head.versionMinor === 0 || status < 102 || status > 199) return;
    let buf: Buffer;
    try {
      buf = serializeResponseHead(status, reasonPhrase(status), headers, { keepAlive: true, chunked: false, contentLength: -1, date: '', server: null, isHead: false, http10: false });
    } catch {
      return;
    }
    this.enqueue(ex, buf);
  }

  responseHead(ex: Exchange, status: number, reason: string, headers: readonly string[]): void {
    if (ex.state !== 'dispatched') return;
    ex.status = status;
    // Only for sites that log a response header: others keep no reference (and allocate nothing).
    if (this.#host.keepsResponseHeaders?.(ex) === true) ex.responseHeaders = headers;
    let contentLength = -1;
    let close = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') {
        const v = headers[i + 1]!;
        contentLength = /^\d+$/.test(v) ? Number(v) : -1;
      } else if (name.length === 10 && name.toLowerCase() === 'connection') {
        if (/\bclose\b/i.test(headers[i + 1]!)) close = true;
      }
    }
    if (status === 101) {
      this.#switchProtocols(ex, reason, headers);
      return;
    }
    const http10 = ex.head.versionMinor === 0;
    const noBody = ex.isHead || status === 204 || status === 304 || status < 200;
    ex.noBody = noBody;
    ex.chunked = !noBody && contentLength < 0 && !http10;
    ex.remaining = noBody ? -1 : contentLength;
    if (close || this.#closing || this.#host.draining) ex.keepAlive = false;
    // A body with no length on HTTP/1.0 ends when the connection closes.
    if (!noBody && contentLength < 0 && http10) ex.keepAlive = false;
    let buf: Buffer;
    try {
      buf = serializeResponseHead(status, reason === '' ? reasonPhrase(status) : reason, headers, {
        keepAlive: ex.keepAlive,
        chunked: ex.chunked,
        contentLength,
        date: cachedDateHeader(),
        server: this.#host.serverHeader,
        isHead: ex.isHead,
        http10,
        extra: this.tls === undefined ? undefined : hstsHeaderLine(ex.site),
        extraName: 'strict-transport-security',
      });
    } catch {
      // The application produced an invalid head (e.g. CR/LF in a value): never forward it.
      ex.owner?.abort(ex);
      ex.owner = undefined;
      this.#host.httpErr(this, 'Internal', 500, ex, ex.head);
      this.#respondLocal(ex, 'internalError', 'Internal', false);
      return;
    }
    ex.to('responding');
    this.enqueue(ex, buf);
  }

  /**
   * A cache hit on a keep-alive HTTP/1.1 connection: the entry's head is serialised once per
   * second (the Date changes) and written as it is with the body, the per-hit work of a kernel
   * cache. Anything unusual (HEAD, HTTP/1.0, closing, HSTS, a log reading response headers)
   * takes the general path.
   */
  responseCached(ex: Exchange, e: CachedResponse): boolean {
    if (ex.state !== 'dispatched' || !ex.keepAlive || this.#closing || this.#host.draining || ex.isHead || ex.head.versionMinor === 0) return false;
    if (this.tls !== undefined && hstsHeaderLine(ex.site) !== undefined) return false;
    if (this.#host.keepsResponseHeaders?.(ex) === true) return false;
    const date = cachedDateHeader();
    let head = e.wireHead;
    if (head === undefined || e.wireDate !== date) {
      try {
        head = serializeResponseHead(e.status, e.reason === '' ? reasonPhrase(e.status) : e.reason, e.headers, {
          keepAlive: true,
          chunked: false,
          contentLength: e.body.length,
          date,
          server: this.#host.serverHeader,
          isHead: false,
          http10: false,
        });
      } catch {
        return false;
      }
      e.wireHead = head;
      e.wireDate = date;
    }
    ex.status = e.status;
    ex.noBody = false;
    ex.chunked = false;
    ex.remaining = 0;
    ex.to('responding');
    this.enqueue(ex, head);
    if (e.body.length !== 0) this.enqueue(ex, e.body);
    return true;
  }

  /**
   * 101 Switching Protocols (RFC 9110 §15.2.2): the head goes out, then the connection is a
   * tunnel between the client and the worker until either side ends it. Only for a request that
   * asked to upgrade; the listener still owns the socket (a worker's exit ends the tunnel, never
   * another connection).
   */
  #switchProtocols(ex: Exchange, reason: string, headers: readonly string[]): void {
    if (!ex.head.upgrade || this.exchanges[0] !== ex) {
      ex.owner?.abort(ex);
      ex.owner = undefined;
      this.#host.httpErr(this, 'Internal', 502, ex, ex.head);
      this.#respondLocal(ex, 'internalError', 'Internal', false);
      return;
    }
    let head: Buffer;
    try {
      head = serializeResponseHead(101, reason === '' ? reasonPhrase(101) : reason, headers, {
        keepAlive: false,
        chunked: false,
        contentLength: -1,
        date: cachedDateHeader(),
        server: this.#host.serverHeader,
        isHead: false,
      });
    } catch {
      ex.owner?.abort(ex);
      ex.owner = undefined;
      this.#host.httpErr(this, 'Internal', 500, ex, ex.head);
      this.#respondLocal(ex, 'internalError', 'Internal', false);
      return;
    }
    ex.noBody = false;
    ex.chunked = false;
    ex.remaining = -1;
    ex.keepAlive = false;
    ex.tunnel = true;
    ex.to('responding');
    this.#tunnel = ex;
    this.#receiving = undefined;
    this.enqueue(ex, head);
    const early = this.#parser.takeUnconsumed();
    if (early.length !== 0) ex.owner!.sendBody(ex, early);
    if (this.#closing) ex.owner!.sendBodyEnd(ex); // the client had half-closed already
  }

  responseBody(ex: Exchange, chunk: Buffer): void {
    if (ex.state !== 'responding' || ex.noBody) return;
    if (ex.remaining >= 0) {
      if (chunk.length > ex.remaining) {
        // More than Content-Length promised: cut it, and the connection cannot be reused.
        chunk = chunk.subarray(0, ex.remaining);
        ex.keepAlive = false;
      }
      ex.remaining -= chunk.length;
      if (chunk.length === 0) return;
    }
    if (ex.chunked) {
      this.enqueue(ex, Buffer.from(chunk.length.toString(16) + '\r\n', 'latin1'));
      this.enqueue(ex, chunk);
      this.enqueue(ex, CRLF);
    } else {
      this.enqueue(ex, chunk);
    }
  }

  responseEnd(ex: Exchange, subStatus: number, win32Status: number, username: string, close: boolean, abort: boolean, trailers?: readonly string[]): void {
    if (ex.state !== 'dispatched' && ex.state !== 'responding') return;
    ex.subStatus = subStatus;
    ex.win32Status = win32Status;
    ex.username = username;
    if (abort || ex.state === 'dispatched') {
      // IIS abort: no (further) bytes, the connection is reset; the request is still logged.
      ex.keepAlive = false;
      ex.aborted = true;
      this.finish(ex, 'done');
      this.flushOutput(); // earlier pipelined responses still go out
      this.socket.destroy();
      return;
    }
    if (ex.chunked) this.enqueue(ex, lastChunk(trailers));
    if (ex.remaining > 0) ex.keepAlive = false; // the body was shorter than promised
    if (close) ex.keepAlive = false;
    ex.to('ended');
    this.#advance();
  }

  /**
   * The exchange is finished: 'done' (its response completed, or a worker's abort reset the
   * connection: logged) or 'dropped' (no response completed: httperr has the reason, if any).
   * Leaves the queue or worker it was still on and tells the listener, once per exchange.
   */
  finish(ex: Exchange, final: 'done' | 'dropped'): void {
    finishExchange(this.#host, ex, final);
  }

  /** Output for `ex`: written now if it is head-of-line, else held until its turn. */
  enqueue(ex: Exchange, buf: Buffer): void {
    if (this.exchanges[0] === ex) {
      this.#write(ex, buf);
    } else {
      ex.out.push(buf);
      ex.outBytes += buf.length;
      if (ex.outBytes > MAX_HELD_OUTPUT && !ex.responsePaused && ex.withOwner) {
        ex.responsePaused = true;
        ex.owner!.pauseResponse(ex);
      }
    }
  }

  #write(ex: Exchange, buf: Buffer): void {
    if (this.#closed) return;
    // Everything produced for this socket during one tick (head, body, chunk frames, other
    // pipelined responses) leaves in one write: small pieces are joined into one buffer, which
    // measured cheaper than writev through cork/uncork for typical responses.
    if (this.#out.length === 0) process.nextTick(flushOutput, this);
    this.#throttle = ex.throttle;
    this.#out.push(buf);
    this.#outBytes += buf.length;
    ex.wrote = true;
    ex.bytesSent += buf.length;
  }

  /** Write what this tick produced (see #write). */
  flushOutput(): void {
    const out = this.#out;
    if (out.length === 0 || this.#closed) {
      this.#out = [];
      this.#outBytes = 0;
      return;
    }
    if (this.#throttle !== undefined) {
      this.#flushPaced(this.#throttle);
      return;
    }
    this.#out = [];
    const bytes = this.#outBytes;
    this.#outBytes = 0;
    this.#send(out, bytes);
  }

  /**
   * Bandwidth throttling: write one slice now if the buckets allow, keep the rest in #out and
   * come back when they allow again. The worker is paused while more than MAX_HELD_OUTPUT waits.
   * (A setTimeout per throttled connection: pacing needs finer steps than the timer wheel's.)
   */
  #flushPaced(throttle: BandwidthThrottle): void {
    if (this.#paceTimer !== undefined) return; // the pending pace timer continues
    const out = this.#out;
    const now = performance.now();
    const wait = throttle.wait(now);
    if (wait === 0) {
      const pieces: Buffer[] = [];
      let taken = 0;
      while (out.length !== 0 && taken < throttle.slice) {
        const b = out[0]!;
        const room = throttle.slice - taken;
        if (b.length <= room) {
          pieces.push(b);
          out.shift();
          taken += b.length;
        } else {
          pieces.push(b.subarray(0, room));
          out[0] = b.subarray(room);
          taken += room;
        }
      }
      this.#outBytes -= taken;
      throttle.charge(taken, now);
      this.#send(pieces, taken);
    }
    const ex = this.exchanges[0];
    if (out.length !== 0) {
      if (this.#outBytes > MAX_HELD_OUTPUT && ex !== undefined && ex.withOwner && !ex.responsePaused) {
        ex.responsePaused = true;
        ex.owner!.pauseResponse(ex);
      }
      this.#paceTimer = setTimeout(paceAgain, Math.max(1, Math.ceil(throttle.wait(performance.now()))), this);
      return;
    }
    if (ex !== undefined && ex.responsePaused && !this.#outputBlocked && ex.withOwner) {
      ex.responsePaused = false;
      ex.owner!.resumeResponse(ex);
    }
    if (this.#endAfterFlush) this.socket.end();
  }

  /** The pace timer fired: write the next slice. */
  pace(): void {
    this.#paceTimer = undefined;
    if (this.#out.length === 0 || this.#closed) return;
    this.#flushPaced(this.#throttle ?? NO_THROTTLE);
  }

  /** Hand bytes to the socket; note when they should be gone (minBytesPerSecond). */
  #send(out: Buffer[], bytes: number): void {
    const minRate = this.#host.qos.minBytesPerSecond;
    if (minRate > 0) this.#sendDeadline = Math.max(this.#sendDeadline, this.#host.timers.now()) + (bytes * 1000) / minRate;
    const ok = writeBatch(this.socket, out, bytes);
    if (!ok && !this.#outputBlocked) {
      this.#outputBlocked = true;
      const ex = this.exchanges[0];
      if (ex !== undefined && ex.withOwner && !ex.responsePaused) {
        ex.responsePaused = true;
        ex.owner!.pauseResponse(ex);
      }
      this.#armTimer();
    }
  }

  /** Close our side once everything queued has been written. */
  #endSocket(): void {
    this.flushOutput();
    if (this.#out.length !== 0) {
      this.#endAfterFlush = true; // paced output still waiting: end after its last slice
      return;
    }
    this.socket.end();
  }

  #onDrain(): void {
    this.#outputBlocked = false;
    this.#lastIo = this.#host.timers.now();
    const ex = this.exchanges[0];
    if (ex !== undefined && ex.responsePaused && ex.withOwner && this.#outBytes <= MAX_HELD_OUTPUT) {
      ex.responsePaused = false;
      ex.owner!.resumeResponse(ex);
    }
  }

  /** Complete finished head-of-line exchanges and hand the socket to the next one. */
  #advance(): void {
    for (;;) {
      const ex = this.exchanges[0];
      if (ex === undefined || !ex.ended) return;
      this.exchanges.shift();
      // 'done' already: a worker's abort finished it (the reset is on its way).
      if (ex.state === 'ended') this.finish(ex, 'done');
      if (this.#receiving === ex && ex.bodyDone) this.#receiving = undefined;
      if (this.#receiving === ex && ex.keepAlive && !this.#drainable(ex)) ex.keepAlive = false;
      if (this.#pipelineFull && this.exchanges.length < MAX_PIPELINE) {
        this.#pipelineFull = false;
        this.resumeReading();
      }
      if (!ex.keepAlive) {
        this.#closeAfterOutput();
        return;
      }
      // An upgrade that was answered without switching: parse the requests held behind it.
      if (ex.head.upgrade && this.#parser.paused && !this.#pipelineFull && this.#readPauses === 0) this.#parser.resume();
      const next = this.exchanges[0];
      if (next === undefined) {
        this.#lastIo = this.#host.timers.now();
        if (this.#closing) this.#endSocket();
        else this.#armTimer();
        return;
      }
      const held = next.out;
      if (held.length !== 0) {
        next.out = [];
        next.outBytes = 0;
        for (const b of held) this.#write(next, b);
      }
      if (next.responsePaused && !this.#outputBlocked && next.withOwner) {
        next.responsePaused = false;
        next.owner!.resumeResponse(next);
      }
    }
  }

  /**
   * The answer to `ex` is complete and its body is still arriving: whether the rest is small
   * enough to read and discard (MAX_DRAIN_BYTES) so the connection can be kept. The body held for
   * a request that was never dispatched is dropped, and reading resumes if it had paused for it.
   */
  #drainable(ex: Exchange): boolean {
    if (ex.bodyQueue !== undefined) {
      const wasOver = ex.bodyQueued > MAX_HELD_BODY;
      ex.bodyQueue = undefined;
      ex.bodyQueued = 0;
      if (wasOver) this.resumeReading();
    }
    const left = ex.head.chunked ? MAX_DRAIN_BYTES : ex.head.contentLength - (ex.bytesReceived - ex.head.headBytes);
    this.#drainLeft = MAX_DRAIN_BYTES;
    return left <= MAX_DRAIN_BYTES;
  }

  /** Stop taking requests; cancel the ones after the current; close once output is flushed. */
  #closeAfterOutput(): void {
    this.#closing = true;
    this.#parser.pause();
    for (const rest of this.exchanges.splice(0)) this.finish(rest, 'dropped');
    this.#receiving = undefined;
    this.#drainLeft = MAX_DRAIN_BYTES;
    this.#endSocket();
  }

  /** Bytes that arrived after we decided to close: tolerated up to MAX_DRAIN_BYTES, then #linger. */
  #discard(n: number): void {
    this.#drainLeft -= n;
    if (this.#drainLeft < 0) this.#linger();
  }

  /**
   * Stop reading for good: what the client still sends waits in the kernel's buffers, where flow
   * control stops it, while our answer and FIN reach the client (a reset now could destroy the
   * answer in its receive buffer). The socket is reset LINGER_MS later unless it closed first.
   */
  #linger(): void {
    if (this.#lingerTimer !== undefined || this.#closed) return;
    this.socket.pause();
    this.#lingerTimer = setTimeout(lingerOver, LINGER_MS, this);
    this.#lingerTimer.unref();
  }

  /** The linger time is over: reset, unless an answer is still being produced or sent (then wait on). */
  lingerOver(): void {
    if (this.#closed) return;
    if (this.exchanges.length !== 0 || this.#out.length !== 0 || this.socket.writableLength !== 0) {
      this.#lingerTimer = setTimeout(lingerOver, LINGER_MS, this);
      this.#lingerTimer.unref();
      return;
    }
    this.socket.destroy();
  }

  #pauseReading(): void {
    if (this.#readPauses++ === 0) this.socket.pause();
  }

  /** Undo one #pauseReading (the socket reads again when every pause is lifted). */
  resumeReading(_ex?: Exchange): void {
    if (this.#readPauses > 0 && --this.#readPauses === 0 && !this.#closed && this.#lingerTimer === undefined) {
      this.socket.resume();
      // The entity-body timer restarts: the wait was ours, not the client's.
      this.#lastIo = this.#host.timers.now();
      this.#armTimer();
    }
  }

  /** A worker asked to stop reading this exchange's body (its handler is slow). */
  pauseForBody(_ex?: Exchange): void {
    this.#pauseReading();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Shutdown: nothing to do at once. The next response says Connection: close (host.draining),
   * and the listener closes the connection after it has been idle for a while (the keep-alive
   * close race: a client may be sending its next request right now).
   */
  drain(): void {}

  #localExchange(head: RequestHead | undefined, startedAt: number): Exchange {
    const ex = new Exchange({
      conn: this,
      head: head ?? EMPTY_HEAD,
      path: '',
      query: '',
      site: undefined,
      application: undefined,
      poolName: '',
      startedAt,
    });
    this.exchanges.push(ex);
    if (requestStart.hasSubscribers) publishRequestStart(ex);
    return ex;
  }


  #rejectHead(head: RequestHead, page: HttpSysErrorPage, reason: HttpErrReason, startedAt: number): void {
    const ex = this.#localExchange(head, startedAt);
    this.#receiving = ex;
    this.#host.httpErr(this, reason, 400, ex, head);
    // A malformed URL is refused and the connection closed; an unknown host name is an ordinary
    // routing miss and the connection may carry on.
    this.#respondLocal(ex, page, reason, reason === 'Hostname' && ex.keepAlive && !this.#host.draining);
  }

  #respondLocal(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason | undefined, keepAlive: boolean): void {
    ex.to('responding');
    ex.answeredBy = 'listener';
    ex.owner = undefined;
    ex.httpErrReason = reason;
    ex.keepAlive = keepAlive;
    ex.status = HTTP_SYS_ERROR_PAGES[page].status;
    this.enqueue(ex, httpSysErrorResponse({ page, keepAlive, isHead: ex.isHead, http10: ex.head.versionMinor === 0 }));
    ex.to('ended');
    this.#advance();
  }

  /** A complete answer the listener gives itself (HSTS's redirect, an ACME challenge). */
  #respondSimple(ex: Exchange, status: number, reason: string, headers: string[], body: Buffer): void {
    ex.to('responding');
    ex.answeredBy = 'listener';
    ex.owner = undefined;
    ex.status = status;
    const head = serializeResponseHead(status, reason, headers, {
      keepAlive: ex.keepAlive,
      chunked: false,
      contentLength: body.length,
      date: cachedDateHeader(),
      server: this.#host.serverHeader,
      isHead: ex.isHead,
      http10: ex.head.versionMinor === 0,
    });
    this.enqueue(ex, head);
    if (!ex.isHead) this.enqueue(ex, body);
    ex.to('ended');
    this.#advance();
  }

  // ---- HTTP.sys timers (iis-behavior.md §6.1) -------------------------------------------------

  /**
   * The timer that applies now and its deadline (-1: none). One at a time, most specific first:
   * a client not reading our response (MinBytesPerSecond), a request body that stopped arriving
   * (EntityBody, reset by every chunk, not while we paused reading), then, with nothing in
   * progress, an unfinished request head (HeaderWait) or an idle keep-alive connection.
   */
  #nextTimer(): number {
    if (this.#closed) return -1;
    if (this.#outputBlocked && this.#host.qos.minBytesPerSecond > 0) {
      this.#timerKind = 'Timer_MinBytesPerSecond';
      return this.#sendDeadline;
    }
    const rx = this.#receiving;
    if (rx !== undefined && !rx.bodyDone && this.#readPauses === 0 && (rx.state === 'received' || rx.state === 'queued' || rx.withOwner)) {
      this.#timerKind = 'Timer_EntityBody';
      return this.#lastIo + (this.qos?.connectionTimeoutMs ?? this.#host.qos.idleMs);
    }
    if (this.exchanges.length !== 0 || this.#closing) return -1;
    if (this.#headStartedAt >= 0) {
      this.#timerKind = 'Timer_HeaderWait';
      return this.#headStartedAt + this.#host.qos.headerWaitMs;
    }
    // Before its first routed request a connection has webLimits' idle time; after, its site's.
    this.#timerKind = 'Timer_ConnectionIdle';
    return this.#lastIo + (this.qos?.connectionTimeoutMs ?? this.#host.qos.idleMs);
  }

  /**
   * Arm the wheel timer if it would fire too late. Deadlines are lazy: a timer armed earlier than
   * needed re-checks when it fires (onTimer), so progress on the hot path costs no re-linking.
   */
  #armTimer(): void {
    const d = this.#nextTimer();
    if (d < 0) return;
    const t = this.#timer;
    if (!t.armed || d < t.deadline) this.#host.timers.arm(t, d);
  }

  onTimer(now: number): void {
    const d = this.#nextTimer();
    if (d < 0) return;
    if (d > now) {
      this.#host.timers.arm(this.#timer, d);
      return;
    }
    this.#expire(this.#timerKind);
  }

  /** HTTP.sys closes silently on a timer and writes the reason to httperr; nothing else logs it. */
  #expire(reason: ConnectionTimer): void {
    const ex = reason === 'Timer_EntityBody' ? this.#receiving : this.exchanges[0];
    this.#host.httpErr(this, reason, undefined, ex, ex?.head);
    for (const e of this.exchanges.splice(0)) this.finish(e, 'dropped');
    this.#receiving = undefined;
    this.#closing = true;
    // An idle keep-alive connection is closed; a stalled transfer is reset.
    if (reason === 'Timer_ConnectionIdle') this.socket.destroy();
    else this.reset();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.timers.disarm(this.#timer);
    if (this.#paceTimer !== undefined) clearTimeout(this.#paceTimer);
    this.#paceTimer = undefined;
    if (this.#lingerTimer !== undefined) clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    for (const ex of this.exchanges.splice(0)) {
      const s = ex.state;
      if (isFinal(s)) continue;
      if ((s === 'responding' || s === 'ended') && ex.answeredBy !== 'listener') {
        // The client went away mid-response: IIS logs the request with ERROR_NETNAME_DELETED.
        ex.win32Status = 64;
        ex.aborted = true;
        this.finish(ex, 'done');
      } else {
        // Never answered: HTTP.sys's httperr line. (A listener answer still waiting its turn has
        // its reason logged already.)
        if (s === 'received' || s === 'queued' || s === 'dispatched') this.#host.httpErr(this, 'Connection_Dropped', undefined, ex, ex.head);
        this.finish(ex, 'dropped');
      }
    }
    this.#host.connectionClosed(this);
  }
}

function flushOutput(conn: Connection): void {
  conn.flushOutput();
}

function paceAgain(conn: Connection): void {
  conn.pace();
}

function lingerOver(conn: Connection): void {
  conn.lingerOver();
}

/** `head` with `host` as its Host, in the header list too (added when the request had none). */
function withHost(head: RequestHead, host: string): RequestHead {
  const raw = head.rawHeaders.slice();
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') {
      raw[i + 1] = host;
      found = true;
    }
  }
  if (!found) raw.push('Host', host);
  return { ...head, host, rawHeaders: raw };
}


/** Paced output whose throttle is gone (cannot happen in practice): write it unthrottled. */
const NO_THROTTLE = new BandwidthThrottle([]);

const EMPTY_HEAD: RequestHead = {
  method: '',
  target: '',
  versionMajor: 1,
  versionMinor: 1,
  rawHeaders: [],
  host: undefined,
  contentLength: -1,
  chunked: false,
  keepAlive: false,
  expectContinue: false,
  upgrade: false,
  headBytes: 0,
};
