/**
 * DynamicCompressionModule (IIS compdyn.dll), at SendResponse — when the head is about to leave —
 * for responses other than the StaticFile handler's: it decides whether the body goes out
 * compressed and, if so, hands the pipeline an encoder (HttpResponse.setContentEncoder). A body
 * known whole is compressed in one go and sent with its length; a streamed one goes chunked, the
 * encoder flushed after each write, so a stream (Server-Sent Events) is never held back; output
 * is handed on in pieces of at most dynamicCompressionBufferLimit bytes.
 *
 * IIS's checks in IIS's order, each a DYNAMIC_COMPRESSION_NOT_SUCCESS reason: CPU usage reached
 * dynamicCompressionDisableCpuUsage, or no scheme does dynamic compression (COMPRESSION_DISABLED),
 * a status other than 200, 206, 207 (NOT_SUCCESS_STATUS — so 204, 304 and errors are left alone),
 * urlCompression doDynamicCompression (COMPRESSION_DISABLED), the Content-Type in dynamicTypes
 * (NO_MATCHING_CONTENT_TYPE), Accept-Encoding (NO_ACCEPT_ENCODING), HTTP/1.0, Via, Range, a
 * Content-Encoding the response already has (ALREADY_CONTENT_ENCODING), a scheme the client
 * accepts (NO_MATCHING_SCHEME). Wharf also leaves HEAD responses and `Cache-Control: no-transform`
 * (NO_TRANSFORM) alone. A compressed response gets Content-Encoding, `Vary: Accept-Encoding`, a weak
 * ETag (the app's strong one named other bytes), and sendCacheHeaders' Expires / Cache-Control; it
 * stays out of the listener's cache unless urlCompression dynamicCompressionBeforeCache is true.
 */
import { withVaryAcceptEncoding } from '../../http/accept-encoding.js';
import type { HttpContext, ModuleDefinition } from '../../worker/module-api.js';
import { machineCpu } from './cpu-usage.js';
import { requestRefusal, traceNotSuccess, traceStart, traceSuccess, type NotSuccessReason } from './request-checks.js';
import { compressionSettings, HTTP_COMPRESSION_SECTION, URL_COMPRESSION_SECTION, type CompressionSettings } from './settings.js';
import { addCacheHeaders } from './static-compression.js';

function header(ctx: HttpContext, name: string): string | undefined {
  const v = ctx.response.getHeader(name);
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
}

function sendResponse(ctx: HttpContext): void {
  const res = ctx.response;
  if (ctx.request.method === 'HEAD' || res.headersSent) return;
  // Files the StaticFile handler sent are StaticCompressionModule's (their copies, their
  // validators); what that handler makes itself (a directory listing) is dynamic content.
  if (ctx.handler?.modules.includes('StaticFileModule') === true && (res.getHeader('Last-Modified') !== undefined || res.getHeader('Content-Encoding') !== undefined)) return;
  const settings = compressionSettings(ctx.config.section(HTTP_COMPRESSION_SECTION));
  if (settings.dynamicSchemes.length === 0) return;
  if (ctx.tracing) traceStart(ctx, 'DYNAMIC');
  const reason = decide(ctx, settings);
  if (reason !== undefined) traceNotSuccess(ctx, 'DYNAMIC', reason);
}

function decide(ctx: HttpContext, settings: CompressionSettings): NotSuccessReason | undefined {
  const res = ctx.response;
  const cpu = settings.dynamicCpu;
  if (cpu.gate.check(machineCpu(), cpu.disableAt, cpu.enableAt)) return 'COMPRESSION_DISABLED';
  const status = res.statusCode;
  if (status !== 200 && status !== 206 && status !== 207) return 'NOT_SUCCESS_STATUS';
  if (!ctx.config.section(URL_COMPRESSION_SECTION).bool('doDynamicCompression')) return 'COMPRESSION_DISABLED';
  const type = header(ctx, 'Content-Type');
  if (type === undefined || !settings.dynamicTypes.allows(type)) return 'NO_MATCHING_CONTENT_TYPE';
  if (header(ctx, 'Content-Encoding') !== undefined) return 'ALREADY_CONTENT_ENCODING';
  const cacheControl = header(ctx, 'Cache-Control');
  if (cacheControl !== undefined && /(?:^|[\s,])no-transform(?:$|[\s,])/i.test(cacheControl)) return 'NO_TRANSFORM';
  // The response can be compressed: it varies by Accept-Encoding, for this client or the next.
  res.setHeader('Vary', withVaryAcceptEncoding(res.getHeader('Vary')));
  const beforeCache = ctx.config.section(URL_COMPRESSION_SECTION).bool('dynamicCompressionBeforeCache');
  res.kernelCache.varyByEncoding(settings.dynamicNames, settings.identityFor);
  const req = ctx.request;
  const acceptEncoding = req.headers['accept-encoding'];
  if (acceptEncoding === undefined || acceptEncoding.trim() === '') return 'NO_ACCEPT_ENCODING';
  const refusal = requestRefusal(req, settings);
  if (refusal !== undefined) return refusal;
  const best = settings.dynamicNegotiator.order(acceptEncoding)[0];
  if (best === undefined) return 'NO_MATCHING_SCHEME';
  const scheme = settings.dynamicSchemes[best]!;
  res.setContentEncoder(scheme.dynamicEncoder!);
  const etag = header(ctx, 'ETag');
  if (etag !== undefined && !etag.startsWith('W/')) res.setHeader('ETag', `W/${etag}`);
  if (settings.sendCacheHeaders) addCacheHeaders(res, settings);
  // IIS: compressed before the output cache only with dynamicCompressionBeforeCache; otherwise
  // the cache keeps the uncompressed response and each compressed one is made anew.
  if (!beforeCache) res.kernelCache.disable();
  if (ctx.tracing) traceSuccess(ctx, 'DYNAMIC', { Scheme: scheme.name });
  return undefined;
}

export const DynamicCompressionModule: ModuleDefinition = {
  name: 'DynamicCompressionModule',
  notifications: { SendResponse: sendResponse },
};
