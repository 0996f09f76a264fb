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

/** ctx.items key set while an ExecuteURL error page runs, so it is not itself replaced. */
const EXECUTING_ITEM = 'CustomErrorModule.executing';

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

async function sendCustom(ctx: HttpContext, section: ConfigElement, systemDrive: string | undefined): Promise<void> {
  const res = ctx.response;
  const action = actionFor(section, res.statusCode, res.subStatus);
  if (action.path === '') return sendBuiltin(ctx);
  switch (action.mode) {
    case 'ExecuteURL': {
      const { statusCode, subStatus, statusReason } = res;
      res.removeHeader('Content-Type');
      res.removeHeader('Content-Length');
      ctx.items.set(EXECUTING_ITEM, true);
      try {
        await ctx.executeChildRequest(action.path);
      } finally {
        ctx.items.delete(EXECUTING_ITEM);
      }
      // IIS keeps the original status for ExecuteURL (the page is content, not the answer).
      res.statusCode = statusCode;
      res.subStatus = subStatus;
      res.statusReason = statusReason;
      if (res.bodyLength === 0 && !res.headersSent && ctx.request.method !== 'HEAD') await sendBuiltin(ctx);
      return;
    }
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
  const secure = ctx.site.bindings.some((b) => b.protocol === 'https' && b.port === req.localPort);
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
  if (res.statusCode < 400 || res.headersSent || ctx.isChildRequest || ctx.items.has(EXECUTING_ITEM)) return;
  const section = ctx.config.section(HTTP_ERRORS_SECTION);
  const hasBody = res.bodyLength > 0;
  switch (section.enumName('existingResponse')) {
    case 'PassThrough':
      // Keep what the handler wrote; an empty error response still gets a page.
      if (hasBody) return;
      break;
    case 'Auto':
      if (res.trySkipCustomErrors && hasBody) return;
      break;
    default: // Replace
      break;
  }
  const mode = section.enumName('errorMode');
  const detailed = mode === 'Detailed' || (mode === 'DetailedLocalOnly' && ctx.request.isLocal);
  prepareForPage(ctx);
  if (detailed) return sendDetailed(ctx, section);
  return sendCustom(ctx, section, systemDrive);
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
