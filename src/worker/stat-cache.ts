/**
 * The worker's stat cache (IIS FileCacheModule's role): a stat result is trusted for up to one
 * second, so a hot file costs one stat per second instead of one per request, and an edit on disk
 * is seen within a second.
 */
import { stat } from 'node:fs/promises';
import type { FileInfo } from './module-api.js';

interface Entry {
  info: FileInfo | undefined;
  at: number;
}

export class StatCache {
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  /** Total length of the keys: paths come from clients' URLs and may be kilobytes each. */
  readonly #maxChars: number;
  #chars = 0;
  readonly #now: () => number;

  constructor(options: { ttlMs?: number; maxEntries?: number; maxChars?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? 1000;
    this.#maxEntries = options.maxEntries ?? 10000;
    this.#maxChars = options.maxChars ?? 4_000_000;
    this.#now = options.now ?? Date.now;
  }

  /** Cached result when still fresh, else undefined (callers then use stat()). */
  peek(path: string): Entry | undefined {
    const e = this.#entries.get(path);
    if (e !== undefined && this.#now() - e.at < this.#ttlMs) return e;
    return undefined;
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const fresh = this.peek(path);
    if (fresh !== undefined) return fresh.info;
    let info: FileInfo | undefined;
    try {
      const s = await stat(path);
      info = { path, isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
    } catch {
      info = undefined;
    }
    if (!this.#entries.has(path)) {
      // Maps iterate in insertion order: dropping the first keys evicts the oldest entries.
      while (this.#entries.size !== 0 && (this.#entries.size >= this.#maxEntries || this.#chars + path.length > this.#maxChars)) {
        const first = this.#entries.keys().next().value!;
        this.#entries.delete(first);
        this.#chars -= first.length;
      }
      this.#chars += path.length;
    }
    this.#entries.set(path, { info, at: this.#now() });
    return info;
  }

  clear(): void {
    this.#entries.clear();
    this.#chars = 0;
  }
}
