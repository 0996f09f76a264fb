/**
 * CustomErrorModule (IIS custerr): in SendResponse, replaces the body of error responses
 * (status ≥ 400) according to system.webServer/httpErrors — the configured page (File, ExecuteURL,
 * Redirect) for remote clients, the detailed diagnostic page for local ones under
 * DetailedLocalOnly — honouring existingResponse and fTrySkipCustomErrors (reference §2 httpErrors).
 */
import { mapExpandedPath } from '../../config/index.js';
import type { ConfigElement } from '../../config/types.js';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { redirect, sendBody } from '../html-response.js';
import { NOT_YET, renderDetailedPage } from './detailed-page.js';
import { ERROR_LANGUAGE, builtinErrorPage, readErrorFile, warnMissingOnce } from './error-files.js';

export { renderDetailedPage, configSourceExcerpt } from './detailed-page.js';
export type { DetailedPageInput } from './detailed-page.js';
export { BUILTIN_CUSTERR_DIR, builtinErrorPage, genericErrorPage, preloadBuiltinErrorPages } from './error-files.js';

export const HTTP_ERRORS_SECTION = 'system.webServer/httpErrors';

/** What the configuration says to do for one status. */
interface ErrorAction {
  readonly mode: string; // File | ExecuteURL | Redirect
  readonly path: string;
  readonly prefixLanguageFilePath: string;
}

/** The `error` entry for status.sub: exact sub-status first, then subStatusCode -1, else the defaults. */
function actionFor(section: ConfigElement, status: number, sub: number): ErrorAction {
  let wildcard: ConfigElement | undefined;
  for (const item of section.items) {
    if (item.num('statusCode') !== status) continue;
    const s = item.num('subStatusCode');
    if (s === sub) return fromItem(item);
    if (s === -1 && wildcard === undefined) wildcard = item;
  }
  if (wildcard !== undefined) return fromItem(wildcard);
  return { mode: section.enumName('defaultResponseMode'), path: section.str('defaultPath'), prefixLanguageFilePath: '' };
}

function fromItem(item: ConfigElement): ErrorAction {
  return { mode: item.enumName('responseMode'), path: item.str('path'), prefixLanguageFilePath: item.str('prefixLanguageFilePath') };
}

/** Physical path of the site's root ('/' application, '/' virtual directory). */
function siteRootPath(ctx: HttpContext): string {
  const app = ctx.site.applications.find((a) => a.path === '/');
  return app?.virtualDirectories.find((v) => v.path === '/')?.physicalPath ?? ctx.config.virtualDirectory.physicalPath;
}

const DRIVE_PATH = /^[A-Za-z]:(?:[\\/]|$)/;

/**
 * The file for `<prefixLanguageFilePath>/<lang>/<path>` (or `path` alone without a prefix), or
 * undefined when it cannot be mapped. The config system expands %VAR% in these attributes but
 * leaves the Windows form: the path is mapped here by the one Wharf rule (src/config/path-map.ts),
 * except that relative paths are relative to the site root, where IIS looks for them.
 */
export function errorFilePath(ctx: HttpContext, prefix: string, path: string, systemDrive: string | undefined): string | undefined {
  const joined = prefix === '' ? path : `${prefix}/${ERROR_LANGUAGE}/${path}`;
  // A drive-letter path needs the configured system drive; without it there is nothing to open.
  if (systemDrive === undefined && DRIVE_PATH.test(joined)) return undefined;
  try {
    return mapExpandedPath(joined, { systemDrive: systemDrive ?? '/', baseDir: siteRootPath(ctx) });
  } catch {
    return undefined; // UNC paths cannot be served on Linux
  }
}

function prepareForPage(ctx: HttpContext): void {
  const res = ctx.response;
  res.clearBody();
  // The handler's encoding no longer describes the body we are about to send.
  res.removeHeader('Content-Encoding');
}

async function sendBuiltin(ctx: HttpContext): Promise<void> {
  sendBody(ctx, await builtinErrorPage(ctx.response.statusCode), 'text/html');
}

/**
 * Request headers an ExecuteURL page does not see: its body answers the error, it is not a
 * representation of the URL asked for, so the client's preconditions and ranges do not apply to
 * it (RFC 9110 §13.2.1: conditionals are ignored when the answer would not be 2xx or 412;
 * §14.2: a range applies to a 200 answer).
 */
const NOT_FOR_ERROR_PAGE = new Set(['if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range', 'range']);

function errorPageHeaders(raw: readonly string[]): readonly string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!NOT_FOR_ERROR_PAGE.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

/**
 * The URL an ExecuteURL page runs as. IIS hands the page the status and the URL the client asked
 * for as its query string, `404;http://host:80/missing.htm?x=1` (as IIS 6 did for URL custom
 * errors; applications parse it); a path written with a query string of its own keeps that one.
 */
export function executeUrlTarget(ctx: HttpContext, path: string, status: number): string {
  return path.includes('?') ? path : `${path}?${status};${requestedUrl(ctx)}`;
}

const warned = new Set<string>();
function warnOnce(ctx: HttpContext, key: string, message: string): void {
  if (warned.has(key)) return;
  if (warned.size > 1000) warned.clear();
  warned.add(key);
  ctx.log('warn', message);
}

/**
 * responseMode="ExecuteURL": the page is a URL of the same site, run as a child request through
 * the whole pipeline (a file, a default document, a rewritten URL, a Node.js application); the
 * client gets the original status with the child's headers and body. The page cannot cause a
 * second error page: when it fails (missing, an error status, an empty body, another pool) the
 * built-in page for the original status is sent instead and the failure is logged once.
 */
async function executeUrl(ctx: HttpContext, path: string): Promise<void> {
  const res = ctx.response;
  // IIS Manager accepts only a server-relative URL ("/errors/404.htm") for ExecuteURL: a
  // child request cannot leave the site. Anything else gets the built-in page.
  if (!path.startsWith('/') || path.startsWith('//')) {
    warnOnce(ctx, `url:${path}`, `httpErrors: ExecuteURL path "${path}" is not a URL of this site such as /errors/404.htm; sending the built-in page (use responseMode="Redirect" for another site)`);
    return sendBuiltin(ctx);
  }
  const { statusCode, subStatus, statusReason, win32Status } = res;
  const headers = res.headerNames().map((name) => [name, res.getHeader(name)!] as const);
  res.removeHeader('Content-Type');
  res.removeHeader('Content-Length');
  const target = executeUrlTarget(ctx, path, statusCode);
  const child = await ctx.executeChildRequest(target, { keepStatus: true, ownUrl: true, rawHeaders: errorPageHeaders(ctx.request.rawHeaders) });
  res.win32Status = win32Status;
  // A page that streamed is on its way to the client with the original status.
  if (res.headersSent) return;
  const ok = child.status >= 200 && child.status < 300 && (res.bodyLength > 0 || ctx.request.method === 'HEAD');
  if (ok) return;
  warnOnce(
    ctx,
    `failed:${path}:${child.status}.${child.subStatus}`,
    `httpErrors: the ExecuteURL page ${path} answered ${child.status}.${child.subStatus}${child.status < 300 ? ' with an empty body' : ''}; sending the built-in page for ${statusCode}`,
  );
  // Back to the error as it was before the page ran, except that IIS answers 403.18 when the
  // page belongs to another application pool.
  for (const name of res.headerNames()) res.removeHeader(name);
  for (const [name, value] of headers) res.setHeader(name, value);
  const otherPool = child.status === 403 && child.subStatus === 18;
  res.statusCode = otherPool ? 403 : statusCode;
  res.subStatus = otherPool ? 18 : subStatus;
  res.statusReason = otherPool ? '' : statusReason;
  prepareForPage(ctx);
  return sendBuiltin(ctx);
}

async function sendCustom(ctx: HttpContext, section: ConfigElement, systemDrive: string | undefined): Promise<void> {
  const res = ctx.response;
  const action = actionFor(section, res.statusCode, res.subStatus);
  if (action.path === '') return sendBuiltin(ctx);
  switch (action.mode) {
    case 'ExecuteURL':
      return executeUrl(ctx, action.path);
    case 'Redirect':
      redirect(ctx, 302, action.path);
      return;
    default: {
      const file = errorFilePath(ctx, action.prefixLanguageFilePath, action.path, systemDrive);
      const body = file === undefined ? undefined : await readErrorFile(ctx, file);
      if (body === undefined) {
        warnMissingOnce(ctx, file ?? `${action.prefixLanguageFilePath}\\${ERROR_LANGUAGE}\\${action.path}`);
        return sendBuiltin(ctx);
      }
      sendBody(ctx, body, 'text/html');
    }
  }
}

function requestedUrl(ctx: HttpContext): string {
  const req = ctx.request;
  if (!req.rawUrl.startsWith('/')) return req.rawUrl; // absolute-form request target
  const secure = req.secure;
  const hostHeader = req.headers['host'] ?? req.localAddress;
  const host = hostHeader.startsWith('[') ? hostHeader.slice(0, hostHeader.indexOf(']') + 1) : hostHeader.split(':')[0] ?? '';
  // IIS always shows the port ("http://localhost:80/x").
  return `${secure ? 'https' : 'http'}://${host}:${req.localPort}${req.rawUrl}`;
}

function sendDetailed(ctx: HttpContext, section: ConfigElement): void {
  const res = ctx.response;
  const detail = ctx.errorDetail;
  // Errors from BeginRequest happen before authentication decided anything.
  const beforeAuth = detail?.notification === 'BeginRequest';
  const app = ctx.config.application.path;
  const html = renderDetailedPage({
    status: res.statusCode,
    subStatus: res.subStatus,
    detail,
    fallbackModule: ctx.handler?.modules[0] ?? 'IIS Web Core',
    handlerName: ctx.handler?.name,
    requestedUrl: requestedUrl(ctx),
    physicalPath: ctx.physicalPath,
    logonMethod: beforeAuth ? NOT_YET : ctx.user === '' ? 'Anonymous' : 'Authenticated',
    logonUser: beforeAuth ? NOT_YET : ctx.user === '' ? 'Anonymous' : ctx.user,
    applicationName: ctx.site.name + (app === '/' ? '' : app),
    moreInformationLink: section.str('detailedMoreInformationLink'),
  });
  sendBody(ctx, Buffer.from(html, 'utf8'), 'text/html; charset=utf-8');
}

async function sendResponse(ctx: HttpContext, systemDrive: string | undefined): Promise<void> {
  const res = ctx.response;
  if (res.statusCode < 400 || res.headersSent || ctx.isChildRequest) return;
  const section = ctx.config.section(HTTP_ERRORS_SECTION);
  const hasBody = res.bodyLength > 0;
  const existing = section.enumName('existingResponse');
  switch (existing) {
    case 'PassThrough':
      // Keep what the handler wrote; an empty error response still gets a page.
      if (hasBody) return traceNotSent(ctx, 'SETSTATUS_PASSTHROUGH');
      break;
    case 'Auto':
      if (res.trySkipCustomErrors && hasBody) return traceNotSent(ctx, 'SETSTATUS_TRYSKIP');
      break;
    default: // Replace
      break;
  }
  const mode = section.enumName('errorMode');
  const detailed = mode === 'Detailed' || (mode === 'DetailedLocalOnly' && ctx.request.isLocal);
  if (ctx.tracing) {
    // FREB's GENERAL_SEND_CUSTOM_ERROR: which page replaces the response.
    const action = actionFor(section, res.statusCode, res.subStatus);
    ctx.trace({
      area: 'General',
      opcode: 'GENERAL_SEND_CUSTOM_ERROR',
      level: 4,
      data: { HttpStatus: res.statusCode, HttpSubStatus: res.subStatus, FileNameOrURL: detailed ? '(detailed error page)' : action.path === '' ? '(built-in error page)' : action.path },
    });
  }
  prepareForPage(ctx);
  if (detailed) return sendDetailed(ctx, section);
  return sendCustom(ctx, section, systemDrive);
}

/** FREB's GENERAL_NOT_SEND_CUSTOM_ERROR: the handler's own error response is kept. */
function traceNotSent(ctx: HttpContext, reason: string): void {
  if (ctx.tracing) ctx.trace({ area: 'General', opcode: 'GENERAL_NOT_SEND_CUSTOM_ERROR', level: 4, data: { Reason: reason } });
}

export interface CustomErrorOptions {
  /**
   * Where `C:` points (the worker's PathMapOptions.systemDrive), for error files configured with
   * drive-letter paths such as `%SystemDrive%\inetpub\custerr`. Without it such files are
   * reported missing and the built-in page is sent.
   */
  readonly systemDrive?: string;
}

/** A CustomErrorModule bound to the worker's path mapping. */
export function createCustomErrorModule(options: CustomErrorOptions = {}): ModuleDefinition {
  const systemDrive = options.systemDrive;
  return {
    name: 'CustomErrorModule',
    notifications: {
      // Successful responses (the vast majority) return without creating a promise.
      SendResponse: (ctx) => (ctx.response.statusCode < 400 ? undefined : sendResponse(ctx, systemDrive)),
    },
  };
}

/** The module without a system drive: `%IIS_BIN%`, Linux and site-relative paths all work. */
export const CustomErrorModule: ModuleDefinition = createCustomErrorModule();
