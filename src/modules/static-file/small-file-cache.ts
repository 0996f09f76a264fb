/**
 * A worker-local cache of small static files, so a hot 1 KiB file costs one Map lookup and no file
 * I/O. Entries are keyed by physical path and valid only while the file's identity (inode, mtime,
 * size from ctx.stat, which the pipeline caches for 1 s) is unchanged.
 *
 * An entry of FILE_REFERENCE_MIN bytes or more also keeps the file open (at most MAX_HELD of them),
 * so its responses can name the file instead of carrying its bytes (HttpResponse.writeFile): the
 * listener then sends it from its own open of that descriptor.
 */
import type { FileHandle } from 'node:fs/promises';
import type { FileInfo } from '../../worker/module-api.js';
import { fileEtag, httpDate } from './validators.js';

/** Files up to this size are read whole and cached; larger ones are streamed. */
export const SMALL_FILE_LIMIT = 256 * 1024;
/**
 * Bodies from this size go to the listener by reference to the open file (measured: below it the
 * listener's open and fstat cost more than the bytes' trip over the channel).
 */
export const FILE_REFERENCE_MIN = 32 * 1024;
/** Open files kept by the cache at most (each is a descriptor of the worker's). */
const MAX_HELD = 128;

/** The cached file's open descriptor, and the device it lives on (with `ino`, its identity). */
export interface HeldFile {
  readonly handle: FileHandle;
  readonly dev: number;
}

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
  /** The file kept open for references (FILE_REFERENCE_MIN), until the entry goes or MAX_HELD is reached. */
  held: HeldFile | undefined;
}

export function makeCachedFile(info: FileInfo, body: Buffer, held?: HeldFile): CachedFile {
  return {
    held,
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
  /** Entries holding their file open, oldest first. */
  readonly #held = new Set<CachedFile>();

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
    if (entry.size > this.#maxBytes) {
      release(entry);
      return;
    }
    if (entry.held !== undefined) {
      if (this.#held.size >= MAX_HELD) {
        const oldest = this.#held.values().next().value!;
        this.#held.delete(oldest);
        release(oldest);
      }
      this.#held.add(entry);
    }
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
    for (const e of this.#held) release(e);
    this.#held.clear();
    this.#entries.clear();
    this.#bytes = 0;
  }

  #delete(path: string, e: CachedFile): void {
    this.#entries.delete(path);
    this.#bytes -= e.size;
    if (this.#held.delete(e)) release(e);
  }
}

/**
 * Close an entry's file. A response that named it may still be on its way to the listener, which
 * then finds the descriptor gone (or another file in its place) and asks for the bytes instead.
 */
function release(e: CachedFile): void {
  const held = e.held;
  if (held === undefined) return;
  e.held = undefined;
  void held.handle.close().catch(() => {});
}
