/**
 * The httpCompression section as the compression modules use it, built once per merged section
 * (a WeakMap on the ConfigElement): the schemes with their encoders, the type lists, the flags.
 *
 * IIS names a compression DLL per scheme; Wharf maps the DLL's file name to Node's zlib:
 *
 * | dll            | schemes         | IIS level → zlib level / brotli quality                 |
 * |----------------|-----------------|---------------------------------------------------------|
 * | gzip.dll       | gzip, deflate   | 0 (best speed) → 1, 1–9 → 1–9, 10 (best ratio) → 9      |
 * | iiszlib.dll    | gzip, deflate   | 0 = no compression (the scheme is not used), 1–9 → 1–9  |
 * | iisbrotli.dll  | br              | 0–11 → quality 0–11                                      |
 *
 * (IIS Compression's own table of levels: iiszlib.dll 0 none, 1–9; iisbrotli.dll 0–11; gzip.dll
 * 0–10.) Any other DLL (a third-party compressor) cannot be loaded: a scheme named gzip, deflate or
 * br still works with Node's coder (levels as gzip.dll / iisbrotli.dll), any other is not used;
 * both are reported once. `deflate` is the zlib format, as HTTP defines it (RFC 9110 §8.4.1.2).
 */
import { constants, createBrotliCompress, createDeflate, createGzip } from 'node:zlib';
import type { ConfigElement } from '../../config/types.js';
import type { ContentEncoder, EncoderStream, EncodingExceptions } from '../../worker/module-api.js';
import { ContentTypeList } from './content-types.js';
import { negotiatorFor, type EncodingNegotiator } from '../../http/accept-encoding.js';
import { CpuGate } from './cpu-usage.js';

export const HTTP_COMPRESSION_SECTION = 'system.webServer/httpCompression';
export const URL_COMPRESSION_SECTION = 'system.webServer/urlCompression';

export type Codec = 'gzip' | 'deflate' | 'br';

export interface Scheme {
  /** The coding name (Content-Encoding), lower case. */
  readonly name: string;
  readonly codec: Codec;
  /** Undefined when the scheme does no static (or dynamic) compression. */
  readonly staticLevel: number | undefined;
  readonly dynamicLevel: number | undefined;
  readonly dynamicEncoder: ContentEncoder | undefined;
}

export interface CompressionSettings {
  /** Schemes with static compression, in `<scheme>` order, and their names. */
  readonly staticSchemes: readonly Scheme[];
  readonly staticNames: readonly string[];
  /** Accept-Encoding negotiation among the static / dynamic schemes (answers remembered). */
  readonly staticNegotiator: EncodingNegotiator;
  readonly dynamicNegotiator: EncodingNegotiator;
  readonly dynamicSchemes: readonly Scheme[];
  readonly dynamicNames: readonly string[];
  readonly staticTypes: ContentTypeList;
  readonly dynamicTypes: ContentTypeList;
  readonly minFileSizeForComp: number;
  readonly noCompressionForHttp10: boolean;
  readonly noCompressionForProxies: boolean;
  readonly noCompressionForRange: boolean;
  /** The requests that never get a coding, for the listener's cache (noCompressionForHttp10 / Proxies). */
  readonly identityFor: EncodingExceptions;
  readonly staticCompressionIgnoreHitFrequency: boolean;
  readonly sendCacheHeaders: boolean;
  readonly expiresHeader: string;
  readonly cacheControlHeader: string;
  readonly doDiskSpaceLimiting: boolean;
  /** maxDiskSpaceUsage in bytes (the attribute is in MB). */
  readonly maxDiskSpaceBytes: number;
  readonly staticCpu: { readonly disableAt: number; readonly enableAt: number; readonly gate: CpuGate };
  readonly dynamicCpu: { readonly disableAt: number; readonly enableAt: number; readonly gate: CpuGate };
  /** Schemes that could not be used as written, one sentence each (logged once by the modules). */
  readonly problems: readonly string[];
}

type DllKind = 'gzip.dll' | 'iiszlib.dll' | 'iisbrotli.dll' | 'other';

/** The DLL's file name (the path is a Windows one: either separator). */
function dllKind(dll: string): { kind: DllKind; file: string } {
  const file = dll.slice(Math.max(dll.lastIndexOf('\\'), dll.lastIndexOf('/')) + 1).toLowerCase();
  const kind: DllKind = file === 'gzip.dll' || file === 'iiszlib.dll' || file === 'iisbrotli.dll' ? file : 'other';
  return { kind, file };
}

/** IIS level → the coder's level, or undefined when the DLL does not compress at that level. */
export function mapLevel(kind: DllKind, codec: Codec, level: number): number | undefined {
  if (codec === 'br') return Math.max(0, Math.min(11, level));
  if (kind === 'iiszlib.dll') return level <= 0 ? undefined : Math.min(9, level);
  return Math.max(1, Math.min(9, level));
}

/** Output is handed on in pieces of at most this size (dynamicCompressionBufferLimit), within zlib's bounds. */
function chunkSizeFor(bufferLimit: number): number {
  return Math.max(64, Math.min(1024 * 1024, bufferLimit));
}

/** A ContentEncoder for `codec` at `level` (zlib level or brotli quality). */
export function encoderFor(codec: Codec, level: number, chunkSize = 16 * 1024): ContentEncoder {
  if (codec === 'br') {
    return {
      coding: 'br',
      flushKind: constants.BROTLI_OPERATION_FLUSH,
      create: () => createBrotliCompress({ chunkSize, params: { [constants.BROTLI_PARAM_QUALITY]: level, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } }) as EncoderStream,
    };
  }
  const make = codec === 'gzip' ? createGzip : createDeflate;
  return { coding: codec, flushKind: constants.Z_SYNC_FLUSH, create: () => make({ level, chunkSize }) as EncoderStream };
}

const cache = new WeakMap<ConfigElement, CompressionSettings>();

export function compressionSettings(section: ConfigElement): CompressionSettings {
  let s = cache.get(section);
  if (s === undefined) cache.set(section, (s = build(section)));
  return s;
}

function build(section: ConfigElement): CompressionSettings {
  const problems: string[] = [];
  const schemes: Scheme[] = [];
  const bufferLimit = section.num('dynamicCompressionBufferLimit');
  for (const item of section.items) {
    const name = item.str('name').toLowerCase();
    const dll = item.str('dll');
    const { kind, file } = dllKind(dll);
    let codec: Codec | undefined;
    if (kind === 'iisbrotli.dll') codec = name === 'br' ? 'br' : undefined;
    else if (kind === 'gzip.dll' || kind === 'iiszlib.dll') codec = name === 'gzip' || name === 'deflate' ? name : undefined;
    else codec = name === 'gzip' || name === 'deflate' || name === 'br' ? name : undefined;
    if (codec === undefined) {
      problems.push(`httpCompression scheme "${name}" with dll ${file}: Wharf cannot produce that coding (gzip.dll and iiszlib.dll make gzip and deflate, iisbrotli.dll makes br); the scheme is not used`);
      continue;
    }
    if (kind === 'other') problems.push(`httpCompression scheme "${name}": dll ${file} is not one Wharf knows (gzip.dll, iiszlib.dll, iisbrotli.dll); the scheme uses Node's ${codec === 'br' ? 'brotli' : 'zlib'} coder`);
    const staticLevel = item.bool('doStaticCompression') ? mapLevel(kind, codec, item.num('staticCompressionLevel')) : undefined;
    const dynamicLevel = item.bool('doDynamicCompression') ? mapLevel(kind, codec, item.num('dynamicCompressionLevel')) : undefined;
    if (schemes.some((x) => x.name === name)) continue;
    schemes.push({
      name,
      codec,
      staticLevel,
      dynamicLevel,
      dynamicEncoder: dynamicLevel === undefined ? undefined : encoderFor(codec, dynamicLevel, chunkSizeFor(bufferLimit)),
    });
  }
  const staticSchemes = schemes.filter((x) => x.staticLevel !== undefined);
  const dynamicSchemes = schemes.filter((x) => x.dynamicLevel !== undefined);
  const staticNames = staticSchemes.map((x) => x.name);
  const dynamicNames = dynamicSchemes.map((x) => x.name);
  return {
    staticSchemes,
    staticNames,
    staticNegotiator: negotiatorFor(staticNames),
    dynamicSchemes,
    dynamicNames,
    dynamicNegotiator: negotiatorFor(dynamicNames),
    staticTypes: ContentTypeList.fromElement(section.child('staticTypes')),
    dynamicTypes: ContentTypeList.fromElement(section.child('dynamicTypes')),
    minFileSizeForComp: section.num('minFileSizeForComp'),
    noCompressionForHttp10: section.bool('noCompressionForHttp10'),
    noCompressionForProxies: section.bool('noCompressionForProxies'),
    noCompressionForRange: section.bool('noCompressionForRange'),
    identityFor: { http10: section.bool('noCompressionForHttp10'), proxies: section.bool('noCompressionForProxies') },
    staticCompressionIgnoreHitFrequency: section.bool('staticCompressionIgnoreHitFrequency'),
    sendCacheHeaders: section.bool('sendCacheHeaders'),
    expiresHeader: section.str('expiresHeader'),
    cacheControlHeader: section.str('cacheControlHeader'),
    doDiskSpaceLimiting: section.bool('doDiskSpaceLimiting'),
    maxDiskSpaceBytes: section.num('maxDiskSpaceUsage') * 1024 * 1024,
    staticCpu: { disableAt: section.num('staticCompressionDisableCpuUsage'), enableAt: section.num('staticCompressionEnableCpuUsage'), gate: new CpuGate() },
    dynamicCpu: { disableAt: section.num('dynamicCompressionDisableCpuUsage'), enableAt: section.num('dynamicCompressionEnableCpuUsage'), gate: new CpuGate() },
    problems,
  };
}
