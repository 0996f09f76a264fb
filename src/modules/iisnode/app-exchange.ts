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
import { AppSocket, type SocketOwner } from './app-socket.js';
import { ResponseReader, type BodyFraming, type ResponseSink } from './response-reader.js';

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

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
  #resolve!: (outcome: ExchangeOutcome) => void;
  readonly done: Promise<ExchangeOutcome>;

  constructor(ctx: HttpContext) {
    this.#ctx = ctx;
    const req = ctx.request;
    this.socket = new AppSocket(req, new ResponseReader(this, req.method === 'HEAD'), this);
    this.done = new Promise((resolve) => (this.#resolve = resolve));
  }

  /** Hand the request to the app's server: the head now, the body as the app reads it. */
  start(serverEmit: (socket: AppSocket) => void, head: Buffer): void {
    const socket = this.socket;
    this.#ctx.response.onClientAbort(() => this.#abort());
    serverEmit(socket);
    socket.feed(head);
    void this.#feedBody();
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
      if (chunked && !this.#upgraded && !this.#settled) socket.feed(LAST_CHUNK);
      this.#requestDone = true;
      // The request is complete. A tunnel's client half-closed: tell the app's side.
      if (this.#upgraded) socket.endRequest();
    } catch {
      // The client went away (RequestAbort): the app sees its socket close.
      this.#abort();
    }
  }

  // ---- ResponseSink: what the app wrote ---------------------------------------------------------

  interim(): void {
    // 100 Continue was already sent by the listener; 102/103 are not forwarded.
  }

  head(status: number, reason: string, headers: string[], framing: BodyFraming): void {
    this.#headSeen = true;
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
    if (this.#upgraded) {
      this.socket.destroy();
      return;
    }
    // Let Node finish the response's write callbacks ('finish' events), then close the socket:
    // gracefully when the app saw the whole request, else at once.
    const socket = this.socket;
    setImmediate(() => {
      if (this.#requestDone || this.#ctx.request.contentLength === 0) socket.endRequest();
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
export function serializeRequestHead(ctx: HttpContext, extra: readonly string[]): Buffer {
  const req = ctx.request;
  let head = req.method + ' ' + req.rawUrl + ' ' + req.protocol + '\r\n';
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += raw[i] + ': ' + raw[i + 1] + '\r\n';
  for (let i = 0; i < extra.length; i += 2) head += extra[i] + ': ' + extra[i + 1] + '\r\n';
  return Buffer.from(head + '\r\n', 'latin1');
}
