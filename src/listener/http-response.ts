/**
 * Response heads for the listener's hot path, and the small HTML pages the listener answers with
 * itself where HTTP.sys would (iis-behavior.md §4.1). Framing headers (Connection,
 * Transfer-Encoding, Content-Length) always come from the options, never from the worker, so a
 * worker cannot send a response whose framing disagrees with what the listener writes.
 */

import { ListenerError } from '../errors.js';
import type { HttpParseReason } from './http-parser.js';

/** Reason phrases: RFC 9110 §15 names, plus the few other registered codes IIS apps send. */
export const STATUS_REASONS = {
  100: 'Continue',
  101: 'Switching Protocols',
  103: 'Early Hints', // RFC 8297
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  203: 'Non-Authoritative Information',
  204: 'No Content',
  205: 'Reset Content',
  206: 'Partial Content',
  207: 'Multi-Status', // RFC 4918 (WebDAV)
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  305: 'Use Proxy',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  423: 'Locked', // RFC 4918
  424: 'Failed Dependency', // RFC 4918
  426: 'Upgrade Required',
  428: 'Precondition Required', // RFC 6585
  429: 'Too Many Requests', // RFC 6585
  431: 'Request Header Fields Too Large', // RFC 6585
  451: 'Unavailable For Legal Reasons', // RFC 7725
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  507: 'Insufficient Storage', // RFC 4918
} as const;
export type KnownStatus = keyof typeof STATUS_REASONS;

/** The standard phrase for a status, or '' (a valid, empty reason-phrase) for unknown codes. */
export function reasonPhrase(status: number): string {
  return (STATUS_REASONS as Readonly<Record<number, string>>)[status] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Date header

let cachedDate = '';
let cachedDateUntil = 0;

/**
 * The IMF-fixdate for `now` (RFC 9110 §5.6.7), recomputed at most once per second: building it
 * with toUTCString on every response is measurable at listener request rates. `now` is
 * injectable for tests; a clock that steps back also recomputes.
 */
export function cachedDateHeader(now: number = Date.now()): string {
  if (now >= cachedDateUntil || now < cachedDateUntil - 1000) {
    const second = now - (now % 1000);
    cachedDate = new Date(second).toUTCString();
    cachedDateUntil = second + 1000;
  }
  return cachedDate;
}

// ---------------------------------------------------------------------------------------------
// Response head

export interface ResponseHeadOptions {
  /** Whether the caller wants the connection kept open after this response. */
  readonly keepAlive: boolean;
  /** Body sent with chunked framing (used only when contentLength is -1). */
  readonly chunked: boolean;
  /** Body length, or -1 when unknown. */
  readonly contentLength: number;
  /** The Date value, usually cachedDateHeader(). Omitted when `headers` carries a Date. */
  readonly date: string;
  /** The Server value; null sends none (HTTP.sys DisableServerHeader). `headers` may override. */
  readonly server: string | null;
  /** The request was HEAD: framing headers describe the body a GET would get, none is sent. */
  readonly isHead: boolean;
  /**
   * The request was HTTP/1.0: keeping the connection needs an explicit
   * `Connection: keep-alive` (RFC 9112 §9.3), and chunked framing is not available (§6.1).
   */
  readonly http10?: boolean;
  /** A whole header line ('Name: value\r\n') the listener adds (HSTS), unless `headers` has that field. */
  readonly extra?: string;
  /** The extra line's field name, lower case, for that check. */
  readonly extraName?: string;
}

// RFC 9110 §5.1 token and §5.5 field-value (HTAB, SP, VCHAR, obs-text). Chars above 0xFF are
// refused too: heads are written as latin1 and would be silently mangled.
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const INVALID_VALUE_RE = /[^\t\x20-\x7e\x80-\xff]/;

function equalsIgnoreCase(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    // | 0x20 folds A–Z onto a–z; names are checked as tokens, where nothing else folds onto a letter or "-".
    if ((name.charCodeAt(k) | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

/** Status codes whose responses never have a body (RFC 9110 §6.4.1). */
function isBodyless(statusCode: number): boolean {
  return statusCode < 200 || statusCode === 204 || statusCode === 304;
}

/**
 * Whether the connection stays open after this response. False when the caller asked to close,
 * for 101 (the connection leaves HTTP), and when a body has no framing and so ends at close
 * (RFC 9112 §6.3 rule 8) — the connection must then close after the body.
 */
export function keepsConnectionAlive(statusCode: number, options: ResponseHeadOptions): boolean {
  if (!options.keepAlive || statusCode === 101) return false;
  if (isBodyless(statusCode) || options.isHead || options.contentLength >= 0) return true;
  return options.chunked && options.http10 !== true;
}

function protocolError(message: string): ListenerError {
  return new ListenerError('LSN_PROTOCOL', message);
}

/**
 * `HTTP/1.1 <code> <reason>` CRLF, the given headers, then Date, Server, Connection and
 * Transfer-Encoding or Content-Length as the options require, then the blank line.
 * Hop-by-hop and framing headers in `headers` (Connection, Keep-Alive, Transfer-Encoding,
 * Content-Length) are dropped. Throws ListenerError `LSN_PROTOCOL` for a name that is not a token
 * or a value with CR, LF, NUL or another control character (response splitting); the caller
 * answers 500 instead.
 */
export function serializeResponseHead(
  statusCode: number,
  reason: string,
  headers: readonly string[],
  options: ResponseHeadOptions,
): Buffer {
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
    throw protocolError(`Status code ${statusCode} is not three digits.`);
  }
  if (INVALID_VALUE_RE.test(reason)) throw protocolError('The reason phrase contains a control character.');
  let head = 'HTTP/1.1 ' + statusCode + ' ' + reason + '\r\n';
  let hasDate = false;
  let hasServer = false;
  let extra = options.extra;
  const extraName = options.extraName;
  if ((headers.length & 1) !== 0) throw protocolError('Response headers are not name/value pairs.');
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    switch (name.length) {
      case 4:
        if (equalsIgnoreCase(name, 'date')) hasDate = true;
        break;
      case 6:
        if (equalsIgnoreCase(name, 'server')) {
          hasServer = true;
          // An empty Server value means "send none" (requestFiltering removeServerHeader).
          if (value === '') continue;
        }
        break;
      case 10:
        // The listener owns the connection: RFC 9110 §7.6.1 hop-by-hop fields.
        if (equalsIgnoreCase(name, 'connection') || equalsIgnoreCase(name, 'keep-alive')) continue;
        break;
      case 14:
        if (equalsIgnoreCase(name, 'content-length')) continue;
        break;
      case 17:
        if (equalsIgnoreCase(name, 'transfer-encoding')) continue;
        break;
    }
    if (extra !== undefined && name.length === extraName!.length && equalsIgnoreCase(name, extraName!)) extra = undefined;
    if (!TOKEN_RE.test(name)) throw protocolError(`Response header name ${JSON.stringify(name)} is not a token.`);
    if (INVALID_VALUE_RE.test(value)) throw protocolError(`Response header ${name} has a control character in its value.`);
    head += name + ': ' + value + '\r\n';
  }

  if (statusCode < 200) {
    // Interim responses carry no framing; 101 must name the switch (RFC 9110 §7.8).
    if (statusCode === 101) head += 'Connection: upgrade\r\n';
    return Buffer.from(head + '\r\n', 'latin1');
  }

  if (!hasDate) head += 'Date: ' + options.date + '\r\n';
  if (extra !== undefined) head += extra;
  if (!hasServer && options.server !== null) {
    if (INVALID_VALUE_RE.test(options.server)) throw protocolError('The Server value has a control character.');
    head += 'Server: ' + options.server + '\r\n';
  }
  if (!keepsConnectionAlive(statusCode, options)) head += 'Connection: close\r\n';
  else if (options.http10 === true) head += 'Connection: keep-alive\r\n';

  if (statusCode === 204) {
    // RFC 9110 §8.6: no Content-Length in a 204.
  } else if (options.contentLength >= 0) {
    head += 'Content-Length: ' + options.contentLength + '\r\n';
  } else if (options.chunked && !options.isHead && statusCode !== 304) {
    if (options.http10 === true) throw protocolError('Chunked framing cannot be sent to an HTTP/1.0 client.');
    head += 'Transfer-Encoding: chunked\r\n';
  }
  return Buffer.from(head + '\r\n', 'latin1');
}

// ---------------------------------------------------------------------------------------------
// The listener's own error pages

/** What the listener's own responses call their server: Wharf does not pretend to be Microsoft. */
export const HTTP_SYS_SERVER = 'Wharf-HTTPAPI/1.0';

export interface HttpSysErrorPageSpec {
  readonly status: number;
  /** The <title>: the status's short name. */
  readonly title: string;
  /** The <h2>: the short name, with the specific problem after a dash where there is one. */
  readonly heading: string;
  /** Follows "HTTP Error <status>. " in the paragraph. */
  readonly sentence: string;
}

/** The pages the listener can answer with, keyed by the problem they describe. */
export const HTTP_SYS_ERROR_PAGES = {
  badRequest: { status: 400, title: 'Bad Request', heading: 'Bad Request', sentence: 'The request is badly formed.' },
  invalidHostname: {
    status: 400,
    title: 'Bad Request',
    heading: 'Bad Request - Invalid Hostname',
    sentence: 'The request hostname is invalid.',
  },
  requestTooLong: {
    status: 400,
    title: 'Bad Request',
    heading: 'Bad Request - Request Too Long',
    sentence: 'The size of the request headers is too long.',
  },
  invalidHeader: {
    status: 400,
    title: 'Bad Request',
    heading: 'Bad Request - Invalid Header',
    sentence: 'The request has an invalid header name or value.',
  },
  fieldTooLong: {
    status: 400,
    title: 'Bad Request',
    heading: 'Bad Request - Header Field Too Long',
    sentence: 'A request header field is too long.',
  },
  invalidUrl: { status: 400, title: 'Bad Request', heading: 'Bad Request - Invalid URL', sentence: 'The request URL is invalid.' },
  invalidVerb: { status: 400, title: 'Bad Request', heading: 'Bad Request - Invalid Verb', sentence: 'The request verb is invalid.' },
  urlTooLong: { status: 414, title: 'Request URL Too Long', heading: 'Request URL Too Long', sentence: 'The request URL is too long.' },
  notImplemented: {
    status: 501,
    title: 'Not Implemented',
    heading: 'Not Implemented',
    sentence: 'The request uses a feature the server does not implement.',
  },
  internalError: {
    status: 500,
    title: 'Internal Server Error',
    heading: 'Internal Server Error',
    sentence: 'The server encountered an error processing the request.',
  },
  // ipSecurity / dynamicIpSecurity denyAction, with their 5xx sub-status in the log (ip-restrictions.ts).
  unauthorized: { status: 401, title: 'Unauthorized', heading: 'Unauthorized', sentence: 'Access is denied.' },
  forbidden: { status: 403, title: 'Forbidden', heading: 'Forbidden', sentence: 'Access is denied.' },
  notFound: { status: 404, title: 'Not Found', heading: 'Not Found', sentence: 'The requested resource is not found.' },
  badGateway: {
    status: 502,
    title: 'Bad Gateway',
    heading: 'Bad Gateway',
    sentence: 'The worker process serving the request ended before it answered.',
  },
  serviceUnavailable: {
    status: 503,
    title: 'Service Unavailable',
    heading: 'Service Unavailable',
    sentence: 'The service is unavailable.',
  },
  versionNotSupported: {
    status: 505,
    title: 'HTTP Version Not Supported',
    heading: 'HTTP Version Not Supported',
    sentence: 'The HTTP version of the request is not supported.',
  },
} as const satisfies Record<string, HttpSysErrorPageSpec>;
export type HttpSysErrorPage = keyof typeof HTTP_SYS_ERROR_PAGES;

const PAGE_FOR_REASON: Readonly<Record<HttpParseReason, HttpSysErrorPage>> = {
  BadRequest: 'badRequest',
  Header: 'invalidHeader',
  Verb: 'invalidVerb',
  URL: 'invalidUrl',
  URL_Length: 'urlTooLong',
  'Version_N/S': 'versionNotSupported',
  RequestLength: 'requestTooLong',
  FieldLength: 'fieldTooLong',
  Hostname: 'invalidHostname',
  'N/I': 'notImplemented',
};

/** The page to answer a parser rejection with, from its httperr reason. */
export function httpSysErrorPageFor(reason: HttpParseReason): HttpSysErrorPage {
  return PAGE_FOR_REASON[reason];
}

const ERROR_BODIES = new Map<HttpSysErrorPage, Buffer>();

/** The HTML body of a page (us-ascii, CRLF lines), built once per page. */
export function httpSysErrorBody(page: HttpSysErrorPage): Buffer {
  let body = ERROR_BODIES.get(page);
  if (body === undefined) {
    const p: HttpSysErrorPageSpec = HTTP_SYS_ERROR_PAGES[page];
    body = Buffer.from(
      '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n' +
        `<html><head><title>${p.title}</title>\r\n` +
        '<meta http-equiv="Content-Type" content="text/html; charset=us-ascii"></head>\r\n' +
        `<body><h2>${p.heading}</h2>\r\n` +
        `<hr><p>HTTP Error ${p.status}. ${p.sentence}</p>\r\n` +
        '</body></html>\r\n',
      'latin1',
    );
    ERROR_BODIES.set(page, body);
  }
  return body;
}
export interface HttpSysErrorOptions {
  readonly page: HttpSysErrorPage;
  /** After a parse error the connection cannot continue: pass false. */
  readonly keepAlive: boolean;
  /** Answering a HEAD request: head only, Content-Length still that of the page. */
  readonly isHead?: boolean;
  readonly http10?: boolean;
  /** Defaults to cachedDateHeader(). */
  readonly date?: string;
  /** Defaults to HTTP_SYS_SERVER; null sends none. */
  readonly server?: string | null;
}

/** A complete response (head and body) for one of the listener's own error pages. */
export function httpSysErrorResponse(options: HttpSysErrorOptions): Buffer {
  const spec = HTTP_SYS_ERROR_PAGES[options.page];
  const body = httpSysErrorBody(options.page);
  const isHead = options.isHead === true;
  const head = serializeResponseHead(spec.status, STATUS_REASONS[spec.status], ['Content-Type', 'text/html; charset=us-ascii'], {
    keepAlive: options.keepAlive,
    chunked: false,
    contentLength: body.length,
    date: options.date ?? cachedDateHeader(),
    server: options.server === undefined ? HTTP_SYS_SERVER : options.server,
    isHead,
    http10: options.http10 === true,
  });
  return isHead ? head : Buffer.concat([head, body], head.length + body.length);
}
