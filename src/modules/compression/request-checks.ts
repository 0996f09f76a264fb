/**
 * What both compression modules check on the request, in IIS's order, and their Failed Request
 * Tracing events (area Compression): STATIC_/DYNAMIC_COMPRESSION_START, then _SUCCESS or
 * _NOT_SUCCESS with IIS's reason names, then _END.
 */
import type { HttpContext, HttpRequest } from '../../worker/module-api.js';
import type { CompressionSettings } from './settings.js';

/**
 * IIS's reason names (both modules), plus Wharf's own: NO_TRANSFORM (Cache-Control: no-transform,
 * RFC 9110 §7.7) for dynamic responses Wharf leaves alone.
 */
export type NotSuccessReason =
  | 'NO_ACCEPT_ENCODING'
  | 'COMPRESSION_DISABLED'
  | 'NO_COMPRESSION_10'
  | 'NO_COMPRESSION_PROXY'
  | 'NO_MATCHING_SCHEME'
  | 'UNKNOWN_ERROR'
  | 'NO_COMPRESSION_RANGE'
  | 'FILE_TOO_SMALL'
  | 'COMPRESS_FILE_NOT_FOUND'
  | 'COMPRESS_FILE_STALE'
  | 'NO_MATCHING_CONTENT_TYPE'
  | 'NOT_FREQUENTLY_HIT'
  | 'FAIL_TO_COMPRESS'
  | 'NOT_SUCCESS_STATUS'
  | 'ALREADY_CONTENT_ENCODING'
  | 'NO_TRANSFORM';

/** noCompressionForHttp10, noCompressionForProxies (a Via header), noCompressionForRange. */
export function requestRefusal(req: HttpRequest, s: CompressionSettings): NotSuccessReason | undefined {
  if (s.noCompressionForHttp10 && (req.protocol === 'HTTP/1.0' || req.protocol === 'HTTP/0.9')) return 'NO_COMPRESSION_10';
  const h = req.headers;
  if (s.noCompressionForProxies && h['via'] !== undefined) return 'NO_COMPRESSION_PROXY';
  if (s.noCompressionForRange && h['range'] !== undefined) return 'NO_COMPRESSION_RANGE';
  return undefined;
}

export type Kind = 'STATIC' | 'DYNAMIC';

const NO_DATA: Readonly<Record<string, string>> = Object.freeze({});

export function traceStart(ctx: HttpContext, kind: Kind): void {
  if (ctx.tracing) ctx.trace({ area: 'Compression', opcode: `${kind}_COMPRESSION_START`, level: 5, data: NO_DATA });
}

export function traceNotSuccess(ctx: HttpContext, kind: Kind, reason: NotSuccessReason): void {
  if (!ctx.tracing) return;
  ctx.trace({ area: 'Compression', opcode: `${kind}_COMPRESSION_NOT_SUCCESS`, level: 5, data: { Reason: reason } });
  ctx.trace({ area: 'Compression', opcode: `${kind}_COMPRESSION_END`, level: 5, data: NO_DATA });
}

export function traceSuccess(ctx: HttpContext, kind: Kind, data: Readonly<Record<string, string | number>>): void {
  if (!ctx.tracing) return;
  ctx.trace({ area: 'Compression', opcode: `${kind}_COMPRESSION_SUCCESS`, level: 5, data });
  ctx.trace({ area: 'Compression', opcode: `${kind}_COMPRESSION_END`, level: 5, data: NO_DATA });
}
