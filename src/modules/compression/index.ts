/**
 * HTTP compression, IIS's two modules: StaticCompressionModule (compressed copies of static files,
 * precompressed siblings) and DynamicCompressionModule (responses of handlers, streamed), driven by
 * `system.webServer/httpCompression` and `urlCompression` (docs/configuration.md, "Compression").
 */
export { StaticCompressionModule, codingEtag } from './static-compression.js';
export { DynamicCompressionModule } from './dynamic-compression.js';
export { compressionSettings, encoderFor, mapLevel, HTTP_COMPRESSION_SECTION, URL_COMPRESSION_SECTION } from './settings.js';
export type { CompressionSettings, Scheme, Codec } from './settings.js';
export { ContentTypeList } from './content-types.js';
export { CpuGate, CpuSampler, readCpuTimes } from './cpu-usage.js';
export { CompressedFiles, copyName } from './compressed-files.js';
