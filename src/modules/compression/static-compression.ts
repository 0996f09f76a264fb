/**
 * StaticCompressionModule (IIS compstat.dll), at MapRequestHandler, for requests the StaticFile
 * handler serves: it decides whether the file goes out compressed and, if so, maps the
 * compressed representation for the handler (IIS: IMapHandlerProvider::SetFileInfo) — an existing
 * copy in `httpCompression/@directory\<pool>`, a copy it makes now, or (beyond IIS, as nginx's
 * gzip_static / brotli_static) a precompressed `file.br` / `file.gz` beside the file, newer than it.
 * The handler then answers ranges, HEAD and conditional requests on that representation and calls
 * back to label the response (Content-Encoding, Vary, sendCacheHeaders), which IIS does at
 * RELEASE_REQUEST_STATE; Wharf's static handler finishes the request, so the labelling happens there.
 *
 * IIS's checks, in IIS's order, each a STATIC_COMPRESSION_NOT_SUCCESS reason in Failed Request
 * Tracing: urlCompression doStaticCompression (COMPRESSION_DISABLED), the type in staticTypes
 * (NO_MATCHING_CONTENT_TYPE), frequently hit — serverRuntime frequentHitThreshold within
 * frequentHitTimePeriod, unless staticCompressionIgnoreHitFrequency (NOT_FREQUENTLY_HIT) —
 * Accept-Encoding (NO_ACCEPT_ENCODING), HTTP/1.0 (NO_COMPRESSION_10), Via (NO_COMPRESSION_PROXY),
 * Range (NO_COMPRESSION_RANGE), minFileSizeForComp (FILE_TOO_SMALL), a scheme the client accepts
 * (NO_MATCHING_SCHEME); then per acceptable scheme, best first, an existing copy, else a new one
 * unless CPU usage reached staticCompressionDisableCpuUsage (COMPRESS_FILE_NOT_FOUND), or
 * FAIL_TO_COMPRESS.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfigElement } from '../../config/types.js';
import { resolvePathAttribute } from '../../config/merge.js';
import { poolFolderName } from '../../config/pool-key.js';
import { withVaryAcceptEncoding } from '../../http/accept-encoding.js';
import type { FileInfo, HttpContext, HttpResponse, ModuleDefinition, WorkerServices } from '../../worker/module-api.js';
import { fileEtag, mapStaticFile, mimeMapFor, mimeTypeOf, type StaticFileMapping, type StaticFileVariant } from '../static-file/index.js';
import { SmallFileCache, makeCachedFile } from '../static-file/small-file-cache.js';
import { compressedFilesIn, MEMORY_COPY_LIMIT, type CopyRecord } from './compressed-files.js';
import { machineCpu } from './cpu-usage.js';
import { requestRefusal, traceNotSuccess, traceStart, traceSuccess, type NotSuccessReason } from './request-checks.js';
import { compressionSettings, HTTP_COMPRESSION_SECTION, URL_COMPRESSION_SECTION, type CompressionSettings, type Scheme } from './settings.js';

const STATIC_CONTENT_SECTION = 'system.webServer/staticContent';
const SERVER_RUNTIME_SECTION = 'system.webServer/serverRuntime';

/** Precompressed siblings by scheme (`deflate` has none). */
const SIBLING_SUFFIX: Readonly<Record<string, string>> = { gzip: '.gz', br: '.br' };

let services: WorkerServices | undefined;
const reported = new Set<string>();
function logOnce(key: string, level: 'info' | 'warn', message: string): void {
  if (reported.has(key)) return;
  reported.add(key);
  services?.log(level, message);
}

// ---- frequently hit (serverRuntime frequentHitThreshold / frequentHitTimePeriod) ----------------

/** Per path, the times of its latest requests (at most frequentHitThreshold - 1 of them). */
const hits = new Map<string, number[]>();
const MAX_TRACKED = 10_000;

/**
 * Count a request for `path`; whether it is frequently hit: this request and the
 * frequentHitThreshold - 1 before it all fall within frequentHitTimePeriod (a sliding window, so a
 * URL asked for steadily stays frequently hit).
 */
function frequentlyHit(path: string, runtime: ConfigElement): boolean {
  const threshold = runtime.num('frequentHitThreshold');
  if (threshold <= 1) return true;
  const period = runtime.num('frequentHitTimePeriod');
  const now = Date.now();
  let times = hits.get(path);
  if (times === undefined) {
    if (hits.size >= MAX_TRACKED) hits.clear();
    hits.set(path, (times = []));
  }
  const frequent = times.length >= threshold - 1 && now - times[0]! <= period;
  times.push(now);
  if (times.length > threshold - 1) times.shift();
  return frequent;
}

// ---- the copies' folder: httpCompression directory + the pool's folder --------------------------

const directories = new WeakMap<ConfigElement, string>();
function directoryOf(section: ConfigElement, pool: string): string {
  let d = directories.get(section);
  if (d === undefined) {
    const root = resolvePathAttribute(section, 'directory', { systemDrive: services?.systemDrive() ?? '/', baseDir: '/' });
    directories.set(section, (d = join(root, poolFolderName(pool))));
  }
  return d;
}

// ---- labelling the response the handler sends --------------------------------------------------

/** `"<tag>"` → `"<tag>-<coding>"`: each coding is its own representation (RFC 9110 §8.8.3). */
export function codingEtag(etag: string, coding: string): string {
  return etag.endsWith('"') ? `${etag.slice(0, -1)}-${coding}"` : `${etag}-${coding}`;
}

class CompressionLabel implements StaticFileMapping {
  readonly variant: StaticFileVariant | undefined;
  readonly #settings: CompressionSettings;
  constructor(settings: CompressionSettings, variant: StaticFileVariant | undefined) {
    this.#settings = settings;
    this.variant = variant;
  }
  label(res: HttpResponse, sent: StaticFileVariant | undefined): void {
    res.setHeader('Vary', withVaryAcceptEncoding(res.getHeader('Vary')));
    if (sent === undefined) return;
    res.setHeader('Content-Encoding', sent.coding);
    if (this.#settings.sendCacheHeaders) addCacheHeaders(res, this.#settings);
  }
}

/**
 * httpCompression sendCacheHeaders: compressed responses get `expiresHeader` as Expires and
 * `cacheControlHeader` as Cache-Control (appended to one without a max-age), so that HTTP/1.0
 * proxies that ignore Vary do not keep them.
 */
export function addCacheHeaders(res: HttpResponse, s: CompressionSettings): void {
  res.setHeader('Expires', s.expiresHeader);
  const cc = res.getHeader('Cache-Control');
  const current = cc === undefined ? '' : typeof cc === 'string' ? cc : cc.join(', ');
  if (current.trim() === '') res.setHeader('Cache-Control', s.cacheControlHeader);
  else if (!/(?:^|[\s,])(?:max-age|no-cache|no-store)\b/i.test(current)) res.setHeader('Cache-Control', `${current}, ${s.cacheControlHeader}`);
}

// ---- the decision ------------------------------------------------------------------------------

const siblings = new SmallFileCache(16 * 1024 * 1024);

function mapRequestHandler(ctx: HttpContext): void | Promise<void> {
  const method = ctx.request.method;
  if (method !== 'GET' && method !== 'HEAD') return;
  const h = ctx.handler;
  if (h === undefined || !h.modules.includes('StaticFileModule')) return;
  const settings = compressionSettings(ctx.config.section(HTTP_COMPRESSION_SECTION));
  if (settings.staticSchemes.length === 0) return;
  if (settings.problems.length !== 0) for (const p of settings.problems) logOnce(p, 'warn', p);
  const info = ctx.statCached(ctx.physicalPath);
  if (info === undefined) return ctx.stat(ctx.physicalPath).then((i) => decide(ctx, settings, i));
  return decide(ctx, settings, info ?? undefined);
}

function decide(ctx: HttpContext, settings: CompressionSettings, info: FileInfo | undefined): void | Promise<void> {
  if (info === undefined || !info.isFile) return;
  const type = mimeTypeOf(mimeMapFor(ctx.config.section(STATIC_CONTENT_SECTION)), ctx.physicalPath);
  if (type === undefined) return; // 404.3 from the handler
  if (ctx.tracing) traceStart(ctx, 'STATIC');
  if (!ctx.config.section(URL_COMPRESSION_SECTION).bool('doStaticCompression')) return traceNotSuccess(ctx, 'STATIC', 'COMPRESSION_DISABLED');
  const compressible = settings.staticTypes.allows(type);
  // Whether compressing is possible for this URL at all: it is (the copies, or a sibling) below.
  const frequent = compressible && (settings.staticCompressionIgnoreHitFrequency || frequentlyHit(ctx.physicalPath, ctx.config.section(SERVER_RUNTIME_SECTION)));
  const req = ctx.request;
  const acceptEncoding = req.headers['accept-encoding'];
  let refusal: NotSuccessReason | undefined = acceptEncoding === undefined || acceptEncoding.trim() === '' ? 'NO_ACCEPT_ENCODING' : requestRefusal(req, settings);
  const order = refusal === undefined ? settings.staticNegotiator.order(acceptEncoding) : [];
  if (refusal === undefined && order.length === 0) refusal = 'NO_MATCHING_SCHEME';
  if (refusal !== undefined) {
    // This client gets the file itself; a compressible URL still says it varies.
    if (compressible) vary(ctx, settings);
    return traceNotSuccess(ctx, 'STATIC', compressible ? refusal : 'NO_MATCHING_CONTENT_TYPE');
  }
  return choose(ctx, settings, info, order, compressible, frequent, 0, compressible ? undefined : 'NO_MATCHING_CONTENT_TYPE');
}

function vary(ctx: HttpContext, settings: CompressionSettings, variant?: StaticFileVariant): void {
  ctx.response.kernelCache.varyByEncoding(settings.staticNames, settings.identityFor);
  mapStaticFile(ctx, new CompressionLabel(settings, variant));
}

/**
 * Scheme `order[i]` and the ones after it: a sibling, else a copy. Synchronous while the answer is
 * in memory (a sibling's or copy's bytes, a known absence); a promise for disk work.
 */
function choose(
  ctx: HttpContext,
  settings: CompressionSettings,
  info: FileInfo,
  order: readonly number[],
  compressible: boolean,
  frequent: boolean,
  i: number,
  reason: NotSuccessReason | undefined,
): void | Promise<void> {
  for (; i < order.length; i++) {
    const scheme = settings.staticSchemes[order[i]!]!;
    // A precompressed sibling first (no work, and its maker chose the level).
    const suffix = SIBLING_SUFFIX[scheme.name];
    if (suffix !== undefined) {
      const sibPath = ctx.physicalPath + suffix;
      const sib = ctx.statCached(sibPath);
      const at = i;
      const next = (): void | Promise<void> => afterSibling(ctx, settings, info, order, compressible, frequent, at, reason);
      if (sib === undefined) return ctx.stat(sibPath).then((st) => orElse(useSibling(ctx, settings, info, scheme, sibPath, st), next));
      if (sib !== null) {
        const used = useSibling(ctx, settings, info, scheme, sibPath, sib);
        if (used !== false) return orElse(used, next);
      }
    }
    const r = copyFor(ctx, settings, info, scheme, compressible, frequent);
    if (r === true) return;
    if (typeof r === 'string') {
      reason ??= r;
      continue;
    }
    const at = i;
    return r.then((outcome) => {
      if (outcome === true) return;
      return choose(ctx, settings, info, order, compressible, frequent, at + 1, reason ?? outcome);
    });
  }
  if (compressible) vary(ctx, settings);
  if (ctx.tracing) traceNotSuccess(ctx, 'STATIC', reason ?? 'COMPRESS_FILE_NOT_FOUND');
}

/** Done when `r` is (or resolves to) true, else `next()`. */
function orElse(r: boolean | Promise<boolean>, next: () => void | Promise<void>): void | Promise<void> {
  if (r === true) return;
  if (r === false) return next();
  return r.then((ok) => (ok ? undefined : next()));
}

function afterSibling(
  ctx: HttpContext,
  settings: CompressionSettings,
  info: FileInfo,
  order: readonly number[],
  compressible: boolean,
  frequent: boolean,
  i: number,
  reason: NotSuccessReason | undefined,
): void | Promise<void> {
  const scheme = settings.staticSchemes[order[i]!]!;
  const r = copyFor(ctx, settings, info, scheme, compressible, frequent);
  if (r === true) return;
  if (typeof r === 'string') return choose(ctx, settings, info, order, compressible, frequent, i + 1, reason ?? r);
  return r.then((outcome) => (outcome === true ? undefined : choose(ctx, settings, info, order, compressible, frequent, i + 1, reason ?? outcome)));
}

/** Use `file.gz` / `file.br` when it is a file at least as new as the source; true when mapped. */
function useSibling(ctx: HttpContext, settings: CompressionSettings, info: FileInfo, scheme: Scheme, path: string, sib: FileInfo | null | undefined): boolean | Promise<boolean> {
  if (sib === undefined || sib === null || !sib.isFile || sib.mtimeMs < info.mtimeMs) return false;
  const etag = codingEtag(fileEtag(sib.mtimeMs), scheme.name);
  if (sib.size > MEMORY_COPY_LIMIT) {
    mapVariant(ctx, settings, { coding: scheme.name, body: undefined, path, size: sib.size, etag, mtimeMs: sib.mtimeMs, dependencies: [path] }, 'sibling');
    return true;
  }
  const cached = siblings.get(path, sib);
  if (cached !== undefined) {
    mapVariant(ctx, settings, { coding: scheme.name, body: cached.body, path, size: cached.size, etag, mtimeMs: sib.mtimeMs, dependencies: [path] }, 'sibling');
    return true;
  }
  return readFile(path).then(
      (body) => {
        if (body.length !== sib.size) return false; // changed while read: the next request sees it
        siblings.set(path, makeCachedFile(sib, body));
        mapVariant(ctx, settings, { coding: scheme.name, body, path, size: body.length, etag, mtimeMs: sib.mtimeMs, dependencies: [path] }, 'sibling');
        return true;
      },
      () => false,
    );
}

/** The copy for `scheme`: true when mapped, a reason when there is none, a promise for disk work. */
function copyFor(
  ctx: HttpContext,
  settings: CompressionSettings,
  info: FileInfo,
  scheme: Scheme,
  compressible: boolean,
  frequent: boolean,
): true | NotSuccessReason | Promise<true | NotSuccessReason> {
  if (!compressible) return 'NO_MATCHING_CONTENT_TYPE';
  if (info.size < settings.minFileSizeForComp) return 'FILE_TOO_SMALL';
  const store = compressedFilesIn(directoryOf(ctx.config.section(HTTP_COMPRESSION_SECTION), ctx.appPoolName), (level, m) => services?.log(level, m));
  // A copy this worker holds is sent even when the URL is not frequently hit any more: the rule
  // saves the work of making copies, and sending one costs nothing (IIS would send the file).
  const known = store.known(scheme.name, ctx.physicalPath, info);
  if (known !== undefined) {
    mapCopy(ctx, settings, info, scheme, known, 'memory');
    return true;
  }
  if (!frequent) return 'NOT_FREQUENTLY_HIT';
  const cpu = settings.staticCpu;
  const compress = !cpu.gate.check(machineCpu(), cpu.disableAt, cpu.enableAt);
  return store
    .obtain({
      scheme: scheme.name,
      codec: scheme.codec,
      level: scheme.staticLevel!,
      sourcePath: ctx.physicalPath,
      info,
      compress,
      maxDiskBytes: settings.doDiskSpaceLimiting ? settings.maxDiskSpaceBytes : undefined,
    })
    .then((got) => {
      if (got === undefined) return compress ? 'FAIL_TO_COMPRESS' : 'COMPRESS_FILE_NOT_FOUND';
      mapCopy(ctx, settings, info, scheme, got.record, got.how);
      return true;
    });
}

function mapCopy(ctx: HttpContext, settings: CompressionSettings, info: FileInfo, scheme: Scheme, r: CopyRecord, how: string): void {
  mapVariant(
    ctx,
    settings,
    { coding: scheme.name, body: r.body, path: r.path, size: r.size, etag: codingEtag(fileEtag(info.mtimeMs), scheme.name), mtimeMs: info.mtimeMs, dependencies: [] },
    how,
  );
}

function mapVariant(ctx: HttpContext, settings: CompressionSettings, v: StaticFileVariant, source: string): void {
  vary(ctx, settings, v);
  if (ctx.tracing) traceSuccess(ctx, 'STATIC', { Scheme: v.coding, Source: source, Size: v.size });
}

export const StaticCompressionModule: ModuleDefinition = {
  name: 'StaticCompressionModule',
  notifications: { MapRequestHandler: mapRequestHandler },
  attach(worker) {
    services = worker;
  },
};
