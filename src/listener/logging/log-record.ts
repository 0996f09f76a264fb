/**
 * What one request contributes to its site's W3C log. The listener fills one per completed request
 * (IIS: HttpLoggingModule hands the same data to HTTP.sys at LOG_REQUEST) and gives it to the
 * site's `W3cLogFile`. A plain object shape on purpose: it is built on the hot path and may cross
 * the IPC channel, so no methods, no prototype, no optional properties that change its hidden class.
 *
 * Strings are raw values: the writer applies W3C encoding (`-` for empty, `+` for spaces and
 * control characters), so callers pass `''` for anything absent.
 */
export interface LogRecord {
  /** When the request completed (last byte sent or connection aborted), epoch ms. Logged as UTC. */
  time: number;
  /** The site's id (`s-sitename` shows `W3SVC<id>` when logSiteId is true). */
  siteId: number;
  /** The site's name (`s-sitename` when logSiteId is false). */
  siteName: string;
  /** `s-computername`: this host's name. */
  computerName: string;
  /** `s-ip`: the local address the request arrived on. */
  serverIp: string;
  /** `cs-method`. */
  method: string;
  /** `cs-uri-stem`: the path as the client requested it (before URL rewrite unless logRewrittenUrl). */
  uriStem: string;
  /** `cs-uri-query`: the query string without its leading `?`; `''` when the URL had none. */
  uriQuery: string;
  /** `s-port`. */
  serverPort: number;
  /** `cs-username`: the authenticated user; `''` for anonymous requests. */
  username: string;
  /** `c-ip`. */
  clientIp: string;
  /** The client's port (not a W3C field; kept for custom logging and FREB). */
  clientPort: number;
  /** `cs-version`, e.g. `HTTP/1.1`. */
  protocolVersion: string;
  /** The request came over TLS (server variables HTTPS, SERVER_PORT_SECURE). */
  secure: boolean;
  /** `cs(User-Agent)`. */
  userAgent: string;
  /** `cs(Cookie)`: the request's Cookie header. */
  cookie: string;
  /** `cs(Referer)`. */
  referer: string;
  /** `cs-host`: the request's Host header. */
  host: string;
  /** `sc-status`. */
  status: number;
  /** `sc-substatus`, e.g. 3 for 404.3. */
  subStatus: number;
  /** `sc-win32-status`: 0, or the Win32 error the request ended with (64 = client disconnected). */
  win32Status: number;
  /** `sc-bytes`: bytes sent, headers included. */
  bytesSent: number;
  /** `cs-bytes`: bytes received, request line and headers included. */
  bytesReceived: number;
  /** `time-taken`: ms from the first request byte received to the last response byte sent. */
  timeTakenMs: number;
  /** The application pool that served the request (server variable APP_POOL_ID). */
  appPoolId: string;
  /**
   * The request's headers as name/value pairs, as parsed (the parser's own array, not a copy):
   * custom log fields and `HTTP_*` server variables read them.
   */
  requestHeaders: readonly string[];
  /**
   * The response's headers as the worker sent them (name/value pairs), kept only for sites whose
   * custom fields read response headers; otherwise an empty array.
   */
  responseHeaders: readonly string[];
}

/** The shared empty header list, so records without response headers allocate nothing. */
export const NO_HEADERS: readonly string[] = Object.freeze([]);

/** What the listener needs from any request log (W3C, IIS, NCSA; per site or central). */
export interface RequestLogFile {
  /** The folder the log's files go in. */
  readonly folder: string;
  /** Records dropped (memory cap during write failures, or written after close). */
  readonly droppedRecords: number;
  /** Whether records must carry the response's headers. */
  readonly needsResponseHeaders: boolean;
  /** Queues one request's line. Never blocks and never throws. */
  write(record: LogRecord): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
