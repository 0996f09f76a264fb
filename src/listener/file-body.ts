/**
 * A response body the listener reads from a file the worker named by reference (FileBodyMessage):
 * HTTP.sys's TransmitFile. The worker decided everything — access, status, headers, the range —
 * and finished the request; the listener moves the bytes from the page cache to the client
 * without them crossing the worker's channel.
 *
 * The file is opened through `/proc/<worker pid>/fd/<fd>`: a link to the open file itself, not to
 * a path, so no rename or symlink swapped in since the worker's open can point the listener at
 * another file. It must still be a regular file of the device, inode, size and modification time
 * the worker described (an fd the worker closed and reused meanwhile describes another file);
 * otherwise `openFileBody` answers undefined and the request runs again with the bytes.
 *
 * As the body's producer it stands in for the worker (ExchangeOwner): the connection pauses and
 * resumes it with the client socket's backpressure, and aborts it when the client goes away.
 *
 * Files up to CACHED_FILE_MAX are read whole once and kept, as Windows' file cache serves
 * TransmitFile: by device and inode, used while the size and mtime the worker describes are those
 * of the kept copy (CACHE_BYTES in all). A copy is used without opening the file again only for a
 * worker process that already proved it holds that file open (the check above), so a worker can
 * only ever name bytes it could read; a hot file then costs no open, no read, no allocation and no
 * garbage. Every response still passes through the worker, which decides it (its own cache of the
 * file is validated the same way).
 */
import { closeSync, constants, fstatSync, openSync, read } from 'node:fs';
import type { FileBodyMessage, ResponseEndMessage } from '../ipc/messages.js';
import type { Exchange, ExchangeOwner } from './exchange.js';

/** Bytes read per step (one read, one socket write) of a file too large to keep. */
const CHUNK = 256 * 1024;
/** Files up to this size are read whole and kept (the worker names files up to 256 KiB today). */
const CACHED_FILE_MAX = 256 * 1024;
/** What the kept files may hold in all. */
const CACHE_BYTES = 32 * 1024 * 1024;

interface KeptFile {
  readonly size: number;
  readonly mtimeMs: number;
  readonly bytes: Buffer;
  /** Worker processes that opened this very file through /proc (bounded: cleared past 32). */
  readonly provenBy: Set<number>;
}

/** Whole files by `dev:ino`, oldest first; an entry is used only while size and mtime match. */
const kept = new Map<string, KeptFile>();
let keptBytes = 0;

function keptFile(f: FileBodyMessage): KeptFile | undefined {
  const key = f.dev + ':' + f.ino;
  const e = kept.get(key);
  if (e === undefined) return undefined;
  if (e.size === f.size && e.mtimeMs === f.mtimeMs) return e;
  kept.delete(key);
  keptBytes -= e.bytes.length;
  return undefined;
}

function keep(workerPid: number, f: FileBodyMessage, bytes: Buffer): void {
  const key = f.dev + ':' + f.ino;
  const old = kept.get(key);
  if (old !== undefined) {
    kept.delete(key);
    keptBytes -= old.bytes.length;
  }
  for (const [k, v] of kept) {
    if (keptBytes + bytes.length <= CACHE_BYTES) break;
    kept.delete(k);
    keptBytes -= v.bytes.length;
  }
  kept.set(key, { size: f.size, mtimeMs: f.mtimeMs, bytes, provenBy: new Set([workerPid]) });
  keptBytes += bytes.length;
}

/** Forget every kept file (tests; memory pressure). */
export function clearKeptFiles(): void {
  kept.clear();
  keptBytes = 0;
}
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Open the worker's file if it is still what the worker described: its descriptor, or why not —
 * 'changed' (closed, reused, or the file changed: the request runs again with bytes) or 'denied'
 * (this process may not open the worker's descriptors at all: /proc restricted by the system).
 */
export function openFileBody(workerPid: number, f: FileBodyMessage): number | 'changed' | 'denied' {
  let fd: number;
  try {
    fd = openSync(`/proc/${workerPid}/fd/${f.fd}`, OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EACCES' || code === 'EPERM' ? 'denied' : 'changed';
  }
  try {
    const st = fstatSync(fd, { bigint: false });
    if (st.isFile() && st.dev === f.dev && st.ino === f.ino && st.size === f.size && st.mtimeMs === f.mtimeMs) return fd;
  } catch {
    // fall through
  }
  closeSync(fd);
  return 'changed';
}

export class FileBody implements ExchangeOwner {
  readonly #ex: Exchange;
  readonly #workerPid: number;
  /** -1: the bytes are kept (#kept), no file is open. */
  readonly #fd: number;
  readonly #kept: Buffer | undefined;
  readonly #file: FileBodyMessage;
  readonly #end: ResponseEndMessage;
  #pos: number;
  #left: number;
  #paused = false;
  #reading = false;
  #closed = false;

  /**
   * The body the worker process `workerPid` named, or why the file is not what it described (the
   * request must then run again with its bytes): see openFileBody.
   */
  static open(ex: Exchange, workerPid: number, file: FileBodyMessage, end: ResponseEndMessage): FileBody | 'changed' | 'denied' {
    const k = file.size <= CACHED_FILE_MAX ? keptFile(file) : undefined;
    if (k !== undefined && k.provenBy.has(workerPid)) return new FileBody(ex, workerPid, -1, k.bytes, file, end);
    const fd = openFileBody(workerPid, file);
    if (typeof fd === 'string') return fd;
    if (k === undefined) return new FileBody(ex, workerPid, fd, undefined, file, end);
    // Proven now: this worker holds the file the kept copy is of.
    closeSync(fd);
    if (k.provenBy.size >= 32) k.provenBy.clear();
    k.provenBy.add(workerPid);
    return new FileBody(ex, workerPid, -1, k.bytes, file, end);
  }

  private constructor(ex: Exchange, workerPid: number, fd: number, kept: Buffer | undefined, file: FileBodyMessage, end: ResponseEndMessage) {
    this.#ex = ex;
    this.#workerPid = workerPid;
    this.#fd = fd;
    this.#kept = kept;
    this.#closed = fd < 0;
    this.#file = file;
    this.#end = end;
    this.#pos = file.offset;
    this.#left = file.length;
  }

  /** Send the bytes (the head is already with the connection). */
  start(): void {
    if (this.#kept !== undefined) {
      this.#sendKept(this.#kept);
      return;
    }
    const f = this.#file;
    if (f.size > CACHED_FILE_MAX) {
      this.#next();
      return;
    }
    // Read the whole file once, keep it, send the range.
    const buf = Buffer.allocUnsafe(f.size);
    this.#reading = true;
    read(this.#fd, buf, 0, f.size, 0, (err, n) => {
      const aborted = this.#readDone();
      this.#close();
      if (err !== null || n !== f.size) {
        if (!aborted) this.#fail();
        return;
      }
      keep(this.#workerPid, f, buf);
      if (!aborted) this.#sendKept(buf);
    });
  }

  #sendKept(bytes: Buffer): void {
    const f = this.#file;
    const ex = this.#ex;
    ex.conn.responseBody(ex, f.offset === 0 && f.length === bytes.length ? bytes : bytes.subarray(f.offset, f.offset + f.length));
    if (ex.state === 'responding') this.#ended();
  }

  /** Every byte is with the connection: the response ends as the worker said it would. */
  #ended(): void {
    const e = this.#end;
    this.#ex.conn.responseEnd(this.#ex, e.subStatus, e.win32Status, e.username, e.close, false);
  }

  /** Shrunk or unreadable after the head promised its length: only a reset is honest. */
  #fail(): void {
    const ex = this.#ex;
    const e = this.#end;
    ex.conn.responseEnd(ex, e.subStatus, e.win32Status, e.username, true, true);
  }

  #next(): void {
    if (this.#closed || this.#paused || this.#reading) return;
    const ex = this.#ex;
    if (this.#left === 0) {
      this.#close();
      this.#ended();
      return;
    }
    const want = Math.min(CHUNK, this.#left);
    // A fresh buffer per read: the socket keeps a reference until the bytes are written.
    const buf = Buffer.allocUnsafe(want);
    this.#reading = true;
    read(this.#fd, buf, 0, want, this.#pos, (err, n) => {
      if (this.#readDone()) return;
      if (err !== null || n === 0) {
        this.#close();
        this.#fail();
        return;
      }
      this.#pos += n;
      this.#left -= n;
      ex.conn.responseBody(ex, n === want ? buf : buf.subarray(0, n));
      this.#next();
    });
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // A read in flight still uses the descriptor (its number could be reused meanwhile): the read's
    // callback closes it.
    if (this.#reading) return;
    // Synchronous: closing a regular file is cheaper than a trip through libuv's thread pool.
    closeSync(this.#fd);
  }

  /** In a read's callback: close the descriptor if #close() came while the read was in flight. */
  #readDone(): boolean {
    this.#reading = false;
    if (!this.#closed) return false;
    closeSync(this.#fd);
    return true;
  }

  // ---- ExchangeOwner: the connection's side of the body ------------------------------------------

  sendBody(): void {
    // A GET: no request body goes anywhere.
  }
  sendBodyEnd(): void {}
  pauseResponse(): void {
    this.#paused = true;
  }
  resumeResponse(): void {
    this.#paused = false;
    this.#next();
  }
  abort(): void {
    this.#close();
  }
}
