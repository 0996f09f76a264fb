/**
 * The compressed copies of static files (IIS: `httpCompression/@directory`, one folder per
 * application pool), written by the pool's worker, read back on later requests, replaced when the
 * source file changes, and kept under `maxDiskSpaceUsage` (oldest first) when
 * `doDiskSpaceLimiting` is on.
 *
 * A copy's file name says what it is a copy of, as IIS's do: `$^_<scheme>_<physical path, '/' as
 * '^'>`, followed by `~<inode>-<size>-<mtime µs>` of the source version it was made from. A changed
 * source (size, mtime or inode) therefore never matches an old copy, and the old one is deleted
 * when the new one is written. A copy is written to a temporary name and renamed, so a reader
 * never sees half a copy. Names too long for the file system use a hash of the path instead.
 *
 * Small copies are also kept in memory. A directory that cannot be created or written (no
 * permission, a full disk) is logged once; the file is then compressed for the response and kept
 * in memory only, and no request fails because of it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { brotliCompress, constants, deflate, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { FileInfo } from '../../worker/module-api.js';
import type { Codec } from './settings.js';
import { encoderFor } from './settings.js';

/** Copies up to this size are kept in memory too (the static file handler's small-file limit). */
export const MEMORY_COPY_LIMIT = 256 * 1024;
/** The memory all stores of a worker keep copies in. */
const MEMORY_BUDGET = 32 * 1024 * 1024;
/** Sources up to this size are compressed in memory; larger ones are streamed to the copy. */
const WHOLE_SOURCE_LIMIT = 8 * 1024 * 1024;
/** After a failed write, the directory is left alone this long (compressing to memory meanwhile). */
const WRITE_RETRY_MS = 60_000;
const NAME_MAX = 255;

const gzipAsync = promisify(gzip);
const deflateAsync = promisify(deflate);
const brotliAsync = promisify(brotliCompress);

export interface CopyRecord {
  /** The copy's file name (which identifies the source version). */
  readonly name: string;
  /** On disk at this path, or undefined when it lives in memory only. */
  readonly path: string | undefined;
  readonly size: number;
  /** Its bytes, when small enough to keep. */
  readonly body: Buffer | undefined;
  /** The source version it was made from. */
  readonly ino: number;
  readonly sourceSize: number;
  readonly mtimeMs: number;
}

export interface CompressRequest {
  readonly scheme: string;
  readonly codec: Codec;
  readonly level: number;
  readonly sourcePath: string;
  readonly info: FileInfo;
  /** Whether a copy may be made now (not when CPU usage disabled static compression). */
  readonly compress: boolean;
  /** maxDiskSpaceUsage in bytes, or undefined when doDiskSpaceLimiting is off. */
  readonly maxDiskBytes: number | undefined;
}

export interface Obtained {
  readonly record: CopyRecord;
  /** 'copy': an existing copy; 'compressed': made for this request. */
  readonly how: 'copy' | 'compressed';
}

/** The copy's name for this source version. */
export function copyName(scheme: string, sourcePath: string, info: FileInfo): string {
  const version = `~${info.ino}-${info.size}-${Math.round(info.mtimeMs * 1000)}`;
  const name = `$^_${scheme}_${sourcePath.replaceAll('/', '^')}${version}`;
  if (Buffer.byteLength(name) <= NAME_MAX) return name;
  return `$^_${scheme}_#${createHash('sha256').update(sourcePath).digest('hex').slice(0, 40)}${version}`;
}

/** The part of a copy name shared by every version of one source. */
function prefixOf(name: string): string {
  return name.slice(0, name.lastIndexOf('~') + 1);
}

/** Bodies in memory across stores, oldest first (a Set keeps insertion order). */
const inMemory = new Set<{ store: CompressedFiles; record: CopyRecord; key: string }>();
let memoryBytes = 0;

function matches(r: CopyRecord, info: FileInfo): boolean {
  return r.ino === info.ino && r.sourceSize === info.size && r.mtimeMs === info.mtimeMs;
}

export class CompressedFiles {
  readonly dir: string;
  readonly #log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** Copies known by source path and scheme (the current version only). */
  readonly #known = new Map<string, Map<string, CopyRecord>>();
  /** Copies being made, by name: concurrent requests wait for the same one. */
  readonly #pending = new Map<string, Promise<Obtained | undefined>>();
  /** Files of the directory (name → size, last use), and their total. */
  readonly #files = new Map<string, { size: number; used: number }>();
  #bytes = 0;
  #ready: Promise<boolean> | undefined;
  #writableAgainAt = 0;
  #reported = new Set<string>();

  constructor(dir: string, log: (level: 'info' | 'warn' | 'error', message: string) => void) {
    this.dir = dir;
    this.#log = log;
  }

  /** Bytes of the copies on disk (as this worker knows them). */
  get diskBytes(): number {
    return this.#bytes;
  }

  /** The known copy of this source version, without I/O. */
  known(scheme: string, sourcePath: string, info: FileInfo): CopyRecord | undefined {
    const r = this.#known.get(sourcePath)?.get(scheme);
    return r !== undefined && matches(r, info) ? r : undefined;
  }

  /** An existing copy, else (when allowed) a new one; undefined when there is none to send. */
  obtain(req: CompressRequest): Promise<Obtained | undefined> {
    const name = copyName(req.scheme, req.sourcePath, req.info);
    let p = this.#pending.get(name);
    if (p === undefined) {
      p = this.#obtain(req, name).finally(() => this.#pending.delete(name));
      this.#pending.set(name, p);
    }
    return p;
  }

  async #obtain(req: CompressRequest, name: string): Promise<Obtained | undefined> {
    const writable = await this.#init();
    const path = join(this.dir, name);
    if (writable || this.#files.has(name)) {
      // On disk already (made earlier, or by another worker of the pool)?
      const existing = await this.#read(path, name);
      if (existing !== undefined) return { record: this.#remember(req, existing), how: 'copy' };
    }
    if (!req.compress) return undefined;
    try {
      const record = req.info.size <= WHOLE_SOURCE_LIMIT ? await this.#compressWhole(req, name, path) : await this.#compressStreamed(req, name, path);
      return record === undefined ? undefined : { record: this.#remember(req, record), how: 'compressed' };
    } catch (err) {
      this.#reportOnce(`compress:${(err as NodeJS.ErrnoException).code ?? ''}`, 'warn', `compressing ${req.sourcePath} failed: ${(err as Error).message}; sent uncompressed`);
      return undefined;
    }
  }

  /** Create the folder (0700: the pool's own) and learn what it holds. */
  #init(): Promise<boolean> {
    return (this.#ready ??= (async () => {
      try {
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        for (const name of await readdir(this.dir)) {
          if (!name.startsWith('$^_')) continue;
          const st = await stat(join(this.dir, name)).catch(() => undefined);
          if (st === undefined || !st.isFile()) continue;
          this.#files.set(name, { size: st.size, used: st.mtimeMs });
          this.#bytes += st.size;
        }
        return true;
      } catch (err) {
        this.#reportOnce('init', 'warn', `cannot use the compressed-files directory ${this.dir}: ${(err as Error).message}; static files are compressed in memory only`);
        this.#writableAgainAt = Infinity;
        return false;
      }
    })());
  }

  async #read(path: string, name: string): Promise<CopyRecord | undefined> {
    try {
      const h = await open(path, 'r');
      try {
        const st = await h.stat();
        const body = st.size <= MEMORY_COPY_LIMIT ? await h.readFile() : undefined;
        const f = this.#files.get(name);
        if (f !== undefined) f.used = Date.now();
        else {
          this.#files.set(name, { size: st.size, used: Date.now() });
          this.#bytes += st.size;
        }
        return { name, path, size: st.size, body, ino: 0, sourceSize: 0, mtimeMs: 0 };
      } finally {
        await h.close();
      }
    } catch {
      const f = this.#files.get(name);
      if (f !== undefined) {
        this.#files.delete(name);
        this.#bytes -= f.size;
      }
      return undefined;
    }
  }

  /** Read the source (checking it is still the version asked for), compress it, write the copy. */
  async #compressWhole(req: CompressRequest, name: string, path: string): Promise<CopyRecord | undefined> {
    const h = await open(req.sourcePath, 'r');
    let source: Buffer;
    try {
      const st = await h.stat();
      if (st.ino !== req.info.ino || st.size !== req.info.size || st.mtimeMs !== req.info.mtimeMs) return undefined; // changed meanwhile
      source = await h.readFile();
    } finally {
      await h.close();
    }
    const body = await compressBuffer(req.codec, req.level, source);
    const written = await this.#write(name, path, body, req.maxDiskBytes);
    return { name, path: written ? path : undefined, size: body.length, body: body.length <= MEMORY_COPY_LIMIT ? body : undefined, ino: 0, sourceSize: 0, mtimeMs: 0 };
  }

  /** A large source: streamed through the coder into the copy (disk only). */
  async #compressStreamed(req: CompressRequest, name: string, path: string): Promise<CopyRecord | undefined> {
    if (!this.#canWrite()) return undefined;
    const tmp = join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await pipeline(createReadStream(req.sourcePath), encoderFor(req.codec, req.level, 64 * 1024).create(), createWriteStream(tmp, { mode: 0o600 }));
      const st = await stat(tmp);
      const src = await stat(req.sourcePath);
      if (src.ino !== req.info.ino || src.size !== req.info.size || src.mtimeMs !== req.info.mtimeMs) {
        await unlink(tmp).catch(() => undefined);
        return undefined;
      }
      if (!this.#makeRoom(st.size, req.maxDiskBytes)) {
        await unlink(tmp).catch(() => undefined);
        return undefined;
      }
      await rename(tmp, path);
      await this.#added(name, st.size);
      return { name, path, size: st.size, body: undefined, ino: 0, sourceSize: 0, mtimeMs: 0 };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      this.#writeFailed(err);
      return undefined;
    }
  }

  #canWrite(): boolean {
    return Date.now() >= this.#writableAgainAt;
  }

  /** Write a copy (temporary name, then rename); false when it stays in memory only. */
  async #write(name: string, path: string, body: Buffer, maxDiskBytes: number | undefined): Promise<boolean> {
    if (!this.#canWrite() || !this.#makeRoom(body.length, maxDiskBytes)) return false;
    const tmp = join(this.dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      const h = await open(tmp, 'wx', 0o600);
      try {
        await h.writeFile(body);
      } finally {
        await h.close();
      }
      await rename(tmp, path);
      await this.#added(name, body.length);
      return true;
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      this.#writeFailed(err);
      return false;
    }
  }

  #writeFailed(err: unknown): void {
    this.#writableAgainAt = Date.now() + WRITE_RETRY_MS;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    this.#reportOnce(`write:${code}`, 'warn', `cannot write compressed copies to ${this.dir} (${code}: ${(err as Error).message}); static files are compressed in memory meanwhile`);
  }

  /** A new copy: older versions of the same source go (resolves once they are deleted). */
  #added(name: string, size: number): Promise<unknown> {
    const prefix = prefixOf(name);
    const gone: Array<Promise<unknown>> = [];
    for (const [other, f] of this.#files) {
      if (other !== name && other.startsWith(prefix) && other.length > prefix.length && !other.slice(prefix.length).includes('~')) {
        this.#files.delete(other);
        this.#bytes -= f.size;
        gone.push(unlink(join(this.dir, other)).catch(() => undefined));
      }
    }
    const old = this.#files.get(name);
    if (old !== undefined) this.#bytes -= old.size;
    this.#files.set(name, { size, used: Date.now() });
    this.#bytes += size;
    return Promise.all(gone);
  }

  /** doDiskSpaceLimiting: delete the least recently used copies until `size` more fits. */
  #makeRoom(size: number, maxDiskBytes: number | undefined): boolean {
    if (maxDiskBytes === undefined) return true;
    if (size > maxDiskBytes) return false;
    if (this.#bytes + size <= maxDiskBytes) return true;
    const byAge = [...this.#files].sort((a, b) => a[1].used - b[1].used);
    for (const [name, f] of byAge) {
      if (this.#bytes + size <= maxDiskBytes) break;
      this.#files.delete(name);
      this.#bytes -= f.size;
      void unlink(join(this.dir, name)).catch(() => undefined);
      this.#forget(name);
    }
    return this.#bytes + size <= maxDiskBytes;
  }

  #forget(name: string): void {
    for (const [source, byScheme] of this.#known) {
      for (const [scheme, r] of byScheme) {
        if (r.name !== name) continue;
        // Deleted from disk: a copy kept in memory still serves, one that was on disk only is gone.
        if (r.body === undefined) byScheme.delete(scheme);
        else byScheme.set(scheme, { ...r, path: undefined });
      }
      if (byScheme.size === 0) this.#known.delete(source);
    }
  }

  #remember(req: CompressRequest, r: CopyRecord): CopyRecord {
    const record: CopyRecord = { ...r, ino: req.info.ino, sourceSize: req.info.size, mtimeMs: req.info.mtimeMs };
    let byScheme = this.#known.get(req.sourcePath);
    if (byScheme === undefined) this.#known.set(req.sourcePath, (byScheme = new Map()));
    const previous = byScheme.get(req.scheme);
    if (previous?.body !== undefined) {
      // An older version's bytes leave memory with it (a rare scan: sources change seldom).
      for (const m of inMemory) {
        if (m.record !== previous) continue;
        inMemory.delete(m);
        memoryBytes -= previous.body.length;
        break;
      }
    }
    byScheme.set(req.scheme, record);
    if (record.body !== undefined) {
      inMemory.add({ store: this, record, key: req.sourcePath });
      memoryBytes += record.body.length;
      for (const m of inMemory) {
        if (memoryBytes <= MEMORY_BUDGET) break;
        inMemory.delete(m);
        memoryBytes -= m.record.body!.length;
        m.store.#drop(m.key, m.record);
      }
    }
    return record;
  }

  /** Out of the memory budget: the next request reads the copy from disk again. */
  #drop(sourcePath: string, record: CopyRecord): void {
    const byScheme = this.#known.get(sourcePath);
    if (byScheme === undefined) return;
    for (const [scheme, r] of byScheme) if (r === record) byScheme.delete(scheme);
    if (byScheme.size === 0) this.#known.delete(sourcePath);
  }

  #reportOnce(key: string, level: 'info' | 'warn' | 'error', message: string): void {
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    this.#log(level, message);
  }
}

/** One source in memory through the coder (libuv's thread pool). */
export function compressBuffer(codec: Codec, level: number, source: Buffer): Promise<Buffer> {
  if (codec === 'br') {
    return brotliAsync(source, { params: { [constants.BROTLI_PARAM_QUALITY]: level, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_SIZE_HINT]: source.length } });
  }
  return codec === 'gzip' ? gzipAsync(source, { level }) : deflateAsync(source, { level });
}

const stores = new Map<string, CompressedFiles>();

/** The store of a directory (one per directory per worker). */
export function compressedFilesIn(dir: string, log: (level: 'info' | 'warn' | 'error', message: string) => void): CompressedFiles {
  let s = stores.get(dir);
  if (s === undefined) stores.set(dir, (s = new CompressedFiles(dir, log)));
  return s;
}
