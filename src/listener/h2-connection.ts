/**
 * One HTTP/2 client connection (RFC 9113, over TLS by ALPN): Node's HTTP/2 session (nghttp2) does
 * the framing, HPACK and flow control; every stream becomes an Exchange that goes through the same
 * routing, response cache, pool queues, workers and logs as an HTTP/1.1 request, in the same
 * states. The differences are the protocol's: streams answer independently (no head-of-line
 * order), a stream's body is paused on its own, and shutdown is a GOAWAY.
 *
 * Protections peers learnt from CVEs, on top of nghttp2's own (Node 20 has the fixes for rapid
 * reset, CVE-2023-44487, and CONTINUATION floods, CVE-2024-27983):
 * - at most MAX_CONCURRENT_STREAMS streams at once (SETTINGS), header lists bounded by HTTP.sys's
 *   MaxRequestBytes and the header count, the HPACK table at its 4 KiB default;
 * - streams the client resets before their answer are counted (RESET_BUDGET, refilled over time):
 *   a client that opens and cancels faster than that gets a GOAWAY (ENHANCE_YOUR_CALM), so a
 *   rapid-reset flood cannot keep the workers busy with requests nobody waits for;
 * - a stream that moves no frame for the site's connectionTimeout (a window never opened, a body
 *   that stopped) is reset; a session that carries nothing for that long is closed.
 */
import { constants, createServer as createHttp2Server, type Http2Server, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { parseRequestTarget } from '../http/url-path.js';
import { requestStart } from '../diagnostics.js';
import { finishExchange, forwardHeldBody, MAX_HELD_BODY, publishRequestStart, type ClientConnection } from './client-connection.js';
import type { ConnectionHost } from './connection.js';
import { Exchange, isFinal } from './exchange.js';
import { headerValue } from './header-value.js';
import { hstsHeaderLine } from './hsts.js';
import { isValidHost, type ParserLimits, type RequestHead } from './http-parser.js';
import { cachedDateHeader, HTTP_SYS_ERROR_PAGES, httpSysErrorBody, type HttpSysErrorPage } from './http-response.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import type { SiteQos } from './qos-limits.js';
import { RoutingTable, normalizeAddress } from './routing.js';
import type { SecureConnection } from './tls-termination.js';
import type { CachedResponse } from './response-cache.js';
import { tlsInfoOf } from './tls-info.js';

/** SETTINGS_MAX_CONCURRENT_STREAMS (nginx: 128). */
export const MAX_CONCURRENT_STREAMS = 128;
/** Client resets of unanswered streams tolerated in a burst … */
const RESET_BUDGET = 200;
/** … and regained per second. */
const RESETS_PER_SECOND = 50;
/** How long a session told to calm down keeps its socket for the GOAWAY to be read. */
const GOAWAY_GRACE_MS = 1000;
/** Paced (throttled) response bytes queued for a stream before its worker is paused. */
const MAX_HELD_OUTPUT = 256 * 1024;

/** Fields that describe an HTTP/1.1 connection and are not allowed in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = constants;

/** One Http2Server per listener: only its session machinery is used (it never listens). */
export function createSessionFactory(limits: ParserLimits): Http2Server {
  return createHttp2Server({
    settings: {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      // HTTP.sys's MaxRequestBytes bounds a request's header section; HPACK counts 32 more per field.
      maxHeaderListSize: limits.maxRequestBytes + 32 * limits.maxHeaders,
      enablePush: false,
    },
    maxHeaderListPairs: limits.maxHeaders + 8,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 10,
  });
}

export class Http2Connection implements ClientConnection {
  readonly tls: SecureConnection;
  readonly session: ServerHttp2Session;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly secure = true;
  qos: SiteQos | undefined = undefined;
  readonly #host: ConnectionHost;
  #tlsInfo: string | undefined;
  /** Exchanges not yet finished. */
  readonly #open = new Set<Exchange>();
  #closed = false;
  #draining = false;
  #lastIo: number;
  #resetBudget = RESET_BUDGET;
  #resetAt = performance.now();

  constructor(tls: SecureConnection, host: ConnectionHost, factory: Http2Server) {
    this.tls = tls;
    this.#host = host;
    const tcp = tls.raw;
    this.remoteAddress = normalizeAddress(tcp.remoteAddress ?? '');
    this.remotePort = tcp.remotePort ?? 0;
    this.localAddress = normalizeAddress(tcp.localAddress ?? '');
    this.localPort = tcp.localPort ?? 0;
    this.#lastIo = host.timers.now();
    let session: ServerHttp2Session | undefined;
    const take = (s: ServerHttp2Session): void => {
      session = s;
    };
    // Node's documented hand-off of an accepted socket: the server makes the session and says so.
    factory.once('session', take);
    factory.emit('connection', tls.socket);
    factory.removeListener('session', take);
    if (session === undefined) throw new Error('HTTP/2 session was not created');
    const s: ServerHttp2Session = session;
    this.session = s;
    s.on('stream', this.#onStream);
    s.on('error', () => undefined); // 'close' follows
    s.on('close', () => this.#onClose());
    // Nothing moved on the session for the idle time. With no request in progress it closes
    // (GOAWAY); a response still waiting for a window the client never opens is cut a moment later.
    s.setTimeout(host.qos.idleMs, () => {
      if (this.#open.size !== 0) return;
      s.close();
      setTimeout(() => this.destroy(), 1000).unref();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  get tlsInfo(): string {
    return (this.#tlsInfo ??= tlsInfoOf(this.tls));
  }

  idleFor(now: number): number {
    return this.#open.size === 0 ? now - this.#lastIo : -1;
  }

  drain(): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    // GOAWAY: streams already opened finish; the client opens new ones on a new connection.
    this.session.close();
  }

  destroy(): void {
    this.session.destroy();
    this.tls.socket.destroy();
  }

  reset(): void {
    try {
      this.tls.raw.resetAndDestroy();
    } catch {
      // already closed
    }
    this.destroy();
  }

  // ---- streams ----------------------------------------------------------------------------------

  readonly #onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void => {
    this.#lastIo = this.#host.timers.now();
    if (this.#draining || this.#closed) {
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    const startedAt = performance.now();
    const head = requestHead(headers, rawHeaders, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    if (head === undefined) {
      // CONNECT (no extended CONNECT is offered) or a request nghttp2 let through without :path.
      stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    stream.on('error', ignore);
    const target = parseRequestTarget(head.target, this.#host.parserLimits);
    if (!target.ok || target.path === '*' || target.host !== undefined || head.host === undefined || !isValidHost(head.host)) {
      const bad = !target.ok || target.path === '*' || target.host !== undefined;
      this.#reject(stream, head, bad ? 'invalidUrl' : 'invalidHostname', bad ? 'URL' : 'Hostname', startedAt);
      return;
    }
    const route = this.#host.routing.site(this.localAddress, this.localPort, head.host);
    if (route === undefined) {
      this.#reject(stream, head, 'invalidHostname', 'Hostname', startedAt);
      return;
    }
    const app = RoutingTable.application(route, target.path);
    const ex = new Exchange({ conn: this, head, path: target.path, query: target.query, site: route.site, application: app, poolName: app.applicationPool, startedAt });
    ex.h2Stream = stream;
    this.#open.add(ex);
    if (requestStart.hasSubscribers) publishRequestStart(ex);
    (stream as StreamWithExchange)[EXCHANGE] = ex;
    stream.on('close', onStreamClose);
    if (!ex.bodyDone) {
      stream.on('data', (d: Buffer) => this.#onBody(ex, d));
      stream.on('end', () => this.#onBodyEnd(ex));
    }
    if (head.expectContinue && !ex.bodyDone) stream.additionalHeaders({ ':status': 100 });
    // Submitted once the rest of what was read with its HEADERS is processed (setImmediate: a
    // microtask runs between nghttp2's frame callbacks): a stream the client resets in the same
    // read, the rapid-reset pattern (CVE-2023-44487), ends before it costs a pool or a worker
    // anything; its close is still counted against the reset budget.
    this.#toSubmit.push(ex);
    if (this.#toSubmit.length === 1) setImmediate(this.#submitAll);
  };

  /** Streams opened in the current read, submitted together after it. */
  #toSubmit: Exchange[] = [];

  readonly #submitAll = (): void => {
    const list = this.#toSubmit;
    this.#toSubmit = [];
    for (const ex of list) {
      const stream = ex.h2Stream!;
      if (ex.state !== 'received' || stream.destroyed || stream.closed) continue;
      this.#host.submit(ex, this);
      // After submit: the listener's admission gives the connection its site's limits (this.qos)
      // on its first request, so the first stream gets the site's connectionTimeout too.
      if (!ex.bodyDone && ex.bodyPauses === 0) this.#waitForClient(ex, true);
    }
  };

  /**
   * The stream's timer (the site's connectionTimeout, as HTTP.sys's EntityBody and send timers)
   * runs only while Wharf waits for the client: a request body that is being read, a response
   * the client's flow-control window holds back. Never while the worker works on the answer (an
   * application may take minutes, an SSE stream may be quiet for long), as on HTTP/1.1.
   */
  #waitForClient(ex: Exchange, on: boolean): void {
    const stream = ex.h2Stream;
    if (stream === undefined || stream.destroyed) return;
    if (!on) {
      stream.setTimeout(0);
      return;
    }
    if (stream.listenerCount('timeout') === 0) stream.on('timeout', onStreamTimeout);
    stream.setTimeout(this.qos?.connectionTimeoutMs ?? this.#host.qos.idleMs);
  }

  /** A stream's 'close' (onStreamClose): the exchange ends if its answer did not. */
  streamClosed(ex: Exchange): void {
    this.#onStreamClose(ex);
  }

  #onBody(ex: Exchange, chunk: Buffer): void {
    this.#lastIo = this.#host.timers.now();
    if (ex.bodyDone) return;
    ex.bytesReceived += chunk.length;
    if (ex.withOwner) {
      ex.owner!.sendBody(ex, chunk);
    } else if (ex.state === 'queued' || ex.state === 'received') {
      (ex.bodyQueue ??= []).push(chunk);
      ex.bodyQueued += chunk.length;
      if (ex.bodyQueued > MAX_HELD_BODY && ex.bodyQueued - chunk.length <= MAX_HELD_BODY) this.pauseForBody(ex);
    }
    // Answered already: the rest of the body is read and discarded (flow control keeps it bounded).
  }

  #onBodyEnd(ex: Exchange): void {
    if (ex.bodyDone) return;
    ex.bodyDone = true;
    if (!ex.responsePaused) this.#waitForClient(ex, false);
    if (ex.withOwner) ex.owner!.sendBodyEnd(ex);
  }

  dispatched(ex: Exchange): void {
    forwardHeldBody(ex);
  }

  pauseForBody(ex: Exchange): void {
    if (ex.bodyPauses++ !== 0) return;
    ex.h2Stream?.pause();
    // Waiting for our own worker, not the client: no body timer (HTTP.sys's does not run either).
    if (!ex.responsePaused) this.#waitForClient(ex, false);
  }

  resumeReading(ex: Exchange): void {
    if (ex.bodyPauses > 0 && --ex.bodyPauses === 0) {
      ex.h2Stream?.resume();
      if (!ex.bodyDone) this.#waitForClient(ex, true);
    }
  }

  // ---- responses ----------------------------------------------------------------------------------

  responseInterim(ex: Exchange, status: number, headers: readonly string[]): void {
    const stream = ex.h2Stream;
    if (ex.state !== 'dispatched' || stream === undefined || status < 102 || status > 199 || stream.headersSent) return;
    const out = responseHeaders(status, headers, null, undefined);
    if (out === undefined) return;
    try {
      stream.additionalHeaders(out);
    } catch {
      // an interim response that cannot be sent is dropped; the final one follows
    }
  }

  responseHead(ex: Exchange, status: number, _reason: string, headers: readonly string[]): void {
    const stream = ex.h2Stream;
    if (ex.state !== 'dispatched' || stream === undefined) return;
    ex.status = status;
    if (this.#host.keepsResponseHeaders?.(ex) === true) ex.responseHeaders = headers;
    const noBody = ex.isHead || status === 204 || status === 304;
    ex.noBody = noBody;
    const out = status < 200 ? undefined : responseHeaders(status, headers, this.#host.serverHeader, hstsHeaderLine(ex.site));
    if (out === undefined || stream.destroyed) {
      // 101 (no upgrades in HTTP/2), or a head HTTP/2 cannot carry (connection fields are dropped,
      // but a CR/LF or an invalid name is not): never forwarded.
      this.#badResponse(ex);
      return;
    }
    const cl = out['content-length'];
    ex.remaining = noBody || cl === undefined ? -1 : Number(cl);
    // gRPC and other trailer users ask with TE: trailers; only then does the stream wait for them.
    const wantTrailers = !noBody && headerValue(ex.head.rawHeaders, 'te').toLowerCase().includes('trailers');
    try {
      stream.respond(out, { endStream: noBody, waitForTrailers: wantTrailers });
    } catch {
      this.#badResponse(ex);
      return;
    }
    ex.wrote = true;
    ex.bytesSent += headersSize(out);
    ex.to('responding');
    if (wantTrailers) stream.once('wantTrailers', () => sendTrailers(stream));
    if (noBody) ex.remaining = 0;
  }

  responseBody(ex: Exchange, chunk: Buffer): void {
    const stream = ex.h2Stream;
    if (ex.state !== 'responding' || ex.noBody || stream === undefined || stream.destroyed) return;
    if (ex.remaining >= 0) {
      if (chunk.length > ex.remaining) chunk = chunk.subarray(0, ex.remaining);
      ex.remaining -= chunk.length;
      if (chunk.length === 0) return;
    }
    ex.bytesSent += chunk.length;
    if (ex.throttle !== undefined) {
      // maxBandwidth / maxGlobalBandwidth: the bytes leave in paced slices (#pace); the worker
      // waits while more than MAX_HELD_OUTPUT is queued.
      ex.out.push(chunk);
      ex.outBytes += chunk.length;
      if (ex.outBytes > MAX_HELD_OUTPUT && !ex.responsePaused && ex.withOwner) {
        ex.responsePaused = true;
        ex.owner!.pauseResponse(ex);
      }
      this.#pace(ex);
      return;
    }
    if (!stream.write(chunk) && !ex.responsePaused && ex.withOwner) {
      // The client's flow-control window (or the socket) is full: the worker waits for it, and
      // the stream's timer runs until the client takes more.
      ex.responsePaused = true;
      ex.owner!.pauseResponse(ex);
      this.#waitForClient(ex, true);
      stream.once('drain', () => {
        if (!ex.responsePaused) return;
        ex.responsePaused = false;
        if (ex.bodyDone || ex.bodyPauses !== 0) this.#waitForClient(ex, false);
        if (ex.withOwner) ex.owner!.resumeResponse(ex);
      });
    }
  }

  /**
   * A cache hit: the entry's HTTP/2 header block is built once per second (its Date) and sent
   * with the body in one respond + end, the per-hit work of a kernel cache.
   */
  responseCached(ex: Exchange, e: CachedResponse): boolean {
    const stream = ex.h2Stream;
    if (ex.state !== 'dispatched' || stream === undefined || stream.destroyed || ex.isHead) return false;
    if (this.#host.keepsResponseHeaders?.(ex) === true) return false;
    const date = cachedDateHeader();
    const hsts = hstsHeaderLine(ex.site);
    let out = e.h2Head;
    if (out === undefined || e.h2Date !== date || e.h2Hsts !== hsts) {
      out = responseHeaders(e.status, e.headers, this.#host.serverHeader, hsts);
      if (out === undefined) return false;
      out['content-length'] = e.body.length;
      e.h2Head = out;
      e.h2Date = date;
      e.h2Hsts = hsts;
    }
    ex.status = e.status;
    ex.noBody = false;
    ex.remaining = 0;
    try {
      stream.respond(out, { endStream: false });
    } catch {
      return false;
    }
    ex.wrote = true;
    ex.bytesSent += headersSize(out) + e.body.length;
    ex.to('responding');
    stream.end(e.body);
    return true;
  }

  responseEnd(ex: Exchange, subStatus: number, win32Status: number, username: string, _close: boolean, abort: boolean, trailers?: readonly string[]): void {
    if (ex.state !== 'dispatched' && ex.state !== 'responding') return;
    ex.subStatus = subStatus;
    ex.win32Status = win32Status;
    ex.username = username;
    const stream = ex.h2Stream!;
    if (ex.state === 'responding' && ex.answeredBy === 'cache' && stream.writableEnded) {
      // responseCached sent it all already.
      ex.to('ended');
      if (!ex.bodyDone) stream.close(NGHTTP2_NO_ERROR);
      this.finish(ex, 'done');
      return;
    }
    if (abort || ex.state === 'dispatched') {
      // IIS's abort: the stream is reset (RST_STREAM), the other streams go on; still logged.
      ex.aborted = true;
      this.finish(ex, 'done');
      stream.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (trailers !== undefined && trailers.length !== 0) (stream as StreamWithTrailers)[TRAILERS] = trailers;
    ex.to('ended');
    // The request body is not needed any more: the client may stop sending it (RFC 9113 §8.1).
    if (!ex.bodyDone) stream.close(NGHTTP2_NO_ERROR);
    // Paced output still queued: the stream ends, and the exchange finishes, after its last slice.
    if (ex.outBytes !== 0) return;
    if (!ex.noBody) stream.end();
    this.finish(ex, 'done');
  }

  /** Timers of throttled streams waiting for their next slice. */
  readonly #paceTimers = new Map<Exchange, NodeJS.Timeout>();

  /**
   * Bandwidth throttling for one stream, as connection.ts paces an HTTP/1.1 connection: one
   * slice (about 100 ms of the slowest rate) when the site's and the server's buckets allow,
   * then a timer for the next. The end of the stream follows the last slice.
   */
  #pace(ex: Exchange): void {
    if (this.#paceTimers.has(ex)) return;
    const stream = ex.h2Stream!;
    const throttle = ex.throttle!;
    if (stream.destroyed) {
      ex.out = [];
      ex.outBytes = 0;
      return;
    }
    const now = performance.now();
    if (throttle.wait(now) === 0 && ex.out.length !== 0) {
      let taken = 0;
      const pieces: Buffer[] = [];
      while (ex.out.length !== 0 && taken < throttle.slice) {
        const b = ex.out[0]!;
        const room = throttle.slice - taken;
        if (b.length <= room) {
          pieces.push(b);
          ex.out.shift();
          taken += b.length;
        } else {
          pieces.push(b.subarray(0, room));
          ex.out[0] = b.subarray(room);
          taken += room;
        }
      }
      ex.outBytes -= taken;
      throttle.charge(taken, now);
      stream.write(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, taken));
    }
    if (ex.out.length !== 0) {
      const timer = setTimeout(() => {
        this.#paceTimers.delete(ex);
        this.#pace(ex);
      }, Math.max(1, Math.ceil(throttle.wait(performance.now()))));
      this.#paceTimers.set(ex, timer);
      return;
    }
    if (ex.responsePaused && ex.withOwner) {
      ex.responsePaused = false;
      ex.owner!.resumeResponse(ex);
    }
    if (ex.state === 'ended') {
      if (!ex.noBody) stream.end();
      this.finish(ex, 'done');
    }
  }

  respondLocally(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason | undefined): void {
    ex.httpErrReason = reason;
    this.#respondPage(ex, page);
  }

  finish(ex: Exchange, final: 'done' | 'dropped'): void {
    // The stream leaves the open set before the listener hears (its requestEnd may close us).
    if (isFinal(ex.state)) return;
    this.#open.delete(ex);
    this.#lastIo = this.#host.timers.now();
    finishExchange(this.#host, ex, final);
  }

  /** An HTTP.sys page (400, 503 …) as this stream's answer. */
  #respondPage(ex: Exchange, page: HttpSysErrorPage): void {
    const stream = ex.h2Stream!;
    ex.to('responding');
    ex.answeredBy = 'listener';
    ex.owner = undefined;
    const spec = HTTP_SYS_ERROR_PAGES[page];
    ex.status = spec.status;
    if (stream.destroyed || stream.headersSent) {
      this.finish(ex, 'dropped');
      return;
    }
    const body = httpSysErrorBody(page);
    const out: OutgoingHttpHeaders = { ':status': spec.status, 'content-type': 'text/html; charset=us-ascii', 'content-length': body.length, date: cachedDateHeader() };
    stream.respond(out, { endStream: ex.isHead });
    ex.wrote = true;
    ex.bytesSent += headersSize(out);
    if (!ex.isHead) {
      ex.bytesSent += body.length;
      stream.end(body);
    }
    ex.to('ended');
    if (!ex.bodyDone) stream.close(NGHTTP2_NO_ERROR);
    this.finish(ex, 'done');
  }

  #badResponse(ex: Exchange): void {
    ex.owner?.abort(ex);
    ex.owner = undefined;
    this.#host.httpErr(this, 'Internal', 500, ex, ex.head);
    ex.httpErrReason = 'Internal';
    this.#respondPage(ex, 'internalError');
  }

  #reject(stream: ServerHttp2Stream, head: RequestHead, page: HttpSysErrorPage, reason: HttpErrReason, startedAt: number): void {
    const ex = new Exchange({ conn: this, head, path: '', query: '', site: undefined, application: undefined, poolName: '', startedAt });
    ex.h2Stream = stream;
    this.#open.add(ex);
    if (requestStart.hasSubscribers) publishRequestStart(ex);
    this.#host.httpErr(this, reason, 400, ex, head);
    ex.httpErrReason = reason;
    this.#respondPage(ex, page);
  }

  #onStreamClose(ex: Exchange): void {
    const paced = this.#paceTimers.get(ex);
    if (paced !== undefined) {
      clearTimeout(paced);
      this.#paceTimers.delete(ex);
    }
    if (isFinal(ex.state)) return;
    const s = ex.state;
    // The client reset the stream (or the session died) before its answer was complete.
    if (!this.#closed) this.#chargeReset();
    if ((s === 'responding' || s === 'ended') && ex.answeredBy !== 'listener') {
      ex.win32Status = 64;
      ex.aborted = true;
      this.finish(ex, 'done');
    } else {
      // A stream still 'received' was reset in the read that opened it, before it was submitted:
      // it cost nothing and gets no httperr line of its own (a rapid-reset flood would write one
      // per stream); the session's GOAWAY has its line (#chargeReset).
      if (s === 'queued' || s === 'dispatched') this.#host.httpErr(this, 'Connection_Dropped', undefined, ex, ex.head);
      this.finish(ex, 'dropped');
    }
  }

  /** Rapid reset: a client that cancels more streams than the budget allows is told to calm down. */
  #chargeReset(): void {
    const now = performance.now();
    this.#resetBudget = Math.min(RESET_BUDGET, this.#resetBudget + ((now - this.#resetAt) / 1000) * RESETS_PER_SECOND);
    this.#resetAt = now;
    if (--this.#resetBudget >= 0) return;
    this.#host.httpErr(this, 'Connection_Dropped', undefined, undefined, undefined);
    // GOAWAY ENHANCE_YOUR_CALM as the session's last frame: Node's destroy(code) sends it, flushes
    // it, then ends the socket (a goaway() followed by destroying the TLS socket dropped the frame
    // or followed it with destroy()'s own GOAWAY NO_ERROR). An error must go with the code:
    // destroy(undefined, code) defaults the first argument to NO_ERROR and sends that. A client
    // that does not read cannot keep the socket: it is cut after a grace period.
    this.session.destroy(new Error('rapid reset: too many streams cancelled'), NGHTTP2_ENHANCE_YOUR_CALM);
    setTimeout(() => this.tls.socket.destroy(), GOAWAY_GRACE_MS).unref();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const ex of [...this.#open]) this.#onStreamClose(ex);
    this.#host.connectionClosed(this);
  }

}

const TRAILERS = Symbol('wharf.trailers');
const EXCHANGE = Symbol('wharf.exchange');
type StreamWithExchange = ServerHttp2Stream & { [EXCHANGE]?: Exchange };

/** Shared by every stream (no closure per stream): the exchange hangs off the stream. */
function onStreamClose(this: ServerHttp2Stream): void {
  const ex = (this as StreamWithExchange)[EXCHANGE];
  if (ex !== undefined) (ex.conn as Http2Connection).streamClosed(ex);
}

function onStreamTimeout(this: ServerHttp2Stream): void {
  this.close(NGHTTP2_CANCEL);
}

function ignore(): void {}
type StreamWithTrailers = ServerHttp2Stream & { [TRAILERS]?: readonly string[] };

function sendTrailers(stream: ServerHttp2Stream): void {
  const flat = (stream as StreamWithTrailers)[TRAILERS];
  const out: OutgoingHttpHeaders = {};
  if (flat !== undefined) {
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase();
      if (!CONNECTION_FIELDS.has(name) && !name.startsWith(':')) out[name] = flat[i + 1]!;
    }
  }
  try {
    stream.sendTrailers(out);
  } catch {
    stream.close(NGHTTP2_INTERNAL_ERROR);
  }
}

/**
 * The HTTP/1.1-shaped request head the rest of Wharf works with: Host first (from :authority),
 * then the fields as received; cookie fields joined with "; " (RFC 9113 §8.2.3).
 */
function requestHead(headers: IncomingHttpHeaders, raw: readonly string[], endStream: boolean): RequestHead | undefined {
  const method = headers[':method'];
  const path = headers[':path'];
  if (typeof method !== 'string' || typeof path !== 'string' || method === 'CONNECT') return undefined;
  const authority = headers[':authority'] ?? headers['host'];
  const host = typeof authority === 'string' ? authority : undefined;
  const rawHeaders: string[] = [];
  if (host !== undefined) rawHeaders.push('host', host);
  let cookie: string | undefined;
  let bytes = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    bytes += name.length + value.length + 4;
    if (name.charCodeAt(0) === 0x3a /* : */ || name === 'host') continue;
    if (name === 'cookie') {
      cookie = cookie === undefined ? value : cookie + '; ' + value;
      continue;
    }
    rawHeaders.push(name, value);
  }
  if (cookie !== undefined) rawHeaders.push('cookie', cookie);
  const cl = headers['content-length'];
  const length = endStream ? -1 : typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : -1;
  return {
    method,
    target: path,
    versionMajor: 2,
    versionMinor: 0,
    rawHeaders,
    host,
    contentLength: length,
    // A body of unknown length (no content-length, no END_STREAM) is framed by DATA frames: the
    // worker sees it as chunked (streamed, length unknown).
    chunked: !endStream && length < 0,
    keepAlive: true,
    expectContinue: !endStream && headers['expect']?.toLowerCase() === '100-continue',
    upgrade: false,
    headBytes: bytes,
  };
}

/**
 * The worker's flat response headers as an HTTP/2 header block, or undefined when one cannot be
 * carried (a control character, an invalid name). Connection fields are dropped; Set-Cookie stays
 * a list, other repeated fields are joined.
 */
function responseHeaders(status: number, flat: readonly string[], server: string | null, hsts: string | undefined): OutgoingHttpHeaders | undefined {
  const out: OutgoingHttpHeaders = { ':status': status };
  let hasDate = false;
  let hasServer = false;
  let hasHsts = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    if (!TOKEN_RE.test(name) || INVALID_VALUE_RE.test(value)) return undefined;
    if (CONNECTION_FIELDS.has(name)) continue;
    if (name === 'date') hasDate = true;
    else if (name === 'server') {
      hasServer = true;
      if (value === '') continue; // "send none" (requestFiltering removeServerHeader)
    } else if (name === 'strict-transport-security') hasHsts = true;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (name === 'set-cookie') out[name] = Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    else out[name] = String(prev) + ', ' + value;
  }
  if (!hasDate) out['date'] = cachedDateHeader();
  if (!hasServer && server !== null) out['server'] = server;
  if (hsts !== undefined && !hasHsts) out['strict-transport-security'] = hsts.slice(hsts.indexOf(':') + 2, -2);
  return out;
}

/** Bytes a header block stands for (logged as part of sc-bytes; HPACK makes the wire smaller). */
function headersSize(h: OutgoingHttpHeaders): number {
  let n = 0;
  for (const k in h) n += k.length + String(h[k]).length + 4;
  return n;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// eslint-disable-next-line no-control-regex
const INVALID_VALUE_RE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
