/**
 * Files the worker keeps open so that responses can name them instead of carrying their bytes
 * (HttpResponse.writeFile; the listener sends them from its own open of the descriptor, see
 * src/listener/file-body.ts). One descriptor per path, valid while the file's identity (inode,
 * size, mtime from ctx.stat) is unchanged.
 *
 * A descriptor named in a response may still be on its way to the listener when it is closed here:
 * the listener then finds it gone (or another file in its place) and the request is answered again
 * with its bytes. So a file is closed when it changed, when it was not used for REUSE_GRACE_MS (a
 * sweep every REUSE_GRACE_MS: a deleted file's disk space is not held for long), or when more than
 * MAX_OPEN are kept and it is the least recently used one not used in the last REUSE_GRACE_MS (a
 * large file whose bytes a response is still reading stays open); past HARD_MAX the least recently
 * used one goes anyway.
 */
import type { FileHandle } from 'node:fs/promises';
import type { FileInfo } from '../../worker/module-api.js';

/**
 * Bodies from this size go to the listener by reference to the open file (measured: below it the
 * listener's open and fstat cost more than the bytes' trip over the channel).
 */
export const FILE_REFERENCE_MIN = 32 * 1024;
const MAX_OPEN = 128;
const HARD_MAX = 1024;
const REUSE_GRACE_MS = 30_000;

export interface OpenFile {
  readonly handle: FileHandle;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  usedAt: number;
}

export class OpenFiles {
  /** By path, least recently used first. */
  readonly #byPath = new Map<string, OpenFile>();
  #sweep: NodeJS.Timeout | undefined;

  /** The file kept for `path` if it is still this version of it. */
  get(path: string, info: FileInfo): OpenFile | undefined {
    const f = this.#byPath.get(path);
    if (f === undefined) return undefined;
    this.#byPath.delete(path);
    if (f.ino !== info.ino || f.size !== info.size || f.mtimeMs !== info.mtimeMs) {
      close(f);
      return undefined;
    }
    f.usedAt = performance.now();
    this.#byPath.set(path, f);
    return f;
  }

  /** Keep `handle`, open on this version of `path`: the table owns (and closes) it from now on. */
  adopt(path: string, handle: FileHandle, st: { dev: number; ino: number; size: number; mtimeMs: number }): OpenFile {
    const old = this.#byPath.get(path);
    if (old !== undefined) {
      this.#byPath.delete(path);
      if (old.handle !== handle) close(old);
    }
    const f: OpenFile = { handle, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, usedAt: performance.now() };
    this.#byPath.set(path, f);
    if (this.#byPath.size > MAX_OPEN) this.#trim();
    this.#sweep ??= setInterval(() => this.#closeIdle(), REUSE_GRACE_MS).unref();
    return f;
  }

  /** Close what was not used for REUSE_GRACE_MS; the sweep stops when nothing is kept. */
  #closeIdle(): void {
    const idleBefore = performance.now() - REUSE_GRACE_MS;
    for (const [path, f] of this.#byPath) {
      if (f.usedAt > idleBefore) break; // least recently used first: the rest are newer
      this.#byPath.delete(path);
      close(f);
    }
    if (this.#byPath.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  get size(): number {
    return this.#byPath.size;
  }

  clear(): void {
    for (const f of this.#byPath.values()) close(f);
    this.#byPath.clear();
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #trim(): void {
    const idleBefore = performance.now() - REUSE_GRACE_MS;
    for (const [path, f] of this.#byPath) {
      if (this.#byPath.size <= MAX_OPEN) return;
      if (f.usedAt > idleBefore && this.#byPath.size <= HARD_MAX) return; // the rest are newer still
      this.#byPath.delete(path);
      close(f);
    }
  }
}

function close(f: OpenFile): void {
  void f.handle.close().catch(() => {});
}
