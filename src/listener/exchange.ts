/**
 * One request/response pair as the listener tracks it, from the parsed head to the last byte
 * written to the client. The lifecycle is one explicit state with checked transitions (STYLE.md:
 * no boolean soup for the lifecycle); what is not lifecycle (who answered, whether bytes reached
 * the socket, framing, flow control) stays in named fields.
 *
 *   received ─▶ queued ─▶ dispatched ─▶ responding ─▶ ended ─▶ done
 *
 *   The main line above; besides it (TRANSITIONS has them all): the cache or the listener answers
 *   from received or queued (→ responding); a worker that died before any byte reached the client
 *   sends the request back to queued (a replay, once); a worker's abort finishes it as done from
 *   dispatched or responding; the listener may replace a response that never reached the socket
 *   (responding → responding); and any state before done may be dropped.
 *
 * - received:   routed, not yet given to the response cache or a pool.
 * - queued:     waiting in its pool's queue for a worker.
 * - dispatched: a worker (or the response cache, in a worker's place) has it; no response head yet.
 * - responding: a response head exists (from the worker, the cache or the listener itself).
 * - ended:      the whole response is produced; it waits for its turn on the connection.
 * - done:       finished and accounted (the W3C log writes it unless the worker said dontLog).
 * - dropped:    finished without a response (httperr names why).
 *
 * The states know nothing of HTTP/1.1 framing: an HTTP/2 stream goes through the same ones.
 * TRANSITIONS is the one table every change is checked against; an invalid change is a bug,
 * reported through the handler (tests: it throws; the listener: it logs an error and carries on,
 * as a bug must cost at most its own request).
 */
import type { ApplicationConfig, SiteConfig } from '../config/types.js';
import type { ClientConnection } from './client-connection.js';
import type { RequestHead } from './http-parser.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import type { BandwidthThrottle } from './bandwidth-throttle.js';
import type { CacheableMessage } from '../ipc/messages.js';
import type { PoolQueue } from './pool-queue.js';
import { ListenerError } from '../errors.js';
import type { ServerHttp2Stream } from 'node:http2';

export type ExchangeState = 'received' | 'queued' | 'dispatched' | 'responding' | 'ended' | 'done' | 'dropped';

/** Who produced the response (a fact beside the state; the requestEnd event reports it). */
export type AnsweredBy = 'worker' | 'cache' | 'listener';

/** Every state, in lifecycle order (tests walk it). */
export const EXCHANGE_STATES: readonly ExchangeState[] = ['received', 'queued', 'dispatched', 'responding', 'ended', 'done', 'dropped'];

/** The states an exchange may move to from each state. */
export const TRANSITIONS: Readonly<Record<ExchangeState, readonly ExchangeState[]>> = {
  received: ['queued', 'dispatched', 'responding', 'dropped'],
  queued: ['dispatched', 'responding', 'dropped'],
  // queued: replay on another worker (the first died before any byte reached the client).
  // done: the worker aborted (or ended without a head): the connection is reset, the request logged.
  dispatched: ['responding', 'queued', 'done', 'dropped'],
  // responding → responding: the listener replaces a worker's response that never reached the
  // socket (an invalid head, a worker that died while its response waited behind another).
  responding: ['responding', 'ended', 'queued', 'done', 'dropped'],
  ended: ['done', 'dropped'],
  done: [],
  dropped: [],
};

/** The same table as bit masks: one lookup and one AND per transition on the hot path. */
const BIT: Readonly<Record<ExchangeState, number>> = { received: 1, queued: 2, dispatched: 4, responding: 8, ended: 16, done: 32, dropped: 64 };
const ALLOWED = Object.fromEntries(
  EXCHANGE_STATES.map((from) => [from, TRANSITIONS[from].reduce((m, to) => m | BIT[to], 0)]),
) as Readonly<Record<ExchangeState, number>>;

/** Whether TRANSITIONS allows `from` → `to`. */
export function canTransition(from: ExchangeState, to: ExchangeState): boolean {
  return (ALLOWED[from] & BIT[to]) !== 0;
}

/** What happens on an invalid transition (default: throw LSN_EXCHANGE_STATE). */
export type InvalidTransitionHandler = (ex: Exchange, to: ExchangeState, error: ListenerError) => void;

let onInvalid: InvalidTransitionHandler = (_ex, _to, error) => {
  throw error;
};

/** The listener logs invalid transitions instead of throwing (see the file comment). */
export function setInvalidTransitionHandler(handler: InvalidTransitionHandler): void {
  onInvalid = handler;
}

/** Whether an exchange is finished (done or dropped): nothing more happens to it. */
export function isFinal(state: ExchangeState): boolean {
  return state === 'done' || state === 'dropped';
}

/** The listener side of a worker, as an exchange sees it. */
export interface ExchangeOwner {
  sendBody(ex: Exchange, chunk: Buffer): void;
  sendBodyEnd(ex: Exchange): void;
  pauseResponse(ex: Exchange): void;
  resumeResponse(ex: Exchange): void;
  abort(ex: Exchange): void;
}

export class Exchange {
  #state: ExchangeState = 'received';
  /** Who produced the response; 'listener' until a worker or the cache takes it. */
  answeredBy: AnsweredBy = 'listener';
  /** The connection was reset or dropped before the response completed (requestEnd's `aborted`). */
  aborted = false;
  readonly conn: ClientConnection;
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
  /** It ran once on a worker that died before answering; it is not replayed twice. */
  replayed = false;
  /** The worker may name a file for the body (FileBodyMessage); false after such a file changed. */
  fileReferences = true;
  /** The pool queue it waits in (set while queued), and since when (performance.now()). */
  queue: PoolQueue | undefined = undefined;
  queuedAt = 0;

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
  responsePaused = false;
  /** Write a W3C line when done (the worker's HttpLoggingModule may say no). */
  logged = true;
  /** httperr reason for a listener-generated answer (or a dropped request). */
  httpErrReason: HttpErrReason | undefined = undefined;

  /** The worker asked us to stop reading this request's body (undone if the worker dies). */
  bodyPausedByWorker = false;

  // QoS (qos-limits.ts)
  /**
   * The pacing applied to this response's bytes (maxBandwidth / maxGlobalBandwidth). A paced
   * response is never stored in the response cache (IIS doesn't either).
   */
  throttle: BandwidthThrottle | undefined = undefined;
  /** Counted against serverRuntime appConcurrentRequestLimit until completed or cancelled. */
  concurrencySlot = false;

  /** The response's headers, kept only when the site's log has ResponseHeader custom fields. */
  responseHeaders: readonly string[] | undefined = undefined;
  /** The worker allowed the listener to cache this response (kernel cache policy). */
  cacheHint: CacheableMessage | undefined = undefined;
  /** Response cache key when the request could be served from (and fill) the cache. */
  cacheKey: string | undefined = undefined;
  /** HTTP/2: the exchange's stream (h2-connection.ts); undefined on HTTP/1.x. */
  h2Stream: ServerHttp2Stream | undefined = undefined;
  /** HTTP/2: outstanding pauses of this stream's request body (each matched by a resume). */
  bodyPauses = 0;

  constructor(init: {
    conn: ClientConnection;
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

  get state(): ExchangeState {
    return this.#state;
  }

  /** Move to `next`, checked against TRANSITIONS (an invalid change is reported, see above). */
  to(next: ExchangeState): void {
    const from = this.#state;
    if ((ALLOWED[from] & BIT[next]) === 0) {
      onInvalid(this, next, new ListenerError('LSN_EXCHANGE_STATE', `exchange ${this.method} ${this.head.target}: invalid state change ${from} → ${next}`));
    }
    this.#state = next;
  }

  /** A response head exists (the worker's, the cache's or the listener's own). */
  get responded(): boolean {
    const s = this.#state;
    return s === 'responding' || s === 'ended' || s === 'done';
  }

  /** The whole response is produced (or the exchange is finished). */
  get ended(): boolean {
    const s = this.#state;
    return s === 'ended' || s === 'done' || s === 'dropped';
  }

  /** A worker holds the request: body bytes and flow control go to it (cache answers have a no-op owner). */
  get withOwner(): boolean {
    const s = this.#state;
    return (s === 'dispatched' || s === 'responding') && this.owner !== undefined;
  }

  /** 'HTTP/1.1' or 'HTTP/1.0' without building the string per request. */
  get protocol(): string {
    const h = this.head;
    if (h.versionMajor === 1) return h.versionMinor === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    if (h.versionMajor === 2) return 'HTTP/2';
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
    this.to('queued');
    this.replayed = true;
    this.answeredBy = 'listener';
    this.owner = undefined;
    this.stream = 0;
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
    this.responsePaused = false;
    this.logged = true;
    this.cacheHint = undefined;
    this.responseHeaders = undefined;
  }
}
