/**
 * RequestFilteringModule (IIS modrqflt): rejects requests in BeginRequest with 404.x sub-statuses
 * so that scanners see "not found" (reference §2 security/requestFiltering), caps a chunked body at
 * maxAllowedContentLength, and drops the Server header in SendResponse when removeServerHeader is
 * true (IIS 10).
 */
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { statusText } from '../sub-status.js';
import { checkRequest, compileRequestFilter, type RequestFilter } from './filter-rules.js';

export { compileRequestFilter, hasHiddenSegment, urlExtension } from './filter-rules.js';
export type { RequestFilter } from './filter-rules.js';

export const REQUEST_FILTERING_SECTION = 'system.webServer/security/requestFiltering';

/**
 * ctx.items key set to `true` when the Server header must not be sent. The module also sets the
 * `Server` response header to '' (the listener omits an empty Server header).
 */
export const REMOVE_SERVER_HEADER_ITEM = 'RequestFilteringModule.removeServerHeader';

/** The compiled requestFiltering settings for this request's URL. */
export function requestFilterFor(ctx: HttpContext): RequestFilter {
  return compileRequestFilter(ctx.config.section(REQUEST_FILTERING_SECTION));
}

function beginRequest(ctx: HttpContext): void {
  const filter = requestFilterFor(ctx);
  const req = ctx.request;
  const sub = checkRequest(filter, req, ctx.site.limits.num('maxUrlSegments'));
  if (sub === 0) {
    // A body of unannounced length (chunked) is counted as it arrives: past the limit, reading it
    // fails and the pipeline answers 404.13 (RequestBody.limit).
    if (req.contentLength < 0) req.limitBody(filter.maxAllowedContentLength);
    return;
  }
  ctx.setStatus(404, sub, {
    module: 'RequestFilteringModule',
    notification: ctx.notification,
    hresult: 0,
    description: statusText(404, sub).description,
  });
  ctx.finish();
}

function sendResponse(ctx: HttpContext): void {
  if (!requestFilterFor(ctx).removeServerHeader) return;
  ctx.items.set(REMOVE_SERVER_HEADER_ITEM, true);
  ctx.response.setHeader('Server', '');
}

export const RequestFilteringModule: ModuleDefinition = {
  name: 'RequestFilteringModule',
  notifications: {
    BeginRequest: beginRequest,
    SendResponse: sendResponse,
  },
};
