/**
 * StaticFileModule (IIS static): serves files for the StaticFile handler — GET and HEAD, MIME type
 * from staticContent, ETag / Last-Modified and conditional requests (RFC 9110 §13), byte ranges
 * (§14), clientCache headers. Small files come from a worker-local memory cache; large ones are
 * streamed in 64 KiB chunks with backpressure.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { ConfigElement } from '../../config/types.js';
import type { FileInfo, HttpContext, HttpResponse, ModuleDefinition } from '../../worker/module-api.js';
import { statusText } from '../sub-status.js';
import { parseRange, type ByteRange, type RangeRequest } from './byte-range.js';
import { clientCacheHeaders, type ClientCacheHeaders } from './client-cache.js';
import { realPathInsideRoot } from './containment.js';
import { SMALL_FILE_LIMIT, SmallFileCache, makeCachedFile } from './small-file-cache.js';
import { FILE_REFERENCE_MIN, OpenFiles, type OpenFile } from './open-files.js';
import { acceptAllows, mimeMapFor, mimeTypeOf } from './mime-map.js';
import { evaluatePreconditions, fileEtag, httpDate, ifRangeMatches, type Validators } from './validators.js';
import { ModuleError } from '../../errors.js';

export { parseRange } from './byte-range.js';
export { fileEtag, httpDate, evaluatePreconditions } from './validators.js';
export { mimeMapFor, mimeTypeOf } from './mime-map.js';
export { SMALL_FILE_LIMIT } from './small-file-cache.js';

export const STATIC_CONTENT_SECTION = 'system.webServer/staticContent';

/** Chunk size for streamed files (the size IIS/HTTP.sys send in one call by default). */
export const STREAM_CHUNK = 64 * 1024;

/** The methods a static file accepts, as sent in Allow with 405 (IIS's list). */
const STATIC_ALLOW = 'GET, HEAD, OPTIONS, TRACE';

const cache = new SmallFileCache(32 * 1024 * 1024);
/** Files kept open so that responses can name them (HttpResponse.writeFile): cached ones of FILE_REFERENCE_MIN or more, and large ones. */
const openFiles = new OpenFiles();

/**
 * A representation a module maps in place of the file at MapRequestHandler, as IIS's
 * IMapHandlerProvider::SetFileInfo does (StaticCompressionModule: a compressed copy, or a
 * precompressed `file.gz` / `file.br` sibling). The handler serves it like the file — methods,
 * MIME type and 406 from the requested file; validators, ranges, HEAD and 304 on the variant's bytes.
 */
export interface StaticFileVariant {
  /** Its Content-Encoding. */
  readonly coding: string;
  /** Its bytes when they are in memory; else read from `path`. */
  readonly body: Buffer | undefined;
  readonly path: string | undefined;
  readonly size: number;
  /** A strong ETag of its own (a coding is a different representation, RFC 9110 §8.8.3). */
  readonly etag: string;
  /** Its Last-Modified time. */
  readonly mtimeMs: number;
  /** More files whose change ends a kernel-cached copy of the response (a sibling). */
  readonly dependencies: readonly string[];
}

export interface StaticFileMapping {
  /** What to send instead of the file; undefined: the file itself. */
  readonly variant: StaticFileVariant | undefined;
  /**
   * Called once the handler set the entity headers of a 200, 206 or 304, with the variant it
   * sent (undefined: the file): the mapping module adds its headers (Content-Encoding, Vary …),
   * the work IIS's StaticCompressionModule does at RELEASE_REQUEST_STATE.
   */
  label(res: HttpResponse, sent: StaticFileVariant | undefined): void;
}

/** Per request (no allocation when no module maps anything). */
const mappings = new WeakMap<HttpContext, StaticFileMapping>();

/** Map a representation (or just a label) for this request's StaticFile handler. */
export function mapStaticFile(ctx: HttpContext, mapping: StaticFileMapping): void {
  mappings.set(ctx, mapping);
}

/** Drop every cached file (tests; memory pressure). */
export function clearStaticFileCache(): void {
  cache.clear();
  openFiles.clear();
}

/**
 * A file version being served: cached bytes (a CachedFile is one, so a cache hit allocates no
 * wrapper), or an open handle for a large file.
 */
interface Representation extends Validators {
  readonly size: number;
  readonly lastModified: string;
  readonly contentLength: string;
  readonly body?: Buffer;
  readonly handle?: FileHandle;
}

// HRESULTs and Win32 codes IIS shows and logs with these statuses.
const E_FILE_NOT_FOUND = 0x80070002;
const E_ACCESS_DENIED = 0x80070005;
const E_INVALID_FUNCTION = 0x80070001;
const E_NOT_SUPPORTED = 0x80070032;

function fail(ctx: HttpContext, status: number, sub: number, hresult = 0, win32 = 0): void {
  ctx.setStatus(status, sub, {
    module: 'StaticFileModule',
    notification: ctx.notification,
    hresult,
    description: statusText(status, sub).description,
  });
  if (win32 !== 0) ctx.response.win32Status = win32;
  ctx.finish();
}

function notFound(ctx: HttpContext): void {
  fail(ctx, 404, 0, E_FILE_NOT_FOUND, 2);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Map a failure to open/read the file to IIS's answer; unknown failures propagate (→ 500). */
function failRead(ctx: HttpContext, err: unknown): void {
  const code = errnoOf(err);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') return notFound(ctx);
  // IIS answers an ACL denial of the anonymous user with 401.3.
  if (code === 'EACCES' || code === 'EPERM') return fail(ctx, 401, 3, E_ACCESS_DENIED, 5);
  throw err;
}

// The hot path — a small, cached file with a fresh cached stat — runs without a promise; only
// disk work (first stat, open, read, streaming) goes asynchronous.
function executeHandler(ctx: HttpContext): void | Promise<void> {
  const cached = ctx.statCached(ctx.physicalPath);
  if (cached === undefined) return ctx.stat(ctx.physicalPath).then((info) => withInfo(ctx, info));
  return withInfo(ctx, cached ?? undefined);
}

function withInfo(ctx: HttpContext, info: FileInfo | undefined): void | Promise<void> {
  const path = ctx.physicalPath;
  if (info === undefined) return notFound(ctx);
  if (info.isDirectory) {
    // Folders belong to DirectoryListingModule (after DefaultDocumentModule) when the handler
    // has it; a handler without it answers like IIS with directory browsing off.
    if (ctx.handler?.modules.includes('DirectoryListingModule')) return;
    return fail(ctx, 403, 14);
  }
  if (!info.isFile) return notFound(ctx); // sockets, FIFOs, devices are never content

  const method = ctx.request.method;
  if (method !== 'GET' && method !== 'HEAD') {
    fail(ctx, 405, 0, E_INVALID_FUNCTION, 1);
    ctx.response.setHeader('Allow', STATIC_ALLOW);
    return;
  }

  const staticContent = ctx.config.section(STATIC_CONTENT_SECTION);
  const type = mimeTypeOf(mimeMapFor(staticContent), path);
  if (type === undefined) return fail(ctx, 404, 3, E_NOT_SUPPORTED, 50);
  if (!acceptAllows(ctx.request.headers['accept'], type)) return fail(ctx, 406, 0);

  const mapping = mappings.get(ctx);
  const variant = mapping?.variant;
  if (variant !== undefined) {
    if (variant.body !== undefined) return serve(ctx, staticContent, type, variantRep(variant, variant.body, undefined), mapping, variant);
    return openAndServeVariant(ctx, info, staticContent, type, mapping!, variant);
  }
  return serveFile(ctx, info, staticContent, type, mapping);
}

function serveFile(ctx: HttpContext, info: FileInfo, staticContent: ConfigElement, type: string, mapping: StaticFileMapping | undefined): void | Promise<void> {
  const path = ctx.physicalPath;
  const cached = cache.get(path, info);
  if (cached !== undefined) return serve(ctx, staticContent, type, cached, mapping, undefined, cached.size >= FILE_REFERENCE_MIN ? openFiles.get(path, info) : undefined);
  // A large file kept open since an earlier request (its path checked then, the same version now).
  if (info.size > SMALL_FILE_LIMIT) {
    const open = openFiles.get(path, info);
    if (open !== undefined) return serveOpen(ctx, staticContent, type, open, mapping);
  }
  return readAndServe(ctx, path, staticContent, type, mapping);
}

async function serveOpen(ctx: HttpContext, staticContent: ConfigElement, type: string, open: OpenFile, mapping: StaticFileMapping | undefined): Promise<void> {
  try {
    await serve(ctx, staticContent, type, openRep(open), mapping, undefined, open);
  } catch (err) {
    if (!ctx.response.headersSent) throw err;
    // Mid-stream failure: the promised Content-Length can no longer be met.
    ctx.log('error', `reading ${ctx.physicalPath} failed: ${String(err)}`);
    ctx.response.abort();
    ctx.finish();
  }
}

function openRep(open: OpenFile): Representation {
  return {
    size: open.size,
    etag: fileEtag(open.mtimeMs),
    lastModified: httpDate(open.mtimeMs),
    mtimeSeconds: Math.floor(open.mtimeMs / 1000),
    contentLength: String(open.size),
    handle: open.handle,
  };
}

function variantRep(v: StaticFileVariant, body: Buffer | undefined, handle: FileHandle | undefined): Representation {
  return {
    size: v.size,
    etag: v.etag,
    lastModified: httpDate(v.mtimeMs),
    mtimeSeconds: Math.floor(v.mtimeMs / 1000),
    contentLength: String(v.size),
    ...(body !== undefined ? { body } : {}),
    ...(handle !== undefined ? { handle } : {}),
  };
}

/** A variant on disk only (a large copy or sibling); if it is gone, the file itself is sent. */
async function openAndServeVariant(ctx: HttpContext, info: FileInfo, staticContent: ConfigElement, type: string, mapping: StaticFileMapping, v: StaticFileVariant): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(v.path!, 'r');
  } catch {
    return serveFile(ctx, info, staticContent, type, mapping);
  }
  try {
    const st = await handle.stat();
    if (st.size !== v.size) return await serveFile(ctx, info, staticContent, type, mapping);
    await serve(ctx, staticContent, type, variantRep(v, undefined, handle), mapping, v);
  } catch (err) {
    if (ctx.response.headersSent) {
      ctx.log('error', `reading ${v.path!} failed: ${String(err)}`);
      ctx.response.abort();
      ctx.finish();
    } else failRead(ctx, err);
  } finally {
    await handle.close();
  }
}

async function readAndServe(ctx: HttpContext, path: string, staticContent: ConfigElement, type: string, mapping: StaticFileMapping | undefined): Promise<void> {
  const real = await realPathInsideRoot(path, ctx.config.virtualDirectory.physicalPath);
  if (real === undefined) return notFound(ctx);

  let handle: FileHandle;
  try {
    handle = await open(real, 'r');
  } catch (err) {
    return failRead(ctx, err);
  }
  /** openFiles keeps the file open (for references to it): not closed here. */
  let kept = false;
  try {
    // Describe the file from the open handle, so headers and bytes belong to the same version.
    const st = await handle.stat();
    if (!st.isFile()) return notFound(ctx);
    const opened = { path, isFile: true, isDirectory: false, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
    if (st.size <= SMALL_FILE_LIMIT) {
      const body = await handle.readFile();
      const entry = makeCachedFile(opened, body);
      cache.set(path, entry);
      kept = body.length >= FILE_REFERENCE_MIN && body.length === st.size;
      return await serve(ctx, staticContent, type, entry, mapping, undefined, kept ? openFiles.adopt(path, handle, st) : undefined);
    }
    kept = true;
    const open = openFiles.adopt(path, handle, st);
    await serve(ctx, staticContent, type, openRep(open), mapping, undefined, open);
  } catch (err) {
    if (ctx.response.headersSent) {
      // Mid-stream failure: the promised Content-Length can no longer be met.
      ctx.log('error', `reading ${path} failed: ${String(err)}`);
      ctx.response.abort();
      ctx.finish();
    } else failRead(ctx, err);
  } finally {
    if (!kept) await handle.close();
  }
}

function setEntityHeaders(res: HttpResponse, rep: Representation, cc: ClientCacheHeaders): void {
  res.setHeader('Last-Modified', rep.lastModified);
  if (rep.etag !== undefined) res.setHeader('ETag', rep.etag);
  res.setHeader('Accept-Ranges', 'bytes');
  if (cc.cacheControl !== undefined) res.setHeader('Cache-Control', cc.cacheControl);
  if (cc.expires !== undefined) res.setHeader('Expires', cc.expires);
}

function serve(
  ctx: HttpContext,
  staticContent: ConfigElement,
  type: string,
  file: Representation,
  mapping: StaticFileMapping | undefined,
  variant: StaticFileVariant | undefined,
  /** The file kept open: its responses may name it instead of carrying its bytes. */
  open?: OpenFile,
): void | Promise<void> {
  // FREB's GENERAL_STATIC_FILE_HANDLER (area StaticFile): the file the handler serves.
  if (ctx.tracing) ctx.trace({ area: 'StaticFile', opcode: 'GENERAL_STATIC_FILE_HANDLER', level: 4, data: { FileName: ctx.physicalPath, ContentType: type, Size: file.size } });
  const cc = clientCacheHeaders(staticContent.child('clientCache'));
  const rep: Representation = cc.setEtag ? file : { ...file, etag: undefined };
  const req = ctx.request;
  const res = ctx.response;

  const pre = evaluatePreconditions(req.headers, rep);
  if (pre === 'failed') return fail(ctx, 412, 0);
  if (pre === 'not-modified') {
    res.statusCode = 304;
    res.subStatus = 0;
    setEntityHeaders(res, rep, cc);
    mapping?.label(res, variant);
    ctx.finish();
    return;
  }

  // Range applies to GET only (RFC 9110 §14.2), and only while If-Range still matches.
  let range: RangeRequest = { kind: 'ignore' };
  const rangeHeader = req.headers['range'];
  if (req.method === 'GET' && rangeHeader !== undefined) {
    const ifRange = req.headers['if-range'];
    if (ifRange === undefined || ifRangeMatches(ifRange, rep)) range = parseRange(rangeHeader, rep.size);
  }

  if (range.kind === 'unsatisfiable') {
    fail(ctx, 416, 0);
    res.setHeader('Content-Range', `bytes */${rep.size}`);
    return;
  }

  setEntityHeaders(res, rep, cc);
  mapping?.label(res, variant);
  if (range.kind === 'ranges') {
    res.statusCode = 206;
    res.subStatus = 0;
    const only = range.ranges.length === 1 ? range.ranges[0] : undefined;
    if (only !== undefined) {
      res.setHeader('Content-Type', type);
      res.setHeader('Content-Range', `bytes ${only.start}-${only.end}/${rep.size}`);
      res.setHeader('Content-Length', String(only.end - only.start + 1));
      return thenFinish(ctx, sendBytes(ctx, rep, only.start, only.end, open));
    }
    return thenFinish(ctx, sendMultipart(ctx, rep, type, range.ranges));
  }

  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', rep.contentLength);
  // IIS's static file handler: kernel-cacheable until the file changes (the listener decides).
  if (req.method === 'GET') {
    if (variant === undefined || variant.dependencies.length === 0) res.kernelCache.cacheUntilChange(ctx.physicalPath);
    else res.kernelCache.cacheUntilChange(ctx.physicalPath, ...variant.dependencies);
  }
  return thenFinish(ctx, sendBytes(ctx, rep, 0, rep.size - 1, open));
}

/** ctx.finish() after `pending` (now, when nothing is pending). */
function thenFinish(ctx: HttpContext, pending: void | Promise<void>): void | Promise<void> {
  if (pending === undefined) {
    ctx.finish();
    return;
  }
  return pending.then(() => ctx.finish());
}

/**
 * Send bytes start..end (inclusive) of the file; nothing for HEAD. From a file kept open (`open`),
 * a range of FILE_REFERENCE_MIN or more goes by reference when the response allows it.
 */
function sendBytes(ctx: HttpContext, rep: Representation, start: number, end: number, open?: OpenFile): void | Promise<void> {
  if (ctx.request.method === 'HEAD' || end < start) return;
  const res = ctx.response;
  const length = end - start + 1;
  const ref = open !== undefined && length >= FILE_REFERENCE_MIN
    ? { fd: open.handle.fd, dev: open.dev, ino: open.ino, size: open.size, mtimeMs: open.mtimeMs, offset: start, length }
    : undefined;
  if (rep.body !== undefined) {
    // Small file: one write of the cached buffer (or a view of it), no copy.
    const bytes = start === 0 && end === rep.body.length - 1 ? rep.body : rep.body.subarray(start, end + 1);
    if (ref !== undefined) res.writeFile(ref, bytes);
    else res.write(bytes);
    return;
  }
  if (ref !== undefined && res.writeFile(ref)) return;
  if (rep.handle === undefined) return;
  return streamLarge(ctx, rep.handle, start, end);
}

async function streamLarge(ctx: HttpContext, handle: FileHandle, start: number, end: number): Promise<void> {
  // Large file: send the head now so the client starts receiving while we read.
  await ctx.response.flush();
  await streamFromHandle(ctx, handle, start, end);
}

async function streamFromHandle(ctx: HttpContext, handle: FileHandle, start: number, end: number): Promise<void> {
  const res = ctx.response;
  let pos = start;
  while (pos <= end) {
    const want = Math.min(STREAM_CHUNK, end - pos + 1);
    // A fresh buffer per chunk: write() may keep a reference until the bytes are sent.
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buf, 0, want, pos);
    if (bytesRead === 0) throw new ModuleError('MOD_FAILED', 'file shrank while being sent');
    pos += bytesRead;
    if (!res.write(bytesRead === want ? buf : buf.subarray(0, bytesRead))) await res.drained();
  }
}

/** RFC 9110 §14.6 multipart/byteranges with a random boundary. */
async function sendMultipart(ctx: HttpContext, rep: Representation, type: string, ranges: readonly ByteRange[]): Promise<void> {
  const res = ctx.response;
  const boundary = randomBytes(12).toString('hex');
  const heads = ranges.map((r, i) =>
    Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\nContent-Type: ${type}\r\nContent-Range: bytes ${r.start}-${r.end}/${rep.size}\r\n\r\n`),
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let length = tail.length;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    const h = heads[i];
    if (r !== undefined && h !== undefined) length += h.length + (r.end - r.start + 1);
  }
  res.setHeader('Content-Type', `multipart/byteranges; boundary=${boundary}`);
  res.setHeader('Content-Length', String(length));
  if (ctx.request.method === 'HEAD') return;
  if (rep.handle !== undefined) await res.flush();
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    const h = heads[i];
    if (r === undefined || h === undefined) continue;
    if (!res.write(h)) await res.drained();
    if (rep.body !== undefined) res.write(rep.body.subarray(r.start, r.end + 1));
    else if (rep.handle !== undefined) await streamFromHandle(ctx, rep.handle, r.start, r.end);
  }
  res.write(tail);
}

export const StaticFileModule: ModuleDefinition = {
  name: 'StaticFileModule',
  executeHandler,
};
