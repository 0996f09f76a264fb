/**
 * iisnode's promoteServerVars: the named IIS server variables reach the application as
 * `X-iisnode-<NAME>` request headers (iisnode's own naming), computed from what the worker knows
 * about the request. A name Wharf cannot compute is sent empty, as IIS returns an unset variable.
 */
import type { HttpContext } from '../../worker/module-api.js';

type Getter = (ctx: HttpContext) => string;

function applicationPath(ctx: HttpContext): string {
  return ctx.config.application.path;
}

const VARIABLES: Readonly<Record<string, Getter>> = {
  REMOTE_ADDR: (c) => c.request.remoteAddress,
  REMOTE_HOST: (c) => c.request.remoteAddress,
  REMOTE_PORT: (c) => String(c.request.remotePort),
  LOCAL_ADDR: (c) => c.request.localAddress,
  SERVER_PORT: (c) => String(c.request.localPort),
  SERVER_NAME: (c) => (c.request.headers['host'] ?? c.request.localAddress).replace(/:\d+$/, ''),
  SERVER_PROTOCOL: (c) => c.request.protocol,
  SERVER_SOFTWARE: () => 'Wharf',
  HTTPS: () => 'off',
  REQUEST_METHOD: (c) => c.request.method,
  QUERY_STRING: (c) => c.request.queryString,
  URL: (c) => c.request.path,
  SCRIPT_NAME: (c) => c.request.path,
  PATH_INFO: (c) => c.request.path,
  PATH_TRANSLATED: (c) => c.physicalPath,
  HTTP_URL: (c) => c.request.rawUrl,
  UNENCODED_URL: (c) => c.request.rawUrl,
  CACHE_URL: (c) => `http://${c.request.headers['host'] ?? c.request.localAddress}${c.request.rawUrl}`,
  AUTH_USER: (c) => c.user,
  LOGON_USER: (c) => c.user,
  REMOTE_USER: (c) => c.user,
  AUTH_TYPE: (c) => (c.user === '' ? '' : 'Basic'),
  APPL_PHYSICAL_PATH: (c) => c.config.application.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? '',
  APPL_MD_PATH: (c) => `/LM/W3SVC/${c.site.id}/ROOT${applicationPath(c) === '/' ? '' : applicationPath(c)}`,
  INSTANCE_ID: (c) => String(c.site.id),
  INSTANCE_NAME: (c) => c.site.name,
  APP_POOL_ID: (c) => c.appPoolName,
  CONTENT_LENGTH: (c) => (c.request.contentLength > 0 ? String(c.request.contentLength) : '0'),
  CONTENT_TYPE: (c) => c.request.headers['content-type'] ?? '',
};

/** Append [header, value] pairs for the comma-separated variable names in `list`. */
export function promotedServerVariables(ctx: HttpContext, list: string, out: string[]): void {
  for (const raw of list.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const upper = name.toUpperCase();
    let value: string;
    const get = VARIABLES[upper];
    if (get !== undefined) value = get(ctx);
    else if (upper.startsWith('HTTP_')) value = ctx.request.headers[upper.slice(5).toLowerCase().replace(/_/g, '-')] ?? '';
    else value = '';
    // Header values are latin1 on the wire: a non-latin1 user name is sent UTF-8 encoded.
    out.push('X-iisnode-' + name, /[^\x20-\x7e]/.test(value) ? Buffer.from(value, 'utf8').toString('latin1').replace(/[\r\n\0]/g, '') : value);
  }
}
