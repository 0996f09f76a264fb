/**
 * A framed, batched, backpressured channel over one stream socket (the private socketpair a
 * worker inherits as fd 3). Frames queued during one event-loop turn leave in one writev: the
 * listener answering many connections per turn pays one syscall, not one per frame.
 */
import type { Duplex } from 'node:stream';
import { IpcError } from '../errors.js';
import { writeBatch } from './write-batch.js';
import {
  type CacheableMessage,
  MessageType,
  type ConfigMessage,
  type FileBodyMessage,
  type ListenerInbound,
  type LogMessage,
  type TraceRecordMessage,
  type RequestHeadMessage,
  type ResponseEndMessage,
  type ResponseHeadMessage,
  type WorkerInbound,
} from './messages.js';
import { isListenerMessageCode, isWorkerMessageCode } from './messages.js';
import {
  checkFinite,
  checkHeaderFields,
  checkShortText,
  checkStatus,
  checkUint,
  MAX_SUB_STATUS,
  MAX_WIN32_STATUS,
  parseCacheable,
  parseLog,
} from './validate.js';

const HEADER = 9; // u32 length + u8 type + u32 stream
/** Larger frames are refused: a corrupt length must not make us buffer gigabytes. */
const MAX_FRAME = 64 * 1024 * 1024;
const SEP = '\0';
const NO_FIELDS: readonly string[] = [];


export abstract class Channel {
  readonly #socket: Duplex;
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #blocked = false;
  #drainWaiters: Array<() => void> = [];
  #closed = false;
  // Reader state: chunks of a partially received frame.
  #inChunks: Buffer[] = [];
  #inBytes = 0;
  // A splittable frame being dispatched piece by piece: its bytes still to come.
  #partRemain = 0;
  #partType = 0;
  #partStream = 0;

  constructor(socket: Duplex) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('error', (err: Error) => this.#close(err));
    socket.on('close', () => this.#close(undefined));
  }

  /** False while the socket's buffer is above its high-water mark: producers should wait. */
  get writable(): boolean {
    return !this.#blocked && !this.#closed;
  }

  /**
   * Bytes framed this event-loop turn and not yet handed to the socket. A producer that never
   * yields (a loop of synchronous writes) would otherwise grow this without bound: past a limit
   * it should wait for onceFlushed().
   */
  get queuedBytes(): number {
    return this.#outBytes;
  }

  /** Call `cb` after the batched frames went to the socket (at once when nothing is batched). */
  onceFlushed(cb: () => void): void {
    if (!this.#flushScheduled || this.#closed) cb();
    else this.#flushWaiters.push(cb);
  }
  #flushWaiters: Array<() => void> = [];

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the channel accepts writes again (or closes). */
  waitDrain(): Promise<void> {
    if (!this.#blocked || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Register a callback for the next drain (no promise allocation on hot paths). */
  onceDrain(cb: () => void): void {
    if (!this.#blocked || this.#closed) cb();
    else this.#drainWaiters.push(cb);
  }

  close(): void {
    this.#flush();
    this.#socket.end();
  }

  /**
   * Write what is batched now instead of at the end of the event-loop turn: for a process about
   * to die (an app's uncaught exception, process.exit), so answers it already produced still
   * reach the other side. The socket's write goes to the kernel synchronously when it has room.
   */
  flushNow(): void {
    if (this.#flushScheduled) this.#flush();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  protected abstract dispatch(type: number, stream: number, payload: Buffer): void;
  protected abstract onClosed(error: Error | undefined): void;

  protected frame(type: number, stream: number, payload?: Buffer | string): void {
    if (this.#closed) return;
    if (payload === undefined) {
      const b = Buffer.allocUnsafe(HEADER);
      b.writeUInt32BE(HEADER - 4, 0);
      b[4] = type;
      b.writeUInt32BE(stream, 5);
      this.#push(b);
    } else if (typeof payload === 'string') {
      const len = Buffer.byteLength(payload, 'latin1');
      const b = Buffer.allocUnsafe(HEADER + len);
      b.writeUInt32BE(HEADER - 4 + len, 0);
      b[4] = type;
      b.writeUInt32BE(stream, 5);
      b.write(payload, HEADER, 'latin1');
      this.#push(b);
    } else if (payload.length <= 1024) {
      // Small payloads are copied so the frame is one buffer (fewer iovecs).
      const b = Buffer.allocUnsafe(HEADER + payload.length);
      b.writeUInt32BE(HEADER - 4 + payload.length, 0);
      b[4] = type;
      b.writeUInt32BE(stream, 5);
      payload.copy(b, HEADER);
      this.#push(b);
    } else {
      const b = Buffer.allocUnsafe(HEADER);
      b.writeUInt32BE(HEADER - 4 + payload.length, 0);
      b[4] = type;
      b.writeUInt32BE(stream, 5);
      this.#push(b);
      this.#push(payload);
    }
  }

  /** One frame made of a prefix buffer and body parts (large parts are not copied). */
  protected partsFrame(type: number, stream: number, prefix: Buffer, parts: readonly Buffer[], partsBytes: number): void {
    if (this.#closed) return;
    const len = prefix.length + partsBytes;
    if (len <= 16384) {
      const b = Buffer.allocUnsafe(HEADER + len);
      b.writeUInt32BE(HEADER - 4 + len, 0);
      b[4] = type;
      b.writeUInt32BE(stream, 5);
      let off = HEADER + prefix.copy(b, HEADER);
      for (let i = 0; i < parts.length; i++) off += parts[i]!.copy(b, off);
      this.#push(b);
      return;
    }
    const h = Buffer.allocUnsafe(HEADER + prefix.length);
    h.writeUInt32BE(HEADER - 4 + len, 0);
    h[4] = type;
    h.writeUInt32BE(stream, 5);
    prefix.copy(h, HEADER);
    this.#push(h);
    for (let i = 0; i < parts.length; i++) this.#push(parts[i]!);
  }

  protected jsonFrame(type: number, value: unknown, stream = 0): void {
    this.frame(type, stream, Buffer.from(JSON.stringify(value), 'utf8'));
  }

  #push(b: Buffer): void {
    this.#out.push(b);
    this.#outBytes += b.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushBound);
    }
  }

  readonly #flushBound = (): void => this.#flush();

  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#closed) {
      this.#runFlushWaiters();
      return;
    }
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    const ok = writeBatch(this.#socket, out, bytes);
    if (!ok) this.#blocked = true;
    this.#runFlushWaiters();
  }

  #runFlushWaiters(): void {
    const w = this.#flushWaiters;
    if (w.length === 0) return;
    this.#flushWaiters = [];
    for (const f of w) f();
  }

  #onDrain(): void {
    this.#blocked = false;
    const waiters = this.#drainWaiters;
    if (waiters.length === 0) return;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Body frames may be handed on in pieces as their bytes arrive: a 100 KiB body frame read in
   * two socket reads is dispatched as two chunks, never joined (no copy, no large allocation).
   */
  protected splittable(_type: number): boolean {
    return false;
  }

  /** Dispatch one frame (or a piece of a splittable one); false when the channel closed. */
  #dispatchSafe(type: number, stream: number, payload: Buffer): boolean {
    try {
      this.dispatch(type, stream, payload);
    } catch (err) {
      // A refused frame keeps its own code (IPC_INVALID_MESSAGE, IPC_PROTOCOL); anything else the
      // handler threw is reported as a frame that could not be handled.
      this.#close(err instanceof IpcError ? err : new IpcError('IPC_PROTOCOL', `failed to handle frame type ${type}`, { cause: err }));
      this.#socket.destroy();
      return false;
    }
    return !this.#closed;
  }

  #onData(chunk: Buffer): void {
    if (this.#partRemain > 0) {
      // The rest of a splittable frame whose first piece went out already.
      const n = this.#partRemain < chunk.length ? this.#partRemain : chunk.length;
      this.#partRemain -= n;
      if (!this.#dispatchSafe(this.#partType, this.#partStream, n === chunk.length ? chunk : chunk.subarray(0, n))) return;
      if (n === chunk.length) return;
      chunk = chunk.subarray(n);
    }
    let buf: Buffer;
    if (this.#inBytes === 0) {
      buf = chunk;
    } else {
      this.#inChunks.push(chunk);
      this.#inBytes += chunk.length;
      if (this.#inBytes < HEADER) return;
      // Wait until the pending frame is complete before concatenating (avoids quadratic copies
      // for large frames arriving in many reads), unless its pieces may be dispatched as they come.
      if (this.#inChunks[0]!.length < HEADER) this.#inChunks = [Buffer.concat(this.#inChunks, this.#inBytes)];
      const first = this.#inChunks[0]!;
      const len = first.readUInt32BE(0);
      if (len < HEADER - 4 || len > MAX_FRAME) {
        // Checked before waiting for the rest: a corrupt length must not make us buffer forever.
        this.#inChunks = [];
        this.#inBytes = 0;
        this.#close(new IpcError('IPC_PROTOCOL', `malformed frame length ${len}`));
        this.#socket.destroy();
        return;
      }
      if (this.#inBytes < len + 4 && !this.splittable(first[4]!)) return;
      buf = this.#inChunks.length === 1 ? first : Buffer.concat(this.#inChunks, this.#inBytes);
      this.#inChunks = [];
      this.#inBytes = 0;
    }
    let off = 0;
    while (buf.length - off >= HEADER) {
      const len = buf.readUInt32BE(off);
      if (len < HEADER - 4 || len > MAX_FRAME) {
        this.#close(new IpcError('IPC_PROTOCOL', `malformed frame length ${len}`));
        this.#socket.destroy();
        return;
      }
      const end = off + 4 + len;
      const type = buf[off + 4]!;
      const stream = buf.readUInt32BE(off + 5);
      if (end > buf.length) {
        if (!this.splittable(type)) break;
        this.#partType = type;
        this.#partStream = stream;
        this.#partRemain = end - buf.length;
        if (buf.length > off + HEADER) this.#dispatchSafe(type, stream, buf.subarray(off + HEADER));
        return;
      }
      const payload = buf.subarray(off + HEADER, end);
      off = end;
      if (!this.#dispatchSafe(type, stream, payload)) return;
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.#inChunks = [rest];
      this.#inBytes = rest.length;
    }
  }

  #close(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out = [];
    this.#runFlushWaiters();
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
    this.onClosed(error);
  }
}

function splitHead(payload: Buffer): string[] {
  return payload.toString('latin1').split(SEP);
}

/** The listener's end of a worker channel. */
export class ListenerChannel extends Channel {
  readonly #h: ListenerInbound;
  constructor(socket: Duplex, handlers: ListenerInbound) {
    super(socket);
    this.#h = handlers;
  }

  sendInit(msg: ConfigMessage): void {
    this.jsonFrame(MessageType.Init, msg);
  }
  sendConfig(msg: ConfigMessage): void {
    this.jsonFrame(MessageType.Config, msg);
  }
  sendRequestHead(stream: number, h: RequestHeadMessage): void {
    // The decoded path may hold non-latin1 characters: it travels as its UTF-8 bytes.
    const path = isAscii(h.path) ? h.path : toLatin1Bytes(h.path);
    let s =
      h.method + SEP + h.rawUrl + SEP + path + SEP + h.query + SEP + h.protocol + SEP + h.siteId + SEP +
      h.remoteAddress + SEP + h.remotePort + SEP + h.localAddress + SEP + h.localPort + SEP + h.contentLength + SEP + (h.traceparent ?? '') + SEP + (h.tls ?? '') + SEP + (h.bytes === true ? '1' : '');
    const hs = h.rawHeaders;
    for (let i = 0; i < hs.length; i++) s += SEP + hs[i];
    this.frame(MessageType.RequestHead, stream, s);
  }
  sendRequestBody(stream: number, chunk: Buffer): void {
    this.frame(MessageType.RequestBody, stream, chunk);
  }
  sendRequestEnd(stream: number, trailers?: readonly string[]): void {
    if (trailers === undefined || trailers.length === 0) this.frame(MessageType.RequestEnd, stream);
    else this.frame(MessageType.RequestEnd, stream, trailers.join(SEP));
  }
  sendRequestAbort(stream: number): void {
    this.frame(MessageType.RequestAbort, stream);
  }
  sendResponsePause(stream: number): void {
    this.frame(MessageType.ResponsePause, stream);
  }
  sendResponseResume(stream: number): void {
    this.frame(MessageType.ResponseResume, stream);
  }
  sendShutdown(): void {
    this.frame(MessageType.Shutdown, 0);
  }

  protected override splittable(type: number): boolean {
    return type === MessageType.ResponseBody;
  }

  /**
   * A worker's frame. The worker runs the pool's code, so every value is checked (validate.ts):
   * a bad one throws IPC_INVALID_MESSAGE, which closes this channel only.
   */
  protected dispatch(type: number, stream: number, payload: Buffer): void {
    if (!isWorkerMessageCode(type)) throw new IpcError('IPC_PROTOCOL', `unexpected message type ${type} from worker`);
    const h = this.#h;
    switch (type) {
      case MessageType.ResponseBody:
        h.responseBody(stream, payload);
        return;
      case MessageType.ResponseHead: {
        const f = splitHead(payload);
        if (f.length < 2) throw new IpcError('IPC_INVALID_MESSAGE', 'worker sent a response head without status and reason');
        h.responseHead(stream, {
          status: checkStatus(Number(f[0])),
          reason: checkShortText(f[1]!, 'reason phrase'),
          headers: checkHeaderFields(f.slice(2), 'a response head'),
        });
        return;
      }
      case MessageType.ResponseEnd: {
        const f = splitHead(payload);
        if (f.length < 6) throw new IpcError('IPC_INVALID_MESSAGE', `worker sent a response end of ${f.length} fields`);
        h.responseEnd(stream, {
          subStatus: checkUint(Number(f[0]), MAX_SUB_STATUS, 'sub-status'),
          win32Status: checkUint(Number(f[1]), MAX_WIN32_STATUS, 'win32 status'),
          username: checkShortText(Buffer.from(f[2]!, 'latin1').toString('utf8'), 'user name'),
          close: f[3] === '1',
          abort: f[4] === '1',
          log: f[5] !== '0',
          ...(f.length > 6 ? { trailers: checkHeaderFields(f.slice(6), 'response trailers') } : {}),
        });
        return;
      }
      case MessageType.ResponseComplete: {
        const headLen = payload.length >= 4 ? payload.readUInt32BE(0) : -1;
        if (headLen < 0 || headLen > payload.length - 4) throw new IpcError('IPC_INVALID_MESSAGE', `worker sent a whole response whose head length ${headLen} exceeds its frame`);
        const f = payload.toString('latin1', 4, 4 + headLen).split(SEP);
        if (f.length < 8) throw new IpcError('IPC_INVALID_MESSAGE', `worker sent a whole response of ${f.length} head fields`);
        h.responseComplete(
          stream,
          { status: checkStatus(Number(f[0])), reason: checkShortText(f[1]!, 'reason phrase'), headers: checkHeaderFields(f.slice(8), 'a response head') },
          payload.subarray(4 + headLen),
          wholeResponseEnd(f),
        );
        return;
      }
      case MessageType.ResponseFile: {
        const f = splitHead(payload);
        if (f.length < 15) throw new IpcError('IPC_INVALID_MESSAGE', `worker sent a file response of ${f.length} head fields`);
        const size = checkUint(Number(f[11]), Number.MAX_SAFE_INTEGER, 'file size');
        const offset = checkUint(Number(f[13]), size, 'file offset');
        h.responseFile(
          stream,
          { status: checkStatus(Number(f[0])), reason: checkShortText(f[1]!, 'reason phrase'), headers: checkHeaderFields(f.slice(15), 'a response head') },
          {
            fd: checkUint(Number(f[8]), 0x7fffffff, 'file descriptor'),
            dev: checkUint(Number(f[9]), Number.MAX_SAFE_INTEGER, 'device'),
            ino: checkUint(Number(f[10]), Number.MAX_SAFE_INTEGER, 'inode'),
            size,
            mtimeMs: checkFinite(Number(f[12]), 'modification time'),
            offset,
            length: checkUint(Number(f[14]), size - offset, 'file length'),
          },
          wholeResponseEnd(f),
        );
        return;
      }
      case MessageType.ResponseInterim: {
        const f = splitHead(payload);
        h.responseInterim(stream, checkStatus(Number(f[0])), checkHeaderFields(f.slice(1), 'an interim response'));
        return;
      }
      case MessageType.ResponseLogUrl: {
        const f = splitHead(payload);
        h.responseLogUrl(stream, Buffer.from(f[0]!, 'latin1').toString('utf8'), f[1] ?? '');
        return;
      }
      case MessageType.RequestPause:
        h.requestPause(stream);
        return;
      case MessageType.RequestResume:
        h.requestResume(stream);
        return;
      case MessageType.ResponseCacheable:
        h.responseCacheable(stream, parseCacheable(payload));
        return;
      case MessageType.Log:
        h.log(parseLog(payload));
        return;
      case MessageType.TraceRecord:
        h.traceRecord(payload);
        return;
      default:
        return unhandled(type);
    }
  }

  protected onClosed(error: Error | undefined): void {
    this.#h.closed(error);
  }
}

/** The worker's end of its channel. */
export class WorkerChannel extends Channel {
  readonly #h: WorkerInbound;
  constructor(socket: Duplex, handlers: WorkerInbound) {
    super(socket);
    this.#h = handlers;
  }

  sendResponseHead(stream: number, h: ResponseHeadMessage): void {
    let s = h.status + SEP + h.reason;
    const hs = h.headers;
    for (let i = 0; i < hs.length; i++) s += SEP + hs[i];
    this.frame(MessageType.ResponseHead, stream, s);
  }
  sendResponseBody(stream: number, chunk: Buffer): void {
    this.frame(MessageType.ResponseBody, stream, chunk);
  }
  sendResponseLogUrl(stream: number, path: string, query: string): void {
    this.frame(MessageType.ResponseLogUrl, stream, (isAscii(path) ? path : toLatin1Bytes(path)) + SEP + query);
  }
  sendResponseInterim(stream: number, status: number, headers: readonly string[]): void {
    let s = String(status);
    for (let i = 0; i < headers.length; i++) s += SEP + headers[i];
    this.frame(MessageType.ResponseInterim, stream, s);
  }
  sendResponseEnd(stream: number, e: ResponseEndMessage): void {
    const user = e.username === '' ? '' : toLatin1Bytes(e.username);
    this.frame(
      MessageType.ResponseEnd,
      stream,
      e.subStatus + SEP + e.win32Status + SEP + user + SEP + (e.close ? '1' : '0') + SEP + (e.abort ? '1' : '0') + SEP + (e.log ? '1' : '0') +
        (e.trailers !== undefined && e.trailers.length !== 0 ? SEP + e.trailers.join(SEP) : ''),
    );
  }
  /** Head + body + end of a buffered response in one frame (one dispatch in the listener). */
  sendResponseComplete(stream: number, h: ResponseHeadMessage, body: readonly Buffer[], bodyBytes: number, e: ResponseEndMessage): void {
    let s = wholeResponsePrefix(h, e);
    const hs = h.headers;
    for (let i = 0; i < hs.length; i++) s += SEP + hs[i];
    const prefix = Buffer.allocUnsafe(4 + s.length);
    prefix.writeUInt32BE(s.length, 0);
    prefix.write(s, 4, 'latin1');
    this.partsFrame(MessageType.ResponseComplete, stream, prefix, body, bodyBytes);
  }
  /** Head, a body by reference to an open file, and end in one frame (see FileBodyMessage). */
  sendResponseFile(stream: number, h: ResponseHeadMessage, file: FileBodyMessage, e: ResponseEndMessage): void {
    let s =
      wholeResponsePrefix(h, e) + SEP + file.fd + SEP + file.dev + SEP + file.ino + SEP + file.size + SEP + file.mtimeMs + SEP + file.offset + SEP + file.length;
    const hs = h.headers;
    for (let i = 0; i < hs.length; i++) s += SEP + hs[i];
    this.frame(MessageType.ResponseFile, stream, s);
  }
  sendRequestPause(stream: number): void {
    this.frame(MessageType.RequestPause, stream);
  }
  sendRequestResume(stream: number): void {
    this.frame(MessageType.RequestResume, stream);
  }
  sendResponseCacheable(stream: number, hint: CacheableMessage): void {
    this.jsonFrame(MessageType.ResponseCacheable, hint, stream);
  }
  sendLog(msg: LogMessage): void {
    this.jsonFrame(MessageType.Log, msg);
  }
  sendTraceRecord(msg: TraceRecordMessage): void {
    this.jsonFrame(MessageType.TraceRecord, msg);
  }

  protected override splittable(type: number): boolean {
    return type === MessageType.RequestBody;
  }

  protected dispatch(type: number, stream: number, payload: Buffer): void {
    if (!isListenerMessageCode(type)) throw new IpcError('IPC_PROTOCOL', `unexpected message type ${type} from listener`);
    const h = this.#h;
    switch (type) {
      case MessageType.RequestBody:
        h.requestBody(stream, payload);
        return;
      case MessageType.RequestHead: {
        const f = splitHead(payload);
        const path = f[2]!;
        h.requestHead(stream, {
          method: f[0]!,
          rawUrl: f[1]!,
          path: isAscii(path) ? path : Buffer.from(path, 'latin1').toString('utf8'),
          query: f[3]!,
          protocol: f[4]!,
          siteId: Number(f[5]),
          remoteAddress: f[6]!,
          remotePort: Number(f[7]),
          localAddress: f[8]!,
          localPort: Number(f[9]),
          contentLength: Number(f[10]),
          rawHeaders: f.slice(14),
          traceparent: f[11]!,
          tls: f[12]!,
          ...(f[13] === '1' ? { bytes: true } : {}),
        });
        return;
      }
      case MessageType.RequestEnd:
        h.requestEnd(stream, payload.length === 0 ? NO_FIELDS : splitHead(payload));
        return;
      case MessageType.RequestAbort:
        h.requestAbort(stream);
        return;
      case MessageType.ResponsePause:
        h.responsePause(stream);
        return;
      case MessageType.ResponseResume:
        h.responseResume(stream);
        return;
      case MessageType.Init:
        h.init(JSON.parse(payload.toString('utf8')) as ConfigMessage);
        return;
      case MessageType.Config:
        h.config(JSON.parse(payload.toString('utf8')) as ConfigMessage);
        return;
      case MessageType.Shutdown:
        h.shutdown();
        return;
      default:
        return unhandled(type);
    }
  }

  protected onClosed(error: Error | undefined): void {
    this.#h.closed(error);
  }
}

/**
 * The eight fields that open a whole response (ResponseComplete, ResponseFile): status, reason,
 * sub-status, win32 status, user, close, abort (always 0), log.
 */
function wholeResponsePrefix(h: ResponseHeadMessage, e: ResponseEndMessage): string {
  return (
    h.status + SEP + h.reason + SEP + e.subStatus + SEP + e.win32Status + SEP +
    (e.username === '' ? '' : toLatin1Bytes(e.username)) + SEP + (e.close ? '1' : '0') + SEP + '0' + SEP + (e.log ? '1' : '0')
  );
}

/** The end a whole response's opening fields carry (see wholeResponsePrefix), checked. */
function wholeResponseEnd(f: readonly string[]): ResponseEndMessage {
  return {
    subStatus: checkUint(Number(f[2]), MAX_SUB_STATUS, 'sub-status'),
    win32Status: checkUint(Number(f[3]), MAX_WIN32_STATUS, 'win32 status'),
    username: f[4] === '' ? '' : checkShortText(Buffer.from(f[4]!, 'latin1').toString('utf8'), 'user name'),
    close: f[5] === '1',
    abort: false,
    log: f[7] !== '0',
  };
}

/** The end of an exhaustive switch: `type` is `never` here, or the switch does not compile. */
function unhandled(type: never): never {
  throw new IpcError('IPC_PROTOCOL', `message type ${String(type)} has no handler`);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
/** UTF-8 bytes of `s` as a latin1 string (so the frame stays one latin1 string). */
function toLatin1Bytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}
