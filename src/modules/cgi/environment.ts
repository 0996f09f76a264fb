/**
 * What a CGI program (CgiModule) or FastCGI application (FastCgiModule) is told about a request:
 * the CGI/1.1 meta-variables (RFC 3875 §4.1) plus the server variables IIS passes to them, so that
 * PHP's `$_SERVER` reads as it does under IIS (docs/configuration.md, "PHP and FastCGI").
 *
 * SERVER_SOFTWARE says `Microsoft-IIS/10.0 (Wharf)`: PHP itself (php-cgi's IIS PATH_INFO fix) and
 * applications written for IIS (WordPress's permalinks and web.config writer, Drupal) take their
 * IIS paths on that prefix, which is what running them unchanged from their IIS configuration needs.
 */
import type { HttpContext } from '../../worker/module-api.js';

export const CGI_SERVER_SOFTWARE = 'Microsoft-IIS/10.0 (Wharf)';

/** The version string IIS's URL Rewrite module publishes as the IIS_UrlRewriteModule variable. */
const URL_REWRITE_VERSION = '7,1,1993,2351';

/** Server variables passed as they are (ctx.getServerVariable), after the CGI ones. */
const IIS_VARIABLES = [
  'URL',
  'SERVER_PORT_SECURE',
  'REMOTE_HOST',
  'LOCAL_ADDR',
  'INSTANCE_ID',
  'INSTANCE_NAME',
  'APPL_MD_PATH',
  'APP_POOL_ID',
  'AUTH_TYPE',
  'AUTH_USER',
  'AUTH_PASSWORD',
  'LOGON_USER',
  'REMOTE_USER',
  'UNENCODED_URL',
] as const;

const TLS_VARIABLES = [
  'HTTPS_KEYSIZE',
  'HTTPS_SECRETKEYSIZE',
  'HTTPS_SERVER_ISSUER',
  'HTTPS_SERVER_SUBJECT',
  'CERT_COOKIE',
  'CERT_FLAGS',
  'CERT_ISSUER',
  'CERT_KEYSIZE',
  'CERT_SECRETKEYSIZE',
  'CERT_SERIALNUMBER',
  'CERT_SERVER_ISSUER',
  'CERT_SERVER_SUBJECT',
  'CERT_SUBJECT',
] as const;

export interface CgiEnvironmentOptions {
  /** The script's physical path (SCRIPT_FILENAME); default: ctx.physicalPath. */
  readonly scriptFilename?: string;
  /**
   * The request body's length when the caller spooled a chunked body to learn it (CGI needs
   * CONTENT_LENGTH); default: the request's Content-Length.
   */
  readonly contentLength?: number;
  /** Add REDIRECT_STATUS=200, which php-cgi run as a plain CGI program insists on (cgi.force_redirect). */
  readonly redirectStatus?: boolean;
  /** The URL Rewrite module is loaded in this pool (IIS_UrlRewriteModule is then set). */
  readonly urlRewrite?: boolean;
}

/** Header names that make an HTTP_ variable (lower case, as HttpRequest.headers has them). */
const HEADER_VARIABLE_NAME = /^[a-z0-9-]+$/;

/** Root folder of the site (the root application's root virtual directory), without a trailing '/'. */
function documentRoot(ctx: HttpContext): string {
  const root = ctx.site.applications.find((a) => a.path === '/')?.virtualDirectories.find((v) => v.path === '/')?.physicalPath;
  const p = root ?? ctx.config.application.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? '';
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/**
 * The variables, flat [name, value, …]. Request headers become HTTP_<NAME>; a header whose name
 * holds '_' is left out (it would read as the same variable as its '-' twin, letting a client
 * forge one a proxy in front set), as is one with other characters than letters, digits and '-'
 * (`X.Y`, `X!`: no shell or CGI library can name such a variable), and `Proxy` (httpoxy:
 * HTTP_PROXY would pose as the environment's proxy setting).
 */
export function cgiVariables(ctx: HttpContext, options: CgiEnvironmentOptions = {}): string[] {
  return cgiVariableList(ctx, options).variables;
}

/**
 * cgiVariables, and where the HTTP_* variables begin: their values are request header values,
 * one character per byte the client sent (latin1), where the others are text (UTF-8).
 */
export function cgiVariableList(ctx: HttpContext, options: CgiEnvironmentOptions = {}): { variables: string[]; headersFrom: number } {
  const req = ctx.request;
  const out: string[] = [];
  const host = req.headers['host'] ?? req.localAddress;
  const length = options.contentLength ?? (req.contentLength > 0 ? req.contentLength : 0);
  out.push(
    'GATEWAY_INTERFACE', 'CGI/1.1',
    'SERVER_SOFTWARE', CGI_SERVER_SOFTWARE,
    'SERVER_PROTOCOL', req.protocol,
    'SERVER_NAME', host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, ''),
    'SERVER_PORT', String(req.localPort),
    'SERVER_ADDR', req.localAddress,
    'REQUEST_METHOD', req.method,
    'REQUEST_URI', req.rawUrl,
    'QUERY_STRING', req.queryString,
    'SCRIPT_NAME', ctx.scriptPath,
    'SCRIPT_FILENAME', options.scriptFilename ?? ctx.physicalPath,
    // CGI's PATH_INFO: what follows the script in the URL ('' when nothing does). IIS's own
    // server variable is the whole URL unless the handler has allowPathInfo, which made PHP's
    // PHP_SELF read /index.php/index.php (WordPress derives its admin pages from it).
    'PATH_INFO', ctx.request.path.length > ctx.scriptPath.length ? ctx.request.path.slice(ctx.scriptPath.length) : '',
    'PATH_TRANSLATED', ctx.getServerVariable('PATH_TRANSLATED'),
    'DOCUMENT_ROOT', documentRoot(ctx),
    'APPL_PHYSICAL_PATH', ctx.getServerVariable('APPL_PHYSICAL_PATH'),
    'REMOTE_ADDR', req.remoteAddress,
    'REMOTE_PORT', String(req.remotePort),
    'HTTPS', req.secure ? 'on' : 'off',
    'CONTENT_LENGTH', length > 0 || req.hasBody ? String(length) : '',
    'CONTENT_TYPE', req.headers['content-type'] ?? '',
  );
  for (const name of IIS_VARIABLES) out.push(name, ctx.getServerVariable(name));
  if (req.secure) {
    out.push('REQUEST_SCHEME', 'https');
    for (const name of TLS_VARIABLES) out.push(name, ctx.getServerVariable(name));
  } else {
    out.push('REQUEST_SCHEME', 'http');
  }
  if (options.urlRewrite === true) out.push('IIS_UrlRewriteModule', URL_REWRITE_VERSION);
  const headers = req.headers;
  if (headers['x-original-url'] !== undefined) out.push('IIS_WasUrlRewritten', '1');
  if (options.redirectStatus === true) out.push('REDIRECT_STATUS', '200');
  const headersFrom = out.length;
  for (const name in headers) {
    if (name === 'content-length' || name === 'content-type' || name === 'proxy' || !HEADER_VARIABLE_NAME.test(name)) continue;
    out.push('HTTP_' + name.toUpperCase().replace(/-/g, '_'), headers[name]!);
  }
  return { variables: out, headersFrom };
}

/** The same variables as an environment object (CgiModule's child process). */
export function cgiEnvironment(ctx: HttpContext, options: CgiEnvironmentOptions = {}): Record<string, string> {
  const list = cgiVariables(ctx, options);
  const env: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) env[list[i]!] = list[i + 1]!;
  return env;
}
