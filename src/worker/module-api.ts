/**
 * The module registration API shared by built-in and third-party modules: IIS's integrated
 * pipeline (reference §3). A module subscribes handlers to notifications; one handler is chosen at
 * MapRequestHandler from `<handlers>` and the modules it names run in ExecuteRequestHandler.
 *
 * A notification handler may return a promise (async work such as reading a file); synchronous
 * handlers return nothing and cost no promise (STYLE.md §8).
 */
import type { Transform } from 'node:stream';
import type { ConfigElement, ResolveResult, ResolvedConfig, SiteConfig } from '../config/types.js';
import type { CredentialClient, Identity } from '../ipc/credential-messages.js';
import type { FileBodyMessage, TlsInfoMessage } from '../ipc/messages.js';

export type { CredentialClient, CredentialRequest, CredentialResult, Identity } from '../ipc/credential-messages.js';

/** Request notifications in IIS order (RQ_BEGIN_REQUEST … RQ_END_REQUEST). */
export const STAGES = [
  'BeginRequest',
  'AuthenticateRequest',
  'AuthorizeRequest',
  'ResolveRequestCache',
  'MapRequestHandler',
  'AcquireRequestState',
  'PreExecuteRequestHandler',
  'ExecuteRequestHandler',
  'ReleaseRequestState',
  'UpdateRequestCache',
  'LogRequest',
  'EndRequest',
] as const;
export type Stage = (typeof STAGES)[number];

/** Stages plus RQ_SEND_RESPONSE, which fires once, just before the response head is flushed. */
export type Notification = Stage | 'SendResponse';

export type NotificationHandler = (ctx: HttpContext) => void | Promise<void>;

/** What a module may ask of its worker process outside any request (ModuleDefinition.attach). */
export interface WorkerServices {
  /** Name of the pool the worker serves ('' for a spare not yet given a pool). */
  readonly poolName: () => string;
  /** Where `%SystemDrive%` and `C:` point (the path rule of docs/configuration.md), for path-valued settings. */
  readonly systemDrive: () => string;
  /**
   * Ask WAS for an overlapped recycle of this worker (a new one starts, this one drains), e.g.
   * because files the module loaded changed. Asked once: later calls do nothing.
   */
  requestRecycle(reason: string): void;
  /**
   * Tell WAS what the pool's hosted application asks for: how many workers the pool should run
   * (at least its maxProcesses) and the most time a draining worker gets (at most its
   * shutdownTimeLimit); 0 = no wish. The latest call counts.
   */
  appHints(processes: number, shutdownTimeLimitMs: number): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /**
   * Credential checks by the privileged main process (PAM, Wharf's users, Kerberos): the worker
   * never sees a password hash or a key (src/ipc/credential-messages.ts).
   */
  readonly credentials: CredentialClient;
}

export interface ModuleDefinition {
  /** The name used in `<modules>` and in a handler's `modules="…"` list, e.g. 'StaticFileModule'. */
  readonly name: string;
  /** Handlers for the notifications this module hooks (run in `<modules>` order within a stage). */
  readonly notifications?: Partial<Record<Notification, NotificationHandler>>;
  /**
   * Set when the module can serve as (part of) a request handler: called in ExecuteRequestHandler
   * when the selected `<handlers>` entry names this module. Several modules of one handler run in
   * `<modules>` order until one of them finishes the request (ctx.finish()) or produces a response.
   */
  readonly executeHandler?: NotificationHandler;
  /** Called once when the module is registered in a worker, with the worker's services. */
  readonly attach?: (worker: WorkerServices) => void;
}

/** A `<handlers>` entry chosen at MapRequestHandler. */
export interface HandlerMapping {
  readonly name: string;
  readonly path: string;
  readonly verb: string;
  /** Module names from `modules="A,B"`, in the order written. */
  readonly modules: readonly string[];
  readonly scriptProcessor: string;
  readonly resourceType: string; // File | Directory | Either | Unspecified
  readonly requireAccess: string; // None | Read | Write | Script | Execute
  /** Bytes buffered before the response streams (IIS default 4 MiB; 0 = stream at once). */
  readonly responseBufferLimit: number;
  readonly element: ConfigElement;
}

/** Extra information shown on IIS's detailed error page and in traces. */
export interface ErrorDetail {
  /** Module that set the status ('IIS Web Core' for the core). */
  readonly module: string;
  readonly notification: Notification;
  /** HRESULT-style code, e.g. 0x80070002 for file not found; 0 when none. */
  readonly hresult: number;
  /** One-sentence description for the detailed page. */
  readonly description: string;
  /** Config file/line for 500.19. */
  readonly configFile?: string;
  readonly configLine?: number;
  readonly configSource?: string;
}

/** What a module can know of an https request's TLS session (the HTTPS_* and CERT_* server variables). */
export type TlsInfo = TlsInfoMessage;

export interface HttpRequest {
  readonly method: string;
  /** The request-target as received (encoded, with query). */
  readonly rawUrl: string;
  /** Decoded, canonical URL path (IIS's URL / SCRIPT_NAME): starts with '/', no dot segments. */
  readonly path: string;
  /** Query string without '?' ('' if none), still encoded. */
  readonly queryString: string;
  /** 'HTTP/1.1' */
  readonly protocol: string;
  /** Header values by lower-case name (repeats joined with ', '). */
  readonly headers: Readonly<Record<string, string>>;
  /** As received: [name, value, name, value, …]. */
  readonly rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Client is on a loopback address (IIS "local request" for DetailedLocalOnly). */
  readonly isLocal: boolean;
  /** The request came over TLS (an https binding): server variable HTTPS is 'on'. */
  readonly secure: boolean;
  /** The connection's TLS facts (protocol, suite, certificates); undefined on plain http. */
  readonly tls: TlsInfo | undefined;
  /** Content-Length, or -1 when chunked/unknown; 0 when there is no body. */
  readonly contentLength: number;
  readonly hasBody: boolean;
  /** The request body, streamed with backpressure. Iterate once. */
  body(): AsyncIterable<Buffer>;
  /** Trailer fields after a chunked body, flat [name, value, …]: known once body() has ended. */
  readonly trailers: readonly string[];
  /**
   * Cap a body whose length is not announced (chunked): past `maxBytes` received, reading it fails
   * with MOD_BODY_TOO_LARGE and the pipeline answers 404.13 (requestFiltering maxAllowedContentLength).
   */
  limitBody(maxBytes: number): void;
  /**
   * Set (or with '' remove) a request header for the rest of the pipeline and the handler, e.g. a
   * hosted application (IIS IHttpRequest::SetHeader). The header keeps its place if present.
   */
  setHeader(name: string, value: string): void;
}

export interface HttpResponse {
  statusCode: number;
  subStatus: number;
  /** Windows error code logged as sc-win32-status (0 = success, 2 = file not found, 64 = client gone…). */
  win32Status: number;
  /** Reason phrase; '' means the standard one for statusCode. */
  statusReason: string;
  /** IIS fTrySkipCustomErrors: ask CustomErrorModule (existingResponse="Auto") to leave this response alone. */
  trySkipCustomErrors: boolean;
  setHeader(name: string, value: string | readonly string[]): void;
  getHeader(name: string): string | readonly string[] | undefined;
  removeHeader(name: string): void;
  /** Header names as set (original case). */
  headerNames(): string[];
  /**
   * Append body bytes. Buffered until the response is flushed (the pipeline ends, flush() is called,
   * or more than the handler's responseBufferLimit is buffered); afterwards bytes stream to the
   * client. Returns false when the caller should `await drained()` before writing more.
   */
  write(chunk: Buffer | string): boolean;
  /**
   * A body that is bytes [offset, offset + length) of the regular file this process holds open as
   * `file.fd` (described by its device, inode, size and mtime) and keeps open for a while. If the
   * response leaves whole with that range as its only body — nothing encoded, replaced or cached it
   * — the listener sends it from the file itself (HTTP.sys's TransmitFile) instead of receiving it
   * over the channel.
   *
   * With `bytes` (the range's bytes, in memory): write(bytes), and the reference if it applies.
   * Without: the range is the whole body of this response, read from the file only if it must pass
   * through the worker after all; returns false, doing nothing, when that is not possible (a HEAD,
   * a response already started or with bytes written, the listener asked for bytes): the caller
   * then writes the bytes itself.
   */
  writeFile(file: FileBodyMessage, bytes?: Buffer): boolean;
  /** Resolves when written bytes have been accepted by the channel again. */
  drained(): Promise<void>;
  /** Send the head (running SendResponse first) and everything buffered so far. */
  flush(): Promise<void>;
  /**
   * Send an interim response (102 Processing, 103 Early Hints with its `Link` headers: flat
   * [name, value, …]) ahead of the final one. Ignored once the head was sent, for other statuses,
   * and, by the listener, for HTTP/1.0 clients.
   */
  sendInformational(status: number, headers: readonly string[]): void;
  /** Drop buffered body bytes (not possible once streaming began: returns false then). */
  clearBody(): boolean;
  /** Drop headers and body (IIS IHttpResponse::Clear). */
  clear(): boolean;
  readonly headersSent: boolean;
  /** Body bytes written so far (buffered or sent). */
  readonly bodyLength: number;
  /** Close the client connection without a response (IIS abort): LogRequest/EndRequest still run. */
  abort(): void;
  /**
   * Call `listener` once if the client goes away before the response is complete (the listener
   * saw the connection close): a handler that waits on something else (a hosted app, a timer)
   * can stop. Not called for responses that completed.
   */
  onClientAbort(listener: () => void): void;
  /** Whether the listener writes a W3C line for this request (HttpLoggingModule clears it). */
  logRequest: boolean;
  /**
   * Log the request as this URL (`path` decoded, `query` encoded) instead of the client's, as URL
   * Rewrite's logRewrittenUrl does; undefined: the URL the client sent.
   */
  logUrl: { readonly path: string; readonly query: string } | undefined;
  /**
   * Trailer fields sent after the body, flat [name, value, …] (RFC 9112 §7.1.2). Only a
   * response that streams with chunked framing carries them; set them before the pipeline ends.
   */
  trailers: string[] | undefined;
  /**
   * Encode the body with a content coding from here on (DynamicCompressionModule): set it before
   * the head leaves (at SendResponse at the latest); bytes already buffered go through it too. The
   * pipeline then sets Content-Encoding and either sends the encoded length, when the whole body is
   * known at once, or streams it chunked without a Content-Length, flushing the encoder after each
   * write or flush() so that a streamed response (Server-Sent Events) is never held back. An empty
   * body is sent as it is, without Content-Encoding; HEAD responses are never encoded.
   */
  setContentEncoder(encoder: ContentEncoder): void;
  /**
   * IIS's kernel cache policy (IHttpCachePolicy): ask the listener's response cache to keep this
   * response. Honoured only when IIS would: anonymous GET, 200, sent whole, no Set-Cookie,
   * cacheable Cache-Control, `caching enableKernelCache`, under `maxResponseSize`, frequently hit.
   */
  readonly kernelCache: KernelCachePolicy;
}

/** A content coding for HttpResponse.setContentEncoder. */
export interface ContentEncoder {
  /** The name sent in Content-Encoding: 'gzip', 'br', 'deflate'. */
  readonly coding: string;
  /** A new encoding stream (node:zlib createGzip / createDeflate / createBrotliCompress …). */
  create(): EncoderStream;
  /** The flush() kind that makes everything written so far decodable (Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH). */
  readonly flushKind: number;
}

/** What node:zlib's compression streams are: a Transform with flush(kind). */
export interface EncoderStream extends Transform {
  flush(kind?: number, callback?: () => void): void;
}

/** Requests that get the identity coding whatever they accept (httpCompression noCompressionFor…). */
export interface EncodingExceptions {
  /** HTTP/1.0 requests (noCompressionForHttp10). */
  readonly http10: boolean;
  /** Requests through a proxy, with a Via header (noCompressionForProxies). */
  readonly proxies: boolean;
}

export interface KernelCachePolicy {
  /** Keep the response until one of these files changes (CacheUntilChange; StaticFileModule uses it). */
  cacheUntilChange(...files: string[]): void;
  /** Keep the response for this long (CacheForTimePeriod). */
  cacheForTimePeriod(ms: number): void;
  /** Never cache this response, whatever a profile says (DisableCache). */
  disable(): void;
  /**
   * More files whose change (or appearance) invalidates a cached response, e.g. those a URL
   * Rewrite condition tested. Does not make the response cacheable by itself.
   */
  addDependency(...files: string[]): void;
  /**
   * The response depends on Accept-Encoding among these content codings (lower case, server
   * order; StaticCompressionModule and DynamicCompressionModule set it): the listener keeps one
   * entry per coding and answers from an entry only the requests that negotiate to that coding
   * (src/http/accept-encoding.ts).
   */
  varyByEncoding(codings: readonly string[], identityFor?: EncodingExceptions): void;
  readonly encodings: readonly string[] | undefined;
  readonly encodingExceptions: EncodingExceptions | undefined;
  readonly policy: 'none' | 'untilChange' | 'timePeriod' | 'disabled';
  readonly durationMs: number;
  readonly dependencies: readonly string[];
}

/** How HttpContext.executeChildRequest runs the child (IIS's EXECUTE_FLAG_* choices). */
export interface ChildRequestOptions {
  /** The child's request headers, flat [name, value, …]; default: this request's. */
  readonly rawHeaders?: readonly string[];
  /**
   * The child's request line (rawUrl: what a hosted application and URL server variables see) is
   * `url` itself; by default it stays the client's, as for a default document.
   */
  readonly ownUrl?: boolean;
  /**
   * The response keeps the status line it has now whatever the child sets (httpErrors
   * ExecuteURL: the client gets the original error status with the child's body), also when the
   * child streams and the head leaves while it runs.
   */
  readonly keepStatus?: boolean;
  /**
   * The child's method; default: this request's. Another method leaves the child without a body
   * (a CGI local redirect, RFC 3875 §6.2.2, is served as GET: the body was the program's).
   */
  readonly method?: string;
}

/** The child request's own outcome (with keepStatus, not what the client gets). */
export interface ChildRequestResult {
  readonly status: number;
  readonly subStatus: number;
}

/** Why HttpContext.rewriteUrl refused a URL: the status to answer with and what to say. */
export interface RewriteRefusal {
  readonly status: number;
  readonly subStatus: number;
  readonly description: string;
}

export interface FileInfo {
  readonly path: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

export interface HttpContext {
  readonly request: HttpRequest;
  readonly response: HttpResponse;
  readonly site: SiteConfig;
  /** Effective configuration for this request's URL. */
  readonly config: ResolvedConfig;
  /**
   * Physical path for request.path (may not exist); from MapRequestHandler on, that of scriptPath
   * when the handler matched an earlier segment.
   */
  readonly physicalPath: string;
  /**
   * The URL the handler serves: request.path, or the part of it up to the segment a script map
   * matched (`/test.dll` for `/test.dll/myinfo`, whose PATH_INFO is `/myinfo`). Set at
   * MapRequestHandler.
   */
  readonly scriptPath: string;
  /** The handler chosen at MapRequestHandler (undefined before it). */
  readonly handler: HandlerMapping | undefined;
  /** Name of the pool this worker serves. */
  readonly appPoolName: string;
  /** Authenticated user name ('' = anonymous), logged as cs-username. */
  user: string;
  /**
   * Who the request runs as once AuthenticateRequest found credentials (undefined = anonymous):
   * its uid and groups decide file rights (401.3) and URL authorization's roles.
   */
  identity: Identity | undefined;
  /** The scheme that authenticated the request, as AUTH_TYPE shows it ('Basic', 'Digest', 'Negotiate', 'SSL/PCT'); '' = anonymous. */
  authType: string;
  readonly isChildRequest: boolean;
  /** The notification currently running. */
  readonly notification: Notification;
  /** Typed per-request storage for modules (key it by your module name). */
  readonly items: Map<string, unknown>;
  /**
   * IIS RQ_NOTIFICATION_FINISH_REQUEST: skip the remaining stages after this handler, except
   * LogRequest and EndRequest, which always run.
   */
  finish(): void;
  /**
   * Set an error (or other) status the IIS way: clears any buffered body, records who set it for
   * the detailed error page, and marks the response so CustomErrorModule can substitute a page at
   * SendResponse. Does not finish the request by itself.
   */
  setStatus(status: number, subStatus: number, detail?: Partial<ErrorDetail> & { trySkipCustomErrors?: boolean }): void;
  /** Information recorded by the last setStatus (for the detailed error page). */
  readonly errorDetail: ErrorDetail | undefined;
  /**
   * Run a child request for another URL of the same site (IIS IHttpContext::ExecuteRequest), e.g.
   * a default document or an httpErrors ExecuteURL page. The child writes into this request's
   * response; `url` is encoded, and without a query string the child gets this request's.
   * Resolves with the child's own final status. A URL of an application in another pool is not
   * run: this request gets 403.18, as in IIS.
   */
  executeChildRequest(url: string, options?: ChildRequestOptions): Promise<ChildRequestResult>;
  /**
   * For a child request, the module that executed it ('DefaultDocumentModule',
   * 'CustomErrorModule'); undefined for the client's own request.
   */
  readonly executedBy?: string | undefined;
  /**
   * Serve this request as another URL of the same site from here on (IIS IHttpRequest::SetUrl, as
   * URL Rewrite uses it): handler mapping, the physical path and the configuration of the new
   * URL apply; the client's request line (rawUrl), the log line and the kernel cache key stay
   * the original, so the response is not kernel-cached unless `cacheable`: the new URL follows
   * from the client's URL (host, path, query) and from files alone, whose changes the caller
   * registers with `response.kernelCache.addDependency`. `path` is decoded (like request.path); `queryString` is encoded. Returns why
   * when it cannot: an invalid path, a configuration error there (500.19), or an application of
   * another pool.
   */
  rewriteUrl(path: string, queryString: string, options?: { readonly cacheable?: boolean }): RewriteRefusal | undefined;
  /**
   * Where another URL path of this site leads, as IIS's IHttpContext::MapPath finds it through
   * the site's virtual directories: its physical path, virtual directory, application and
   * configuration (ServerSideIncludeModule's `#include virtual`). `path` is decoded and canonical
   * like request.path; undefined when it is not, `ok: false` when its configuration is invalid.
   * Nothing is checked on disk.
   */
  mapUrl(path: string): ResolveResult | undefined;
  /**
   * An IIS server variable (REMOTE_ADDR, URL, REQUEST_FILENAME, HTTP_HOST …, see
   * src/worker/server-variables.ts), including any set by setServerVariable; '' when unset.
   */
  getServerVariable(name: string): string;
  /** Set a server variable for this request; `HTTP_<NAME>` sets the request header NAME. */
  setServerVariable(name: string, value: string): void;
  /** Stat through the worker's file cache (undefined when the path does not exist). */
  stat(path: string): Promise<FileInfo | undefined>;
  /**
   * The cached stat when it is fresh, without a promise: FileInfo, null when the path is known
   * not to exist, undefined when nothing fresh is cached (then call stat()). Lets hot paths stay
   * synchronous.
   */
  statCached(path: string): FileInfo | null | undefined;
  /** Server log (goes to the main process log, tagged with the pool and module). */
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /**
   * Whether trace() reaches anyone (Failed Request Tracing, a diagnostics subscriber). Test it
   * before building an event's data, so an untraced request pays one property read.
   */
  readonly tracing: boolean;
  /**
   * Emit one of this module's own trace events, as IIS modules raise FREB area events
   * (URL Rewrite's RULE_EVALUATION_END, CustomErrorModule's GENERAL_SEND_CUSTOM_ERROR): published
   * on `wharf:pipeline:trace` with the running module's name.
   */
  trace(event: ModuleTrace): void;
}

/** FREB trace levels (the `verbosity` of traceAreas): 1 CriticalError … 5 Verbose. */
export const TRACE_LEVEL = { CriticalError: 1, Error: 2, Warning: 3, Information: 4, Verbose: 5 } as const;
export type TraceLevel = (typeof TRACE_LEVEL)[keyof typeof TRACE_LEVEL];

/** A module's own trace event (HttpContext.trace). */
export interface ModuleTrace {
  /** The FREB area of the WWW Server provider it belongs to: 'Rewrite', 'StaticFile', 'Cache', 'Module' … */
  readonly area: string;
  /** The event name as FREB shows it, e.g. 'GENERAL_SEND_CUSTOM_ERROR'. */
  readonly opcode: string;
  readonly level: TraceLevel;
  /** Named values, shown as the event's data (`<Data Name="…">`). */
  readonly data: Readonly<Record<string, string | number | boolean>>;
}
