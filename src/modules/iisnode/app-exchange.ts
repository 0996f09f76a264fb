/**
 * One request served by the hosted application: writes the request into an AppSocket, reads the
 * app's response back through a ResponseReader and moves it into the pipeline's response.
 *
 * A response the app writes whole in one go (Express's `res.send`, `res.end(body)`) stays
 * buffered, so the pipeline sends it as one frame; anything else — `flushHeaders()`, several
 * `write()`s, a 101 — starts streaming at the end of the write that produced the head, so
 * Server-Sent Events reach the client as they are written.
 */
import type { HttpContext } from '../../worker/module-api.js';
import type { AppSocket, SocketOwner, SocketPool } from './app-socket.js';
import { ResponseReader, type BodyFraming, type ResponseSink } from './response-reader.js';
import { lastChunk } from '../../http/chunked.js';
import { ModuleError } from '../../errors.js';

const CRLF = Buffer.from('\r\n', 'latin1');
const HOP_BY_HOP = new Set(['connection', 'keep-alive']);

export type ExchangeOutcome = 'complete' | 'aborted' | 'failed';

export class AppExchange implements ResponseSink, SocketOwner {
  readonly #ctx: HttpContext;
  readonly socket: AppSocket;
  #headSeen = false;
  #streaming = false;
  #upgraded = false;
  #settled = false;
  #writable = true;
  #requestDone = false;
  /** The socket may serve another request after this one (see SocketPool). */
  #reusable: boolean;
  readonly #pool: SocketPool;
  #resolve!: (outcome: ExchangeOutcome) => void;
  readonly done: Promise<ExchangeOutcome>;
  /** Reading the request body failed with MOD_BODY_TOO_LARGE (the exchange settled 'failed'). */
  bodyError: ModuleError | undefined;

  constructor(ctx: HttpContext, pool: SocketPool, upgrade: boolean) {
    this.#ctx = ctx;
    this.#pool = pool;
    const req = ctx.request;
    // An upgrade request's socket may become the app's WebSocket; HTTP/1.0 closes after one response.
    this.#reusable = !upgrade && req.protocol !== 'HTTP/1.0';
    this.socket = pool.take();
    this.socket.attach(req, new ResponseReader(this, req.method === 'HEAD'), this);
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** The response is complete (or failed): for a caller that can then stay synchronous. */
  get settled(): boolean {
    return this.#settled;
  }

  /** Hand the request to the app's server: the head now, the body as the app reads it. */
  start(head: Buffer): void {
    this.#ctx.response.onClientAbort(() => this.#abort());
    // Before feeding: the app may answer synchronously, inside feed().
    const bodyless = !this.#ctx.request.hasBody;
    if (bodyless) this.#requestDone = true;
    this.socket.feed(head);
    // Nothing more to feed unless the socket may turn into a tunnel (an upgrade request).
    if (!bodyless || !this.#reusable) void this.#feedBody();
  }

  async #feedBody(): Promise<void> {
    const req = this.#ctx.request;
    const socket = this.socket;
    const chunked = req.contentLength < 0;
    try {
      for await (const chunk of req.body()) {
        if (this.#settled && !this.#upgraded) return;
        let ok: boolean;
        if (chunked && !this.#upgraded) {
          socket.feed(Buffer.from(chunk.length.toString(16) + '\r\n', 'latin1'));
          socket.feed(chunk);
          ok = socket.feed(CRLF);
        } else {
          ok = socket.feed(chunk);
        }
        if (!ok) await socket.readWanted();
        if (socket.destroyed) return;
      }
      // The last chunk carries the client's trailer fields: Node gives them to the app as req.trailers.
      if (chunked && !this.#upgraded && !this.#settled) socket.feed(lastChunk(req.trailers));
      this.#requestDone = true;
      // The request is complete. A tunnel's client half-closed: tell the app's side.
      if (this.#upgraded) socket.endRequest();
    } catch (err) {
      if (err instanceof ModuleError && err.code === 'MOD_BODY_TOO_LARGE') {
        // Request filtering capped a chunked body: the caller rethrows this for the pipeline's 404.13.
        this.bodyError = err;
        this.#settle('failed');
        if (!socket.destroyed) socket.destroy();
        return;
      }
      // The client went away (RequestAbort): the app sees its socket close.
      this.#abort();
    }
  }

  // ---- ResponseSink: what the app wrote ---------------------------------------------------------

  interim(status: number, headers: string[]): void {
    // 100 Continue was already sent by the listener (for Expect: 100-continue); 102, 103 Early
    // Hints (res.writeEarlyHints) go to the client ahead of the response.
    if (status !== 100) this.#ctx.response.sendInformational(status, headers);
  }

  head(status: number, reason: string, headers: string[], framing: BodyFraming, close: boolean): void {
    this.#headSeen = true;
    if (close) this.#reusable = false;
    const res = this.#ctx.response;
    res.statusCode = status;
    res.statusReason = reason;
    // The app's own error pages are its response (IIS's fTrySkipCustomErrors, as ASP.NET Core
    // sets it): httpErrors existingResponse="Replace" still replaces them.
    res.trySkipCustomErrors = true;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const value = headers[i + 1]!;
      const prev = res.getHeader(name);
      if (prev === undefined) res.setHeader(name, value);
      else res.setHeader(name, typeof prev === 'string' ? [prev, value] : [...prev, value]);
    }
    if (framing === 'upgrade') {
      this.#upgraded = true;
      this.#stream();
    }
  }

  body(chunk: Buffer): void {
    if (!this.#ctx.response.write(chunk)) this.#writable = false;
  }

  end(trailers: string[]): void {
    if (trailers.length !== 0 && !this.#upgraded) {
      // Trailers need chunked framing: the response streams (no Content-Length) and ends with them.
      if (!this.#streaming) this.#stream();
      this.#ctx.response.trailers = trailers;
    }
    this.#settle('complete');
    const socket = this.socket;
    if (this.#upgraded) {
      socket.destroy();
      return;
    }
    if (this.#reusable && this.#requestDone) {
      // Keep-alive: Node finishes this response and waits for the next request on the socket.
      this.#pool.release(socket);
      return;
    }
    // Let Node finish the response's write callbacks ('finish' events), then close the socket:
    // gracefully when the app saw the whole request, else at once.
    setImmediate(() => {
      if (this.#requestDone) socket.endRequest();
      else socket.destroy();
    });
  }

  error(message: string): void {
    const ctx = this.#ctx;
    ctx.log('error', `the application's response for ${ctx.request.path} is not valid HTTP/1.1: ${message}`);
    if (!ctx.response.headersSent) {
      ctx.setStatus(502, 3, { description: `The Node.js application sent an invalid response: ${message}.` });
      ctx.response.trySkipCustomErrors = false;
    } else {
      ctx.response.abort();
    }
    this.#settle('failed');
    this.socket.destroy();
  }

  // ---- SocketOwner ----------------------------------------------------------------------------------

  afterWrite(): boolean {
    if (this.#headSeen && !this.#settled && !this.#streaming) this.#stream();
    const ok = this.#writable;
    this.#writable = true;
    return ok;
  }

  drained(): Promise<void> {
    return this.#ctx.response.drained();
  }

  socketClosed(error: Error | undefined, destroyed: boolean): void {
    if (this.#settled) return;
    if (!destroyed && this.#headSeen) return; // ended: the reader reported the outcome
    const ctx = this.#ctx;
    if (!this.#headSeen) {
      // The app destroyed the socket (or it ended) without a response: 502.3, as a proxy answers.
      ctx.log('warn', `the application closed the connection for ${ctx.request.path} without a response${error ? `: ${error.message}` : ''}`);
      ctx.setStatus(502, 3, { description: 'The Node.js application closed the connection without sending a response.' });
      ctx.response.trySkipCustomErrors = false;
      this.#settle('failed');
      return;
    }
    ctx.response.abort();
    this.#settle('aborted');
  }

  #stream(): void {
    this.#streaming = true;
    this.#ctx.response.flush().catch(() => this.#ctx.response.abort());
  }

  #abort(): void {
    if (!this.#settled) {
      this.#ctx.response.abort();
      this.#settle('aborted');
    }
    if (!this.socket.destroyed) this.socket.destroy();
  }

  #settle(outcome: ExchangeOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(outcome);
  }
}

/**
 * The request head as the app's server parses it: the client's request line and headers, plus
 * the iisnode extras (x-iisnode-* promoted server variables, X-Forwarded-For when enableXFF).
 */
export function serializeRequestHead(ctx: HttpContext, extra: readonly string[], upgrade: boolean): Buffer {
  const req = ctx.request;
  // An HTTP/2 request reaches the app's http.Server as HTTP/1.1 (the listener speaks HTTP/2 to
  // the client); its body, when of unknown length, is then framed chunked.
  const http10 = req.protocol === 'HTTP/1.0';
  let head = req.method + ' ' + req.rawUrl + (http10 ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
  const raw = req.rawHeaders;
  let framed = req.contentLength >= 0 || http10;
  // A header Wharf sets (X-iisnode-AUTH_USER, X-Forwarded-For) replaces the client's own: an app
  // trusts it to name the user or the client, so a client must not be able to send it.
  const replaced = extra.length === 0 ? undefined : new Set(extra.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()));
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (replaced?.has(name.toLowerCase()) === true) continue;
    if (!framed && name.length === 17 && name.toLowerCase() === 'transfer-encoding') framed = true;
    // Connection and Keep-Alive describe the client's connection, which the listener owns
    // (RFC 9110 §7.6.1); the app's socket stays alive between requests. An upgrade keeps them.
    if (!upgrade && (name.length === 10 || name.length === 7) && HOP_BY_HOP.has(name.toLowerCase())) continue;
    head += name + ': ' + raw[i + 1] + '\r\n';
  }
  for (let i = 0; i < extra.length; i += 2) head += extra[i] + ': ' + extra[i + 1] + '\r\n';
  if (!framed) head += 'Transfer-Encoding: chunked\r\n';
  return Buffer.from(head + '\r\n', 'latin1');
}
