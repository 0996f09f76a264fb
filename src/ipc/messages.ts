/**
 * The one catalogue of listener ↔ worker messages (STYLE.md §3). Each direction has an interface
 * with one method per message: a side that forgets to handle a message does not compile.
 *
 * Wire format (all integers big-endian): [u32 length of the rest][u8 type][u32 stream][payload].
 * `stream` is the request id (0 for channel-level messages). Head payloads are latin1 strings
 * with NUL separators — HTTP heads are latin1 on the wire and the listener's parser refuses NUL,
 * so NUL can never occur inside a field; splitting one string is the cheapest decode V8 offers.
 * Bodies travel as raw bytes. Channel-level payloads that are rare (init, config, log) are JSON.
 */

export const MessageType = {
  // listener → worker
  Init: 1,
  Config: 2,
  RequestHead: 3,
  RequestBody: 4,
  RequestEnd: 5,
  RequestAbort: 6,
  ResponsePause: 7,
  ResponseResume: 8,
  // 9 was Ping: health is WAS's, on the control channel (control-messages.ts).
  Shutdown: 10,
  // worker → listener
  // 20 (Ready), 26 (Pong), 30 (RecycleRequest), 32 (AppHints) moved to the control channel.
  ResponseHead: 21,
  ResponseBody: 22,
  ResponseEnd: 23,
  RequestPause: 24,
  RequestResume: 25,
  Log: 27,
  /** Head, whole body and end in one frame: the common case of a buffered response. */
  ResponseComplete: 28,
  /** The next ResponseComplete on this stream may be kept by the listener's response cache. */
  ResponseCacheable: 29,
  /** An interim 1xx (102 Processing, 103 Early Hints) before the response head: status and headers. */
  ResponseInterim: 31,
  /** Log this stream's request as another URL (URL Rewrite logRewrittenUrl): path and query. */
  ResponseLogUrl: 33,
  /** A failed request's trace (Failed Request Tracing) for the main process to write: TraceRecordMessage. */
  TraceRecord: 34,
  /** Head and end of a response whose body is a range of a file the worker holds open: FileBodyMessage. */
  ResponseFile: 35,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

/**
 * The direction is in the code: listener → worker below 20, worker → listener from 20. Each side's
 * switch over what it receives is exhaustive at compile time (a message added to MessageType and
 * not handled does not compile).
 */
type ListenerCodes = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19;
/** Codes a worker sends. */
export type WorkerMessageCode = Exclude<MessageTypeCode, ListenerCodes>;
/** Codes the listener sends. */
export type ListenerMessageCode = Extract<MessageTypeCode, ListenerCodes>;

const KNOWN_CODES = new Set<number>(Object.values(MessageType));

/** Whether a code read from the wire is a message a worker may send. */
export function isWorkerMessageCode(type: number): type is WorkerMessageCode {
  return type >= 20 && KNOWN_CODES.has(type);
}

/** Whether a code read from the wire is a message the listener may send. */
export function isListenerMessageCode(type: number): type is ListenerMessageCode {
  return type < 20 && KNOWN_CODES.has(type);
}

/** Sent once when the worker's channel opens, and again (as Config) after every config change. */
export interface ConfigMessage {
  readonly generation: number;
  readonly poolName: string;
  readonly configFile: string;
  readonly configText: string;
  readonly systemDrive: string;
  readonly variables: Readonly<Record<string, string>>;
  /**
   * Init to a pre-started spare worker only: the environment it takes on (the pool's
   * environmentVariables, APP_POOL_ID, and who to run as) before it loads anything of the pool's.
   */
  readonly assign?: Readonly<Record<string, string>>;
}

/** What the listener tells a worker about one request (after routing). */
export interface RequestHeadMessage {
  readonly method: string;
  readonly rawUrl: string;
  /** Canonical decoded path (see src/http/url-path.ts). */
  readonly path: string;
  readonly query: string;
  readonly protocol: string;
  readonly siteId: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** -1 chunked/unknown, 0 no body. */
  readonly contentLength: number;
  readonly rawHeaders: readonly string[];
  /**
   * The W3C `traceparent` of the listener's span for this request, given by a tracing subscriber
   * of requestDispatch (src/diagnostics.ts); '' or absent when nobody traces. The worker hands it
   * to the application in place of the client's, so the app's own spans join the listener's trace.
   */
  readonly traceparent?: string;
  /**
   * The connection's TLS facts, encoded once per connection by encodeTlsInfo; '' or absent on
   * plain http. The worker decodes it only when a module asks (server variables, hosted apps).
   */
  readonly tls?: string;
  /**
   * The listener could not send a file the worker named by reference for this request (it changed
   * in between): the worker sends the body's bytes this time (no ResponseFile).
   */
  readonly bytes?: boolean;
}

/** What a worker learns of an https request's connection (HTTPS_*, CERT_* server variables). */
export interface TlsInfoMessage {
  /** 'TLSv1.3', 'TLSv1.2'. */
  readonly protocol: string;
  /** The negotiated suite's standard name ('TLS_AES_128_GCM_SHA256'). */
  readonly cipher: string;
  /** Bits of the cipher's key (HTTPS_KEYSIZE). */
  readonly keySize: number;
  /** Bits of the server certificate's key (HTTPS_SECRETKEYSIZE). */
  readonly secretKeySize: number;
  /** The server certificate's subject and issuer, as X509Certificate prints them (one RDN a line). */
  readonly serverSubject: string;
  readonly serverIssuer: string;
  /** The SNI name the client sent ('' none). */
  readonly serverName: string;
  /** 'h2', 'http/1.1' or '' (no ALPN). */
  readonly alpn: string;
  /** The client's certificate, DER as base64; '' when it sent none. */
  readonly clientCert: string;
  /** Why the client certificate did not verify ('CERT_HAS_EXPIRED' …); '' when it did or there is none. */
  readonly clientCertError: string;
}

const TLS_SEP = '\x01';

export function encodeTlsInfo(t: TlsInfoMessage): string {
  return [t.protocol, t.cipher, t.keySize, t.secretKeySize, t.serverSubject, t.serverIssuer, t.serverName, t.alpn, t.clientCert, t.clientCertError].join(TLS_SEP);
}

/** undefined for '' (plain http) or a malformed value. */
export function decodeTlsInfo(s: string | undefined): TlsInfoMessage | undefined {
  if (s === undefined || s === '') return undefined;
  const f = s.split(TLS_SEP);
  if (f.length !== 10) return undefined;
  return {
    protocol: f[0]!,
    cipher: f[1]!,
    keySize: Number(f[2]) || 0,
    secretKeySize: Number(f[3]) || 0,
    serverSubject: f[4]!,
    serverIssuer: f[5]!,
    serverName: f[6]!,
    alpn: f[7]!,
    clientCert: f[8]!,
    clientCertError: f[9]!,
  };
}

export interface ResponseHeadMessage {
  readonly status: number;
  readonly reason: string;
  /** Flat [name, value, …]. */
  readonly headers: readonly string[];
}

export interface ResponseEndMessage {
  readonly subStatus: number;
  readonly win32Status: number;
  readonly username: string;
  /** The worker asks the listener to close the client connection after this response. */
  readonly close: boolean;
  /** Abort: nothing (more) is sent; the connection is reset. */
  readonly abort: boolean;
  /** Write a W3C log line for this request (false: httpLogging dontLog / selectiveLogging). */
  readonly log: boolean;
  /** Trailer fields of a streamed response, flat [name, value, …] (sent when the client's framing is chunked). */
  readonly trailers?: readonly string[];
}

/**
 * A response body that is bytes [offset, offset + length) of a regular file the worker has open
 * as `fd` (HTTP.sys's TransmitFile: the worker decides everything — access, headers, range — and
 * the listener only moves the bytes). The listener opens `/proc/<worker pid>/fd/<fd>`, a link to
 * the very file the worker opened whatever happened to its path since, and sends it only if the
 * device, inode, size and modification time still match; otherwise the request runs again with
 * `bytes` (RequestHeadMessage). The worker runs the pool's code: it can only name files it could
 * read itself, and a non-regular file is refused.
 */
export interface FileBodyMessage {
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly offset: number;
  readonly length: number;
}

/**
 * A response the worker allows the listener to cache (IIS's kernel cache policy), decided with
 * the URL's configuration: `system.webServer/caching` and serverRuntime frequentHit*.
 */
export interface CacheableMessage {
  readonly policy: 'untilChange' | 'timePeriod';
  /** For timePeriod; also an upper bound for untilChange entries whose files cannot be watched. */
  readonly durationMs: number;
  /** Files whose change invalidates the entry (the served file, the web.config files of its URL). */
  readonly dependencies: readonly string[];
  readonly frequentHitThreshold: number;
  readonly frequentHitTimePeriodMs: number;
  /**
   * The content codings the response varies among (Vary: Accept-Encoding; lower case, server
   * order): the cache serves the entry only to requests that negotiate to its Content-Encoding.
   */
  readonly encodings?: readonly string[];
  /** HTTP/1.0 requests get the identity entry whatever they accept (noCompressionForHttp10). */
  readonly identityForHttp10?: boolean;
  /** Requests with a Via header get the identity entry (noCompressionForProxies). */
  readonly identityForProxies?: boolean;
}

/**
 * One failed request's trace (Failed Request Tracing, reference §5.2), sent by the worker that
 * traced it for the main process to write as `W3SVC<siteId>/frNNNNNN.xml`: the worker runs as the
 * pool's identity and has no access to the log folders. Structured rather than XML, so the main
 * process writes every byte of the file itself; it validates the record (the worker runs the
 * pool's code) and bounds it by the site's maxLogFileSizeKB. The pool and process id are the
 * channel's, never the worker's word.
 */
export interface TraceRecordMessage {
  readonly siteId: number;
  /** The request's URL as IIS shows it: `http://host:port/path?query`. */
  readonly url: string;
  readonly verb: string;
  /** The authenticated user ('' for anonymous). */
  readonly userName: string;
  readonly authenticationType: string;
  /** `{GUID}` correlating the trace's events (IIS's activity id). */
  readonly activityId: string;
  /** Which failure definition fired. */
  readonly failureReason: 'STATUS_CODE' | 'TIME_TAKEN' | 'VERBOSITY';
  /** Status (and sub-status) when the trace was written: `404.2`, `500`. */
  readonly statusCode: string;
  /** Status when the failure definition fired. */
  readonly triggerStatusCode: string;
  /** Milliseconds from the request's start to the trace. */
  readonly timeTaken: number;
  readonly events: readonly TraceEventRecord[];
}

/** One trace event (a FREB `<Event>`). */
export interface TraceEventRecord {
  /** The event name: GENERAL_REQUEST_START, NOTIFY_MODULE_START, MODULE_SET_RESPONSE_ERROR_STATUS … */
  readonly opcode: string;
  /** 'General' or an area of the WWW Server provider (RequestNotifications, StaticFile, Rewrite …). */
  readonly area: string;
  /** 0 LogAlways, 1 CriticalError … 5 Verbose. */
  readonly level: number;
  /** Wall-clock time, ms since the epoch (with a fraction). */
  readonly time: number;
  /** Named values in order: [name, value, friendly rendering or ''], as `<Data>` and `<freb:Description>`. */
  readonly data: readonly (readonly [name: string, value: string, description: string])[];
}

export interface LogMessage {
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
}

/** Messages a worker receives. */
export interface WorkerInbound {
  init(msg: ConfigMessage): void;
  config(msg: ConfigMessage): void;
  requestHead(stream: number, head: RequestHeadMessage): void;
  requestBody(stream: number, chunk: Buffer): void;
  /** `trailers`: the chunked body's trailer fields, flat name/value pairs (usually none). */
  requestEnd(stream: number, trailers: readonly string[]): void;
  requestAbort(stream: number): void;
  responsePause(stream: number): void;
  responseResume(stream: number): void;
  shutdown(): void;
  closed(error: Error | undefined): void;
}

/** Messages the listener receives from a worker. */
export interface ListenerInbound {
  responseHead(stream: number, head: ResponseHeadMessage): void;
  responseInterim(stream: number, status: number, headers: readonly string[]): void;
  responseBody(stream: number, chunk: Buffer): void;
  responseEnd(stream: number, end: ResponseEndMessage): void;
  responseComplete(stream: number, head: ResponseHeadMessage, body: Buffer, end: ResponseEndMessage): void;
  /** Head, body by reference to a file the worker holds open, and end: the request is done in the worker. */
  responseFile(stream: number, head: ResponseHeadMessage, file: FileBodyMessage, end: ResponseEndMessage): void;
  responseCacheable(stream: number, hint: CacheableMessage): void;
  /** The W3C line logs this path (decoded) and query instead of the client's (before the end). */
  responseLogUrl(stream: number, path: string, query: string): void;
  requestPause(stream: number): void;
  requestResume(stream: number): void;
  log(msg: LogMessage): void;
  /**
   * A failed request's trace to write: the frame's JSON bytes, unparsed, so the listener checks
   * their size before anything else (the worker runs the pool's code).
   */
  traceRecord(json: Buffer): void;
  closed(error: Error | undefined): void;
}
