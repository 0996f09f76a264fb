/**
 * Reads what a hosted application's `http.Server` writes to its socket — Node's own HTTP/1.1
 * serialisation of a response — back into a status, headers and body pieces for the pipeline.
 *
 * Node frames a response by Content-Length, by chunked transfer coding (with trailers when the
 * app called addTrailers), or, rarely, by closing the connection. Interim responses (100 Continue
 * written by Node for `Expect: 100-continue`, 102, 103 Early Hints) come first and are reported
 * separately. After a 101 the bytes belong to the new protocol and pass through untouched.
 * Applications may also write raw bytes to `req.socket` (the ws package writes its own 101), so
 * the reader never trusts Node's layout beyond RFC 9112.
 */

export interface ResponseSink {
  /** An interim 1xx other than 101 (the listener already answered `Expect: 100-continue`). */
  interim(status: number, headers: string[]): void;
  /**
   * The final head (or a 101). `headers` is flat [name, value, …] without framing fields;
   * `close`: the app's server will close its socket after this response (Connection: close).
   */
  head(status: number, reason: string, headers: string[], framing: BodyFraming, close: boolean): void;
  body(chunk: Buffer): void;
  /** The response is complete (`trailers` flat, when the chunked body carried some). */
  end(trailers: string[]): void;
  /** The bytes are not an HTTP/1.1 response: nothing more will be reported. */
  error(message: string): void;
}

export type BodyFraming = 'none' | 'length' | 'chunked' | 'close' | 'upgrade';

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  Close,
  Raw,
  Done,
}

const MAX_HEAD = 256 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');
const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: (.*))?$/;

export class ResponseReader {
  readonly #sink: ResponseSink;
  readonly #isHead: boolean;
  #state = State.Head;
  /** Head or line bytes kept until their terminator arrives. */
  #pending: Buffer | undefined;
  #remaining = 0;
  #trailers: string[] = [];

  constructor(sink: ResponseSink, isHeadRequest: boolean) {
    this.#sink = sink;
    this.#isHead = isHeadRequest;
  }

  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Framing 'close': the socket's end is the body's end. */
  finish(): void {
    if (this.#state === State.Close || this.#state === State.Raw) {
      this.#state = State.Done;
      this.#sink.end([]);
    } else if (this.#state !== State.Done) {
      this.#state = State.Done;
      this.#sink.error('the application closed the connection before its response was complete');
    }
  }

  push(data: Buffer): void {
    let pos = 0;
    while (pos < data.length) {
      switch (this.#state) {
        case State.Head: {
          pos = this.#readHead(data, pos);
          break;
        }
        case State.Length: {
          const n = Math.min(this.#remaining, data.length - pos);
          this.#remaining -= n;
          this.#sink.body(n === data.length ? data : data.subarray(pos, pos + n));
          pos += n;
          if (this.#remaining === 0) this.#complete();
          break;
        }
        case State.ChunkSize:
        case State.ChunkDataEnd:
        case State.Trailers: {
          pos = this.#readLine(data, pos);
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.#remaining, data.length - pos);
          this.#remaining -= n;
          this.#sink.body(data.subarray(pos, pos + n));
          pos += n;
          if (this.#remaining === 0) this.#state = State.ChunkDataEnd;
          break;
        }
        case State.Close:
        case State.Raw:
          this.#sink.body(pos === 0 ? data : data.subarray(pos));
          return;
        case State.Done:
          // Bytes after a complete response on a connection we asked to close: not ours.
          return;
      }
    }
  }

  #readHead(data: Buffer, pos: number): number {
    const { buf, start, carried } = this.#join(data, pos);
    const end = buf.indexOf(CRLFCRLF, start);
    if (end === -1) {
      if (buf.length - start > MAX_HEAD) return this.#fail('the response head is larger than 256 KiB');
      this.#pending = Buffer.from(buf.subarray(start));
      return data.length;
    }
    this.#parseHead(buf.toString('latin1', start, end));
    return pos + end + 4 - carried;
  }

  /** `data` from `pos`, after the bytes kept from earlier pushes (`carried` of them). */
  #join(data: Buffer, pos: number): { buf: Buffer; start: number; carried: number } {
    const p = this.#pending;
    if (p === undefined) return { buf: data, start: pos, carried: pos };
    this.#pending = undefined;
    return { buf: Buffer.concat([p, data.subarray(pos)]), start: 0, carried: p.length };
  }

  #parseHead(text: string): void {
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd === -1 ? text : text.slice(0, lineEnd);
    const m = STATUS_LINE.exec(statusLine);
    if (m === null) {
      this.#fail(`the application wrote ${JSON.stringify(statusLine.slice(0, 40))} where a status line was expected`);
      return;
    }
    const status = Number(m[1]);
    const reason = m[2] ?? '';
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let close = false;
    let pos = lineEnd === -1 ? text.length : lineEnd + 2;
    while (pos < text.length) {
      let eol = text.indexOf('\r\n', pos);
      if (eol === -1) eol = text.length;
      const colon = text.indexOf(':', pos);
      if (colon === -1 || colon > eol) {
        this.#fail('the application wrote a header line without a colon');
        return;
      }
      const name = text.slice(pos, colon);
      const value = text.slice(colon + 1, eol).trim();
      pos = eol + 2;
      switch (name.length) {
        case 10: {
          const lower = name.toLowerCase();
          // Hop-by-hop fields describe the app's socket, not the client's connection; a 101
          // keeps them, since they name the protocol switch.
          if (lower === 'connection' || lower === 'keep-alive') {
            if (lower === 'connection' && /(?:^|,)\s*close\s*(?:,|$)/i.test(value)) close = true;
            if (status === 101) headers.push(name, value);
            continue;
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === 'content-length') {
            contentLength = /^\d+$/.test(value) ? Number(value) : -1;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
            continue;
          }
          break;
      }
      headers.push(name, value);
    }
    if (status === 101) {
      this.#state = State.Raw;
      this.#sink.head(status, reason, headers, 'upgrade', true);
      return;
    }
    if (status < 200) {
      this.#sink.interim(status, headers);
      return; // the final head follows
    }
    if (this.#isHead || status === 204 || status === 304) {
      this.#sink.head(status, reason, headers, 'none', close);
      this.#complete();
    } else if (chunked) {
      // RFC 9112 §6.3: chunked wins over Content-Length (Node never sends both).
      if (contentLength >= 0) removeHeader(headers, 'content-length');
      this.#state = State.ChunkSize;
      this.#sink.head(status, reason, headers, 'chunked', close);
    } else if (contentLength >= 0) {
      this.#remaining = contentLength;
      this.#sink.head(status, reason, headers, 'length', close);
      if (contentLength === 0) this.#complete();
      else this.#state = State.Length;
    } else {
      this.#state = State.Close;
      this.#sink.head(status, reason, headers, 'close', true);
    }
  }

  /** A CRLF-terminated line of the chunked body: a chunk size, a chunk's CRLF, or a trailer. */
  #readLine(data: Buffer, pos: number): number {
    const { buf, start, carried } = this.#join(data, pos);
    const eol = buf.indexOf(10, start);
    if (eol === -1) {
      if (buf.length - start > 64 * 1024) return this.#fail('a chunk line is longer than 64 KiB');
      this.#pending = Buffer.from(buf.subarray(start));
      return data.length;
    }
    const line = buf.toString('latin1', start, eol > start && buf[eol - 1] === 13 ? eol - 1 : eol);
    const next = pos + eol + 1 - carried;
    switch (this.#state) {
      case State.ChunkDataEnd:
        if (line !== '') return this.#fail('chunk data is not followed by CRLF');
        this.#state = State.ChunkSize;
        break;
      case State.ChunkSize: {
        const semi = line.indexOf(';');
        const hex = (semi === -1 ? line : line.slice(0, semi)).trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) return this.#fail(`invalid chunk size ${JSON.stringify(hex.slice(0, 20))}`);
        const size = parseInt(hex, 16);
        if (size === 0) {
          this.#state = State.Trailers;
        } else {
          this.#remaining = size;
          this.#state = State.ChunkData;
        }
        break;
      }
      case State.Trailers: {
        if (line === '') {
          const t = this.#trailers;
          this.#trailers = [];
          this.#complete(t);
          break;
        }
        const colon = line.indexOf(':');
        if (colon > 0) this.#trailers.push(line.slice(0, colon), line.slice(colon + 1).trim());
        break;
      }
      default:
        break;
    }
    return next;
  }

  #complete(trailers: string[] = []): void {
    this.#state = State.Done;
    this.#sink.end(trailers);
  }

  #fail(message: string): number {
    this.#state = State.Done;
    this.#pending = undefined;
    this.#sink.error(message);
    return Number.MAX_SAFE_INTEGER;
  }
}

function removeHeader(headers: string[], lower: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    if (headers[i]!.toLowerCase() === lower) headers.splice(i, 2);
  }
}
