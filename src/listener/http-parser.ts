/**
 * The listener's HTTP/1.1 request parser: incremental, strict and allocation-light, in the role
 * HTTP.sys plays for IIS. It works on bytes (one indexOf(LF) per line, byte tables for token and
 * field-value checks), decodes only the strings it hands out (latin1, the wire encoding of HTTP
 * heads), and rejects what HTTP.sys rejects, with HTTP.sys's status and httperr `s-reason`
 * (iis-behavior.md §4.1). Rules cite RFC 9112 (message syntax) and RFC 9110 (semantics).
 *
 * Strictness is deliberate: every leniency (bare LF, obs-fold, CL+TE, odd Transfer-Encoding) is a
 * place where a front proxy and this parser could disagree about where a request ends.
 */

import { ListenerError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Public surface

/** Size limits, named after the HTTP.sys registry values they reproduce. */
export interface ParserLimits {
  /** Request line + header section (+ chunked trailers), in bytes. HTTP.sys `MaxRequestBytes`. */
  readonly maxRequestBytes: number;
  /** One header line ("name: value") without its CRLF. HTTP.sys `MaxFieldLength`. */
  readonly maxFieldLength: number;
  /** The request-target, in bytes; longer → 414 `URL_Length`. */
  readonly maxUrlBytes: number;
  /** Header (and trailer) lines per request; more → 400 `Header`. */
  readonly maxHeaders: number;
  /**
   * Segments of the decoded path; more → 400 `URL` (checked by the connection when it decodes
   * the target). HTTP.sys `UrlSegmentMaxCount`; 0: no limit.
   */
  readonly urlSegmentMaxCount: number;
  /** UTF-16 characters of one decoded path segment; more → 400 `URL`. HTTP.sys `UrlSegmentMaxLength`; 0: no limit. */
  readonly urlSegmentMaxLength: number;
}

export const DEFAULT_PARSER_LIMITS: ParserLimits = Object.freeze({
  maxRequestBytes: 16384,
  maxFieldLength: 16384,
  maxUrlBytes: 16384,
  maxHeaders: 200,
  urlSegmentMaxCount: 255,
  urlSegmentMaxLength: 260,
});

/** One parsed request head. Strings are latin1-decoded wire bytes. */
export interface RequestHead {
  readonly method: string;
  /** The request-target exactly as received (origin-, absolute-, authority- or asterisk-form). */
  readonly target: string;
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** Flat [name, value, …]: names as received, values trimmed of OWS, in wire order. */
  readonly rawHeaders: string[];
  /** The single Host header's value, or undefined when absent (HTTP/1.0 only). */
  readonly host: string | undefined;
  /** Body length from Content-Length; -1 when there is none (no body, or chunked). */
  readonly contentLength: number;
  /** Transfer-Encoding: chunked — the body arrives framed and is de-chunked by the parser. */
  readonly chunked: boolean;
  /** Whether the connection may carry another request after this one (RFC 9112 §9.3). */
  readonly keepAlive: boolean;
  /** HTTP/1.1 request with `Expect: 100-continue` (RFC 9110 §10.1.1; ignored for HTTP/1.0). */
  readonly expectContinue: boolean;
  /** HTTP/1.1 request with `Connection: upgrade` and an Upgrade header (RFC 9110 §7.8). */
  readonly upgrade: boolean;
  /** Bytes of request line + header section, including the blank line. */
  readonly headBytes: number;
}

/**
 * Receives what the parser finds. Callbacks run synchronously inside execute()/resume(); they may
 * call pause()/resume() but must not call execute() or reset() on the same parser.
 */
export interface ParserSink {
  onRequestHead(head: RequestHead): void;
  /**
   * A piece of the body, chunked framing removed. It is a slice of the buffer passed to
   * execute() (no copy): copy it if that buffer is going to be reused.
   */
  onBody(chunk: Buffer): void;
  /** `trailers`: the chunked body's trailer fields, flat name/value pairs, when it had any. */
  onRequestEnd(trailers?: readonly string[]): void;
  /** The request is malformed; the parser consumes nothing more until reset(). */
  onError(err: HttpParseError): void;
}

/** The httperr `s-reason` values the parser can produce (iis-behavior.md §4.1). */
export type HttpParseReason =
  | 'BadRequest'
  | 'Header'
  | 'Verb'
  | 'URL'
  | 'URL_Length'
  | 'Version_N/S'
  | 'RequestLength'
  | 'FieldLength'
  | 'Hostname'
  | 'N/I';

/** A request HTTP.sys would refuse: `status` is what to answer, `reason` what httperr logs. */
export class HttpParseError extends ListenerError {
  readonly status: number;
  readonly reason: HttpParseReason;
  constructor(status: number, reason: HttpParseReason, message: string) {
    super('LSN_PROTOCOL', message);
    this.status = status;
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------
// Byte tables: one array lookup per byte instead of range comparisons or regular expressions.

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;
const COMMA = 0x2c;
const SEMICOLON = 0x3b;
const EQUALS = 0x3d;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;

function byteTable(accept: (b: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let b = 0; b < 256; b++) t[b] = accept(b) ? 1 : 0;
  return t;
}
const isAlnum = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);

/** tchar, RFC 9110 §5.6.2: method names, field names, chunk-ext names and tokens. */
const TCHAR = byteTable((b) => isAlnum(b) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(b)));
/** field-value bytes, RFC 9110 §5.5: VCHAR, obs-text, SP, HTAB. Excludes CR, LF, NUL, other CTLs. */
const FIELD_VALUE = byteTable((b) => b === HT || (b >= 0x20 && b !== 0x7f));
/**
 * request-target bytes: any visible byte; obs-text too because HTTP.sys accepts raw UTF-8 URLs
 * (EnableNonUTF8). Controls, SP, DEL and NUL are refused (400 `URL`).
 */
const TARGET = byteTable((b) => b > 0x20 && b !== 0x7f);
/** Host header bytes: uri-host [":" port] per RFC 3986 (unreserved, sub-delims, "%", ":", "[]"). */
const HOST = byteTable((b) => isAlnum(b) || "-._~!$&'()*+,;=%:[]".includes(String.fromCharCode(b)));
/**
 * Whether a Host header value, or the authority of an absolute-form target, is made of the bytes
 * a uri-host [":" port] may hold (RFC 9112 §3.2, RFC 3986 §3.2.2). `value` is latin1 (wire bytes).
 */
export function isValidHost(value: string): boolean {
  if (value === '') return false;
  for (let k = 0; k < value.length; k++) {
    const c = value.charCodeAt(k);
    if (c > 0xff || HOST[c] === 0) return false;
  }
  return true;
}
/** qdtext, RFC 9110 §5.6.4. */
const QDTEXT = byteTable((b) => b === HT || b === SP || b === 0x21 || (b >= 0x23 && b !== BACKSLASH && b !== 0x7f));
/** The byte after "\" in a quoted-pair, RFC 9110 §5.6.4. */
const QUOTED_PAIR = byteTable((b) => b === HT || (b >= 0x20 && b !== 0x7f));
/** Hex digit values, -1 for non-hex. */
const HEX = new Int8Array(256).fill(-1);
for (let d = 0; d < 10; d++) HEX[0x30 + d] = d;
for (let d = 0; d < 6; d++) HEX[0x41 + d] = HEX[0x61 + d] = 10 + d;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const L_HOST = ascii('host');
const L_EXPECT = ascii('expect');
const L_UPGRADE = ascii('upgrade');
const L_CONNECTION = ascii('connection');
const L_CONTENT_LENGTH = ascii('content-length');
const L_TRANSFER_ENCODING = ascii('transfer-encoding');
const L_CHUNKED = ascii('chunked');
const L_CLOSE = ascii('close');
const L_KEEP_ALIVE = ascii('keep-alive');
const L_100_CONTINUE = ascii('100-continue');

/**
 * ASCII case-insensitive comparison of buf[s, e) with a lower-case constant. `| 0x20` folds
 * A–Z onto a–z; callers only pass bytes already validated as tchar or field-value, where no other
 * byte folds onto a letter, digit or "-".
 */
function equalsLower(buf: Buffer, s: number, e: number, lower: Uint8Array): boolean {
  if (e - s !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) if ((buf[s + k]! | 0x20) !== lower[k]) return false;
  return true;
}

/** Common methods as shared constant strings (no allocation, cheap comparisons later), else undefined. */
function knownMethod(buf: Buffer, s: number, e: number): string | undefined {
  const b0 = buf[s]!;
  switch (e - s) {
    case 3:
      if (b0 === 0x47 && buf[s + 1] === 0x45 && buf[s + 2] === 0x54) return 'GET';
      if (b0 === 0x50 && buf[s + 1] === 0x55 && buf[s + 2] === 0x54) return 'PUT';
      break;
    case 4:
      if (b0 === 0x50 && buf[s + 1] === 0x4f && buf[s + 2] === 0x53 && buf[s + 3] === 0x54) return 'POST';
      if (b0 === 0x48 && buf[s + 1] === 0x45 && buf[s + 2] === 0x41 && buf[s + 3] === 0x44) return 'HEAD';
      break;
  }
  return undefined;
}

/**
 * chunk-ext, RFC 9112 §7.1.1: *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
 * Extensions are validated and ignored. No whitespace is allowed after the last one.
 */
function validChunkExtensions(buf: Buffer, i: number, e: number): boolean {
  while (i < e) {
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
    if (i === e || buf[i] !== SEMICOLON) return false;
    i++;
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
    const nameStart = i;
    while (i < e && TCHAR[buf[i]!] === 1) i++;
    if (i === nameStart) return false;
    let j = i;
    while (j < e && (buf[j] === SP || buf[j] === HT)) j++;
    if (j === e || buf[j] !== EQUALS) continue;
    i = j + 1;
    while (i < e && (buf[i] === SP || buf[i] === HT)) i++;
    if (i < e && buf[i] === DQUOTE) {
      i++;
      for (;;) {
        if (i >= e) return false;
        const b = buf[i]!;
        if (b === DQUOTE) {
          i++;
          break;
        }
        if (b === BACKSLASH) {
          if (i + 1 >= e || QUOTED_PAIR[buf[i + 1]!] === 0) return false;
          i += 2;
        } else if (QDTEXT[b] === 1) i++;
        else return false;
      }
    } else {
      const valueStart = i;
      while (i < e && TCHAR[buf[i]!] === 1) i++;
      if (i === valueStart) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The parser

/** Where the parser is in the message. Line states read CRLF-terminated lines. */
const State = {
  /** Before the request line; empty lines are skipped (RFC 9112 §2.2). */
  RequestLine: 0,
  Headers: 1,
  /** Content-Length body: #remaining bytes to go. */
  BodyLength: 2,
  ChunkSize: 3,
  ChunkData: 4,
  /** The CR, then the LF, that must follow chunk-data (RFC 9112 §7.1). */
  ChunkDataCR: 5,
  ChunkDataLF: 6,
  Trailers: 7,
  /** After an error: nothing more is consumed. */
  Dead: 8,
} as const;
type State = (typeof State)[keyof typeof State];

const TransferCoding = { None: 0, Chunked: 1, Other: 2 } as const;
type TransferCoding = (typeof TransferCoding)[keyof typeof TransferCoding];

const EMPTY = Buffer.alloc(0);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

export class RequestParser {
  readonly #limits: ParserLimits;
  readonly #sink: ParserSink;
  #state: State = State.RequestLine;
  #paused = false;
  #executing = false;
  /** Bytes received while paused (our own copy), replayed by resume(). */
  #pending: Buffer | null = null;
  /** The start of a line whose LF has not arrived yet; reused across lines and requests. */
  #lineBuf: Buffer | null = null;
  #lineLen = 0;
  /** Content-Length or chunk bytes still to deliver. */
  #remaining = 0;
  /**
   * The current head decoded in one latin1 call, covering #headBuf[#headStart, #headEnd): names
   * and values are then cheap slices of it instead of one native toString call each (~90 ns).
   * Only valid during one #run(), since the caller may refill the same Buffer object.
   */
  #headStr = '';
  #headBuf: Buffer | null = null;
  #headStart = 0;
  #headEnd = 0;

  // Per-request state, reset by #startRequest().
  /** Bytes counted against maxRequestBytes: leading empty lines, head, trailers. */
  #headBytes = 0;
  #leadingBytes = 0;
  #headerCount = 0;
  #method = '';
  #target = '';
  #versionMinor = 1;
  #rawHeaders: string[] = [];
  /** Trailer fields of the current chunked body (none: undefined, nothing allocated). */
  #trailers: string[] | undefined;
  #host: string | undefined = undefined;
  #hostCount = 0;
  #contentLength = -1;
  #transferCoding: TransferCoding = TransferCoding.None;
  #connectionClose = false;
  #connectionKeepAlive = false;
  #connectionUpgrade = false;
  #hasUpgrade = false;
  #expectContinue = false;

  constructor(limits: ParserLimits, sink: ParserSink) {
    this.#limits = limits;
    this.#sink = sink;
  }

  /** Feeds bytes from the connection. While paused they are kept and parsed by resume(). */
  execute(data: Buffer): void {
    if (this.#state === State.Dead || data.length === 0) return;
    if (this.#paused) {
      this.#stash(data, 0, false);
      return;
    }
    this.#run(data, 0, false);
  }

  /**
   * Stops consuming bytes. Takes effect when the current sink callback returns; called from
   * onRequestEnd it holds the next pipelined request back until resume(). (A request without a
   * body still gets its onRequestEnd right after onRequestHead: no bytes are consumed for it.)
   */
  pause(): void {
    this.#paused = true;
  }

  /** Continues parsing, starting with the bytes kept while paused. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    // Inside a callback the running loop simply continues; outside, replay what was kept.
    if (this.#executing || this.#pending === null) return;
    const pending = this.#pending;
    this.#pending = null;
    if (this.#state !== State.Dead) this.#run(pending, 0, true);
  }

  get paused(): boolean {
    return this.#paused;
  }

  /**
   * Some bytes of a request head (or leading empty lines) arrived and the head is not complete:
   * what HTTP.sys's HeaderWait timer measures.
   */
  get inHead(): boolean {
    const s = this.#state;
    return s === State.Headers || (s === State.RequestLine && (this.#lineLen > 0 || this.#leadingBytes > 0));
  }

  /** Bytes kept while paused — what a connection should bound before it stops reading. */
  get bufferedBytes(): number {
    return this.#pending === null ? 0 : this.#pending.length;
  }

  /**
   * Hands over the bytes kept while paused and forgets them: after a request that switched
   * protocols (101) they belong to the new protocol, not to HTTP/1.1.
   */
  takeUnconsumed(): Buffer {
    const pending = this.#pending ?? EMPTY;
    this.#pending = null;
    return pending;
  }

  /** Back to the start state (e.g. to reuse the parser for another connection). */
  reset(): void {
    this.#state = State.RequestLine;
    this.#paused = false;
    this.#pending = null;
    this.#lineLen = 0;
    this.#remaining = 0;
    this.#trailers = undefined;
    this.#startRequest();
  }

  // --- main loop -----------------------------------------------------------------------------

  #run(data: Buffer, pos: number, owned: boolean): void {
    this.#executing = true;
    try {
      const len = data.length;
      while (pos < len) {
        if (this.#paused) {
          this.#stash(data, pos, owned);
          return;
        }
        switch (this.#state) {
          case State.RequestLine:
          case State.Headers:
          case State.ChunkSize:
          case State.Trailers:
            pos = this.#line(data, pos);
            break;
          case State.BodyLength: {
            const n = Math.min(this.#remaining, len - pos);
            const chunk = data.subarray(pos, pos + n);
            pos += n;
            this.#remaining -= n;
            this.#sink.onBody(chunk);
            if (this.#remaining === 0) this.#endRequest();
            break;
          }
          case State.ChunkData: {
            const n = Math.min(this.#remaining, len - pos);
            const chunk = data.subarray(pos, pos + n);
            pos += n;
            this.#remaining -= n;
            if (this.#remaining === 0) this.#state = State.ChunkDataCR;
            this.#sink.onBody(chunk);
            break;
          }
          case State.ChunkDataCR:
            if (data[pos] !== CR) return this.#fail(400, 'BadRequest', 'Chunk data is not followed by CRLF.');
            this.#state = State.ChunkDataLF;
            pos++;
            break;
          case State.ChunkDataLF:
            if (data[pos] !== LF) return this.#fail(400, 'BadRequest', 'Chunk data is not followed by CRLF.');
            this.#state = State.ChunkSize;
            pos++;
            break;
          case State.Dead:
            return;
        }
      }
    } finally {
      this.#executing = false;
      this.#headBuf = null;
    }
  }

  /** Keeps data[pos…] for resume(). A copy unless the bytes are already ours. */
  #stash(data: Buffer, pos: number, owned: boolean): void {
    const rest = owned ? data.subarray(pos) : Buffer.from(data.subarray(pos));
    this.#pending = this.#pending === null ? rest : Buffer.concat([this.#pending, rest]);
  }

  #fail(status: number, reason: HttpParseReason, message: string): void {
    this.#state = State.Dead;
    this.#pending = null;
    this.#lineLen = 0;
    this.#sink.onError(new HttpParseError(status, reason, message));
  }

  // --- lines ---------------------------------------------------------------------------------

  /**
   * Bytes a line may have before its LF in the current state. A line that exceeds it fails
   * however it was split across reads, so a partial line never grows past this.
   */
  #lineLimit(): number {
    switch (this.#state) {
      case State.RequestLine:
        return this.#limits.maxRequestBytes - this.#headBytes - 1;
      default:
        // Field lines and chunk-size lines; +1 is the CR ending a line of exactly maxFieldLength.
        // A field line within this limit is read whole before the maxRequestBytes check, so an
        // oversized field is reported as FieldLength even when the head budget ran out first.
        return this.#limits.maxFieldLength + 1;
    }
  }

  /** Consumes at most one line (or the start of one) from data[pos…]; returns the new position. */
  #line(data: Buffer, pos: number): number {
    const len = data.length;
    const lf = data.indexOf(LF, pos);
    const end = lf === -1 ? len : lf;
    const limit = this.#lineLimit();
    if (this.#lineLen + (end - pos) > limit) {
      this.#lineTooLong(data, pos, end, limit);
      return len;
    }
    if (lf === -1) {
      this.#append(data, pos, len);
      return len;
    }
    if (this.#lineLen === 0) {
      // The common case: the whole line is in this read; parse it in place.
      this.#onLine(data, pos, lf);
    } else {
      this.#append(data, pos, lf);
      const n = this.#lineLen;
      this.#lineLen = 0;
      this.#onLine(this.#lineBuf!, 0, n);
      // Keep a small buffer for the next split line, but let a large one go: an idle keep-alive
      // connection should not hold maxRequestBytes of memory.
      if (this.#lineBuf !== null && this.#lineBuf.length > 4096) this.#lineBuf = null;
    }
    return lf + 1;
  }

  #append(data: Buffer, from: number, to: number): void {
    const need = this.#lineLen + (to - from);
    let buf = this.#lineBuf;
    if (buf === null || buf.length < need) {
      const grown = Buffer.allocUnsafe(Math.max(256, need, buf === null ? 0 : buf.length * 2));
      if (buf !== null) buf.copy(grown, 0, 0, this.#lineLen);
      this.#lineBuf = buf = grown;
    }
    data.copy(buf, this.#lineLen, from, to);
    this.#lineLen = need;
  }

  /**
   * A line longer than #lineLimit(). The verdict looks only at the first limit+1 bytes, so it is
   * the same whether the line came in one read or byte by byte.
   */
  #lineTooLong(data: Buffer, pos: number, end: number, limit: number): void {
    switch (this.#state) {
      case State.RequestLine: {
        // A request line that does not fit the head budget is, in practice, a long URL: like
        // HTTP.sys, answer 414 once the method is complete, else the head is simply too big.
        let buf = data;
        let s = pos;
        if (this.#lineLen > 0) {
          this.#append(data, pos, Math.min(end, pos + limit + 1 - this.#lineLen));
          buf = this.#lineBuf!;
          s = 0;
        }
        const sp1 = buf.indexOf(SP, s);
        if (sp1 !== -1 && sp1 < s + limit + 1) {
          return this.#fail(414, 'URL_Length', 'The request-target does not fit in maxRequestBytes.');
        }
        return this.#failRequestLength();
      }
      case State.Headers:
      case State.Trailers:
        return this.#fail(400, 'FieldLength', 'A header field is longer than maxFieldLength.');
      default:
        return this.#fail(400, 'BadRequest', 'A chunk-size line is too long.');
    }
  }

  /** One complete line buf[s, lf), where lf is the position of its LF. */
  #onLine(buf: Buffer, s: number, lf: number): void {
    const state = this.#state;
    // RFC 9112 §2.2 allows tolerating a bare LF; HTTP.sys does not, and a parser that does can
    // see a different message than the proxy in front of it. CRLF is required everywhere.
    if (lf === s || buf[lf - 1] !== CR) {
      if (state === State.Headers || state === State.Trailers) {
        return this.#fail(400, 'Header', 'A header line is not terminated by CRLF.');
      }
      if (state === State.ChunkSize) return this.#fail(400, 'BadRequest', 'A chunk-size line is not terminated by CRLF.');
      return this.#fail(400, 'BadRequest', 'The request line is not terminated by CRLF.');
    }
    const e = lf - 1;
    const lineBytes = lf + 1 - s;
    switch (state) {
      case State.RequestLine:
        this.#headBytes += lineBytes;
        // RFC 9112 §2.2: ignore empty lines received before the request line.
        if (e === s) this.#leadingBytes += lineBytes;
        else this.#requestLine(buf, s, e);
        return;
      case State.Headers:
        this.#headBytes += lineBytes;
        if (this.#headBytes > this.#limits.maxRequestBytes) return this.#failRequestLength();
        if (e === s) this.#finishHead();
        else this.#headerLine(buf, s, e, false);
        return;
      case State.Trailers:
        // Trailers share the head's maxRequestBytes budget.
        this.#headBytes += lineBytes;
        if (this.#headBytes > this.#limits.maxRequestBytes) return this.#failRequestLength();
        // RFC 9112 §7.1.2: trailer fields are parsed like headers, and kept apart from them.
        if (e === s) this.#endRequest();
        else this.#headerLine(buf, s, e, true);
        return;
      case State.ChunkSize:
        this.#chunkSizeLine(buf, s, e);
        return;
    }
  }

  #failRequestLength(): void {
    this.#fail(400, 'RequestLength', 'The request head is larger than maxRequestBytes.');
  }

  // --- head ----------------------------------------------------------------------------------

  #startRequest(): void {
    this.#headBytes = 0;
    this.#leadingBytes = 0;
    this.#headerCount = 0;
    this.#method = '';
    this.#target = '';
    this.#versionMinor = 1;
    this.#rawHeaders = [];
    this.#host = undefined;
    this.#hostCount = 0;
    this.#contentLength = -1;
    this.#transferCoding = TransferCoding.None;
    this.#connectionClose = false;
    this.#connectionKeepAlive = false;
    this.#connectionUpgrade = false;
    this.#hasUpgrade = false;
    this.#expectContinue = false;
  }

  /** request-line = method SP request-target SP HTTP-version (RFC 9112 §3), e excludes CRLF. */
  #requestLine(buf: Buffer, s: number, e: number): void {
    let i = s;
    while (i < e && TCHAR[buf[i]!] === 1) i++;
    if (i === e) return this.#fail(400, 'BadRequest', 'The request line has no request-target.');
    if (i === s || buf[i] !== SP) return this.#fail(400, 'Verb', 'The method is not a token.');
    const methodEnd = i;
    // The version follows the last SP, so a SP inside the target is reported as a URL error.
    const sp2 = buf.lastIndexOf(SP, e - 1);
    if (sp2 === methodEnd) return this.#fail(400, 'BadRequest', 'The request line has no HTTP version.');
    const targetStart = methodEnd + 1;
    if (sp2 - targetStart > this.#limits.maxUrlBytes) {
      return this.#fail(414, 'URL_Length', 'The request-target is longer than maxUrlBytes.');
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
    const v = sp2 + 1;
    const major = buf[v + 5]! - 0x30;
    const minor = buf[v + 7]! - 0x30;
    if (
      e - v !== 8 ||
      buf[v] !== 0x48 || buf[v + 1] !== 0x54 || buf[v + 2] !== 0x54 || buf[v + 3] !== 0x50 || buf[v + 4] !== 0x2f ||
      buf[v + 6] !== 0x2e || !(major >= 0 && major <= 9) || !(minor >= 0 && minor <= 9)
    ) {
      return this.#fail(400, 'BadRequest', 'The HTTP version is malformed.');
    }
    // Only 1.0 and 1.1, like HTTP.sys; this also answers an HTTP/2 preface ("PRI * HTTP/2.0").
    if (major !== 1 || minor > 1) return this.#fail(505, 'Version_N/S', 'The HTTP version is not supported.');
    if (sp2 === targetStart) return this.#fail(400, 'URL', 'The request-target is empty.');
    for (let k = targetStart; k < sp2; k++) {
      if (TARGET[buf[k]!] === 0) return this.#fail(400, 'URL', 'The request-target contains a control character or space.');
    }
    this.#decodeHead(buf, s);
    this.#method = knownMethod(buf, s, methodEnd) ?? this.#string(buf, s, methodEnd);
    this.#target = this.#string(buf, targetStart, sp2);
    this.#versionMinor = minor;
    this.#state = State.Headers;
  }

  /** When the whole head is in `buf`, decodes it at once for #string(). */
  #decodeHead(buf: Buffer, s: number): void {
    // A head arriving in pieces is parsed from #lineBuf and decoded line by line instead.
    if (buf === this.#lineBuf) return;
    const end = buf.indexOf(HEAD_END, s);
    if (end === -1 || end - s > this.#limits.maxRequestBytes) return;
    this.#headBuf = buf;
    this.#headStart = s;
    this.#headEnd = end + 2;
    this.#headStr = buf.toString('latin1', s, end + 2);
  }

  /** buf[s, e) as a latin1 string. */
  #string(buf: Buffer, s: number, e: number): string {
    if (buf === this.#headBuf && s >= this.#headStart && e <= this.#headEnd) {
      return this.#headStr.slice(s - this.#headStart, e - this.#headStart);
    }
    return buf.toString('latin1', s, e);
  }

  /** field-line = field-name ":" OWS field-value OWS (RFC 9112 §5), e excludes CRLF. */
  #headerLine(buf: Buffer, s: number, e: number, trailer: boolean): void {
    let i = s;
    while (i < e && TCHAR[buf[i]!] === 1) i++;
    if (i === e || buf[i] !== COLON || i === s) {
      const b = buf[i];
      if (i === s && (b === SP || b === HT)) {
        // RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the first field): reject.
        return this.#fail(400, 'Header', 'A header line starts with whitespace (obs-fold).');
      }
      if (b === SP || b === HT) {
        // RFC 9112 §5.1: whitespace between field name and colon MUST be rejected.
        return this.#fail(400, 'Header', 'Whitespace between a header name and its colon.');
      }
      if (i === e) return this.#fail(400, 'Header', 'A header line has no colon.');
      return this.#fail(400, 'Header', 'A header name is not a token.');
    }
    const nameEnd = i;
    let vs = i + 1;
    let ve = e;
    while (vs < ve && (buf[vs] === SP || buf[vs] === HT)) vs++;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    for (let k = vs; k < ve; k++) {
      // RFC 9110 §5.5: CR, LF and NUL in a value MUST be rejected; other controls are too.
      if (FIELD_VALUE[buf[k]!] === 0) return this.#fail(400, 'Header', 'A header value contains a control character.');
    }
    if (++this.#headerCount > this.#limits.maxHeaders) return this.#fail(400, 'Header', 'Too many header fields.');
    if (trailer) {
      (this.#trailers ??= []).push(this.#string(buf, s, nameEnd), vs === ve ? '' : this.#string(buf, vs, ve));
      return;
    }

    const value = vs === ve ? '' : this.#string(buf, vs, ve);
    this.#rawHeaders.push(this.#string(buf, s, nameEnd), value);
    switch (nameEnd - s) {
      case 4:
        if (equalsLower(buf, s, nameEnd, L_HOST)) this.#hostHeader(buf, vs, ve, value);
        return;
      case 6:
        if (equalsLower(buf, s, nameEnd, L_EXPECT) && equalsLower(buf, vs, ve, L_100_CONTINUE)) this.#expectContinue = true;
        return;
      case 7:
        if (equalsLower(buf, s, nameEnd, L_UPGRADE) && ve > vs) this.#hasUpgrade = true;
        return;
      case 10:
        if (equalsLower(buf, s, nameEnd, L_CONNECTION)) this.#connectionHeader(buf, vs, ve);
        return;
      case 14:
        if (equalsLower(buf, s, nameEnd, L_CONTENT_LENGTH)) this.#contentLengthHeader(buf, vs, ve);
        return;
      case 17:
        if (equalsLower(buf, s, nameEnd, L_TRANSFER_ENCODING)) {
          // Several Transfer-Encoding lines form one list (RFC 9110 §5.3): only a single
          // "chunked" in total is implemented; "chunked, chunked" is not.
          this.#transferCoding =
            this.#transferCoding === TransferCoding.None && equalsLower(buf, vs, ve, L_CHUNKED)
              ? TransferCoding.Chunked
              : TransferCoding.Other;
        }
        return;
    }
  }

  #hostHeader(buf: Buffer, vs: number, ve: number, value: string): void {
    // RFC 9112 §3.2: more than one Host, or an invalid one, MUST get a 400.
    if (++this.#hostCount > 1) return this.#fail(400, 'Hostname', 'More than one Host header.');
    for (let k = vs; k < ve; k++) {
      if (HOST[buf[k]!] === 0) return this.#fail(400, 'Hostname', 'The Host header is not a valid host.');
    }
    this.#host = value;
  }

  /** Connection = #connection-option (RFC 9110 §7.6.1); only close/keep-alive/upgrade matter. */
  #connectionHeader(buf: Buffer, vs: number, ve: number): void {
    let i = vs;
    while (i < ve) {
      while (i < ve && (buf[i] === SP || buf[i] === HT || buf[i] === COMMA)) i++;
      const ts = i;
      while (i < ve && buf[i] !== COMMA) i++;
      let te = i;
      while (te > ts && (buf[te - 1] === SP || buf[te - 1] === HT)) te--;
      if (equalsLower(buf, ts, te, L_CLOSE)) this.#connectionClose = true;
      else if (equalsLower(buf, ts, te, L_KEEP_ALIVE)) this.#connectionKeepAlive = true;
      else if (equalsLower(buf, ts, te, L_UPGRADE)) this.#connectionUpgrade = true;
    }
  }

  /**
   * Content-Length = 1*DIGIT (RFC 9110 §8.6). A list of identical values ("5, 5", or repeated
   * lines) folds into one; anything else — a sign, differing values, overflow — is a 400
   * (RFC 9112 §6.3 rule 5), since two parsers choosing different lengths is request smuggling.
   */
  #contentLengthHeader(buf: Buffer, vs: number, ve: number): void {
    let i = vs;
    let value = this.#contentLength;
    for (;;) {
      const start = i;
      let n = 0;
      while (i < ve) {
        const d = buf[i]! - 0x30;
        if (d < 0 || d > 9) break;
        n = n * 10 + d;
        if (n > Number.MAX_SAFE_INTEGER) return this.#fail(400, 'BadRequest', 'Content-Length is too large.');
        i++;
      }
      if (i === start) return this.#fail(400, 'BadRequest', 'Content-Length is not a number.');
      if (value !== -1 && n !== value) return this.#fail(400, 'BadRequest', 'Conflicting Content-Length values.');
      value = n;
      while (i < ve && (buf[i] === SP || buf[i] === HT)) i++;
      if (i === ve) break;
      if (buf[i] !== COMMA) return this.#fail(400, 'BadRequest', 'Content-Length is not a number.');
      i++;
      while (i < ve && (buf[i] === SP || buf[i] === HT)) i++;
    }
    this.#contentLength = value;
  }

  #finishHead(): void {
    this.#headBuf = null;
    this.#headStr = '';
    const http11 = this.#versionMinor === 1;
    // RFC 9112 §3.2: an HTTP/1.1 request without Host MUST get a 400.
    if (http11 && this.#hostCount === 0) return this.#fail(400, 'Hostname', 'HTTP/1.1 request without a Host header.');
    let chunked = false;
    if (this.#transferCoding !== TransferCoding.None) {
      // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty.
      if (!http11) return this.#fail(400, 'BadRequest', 'Transfer-Encoding in an HTTP/1.0 request.');
      // RFC 9112 §6.1/§6.3: both framings at once is the classic smuggling shape; reject it.
      if (this.#contentLength !== -1) {
        return this.#fail(400, 'BadRequest', 'Both Transfer-Encoding and Content-Length are present.');
      }
      // RFC 9112 §6.1: a coding the server does not understand → 501. Like HTTP.sys (`N/I`),
      // anything but exactly "chunked" counts, including lists that end in chunked.
      if (this.#transferCoding === TransferCoding.Other) {
        return this.#fail(501, 'N/I', 'Transfer-Encoding other than chunked is not implemented.');
      }
      chunked = true;
    }
    // RFC 9112 §9.3: persistent by default in 1.1; in 1.0 only with "keep-alive".
    const keepAlive = !this.#connectionClose && (http11 || this.#connectionKeepAlive);
    const head: RequestHead = {
      method: this.#method,
      target: this.#target,
      versionMajor: 1,
      versionMinor: this.#versionMinor,
      rawHeaders: this.#rawHeaders,
      host: this.#host,
      contentLength: this.#contentLength,
      chunked,
      keepAlive,
      // RFC 9110 §10.1.1 and §7.8: both are ignored in HTTP/1.0 requests.
      expectContinue: http11 && this.#expectContinue,
      upgrade: http11 && this.#connectionUpgrade && this.#hasUpgrade,
      headBytes: this.#headBytes - this.#leadingBytes,
    };
    // RFC 9112 §6.3: chunked, else Content-Length, else no body (rule 7).
    if (chunked) this.#state = State.ChunkSize;
    else if (this.#contentLength > 0) {
      this.#state = State.BodyLength;
      this.#remaining = this.#contentLength;
    }
    this.#sink.onRequestHead(head);
    if (!chunked && this.#contentLength <= 0) this.#endRequest();
  }

  // --- chunked body --------------------------------------------------------------------------

  /** chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1), e excludes CRLF. */
  #chunkSizeLine(buf: Buffer, s: number, e: number): void {
    let i = s;
    let size = 0;
    while (i < e) {
      const d = HEX[buf[i]!]!;
      if (d < 0) break;
      size = size * 16 + d;
      if (size > Number.MAX_SAFE_INTEGER) return this.#fail(400, 'BadRequest', 'The chunk size is too large.');
      i++;
    }
    if (i === s) return this.#fail(400, 'BadRequest', 'The chunk size is not hexadecimal.');
    if (i < e && !validChunkExtensions(buf, i, e)) return this.#fail(400, 'BadRequest', 'A chunk extension is malformed.');
    if (size === 0) {
      this.#state = State.Trailers;
    } else {
      this.#state = State.ChunkData;
      this.#remaining = size;
    }
  }

  #endRequest(): void {
    const trailers = this.#trailers;
    this.#trailers = undefined;
    this.#state = State.RequestLine;
    this.#startRequest();
    this.#sink.onRequestEnd(trailers);
  }
}
