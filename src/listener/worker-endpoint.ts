/**
 * The listener's end of one worker's channel: assigns stream ids, forwards request bodies and
 * routes the worker's response frames to the right connection. When the channel closes, every
 * exchange still on it is handed back to the pool queue for replay or a clean 502.
 */
import type { Duplex } from 'node:stream';
import { ListenerChannel } from '../ipc/channel.js';
import { IpcError } from '../errors.js';
import type { CacheableMessage, ConfigMessage, FileBodyMessage, ListenerInbound, LogMessage, ResponseEndMessage, ResponseHeadMessage } from '../ipc/messages.js';
import { FileBody } from './file-body.js';
import type { PoolKey } from '../config/pool-key.js';
import type { Exchange, ExchangeOwner } from './exchange.js';
import { requestDispatch, type RequestDispatchEvent } from '../diagnostics.js';

export type WorkerEndpointState = 'starting' | 'ready' | 'draining' | 'closed';

export interface WorkerEndpointEvents {
  ready(ep: WorkerEndpoint): void;
  closed(ep: WorkerEndpoint, orphans: Exchange[]): void;
  /** An exchange on this worker finished (frees a slot for least-outstanding dispatch). */
  idle(ep: WorkerEndpoint): void;
  /** A whole response the worker allowed the listener to cache (before it goes to the client). */
  cacheable(ex: Exchange, head: ResponseHeadMessage, body: Buffer, end: ResponseEndMessage): void;
  /**
   * The worker named a file for the body that is no longer what it described (FileBodyMessage):
   * the request, answered by nobody yet, runs again with its bytes.
   */
  refetch(ep: WorkerEndpoint, ex: Exchange): void;
  log(ep: WorkerEndpoint, msg: LogMessage): void;
  /** The worker sent a failed request's trace to write (its JSON, not validated yet). */
  traceRecord(ep: WorkerEndpoint, json: Buffer): void;
}

export class WorkerEndpoint implements ListenerInbound, ExchangeOwner {
  readonly poolName: string;
  readonly poolKey: PoolKey;
  readonly pid: number;
  state: WorkerEndpointState = 'starting';
  readonly #channel: ListenerChannel;
  readonly #inflight = new Map<number, Exchange>();
  #nextStream = 1;
  readonly #events: WorkerEndpointEvents;
  /** The listener may not open this worker's descriptors (/proc restricted): it is asked for bytes. */
  #filesDenied = false;
  /** Requests given to this worker (periodicRestart requests) and answered by it. */
  dispatched = 0;
  served = 0;
  /** When it last took or finished a request (Date.now(); for idleTimeout). */
  lastActivity = Date.now();
  readonly startedAt = Date.now();

  constructor(pool: PoolKey, poolName: string, pid: number, socket: Duplex, events: WorkerEndpointEvents) {
    this.poolKey = pool;
    this.poolName = poolName;
    this.pid = pid;
    this.#events = events;
    this.#channel = new ListenerChannel(socket, this);
  }

  get outstanding(): number {
    return this.#inflight.size;
  }

  /** Requests in flight on this worker, with their stream ids (admin: `wharf list requests`). */
  inflight(): IterableIterator<[number, Exchange]> {
    return this.#inflight.entries();
  }

  init(config: ConfigMessage): void {
    this.#channel.sendInit(config);
  }
  reconfigure(config: ConfigMessage): void {
    this.#channel.sendConfig(config);
  }
  /** Ask the worker to finish its requests and exit. */
  drain(): void {
    if (this.state === 'closed') return;
    this.state = 'draining';
    this.#channel.sendShutdown();
  }
  destroy(): void {
    this.#channel.destroy();
  }

  dispatch(ex: Exchange): void {
    const conn = ex.conn;
    const stream = this.#nextStream++;
    if (this.#nextStream > 0xfffffff0) this.#nextStream = 1;
    ex.to('dispatched');
    ex.answeredBy = 'worker';
    ex.owner = this;
    this.dispatched++;
    ex.stream = stream;
    this.#inflight.set(stream, ex);
    const h = ex.head;
    // A tracing subscriber may give the worker a traceparent (its span for this request).
    let traceparent = '';
    if (requestDispatch.hasSubscribers) {
      const ev: RequestDispatchEvent = { key: ex, poolName: this.poolName, pid: this.pid, replay: ex.replayed, dispatchedAt: performance.now(), traceparent: '' };
      requestDispatch.publish(ev);
      traceparent = ev.traceparent;
    }
    this.#channel.sendRequestHead(stream, {
      method: h.method,
      rawUrl: h.target,
      path: ex.path,
      query: ex.query,
      protocol: ex.protocol,
      siteId: ex.site!.id,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
      contentLength: ex.requestContentLength,
      rawHeaders: h.rawHeaders,
      traceparent,
      tls: conn.tlsInfo,
      bytes: !ex.fileReferences || this.#filesDenied,
    });
    conn.dispatched(ex);
  }

  // ---- ExchangeOwner ---------------------------------------------------------------------------

  sendBody(ex: Exchange, chunk: Buffer): void {
    const channel = this.#channel;
    channel.sendRequestBody(ex.stream, chunk);
    // The channel's socket is full (the worker reads it slower than clients send): stop reading
    // this client until it drains, or request bodies would pile up in the listener's memory.
    if (!channel.writable && !channel.closed && !this.#stalled.includes(ex)) {
      this.#stalled.push(ex);
      ex.conn.pauseForBody(ex);
      if (this.#stalled.length === 1) channel.onceDrain(this.#resumeStalled);
    }
  }

  /** Exchanges whose body reading waits for the channel to drain (each paused once). */
  #stalled: Exchange[] = [];
  readonly #resumeStalled = (): void => {
    const stalled = this.#stalled;
    this.#stalled = [];
    for (const ex of stalled) ex.conn.resumeReading(ex);
  };
  sendBodyEnd(ex: Exchange): void {
    // A request without a body is complete with its head: the worker needs no end frame.
    if (ex.requestContentLength !== 0 || ex.tunnel) this.#channel.sendRequestEnd(ex.stream, ex.requestTrailers);
  }
  pauseResponse(ex: Exchange): void {
    this.#channel.sendResponsePause(ex.stream);
  }
  resumeResponse(ex: Exchange): void {
    this.#channel.sendResponseResume(ex.stream);
  }
  abort(ex: Exchange): void {
    if (this.#inflight.delete(ex.stream)) {
      this.#releaseBody(ex);
      this.#channel.sendRequestAbort(ex.stream);
      this.#events.idle(this);
    }
  }

  // ---- ListenerInbound -------------------------------------------------------------------------

  /** WAS heard Ready on the worker's control channel: requests may go to it. */
  ready(): void {
    if (this.state === 'starting') {
      this.state = 'ready';
      this.#events.ready(this);
    }
  }
  responseHead(stream: number, head: ResponseHeadMessage): void {
    const ex = this.#inflight.get(stream);
    if (ex !== undefined) ex.conn.responseHead(ex, head.status, head.reason, head.headers);
  }
  responseInterim(stream: number, status: number, headers: readonly string[]): void {
    const ex = this.#inflight.get(stream);
    if (ex !== undefined) ex.conn.responseInterim(ex, status, headers);
  }
  responseLogUrl(stream: number, path: string, query: string): void {
    const ex = this.#inflight.get(stream);
    if (ex === undefined) return;
    ex.logPath = path;
    ex.logQuery = query;
  }
  responseBody(stream: number, chunk: Buffer): void {
    const ex = this.#inflight.get(stream);
    if (ex !== undefined) ex.conn.responseBody(ex, chunk);
  }
  responseEnd(stream: number, end: ResponseEndMessage): void {
    const ex = this.#inflight.get(stream);
    if (ex === undefined) return;
    this.#settle(stream, ex);
    if (!end.log) ex.logged = false;
    ex.conn.responseEnd(ex, end.subStatus, end.win32Status, end.username, end.close, end.abort, end.trailers);
    this.#events.idle(this);
  }
  /** The worker is done with `ex` (its response ended, or the listener took over its body). */
  #settle(stream: number, ex: Exchange): void {
    this.#inflight.delete(stream);
    this.served++;
    if (this.#inflight.size === 0) this.lastActivity = Date.now();
    this.#releaseBody(ex);
  }
  responseComplete(stream: number, head: ResponseHeadMessage, body: Buffer, end: ResponseEndMessage): void {
    const ex = this.#inflight.get(stream);
    if (ex === undefined) return;
    if (ex.cacheHint !== undefined) this.#events.cacheable(ex, head, body, end);
    ex.conn.responseHead(ex, head.status, head.reason, head.headers);
    if (body.length !== 0) ex.conn.responseBody(ex, body);
    this.responseEnd(stream, end);
  }
  responseFile(stream: number, head: ResponseHeadMessage, file: FileBodyMessage, end: ResponseEndMessage): void {
    const ex = this.#inflight.get(stream);
    if (ex === undefined) return;
    const body = ex.state === 'dispatched' ? FileBody.open(ex, this.pid, file, end) : 'changed';
    // The worker is done with the request either way.
    this.#settle(stream, ex);
    if (typeof body === 'string') {
      if (body === 'denied' && !this.#filesDenied) {
        this.#filesDenied = true;
        this.#events.log(this, { level: 'warn', message: `the listener may not open /proc/${this.pid}/fd (the system restricts /proc): this worker's files go through its channel` });
      }
      this.#events.refetch(this, ex);
    } else {
      if (!end.log) ex.logged = false;
      ex.conn.responseHead(ex, head.status, head.reason, head.headers);
      // The listener produces the rest: the connection's pauses and aborts go to the file.
      if (ex.state === 'responding') {
        ex.owner = body;
        body.start();
      } else body.abort();
    }
    this.#events.idle(this);
  }
  responseCacheable(stream: number, hint: CacheableMessage): void {
    const ex = this.#inflight.get(stream);
    if (ex !== undefined) ex.cacheHint = hint;
  }
  requestPause(stream: number): void {
    const ex = this.#inflight.get(stream);
    if (ex === undefined || ex.bodyPausedByWorker) return;
    ex.bodyPausedByWorker = true;
    ex.conn.pauseForBody(ex);
  }
  requestResume(stream: number): void {
    const ex = this.#inflight.get(stream);
    if (ex !== undefined) this.#releaseBody(ex);
  }
  #releaseBody(ex: Exchange): void {
    if (!ex.bodyPausedByWorker) return;
    ex.bodyPausedByWorker = false;
    ex.conn.resumeReading(ex);
  }
  log(msg: LogMessage): void {
    this.#events.log(this, msg);
  }
  traceRecord(json: Buffer): void {
    this.#events.traceRecord(this, json);
  }
  closed(error?: Error): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    // A frame the listener refused (IPC_PROTOCOL, IPC_INVALID_MESSAGE) closed the channel: say why.
    if (error instanceof IpcError) this.#events.log(this, { level: 'error', message: `${error.code}: ${error.message}; its channel was closed` });
    const orphans: Exchange[] = [];
    for (const ex of this.#inflight.values()) {
      this.#releaseBody(ex); // a pause the dead worker asked for would never be lifted
      orphans.push(ex);
    }
    this.#inflight.clear();
    this.#events.closed(this, orphans);
  }

}
