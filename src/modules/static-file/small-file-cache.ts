/**
 * A worker-local cache of small static files, so a hot 1 KiB file costs one Map lookup and no file
 * I/O. Entries are keyed by physical path and valid only while the file's identity (inode, mtime,
 * size from ctx.stat, which the pipeline caches for 1 s) is unchanged.
 */
import type { FileInfo } from '../../worker/module-api.js';
import { fileEtag, httpDate } from './validators.js';

/** Files up to this size are read whole and cached; larger ones are streamed. */
export const SMALL_FILE_LIMIT = 256 * 1024;

export interface CachedFile {
  readonly path: string;
  readonly ino: number;
  readonly mtimeMs: number;
  readonly size: number;
  readonly body: Buffer;
  // Header values computed once per file version instead of once per request.
  readonly etag: string;
  readonly lastModified: string;
  readonly mtimeSeconds: number;
  readonly contentLength: string;
}

export function makeCachedFile(info: FileInfo, body: Buffer): CachedFile {
  return {
    path: info.path,
    ino: info.ino,
    mtimeMs: info.mtimeMs,
    size: body.length,
    body,
    etag: fileEtag(info.mtimeMs),
    lastModified: httpDate(info.mtimeMs),
    mtimeSeconds: Math.floor(info.mtimeMs / 1000),
    contentLength: String(body.length),
  };
}

export class SmallFileCache {
  readonly #entries = new Map<string, CachedFile>();
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get(path: string, info: FileInfo): CachedFile | undefined {
    const e = this.#entries.get(path);
    if (e === undefined) return undefined;
    if (e.ino === info.ino && e.mtimeMs === info.mtimeMs && e.size === info.size) return e;
    this.#delete(path, e);
    return undefined;
  }

  set(path: string, entry: CachedFile): void {
    const old = this.#entries.get(path);
    if (old) this.#delete(path, old);
    if (entry.size > this.#maxBytes) return;
    // Evict in insertion order (oldest first): cheap, and hot files are re-added quickly.
    for (const [k, v] of this.#entries) {
      if (this.#bytes + entry.size <= this.#maxBytes) break;
      this.#delete(k, v);
    }
    this.#entries.set(path, entry);
    this.#bytes += entry.size;
  }

  get size(): number {
    return this.#entries.size;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }

  #delete(path: string, e: CachedFile): void {
    this.#entries.delete(path);
    this.#bytes -= e.size;
  }
}
