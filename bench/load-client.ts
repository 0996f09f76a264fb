/**
 * A bounded HTTP/1.1 load client that accounts for every request (BRIEF.md, "how peers lose
 * requests"). Raw `node:net` sockets and a small response parser on purpose: an HTTP client
 * library with an Agent may retry a request on a fresh socket and hide exactly the loss this is
 * meant to count.
 *
 * Each of `connections` virtual clients loops on one keep-alive connection with one request
 * outstanding: write a request, read the whole response, write the next. A connection the server
 * closes after announcing `Connection: close` is normal (the client reconnects and goes on);
 * every other end of a connection, a reset, a hang or a malformed answer is counted. Loopback
 * only; every wait is bounded.
 *
 * Used by `npm run bench` (zero-drop scenarios) and re-exported for tests by test/helpers/load.ts.
 */
import { connect, type Socket } from 'node:net';

export interface LoadOptions {
  readonly port: number;
  /** Loopback only (default 127.0.0.1). */
  readonly host?: string;
  /** One path for every request … */
  readonly path?: string;
  /** … or several, taken in turn (client i starts at paths[i % n]). */
  readonly paths?: readonly string[];
  /** Virtual clients, each with one connection and one request outstanding. */
  readonly connections: number;
  /** Time during which new requests are started. */
  readonly durationMs: number;
  readonly method?: string;
  /** Request body, sent with Content-Length. */
  readonly body?: Buffer;
  /** Send the body in pieces of this size … */
  readonly bodyChunkSize?: number;
  /** … with this pause between pieces, so uploads are in flight for a while (default 0). */
  readonly bodyChunkDelayMs?: number;
  /** Extra request headers (Host defaults to host:port). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly expectStatus?: number;
  /** Checks the body of each response with the expected status; false counts as a bad body. */
  readonly checkBody?: (body: Buffer) => boolean;
  /** A response not complete this long after its request started counts as timed out (default 15 s). */
  readonly responseTimeoutMs?: number;
  /** After durationMs, how long outstanding responses are waited for (default 10 s). */
  readonly drainTimeoutMs?: number;
  /** Ends the load early: no new requests; outstanding ones are still waited for (drainTimeoutMs). */
  readonly signal?: AbortSignal;
  /** Called every tickMs (default 1000) with the counters so far. */
  readonly onTick?: (progress: LoadResult, elapsedMs: number) => void;
  readonly tickMs?: number;
}

export interface LoadResult {
  /** Requests whose first byte was written. */
  sent: number;
  /** Complete responses received (any status). */
  completed: number;
  /** Complete responses by status code. */
  statuses: Record<number, number>;
  /** Complete responses whose status was not expectStatus. */
  failed: number;
  /** Responses with the expected status whose body checkBody rejected. */
  badBodies: number;
  /** Socket errors (ECONNRESET, ECONNREFUSED, EPIPE, connect timeout …); codes in `errors`. */
  connectionErrors: number;
  /** The server closed a connection without announcing Connection: close: a response went missing or the socket ended between requests. */
  serverClosed: number;
  /** Connections the server closed after announcing it (Connection: close, or a body delimited by the close); the client reconnected. */
  closedWithNotice: number;
  /** Responses that did not complete within responseTimeoutMs (the connection is dropped and replaced). */
  timedOut: number;
  /** Responses still outstanding when the drain time after durationMs ran out. */
  unanswered: number;
  /** Responses that could not be parsed, or bytes the server sent without being asked. */
  protocolErrors: number;
  /** Socket error codes seen, with counts. */
  errors: Record<string, number>;
  maxLatencyMs: number;
  durationMs: number;
}

/** Why parsing stopped: more bytes needed, a whole response, or a malformed stream. */
type ParseOutcome = 'More' | 'Complete' | 'Invalid';

type ParseState = 'Head' | 'FixedBody' | 'ChunkSize' | 'ChunkData' | 'ChunkDataEnd' | 'Trailers' | 'UntilClose' | 'Complete';

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const MAX_HEAD = 64 * 1024;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/;

/**
 * Incremental parser for one HTTP/1.x response at a time (RFC 9112 §6.3 message body length):
 * Content-Length, chunked with trailers, or a body that ends when the connection closes; 1xx
 * interim responses are skipped; HEAD, 204 and 304 have no body.
 */
export class ResponseParser {
  #state: ParseState = 'Head';
  #buf: Buffer = EMPTY;
  #remaining = 0;
  #headRequest = false;
  #keepBody = false;
  #chunks: Buffer[] = [];
  status = 0;
  /** The response says the connection closes after it. */
  closes = false;
  bodyLength = 0;
  error = '';

  /** Prepare for the response to the next request. */
  reset(headRequest: boolean, keepBody: boolean): void {
    this.#state = 'Head';
    this.#buf = EMPTY;
    this.#remaining = 0;
    this.#headRequest = headRequest;
    this.#keepBody = keepBody;
    this.#chunks = [];
    this.status = 0;
    this.closes = false;
    this.bodyLength = 0;
    this.error = '';
  }

  get complete(): boolean {
    return this.#state === 'Complete';
  }

  body(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  feed(data: Buffer): ParseOutcome {
    if (this.#state === 'Complete') {
      // One request is outstanding at a time: anything after the response is unsolicited.
      this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
      return this.#invalid('bytes after a complete response');
    }
    this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
    for (;;) {
      switch (this.#state) {
        case 'Head': {
          const end = this.#buf.indexOf(HEAD_END);
          if (end < 0) return this.#buf.length > MAX_HEAD ? this.#invalid('response head too large') : 'More';
          const head = this.#buf.subarray(0, end).toString('latin1');
          this.#buf = this.#buf.subarray(end + 4);
          const outcome = this.#head(head);
          if (outcome !== 'More') return outcome;
          break;
        }
        case 'FixedBody': {
          if (this.#buf.length === 0) return 'More';
          const n = Math.min(this.#remaining, this.#buf.length);
          this.#take(n);
          this.#remaining -= n;
          if (this.#remaining === 0) return this.#done();
          break;
        }
        case 'ChunkSize': {
          const eol = this.#buf.indexOf(CRLF);
          if (eol < 0) return this.#buf.length > 1024 ? this.#invalid('chunk size line too long') : 'More';
          const line = this.#buf.subarray(0, eol).toString('latin1');
          this.#buf = this.#buf.subarray(eol + 2);
          const m = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line);
          if (m === null) return this.#invalid(`bad chunk size line ${JSON.stringify(line)}`);
          this.#remaining = parseInt(m[1]!, 16);
          this.#state = this.#remaining === 0 ? 'Trailers' : 'ChunkData';
          break;
        }
        case 'ChunkData': {
          if (this.#buf.length === 0) return 'More';
          const n = Math.min(this.#remaining, this.#buf.length);
          this.#take(n);
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = 'ChunkDataEnd';
          break;
        }
        case 'ChunkDataEnd': {
          if (this.#buf.length < 2) return 'More';
          if (this.#buf[0] !== 0x0d || this.#buf[1] !== 0x0a) return this.#invalid('chunk data not followed by CRLF');
          this.#buf = this.#buf.subarray(2);
          this.#state = 'ChunkSize';
          break;
        }
        case 'Trailers': {
          const eol = this.#buf.indexOf(CRLF);
          if (eol < 0) return this.#buf.length > MAX_HEAD ? this.#invalid('trailers too large') : 'More';
          this.#buf = this.#buf.subarray(eol + 2);
          if (eol === 0) return this.#done();
          break;
        }
        case 'UntilClose': {
          if (this.#buf.length > 0) this.#take(this.#buf.length);
          return 'More';
        }
      }
    }
  }

  /** The connection ended: completes a close-delimited body; any other partial response is lost. */
  end(): boolean {
    if (this.#state === 'UntilClose') {
      this.#state = 'Complete';
      return true;
    }
    return this.#state === 'Complete';
  }

  #head(head: string): ParseOutcome {
    const lines = head.split('\r\n');
    const m = STATUS_LINE.exec(lines[0]!);
    if (m === null) return this.#invalid(`bad status line ${JSON.stringify(lines[0])}`);
    const http10 = m[1] === '0';
    const status = Number(m[2]);
    let contentLength = -1;
    let chunked = false;
    let connection = '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) return this.#invalid(`bad header line ${JSON.stringify(line)}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value)) return this.#invalid(`bad Content-Length ${JSON.stringify(value)}`);
        const n = Number(value);
        if (contentLength >= 0 && contentLength !== n) return this.#invalid('conflicting Content-Length headers');
        contentLength = n;
      } else if (name === 'transfer-encoding') {
        chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
      } else if (name === 'connection') {
        connection += `${value.toLowerCase()},`;
      }
    }
    // 1xx (other than 101, which we never ask for) are interim: the real response follows.
    if (status >= 100 && status < 200 && status !== 101) return 'More';
    this.status = status;
    const tokens = connection.split(',').map((t) => t.trim());
    this.closes = tokens.includes('close') || (http10 && !tokens.includes('keep-alive'));
    if (this.#headRequest || status === 204 || status === 304) return this.#done();
    if (chunked) {
      this.#state = 'ChunkSize';
      return 'More';
    }
    if (contentLength >= 0) {
      if (contentLength === 0) return this.#done();
      this.#remaining = contentLength;
      this.#state = 'FixedBody';
      return 'More';
    }
    // Neither length nor chunked: the body ends when the server closes (RFC 9112 §6.3 item 8).
    this.closes = true;
    this.#state = 'UntilClose';
    return 'More';
  }

  #take(n: number): void {
    if (this.#keepBody) this.#chunks.push(this.#buf.subarray(0, n));
    this.bodyLength += n;
    this.#buf = this.#buf.subarray(n);
  }

  #done(): ParseOutcome {
    this.#state = 'Complete';
    return this.#buf.length > 0 ? this.#invalid('bytes after a complete response') : 'Complete';
  }

  #invalid(reason: string): ParseOutcome {
    this.error = reason;
    return 'Invalid';
  }
}

/**
 * A virtual client. Idle (no socket) → Connecting → Sending (request bytes still going out; a
 * response may already arrive) → Waiting → on a response, Sending again on the same socket, or
 * Idle when the connection ends (notice honoured or fault counted) and a new one opens;
 * Finished once the load is over for it.
 */
type ClientState = 'Idle' | 'Connecting' | 'Sending' | 'Waiting' | 'Finished';

interface Client {
  state: ClientState;
  socket: Socket | undefined;
  /** Bumped for every request and every socket, so stale timers and events are ignored. */
  generation: number;
  pathIndex: number;
  startedAt: number;
  /** Body bytes of the current request written so far. */
  bodyOffset: number;
  readonly parser: ResponseParser;
}

const RECONNECT_DELAY_MS = 20;

/** Run the load; resolves with the counters once every request is answered or given up on. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return new LoadRun(options).run();
}

class LoadRun {
  readonly #o: LoadOptions;
  readonly #host: string;
  readonly #paths: readonly string[];
  readonly #method: string;
  readonly #body: Buffer | undefined;
  readonly #chunkSize: number;
  readonly #chunkDelay: number;
  readonly #expect: number;
  readonly #responseTimeout: number;
  readonly #headRequest: boolean;
  /** Request heads by path, built once. */
  readonly #heads = new Map<string, Buffer>();
  readonly #clients: Client[] = [];
  readonly #r: LoadResult = {
    sent: 0,
    completed: 0,
    statuses: {},
    failed: 0,
    badBodies: 0,
    connectionErrors: 0,
    serverClosed: 0,
    closedWithNotice: 0,
    timedOut: 0,
    unanswered: 0,
    protocolErrors: 0,
    errors: {},
    maxLatencyMs: 0,
    durationMs: 0,
  };
  #t0 = 0;
  #stopping = false;
  #stoppedAt = 0;
  #finish: (() => void) | undefined;

  constructor(options: LoadOptions) {
    this.#o = options;
    this.#host = options.host ?? '127.0.0.1';
    if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(this.#host)) throw new Error(`runLoad is for loopback only, not ${this.#host}`);
    this.#paths = options.paths ?? [options.path ?? '/'];
    if (this.#paths.length === 0) throw new Error('runLoad needs a path');
    if (!(options.connections >= 1)) throw new Error('runLoad needs at least one connection');
    this.#method = (options.method ?? 'GET').toUpperCase();
    this.#headRequest = this.#method === 'HEAD';
    this.#body = options.body;
    this.#chunkSize = options.bodyChunkSize ?? options.body?.length ?? 0;
    this.#chunkDelay = options.bodyChunkDelayMs ?? 0;
    this.#expect = options.expectStatus ?? 200;
    this.#responseTimeout = options.responseTimeoutMs ?? 15000;
    const headers: Record<string, string> = { Host: `${this.#host}:${options.port}`, ...(options.headers ?? {}) };
    if (this.#body !== undefined) headers['Content-Length'] = String(this.#body.length);
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    for (const p of this.#paths) this.#heads.set(p, Buffer.from(`${this.#method} ${p} HTTP/1.1\r\n${lines}\r\n`, 'latin1'));
  }

  run(): Promise<LoadResult> {
    this.#t0 = performance.now();
    const drainMs = this.#o.drainTimeoutMs ?? 10000;
    const tickMs = this.#o.tickMs ?? 1000;
    return new Promise((resolve) => {
      let nextTick = tickMs;
      // One coarse timer: timeouts, ticks, the end of the load and the end of the drain.
      const timer = setInterval(() => {
        const now = performance.now();
        const elapsed = now - this.#t0;
        for (const c of this.#clients) {
          if (now - c.startedAt <= this.#responseTimeout) continue;
          if (c.state === 'Sending' || c.state === 'Waiting') {
            this.#r.timedOut++;
            this.#fault(c);
          } else if (c.state === 'Connecting') {
            this.#r.errors['connect timeout'] = (this.#r.errors['connect timeout'] ?? 0) + 1;
            this.#r.connectionErrors++;
            this.#fault(c);
          }
        }
        if (!this.#stopping && (elapsed >= this.#o.durationMs || this.#o.signal?.aborted === true)) this.#stop();
        if (this.#stopping && now - this.#stoppedAt >= drainMs) {
          for (const c of this.#clients) {
            if (c.state === 'Sending' || c.state === 'Waiting') this.#r.unanswered++;
            if (c.state !== 'Finished') this.#finishClient(c);
          }
        }
        if (this.#o.onTick !== undefined && elapsed >= nextTick) {
          nextTick += tickMs;
          this.#o.onTick(this.snapshot(), elapsed);
        }
        this.#checkFinished();
      }, 25);
      this.#finish = () => {
        clearInterval(timer);
        this.#r.durationMs = performance.now() - this.#t0;
        resolve(this.snapshot());
      };
      for (let i = 0; i < this.#o.connections; i++) {
        const c: Client = {
          state: 'Idle',
          socket: undefined,
          generation: 0,
          pathIndex: i % this.#paths.length,
          startedAt: 0,
          bodyOffset: 0,
          parser: new ResponseParser(),
        };
        this.#clients.push(c);
        this.#open(c);
      }
    });
  }

  snapshot(): LoadResult {
    return { ...this.#r, statuses: { ...this.#r.statuses }, errors: { ...this.#r.errors } };
  }

  #stop(): void {
    this.#stopping = true;
    this.#stoppedAt = performance.now();
    for (const c of this.#clients) if (c.state === 'Idle' || c.state === 'Connecting') this.#finishClient(c);
  }

  #checkFinished(): void {
    if (this.#finish === undefined || !this.#stopping) return;
    if (this.#clients.every((c) => c.state === 'Finished')) {
      const f = this.#finish;
      this.#finish = undefined;
      f();
    }
  }

  #finishClient(c: Client): void {
    c.generation++;
    c.state = 'Finished';
    c.socket?.destroy();
    c.socket = undefined;
    this.#checkFinished();
  }

  /** Open a connection and send the next request on it. */
  #open(c: Client): void {
    if (this.#stopping) {
      this.#finishClient(c);
      return;
    }
    const gen = ++c.generation;
    c.state = 'Connecting';
    c.startedAt = performance.now();
    const s = connect({ port: this.#o.port, host: this.#host, noDelay: true });
    c.socket = s;
    s.on('connect', () => {
      if (c.generation === gen) this.#send(c);
    });
    s.on('data', (d: Buffer) => this.#onData(c, s, d));
    s.on('end', () => this.#onEnd(c, s));
    s.on('error', (err: NodeJS.ErrnoException) => {
      if (c.socket !== s || c.state === 'Finished' || c.state === 'Idle') return;
      const code = err.code ?? 'ERROR';
      this.#r.errors[code] = (this.#r.errors[code] ?? 0) + 1;
      this.#r.connectionErrors++;
      this.#fault(c, code === 'ECONNREFUSED' ? RECONNECT_DELAY_MS : 0);
    });
    s.on('close', () => {
      // A close without 'end' or 'error' (should not happen) is still a lost connection.
      if (c.socket !== s || c.state === 'Finished' || c.state === 'Idle') return;
      this.#onEnd(c, s);
    });
  }

  #send(c: Client): void {
    if (this.#stopping) {
      this.#close(c);
      this.#finishClient(c);
      return;
    }
    const s = c.socket!;
    const path = this.#paths[c.pathIndex]!;
    c.pathIndex = (c.pathIndex + 1) % this.#paths.length;
    c.generation++;
    c.parser.reset(this.#headRequest, this.#o.checkBody !== undefined);
    c.startedAt = performance.now();
    c.bodyOffset = 0;
    c.state = 'Sending';
    this.#r.sent++;
    s.write(this.#heads.get(path)!);
    if (this.#body === undefined || this.#body.length === 0) c.state = 'Waiting';
    else this.#writeBody(c, c.generation);
  }

  /** Write the body piece by piece (with pauses when asked), respecting backpressure. */
  #writeBody(c: Client, gen: number): void {
    if (c.generation !== gen || c.state !== 'Sending') return;
    const body = this.#body!;
    const s = c.socket!;
    while (c.bodyOffset < body.length) {
      const end = Math.min(body.length, c.bodyOffset + Math.max(1, this.#chunkSize));
      const piece = body.subarray(c.bodyOffset, end);
      c.bodyOffset = end;
      const more = s.write(piece);
      if (c.bodyOffset >= body.length) break;
      if (this.#chunkDelay > 0) {
        setTimeout(() => this.#writeBody(c, gen), this.#chunkDelay);
        return;
      }
      if (!more) {
        s.once('drain', () => this.#writeBody(c, gen));
        return;
      }
    }
    c.state = 'Waiting';
  }

  #onData(c: Client, s: Socket, d: Buffer): void {
    if (c.socket !== s || c.state === 'Finished') return;
    if (c.state !== 'Sending' && c.state !== 'Waiting') {
      // Bytes with no request outstanding (cannot happen before 'connect'; counted if it does).
      this.#r.protocolErrors++;
      this.#fault(c);
      return;
    }
    const outcome = c.parser.feed(d);
    if (outcome === 'More') return;
    if (outcome === 'Invalid') {
      if (c.parser.complete) this.#complete(c); // the response itself was whole
      this.#r.protocolErrors++;
      this.#fault(c);
      return;
    }
    this.#complete(c);
    const bodyUnfinished = c.state === 'Sending';
    if (c.parser.closes || bodyUnfinished || this.#stopping) {
      if (c.parser.closes) this.#r.closedWithNotice++;
      // An answer before the whole body was sent (413, 502 …) leaves the connection in an
      // unknown state: start afresh rather than guess.
      this.#close(c);
      if (this.#stopping) this.#finishClient(c);
      else this.#open(c);
      return;
    }
    this.#send(c);
  }

  #onEnd(c: Client, s: Socket): void {
    if (c.socket !== s || c.state === 'Finished' || c.state === 'Idle') return;
    if ((c.state === 'Sending' || c.state === 'Waiting') && c.parser.end()) {
      // A body delimited by the close: the close was the announced end of the response.
      this.#complete(c);
      this.#r.closedWithNotice++;
      this.#close(c);
      if (this.#stopping) this.#finishClient(c);
      else this.#open(c);
      return;
    }
    this.#r.serverClosed++;
    this.#fault(c);
  }

  #complete(c: Client): void {
    const p = c.parser;
    const latency = performance.now() - c.startedAt;
    if (latency > this.#r.maxLatencyMs) this.#r.maxLatencyMs = latency;
    this.#r.completed++;
    this.#r.statuses[p.status] = (this.#r.statuses[p.status] ?? 0) + 1;
    if (p.status !== this.#expect) this.#r.failed++;
    else if (this.#o.checkBody !== undefined && !this.#o.checkBody(p.body())) this.#r.badBodies++;
  }

  /** End the connection on our side; later events from the old socket are ignored (c.socket moved on). */
  #close(c: Client): void {
    c.generation++;
    c.socket?.destroy();
    c.socket = undefined;
    c.state = 'Idle';
  }

  /** A counted failure: drop the connection and carry on with a new one (after `delayMs`). */
  #fault(c: Client, delayMs = 0): void {
    this.#close(c);
    if (this.#stopping) {
      this.#finishClient(c);
      return;
    }
    if (delayMs === 0) {
      this.#open(c);
      return;
    }
    const gen = c.generation;
    setTimeout(() => {
      if (c.generation === gen && c.state === 'Idle') this.#open(c);
    }, delayMs);
  }
}
