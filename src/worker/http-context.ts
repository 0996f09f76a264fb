/**
 * The worker's implementations of HttpRequest, HttpResponse and HttpContext (module-api.ts).
 * A response is buffered until it is flushed, like IIS: that is what lets CustomErrorModule
 * replace an error body at SendResponse and lets the pipeline send an exact Content-Length.
 */
import { read } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { ResolveResult, ResolvedConfig, SiteConfig } from '../config/types.js';
import { moduleTrace, statusSet } from '../diagnostics.js';
import { formatHResult } from '../errors.js';
import { computeServerVariable, headerOfVariable } from './server-variables.js';
import { decodeTlsInfo, type CacheableMessage, type FileBodyMessage, type RequestHeadMessage, type ResponseEndMessage } from '../ipc/messages.js';
import type {
  Identity,
  ChildRequestOptions,
  ChildRequestResult,
  ContentEncoder,
  EncoderStream,
  EncodingExceptions,
  ErrorDetail,
  FileInfo,
  HandlerMapping,
  HttpContext,
  HttpRequest,
  HttpResponse,
  KernelCachePolicy,
  ModuleTrace,
  Notification,
  RewriteRefusal,
  TlsInfo,
} from './module-api.js';
import type { RequestBody } from './request-body.js';

/** Where a response goes: the worker channel for one stream. */
export interface ResponseTransport {
  head(status: number, reason: string, headers: string[]): void;
  /** Returns false when the caller should wait for writable(). */
  body(chunk: Buffer): boolean;
  writable(): Promise<void>;
  end(info: ResponseEndMessage): void;
  /** A buffered response in one go: head, whole body, end. */
  complete(status: number, reason: string, headers: string[], body: readonly Buffer[], bodyBytes: number, info: ResponseEndMessage): void;
  /** file() may be used for this response (the listener did not ask for the bytes). */
  readonly fileReferences?: boolean;
  /** Head, a body by reference to a file this process holds open (HttpResponse.writeFile), end. */
  file?(status: number, reason: string, headers: string[], file: FileBodyMessage, info: ResponseEndMessage): void;
  /** The listener may cache the response that complete() sends next. */
  cacheable?(hint: CacheableMessage): void;
  /** An interim 1xx (102, 103) before the head. */
  interim?(status: number, headers: readonly string[]): void;
  /** Log the request as this URL (before end/complete). */
  logUrl?(path: string, query: string): void;
  /** Call `listener` once when the client goes away before the response ended. */
  onAbort?(listener: () => void): void;
}

/** IHttpCachePolicy's kernel part (module-api.ts KernelCachePolicy). */
export class KernelCache implements KernelCachePolicy {
  policy: 'none' | 'untilChange' | 'timePeriod' | 'disabled' = 'none';
  durationMs = 0;
  dependencies: string[] = [];
  cacheUntilChange(...files: string[]): void {
    if (this.policy === 'disabled') return;
    this.policy = 'untilChange';
    this.dependencies.push(...files);
  }
  cacheForTimePeriod(ms: number): void {
    if (this.policy === 'disabled') return;
    this.policy = 'timePeriod';
    this.durationMs = ms;
  }
  disable(): void {
    this.policy = 'disabled';
  }
  encodings: readonly string[] | undefined = undefined;
  encodingExceptions: EncodingExceptions | undefined = undefined;
  varyByEncoding(codings: readonly string[], identityFor?: EncodingExceptions): void {
    this.encodings = codings;
    this.encodingExceptions = identityFor;
  }
  /** Files whose change also invalidates the entry (kept apart: they do not set a policy). */
  readonly extraDependencies: string[] = [];
  addDependency(...files: string[]): void {
    this.extraDependencies.push(...files);
  }
}

/** The part of the pipeline a context calls back into. */
export interface ContextHost {
  runSendResponse(ctx: WorkerContext): void | Promise<void>;
  runChildRequest(parent: WorkerContext, url: string, options: ChildRequestOptions | undefined): Promise<ChildRequestResult>;
  stat(path: string): Promise<FileInfo | undefined>;
  statCached(path: string): FileInfo | null | undefined;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** The configuration of another URL of a site (for HttpContext.rewriteUrl). */
  resolve(siteId: number, urlPath: string): ResolveResult;
  /** The pool this worker serves. */
  readonly poolName: string;
}

const NO_TRAILERS: readonly string[] = [];

/** A response head as it goes out: status, flat name/value list, whether a body may follow. */
interface PreparedHead {
  readonly status: number;
  readonly headers: string[];
  readonly noBody: boolean;
}

export class WorkerRequest implements HttpRequest {
  readonly method: string;
  readonly rawUrl: string;
  /** Changed only by WorkerContext.rewriteUrl. */
  path: string;
  queryString: string;
  readonly protocol: string;
  rawHeaders: readonly string[];
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly contentLength: number;
  readonly hasBody: boolean;
  #headers: Record<string, string> | undefined;
  readonly #body: RequestBody | undefined;
  /** The connection's TLS facts as encoded by the listener ('' plain http), decoded on first use. */
  readonly #tlsText: string;
  #tls: TlsInfo | undefined | null = null;

  constructor(head: RequestHeadMessage, body: RequestBody | undefined, path?: string, query?: string) {
    this.method = head.method;
    this.rawUrl = head.rawUrl;
    this.path = path ?? head.path;
    this.queryString = query ?? head.query;
    this.protocol = head.protocol;
    this.rawHeaders = head.rawHeaders;
    this.remoteAddress = head.remoteAddress;
    this.remotePort = head.remotePort;
    this.localAddress = head.localAddress;
    this.localPort = head.localPort;
    this.contentLength = head.contentLength;
    this.hasBody = head.contentLength !== 0;
    this.#body = body;
    this.#tlsText = head.tls ?? '';
  }

  get secure(): boolean {
    return this.#tlsText !== '';
  }

  /** The TLS facts as the listener encoded them: a child request (default document …) keeps its parent's connection. */
  get tlsText(): string {
    return this.#tlsText;
  }

  get tls(): TlsInfo | undefined {
    if (this.#tls === null) this.#tls = decodeTlsInfo(this.#tlsText);
    return this.#tls;
  }

  /** Built on first use: most static requests read one or two headers, and rawHeaders suffices. */
  get headers(): Readonly<Record<string, string>> {
    if (this.#headers === undefined) {
      const h: Record<string, string> = Object.create(null) as Record<string, string>;
      const raw = this.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        const prev = h[name];
        h[name] = prev === undefined ? raw[i + 1]! : name === 'cookie' ? prev + '; ' + raw[i + 1] : prev + ', ' + raw[i + 1];
      }
      this.#headers = h;
    }
    return this.#headers;
  }

  limitBody(maxBytes: number): void {
    this.#body?.limit(maxBytes);
  }

  setHeader(name: string, value: string): void {
    const lower = name.toLowerCase();
    const raw: string[] = [];
    let placed = false;
    const old = this.rawHeaders;
    for (let i = 0; i < old.length; i += 2) {
      const n = old[i]!;
      if (n.length !== lower.length || n.toLowerCase() !== lower) raw.push(n, old[i + 1]!);
      else if (!placed && value !== '') {
        raw.push(old[i]!, value);
        placed = true;
      }
    }
    if (!placed && value !== '') raw.push(name, value);
    this.rawHeaders = raw;
    this.#headers = undefined;
  }

  get isLocal(): boolean {
    const a = this.remoteAddress;
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
  }

  get trailers(): readonly string[] {
    return this.#body?.trailers ?? NO_TRAILERS;
  }

  body(): AsyncIterable<Buffer> {
    if (this.#body === undefined) return emptyBody();
    return this.#body;
  }
}

async function* emptyBody(): AsyncGenerator<Buffer> {
  // no body
}

/** Bytes read per step when a file body must pass through the worker (#streamFile). */
const STREAM_FILE_CHUNK = 64 * 1024;

type HeaderEntry = { name: string; value: string | readonly string[] };

export class WorkerResponse implements HttpResponse {
  subStatus = 0;
  win32Status = 0;
  statusReason = '';
  trySkipCustomErrors = false;
  logRequest = true;
  logUrl: { readonly path: string; readonly query: string } | undefined = undefined;
  /** Trailer fields for the end of a streamed (chunked) response, flat [name, value, …]. */
  trailers: string[] | undefined = undefined;
  /** Bytes buffered before the response starts streaming (-1: until the pipeline ends). */
  bufferLimit = -1;
  #autoFlushing = false;
  /** Set when a module touched the status, wrote, or flushed: the handler "produced" a response. */
  produced = false;
  #kernelCache: KernelCache | undefined;
  /** Set by the pipeline when the response may go to the listener's cache (decided per URL). */
  cacheHint: CacheableMessage | undefined;
  /** caching maxResponseSize for this URL: a larger body is not offered to the cache. */
  maxCacheableBytes = 0;
  #status = 200;
  #headers = new Map<string, HeaderEntry>();
  #chunks: Buffer[] = [];
  #bodyLength = 0;
  #headersSent = false;
  #aborted = false;
  #closeConnection = false;
  readonly #transport: ResponseTransport;
  readonly #isHead: boolean;
  #hookHost: ContextHost | undefined;
  #hookCtx: WorkerContext | undefined;
  /** Set by a module (setContentEncoder) until the head goes out. */
  #encoder: ContentEncoder | undefined;
  /** The encoding stream of a streamed, encoded body (after the head went out). */
  #encoding: EncoderStream | undefined;
  /** Its output waits for the channel (transport.body said false). */
  #encodingPaused = false;
  #flushQueued = false;
  #flushEncoder: (() => void) | undefined;
  /** Body bytes as sent when they differ from bodyLength (a body encoded whole). */
  #wireLength = -1;
  /**
   * The body is this range of an open file (writeFile): with `bytes`, while they are its only
   * chunk; without, the range is the body and is read from the file only if it must pass through
   * this process (#streamFile).
   */
  #file: { readonly file: FileBodyMessage; readonly bytes: Buffer | undefined } | undefined;
  /** The status line the head goes out with while a keepStatus child request runs. */
  #pinned: { readonly status: number; readonly subStatus: number; readonly reason: string } | undefined;

  constructor(transport: ResponseTransport, isHead: boolean) {
    this.#transport = transport;
    this.#isHead = isHead;
  }

  /** The pipeline installs the SendResponse runner (needs the top-level context). */
  setSendResponseHook(host: ContextHost, ctx: WorkerContext): void {
    this.#hookHost = host;
    this.#hookCtx = ctx;
  }

  get statusCode(): number {
    return this.#status;
  }
  set statusCode(v: number) {
    this.#status = v;
    this.produced = true;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }
  get bodyLength(): number {
    return this.#bodyLength;
  }
  get aborted(): boolean {
    return this.#aborted;
  }

  /**
   * Keep the current status line for the head whatever is set until unpinStatus() (an httpErrors
   * ExecuteURL page runs as a child and may stream: its head must carry the original error).
   */
  pinStatus(): void {
    this.#pinned = { status: this.#status, subStatus: this.subStatus, reason: this.statusReason };
  }

  /** Back to the pinned status line (the child's own status is dropped). */
  unpinStatus(): void {
    const p = this.#pinned;
    if (p === undefined) return;
    this.#pinned = undefined;
    this.#status = p.status;
    this.subStatus = p.subStatus;
    this.statusReason = p.reason;
  }

  requestClose(): void {
    this.#closeConnection = true;
  }

  /** Created on first use: most responses never touch it. */
  get kernelCache(): KernelCache {
    return (this.#kernelCache ??= new KernelCache());
  }
  /** The policy if a module set one (without creating it). */
  get kernelCacheIfSet(): KernelCache | undefined {
    return this.#kernelCache;
  }

  setHeader(name: string, value: string | readonly string[]): void {
    this.#headers.set(name.toLowerCase(), { name, value });
  }
  setContentEncoder(encoder: ContentEncoder): void {
    if (this.#headersSent || this.#isHead || this.#aborted) return;
    this.#encoder = encoder;
  }
  getHeader(name: string): string | readonly string[] | undefined {
    return this.#headers.get(name.toLowerCase())?.value;
  }
  removeHeader(name: string): void {
    this.#headers.delete(name.toLowerCase());
  }
  headerNames(): string[] {
    const out: string[] = [];
    for (const e of this.#headers.values()) out.push(e.name);
    return out;
  }

  write(chunk: Buffer | string): boolean {
    if (this.#aborted) return true;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (buf.length === 0) return true;
    this.produced = true;
    this.#bodyLength += buf.length;
    if (this.#isHead) return true; // HEAD: count for Content-Length, send nothing
    if (!this.#headersSent) {
      this.#chunks.push(buf);
      // The handler's responseBufferLimit (IIS: 4 MiB by default, 0 = stream at once): past it
      // the head goes out and the body streams instead of growing in memory.
      if (this.bufferLimit >= 0 && this.#bodyLength > this.bufferLimit && !this.#autoFlushing) {
        this.#autoFlushing = true;
        void this.flush().catch(() => this.abort());
        return false;
      }
      return true;
    }
    const enc = this.#encoding;
    if (enc !== undefined) {
      const ok = enc.write(buf);
      this.#queueEncoderFlush();
      return ok && !this.#encodingPaused;
    }
    return this.#transport.body(buf);
  }

  writeFile(file: FileBodyMessage, bytes?: Buffer): boolean {
    if (bytes === undefined) {
      // The range alone: only as the whole body of a response not started yet.
      if (this.#transport.fileReferences !== true || this.#headersSent || this.#aborted || this.#isHead || this.#chunks.length !== 0 || this.#file !== undefined) return false;
      this.#file = { file, bytes: undefined };
      this.#bodyLength += file.length;
      this.produced = true;
      return true;
    }
    const ok = this.write(bytes);
    if (this.#transport.fileReferences === true && !this.#headersSent && this.#chunks.length === 1 && this.#chunks[0] === bytes) this.#file = { file, bytes };
    return ok;
  }

  /**
   * A range-only file body that must pass through this process after all (SendResponse set a
   * content encoder, or a module wrote more): the head goes out, then the range is read from the
   * file and written like any streamed body, then whatever was written after it.
   */
  async #streamFile(file: FileBodyMessage): Promise<void> {
    const later = this.#chunks;
    this.#chunks = [];
    this.#bodyLength -= later.reduce((n, c) => n + c.length, 0);
    await this.#sendHead(false);
    let pos = file.offset;
    const end = file.offset + file.length;
    while (pos < end && !this.#aborted) {
      const want = Math.min(STREAM_FILE_CHUNK, end - pos);
      const buf = Buffer.allocUnsafe(want);
      const n = await new Promise<number>((resolve, reject) => read(file.fd, buf, 0, want, pos, (err, got) => (err !== null ? reject(err) : resolve(got))));
      if (n === 0) throw new Error('file shrank while being sent');
      pos += n;
      this.#bodyLength -= n; // write() counts them again
      if (!this.write(n === want ? buf : buf.subarray(0, n))) await this.drained();
    }
    for (const c of later) if (!this.write(c)) await this.drained();
  }

  drained(): Promise<void> {
    if (this.#autoFlushing && !this.#headersSent) return this.flush();
    const enc = this.#encoding;
    if (enc !== undefined && enc.writableNeedDrain) return new Promise((resolve) => enc.once('drain', resolve));
    return this.#transport.writable();
  }

  /**
   * After a write (or flush()) of a streamed encoded body: flush the encoder once this turn of the
   * event loop is over, so what the handler wrote together is compressed together and nothing
   * waits for more (an SSE event reaches the client when it is written).
   */
  #queueEncoderFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate((this.#flushEncoder ??= () => {
      this.#flushQueued = false;
      const enc = this.#encoding;
      if (enc !== undefined && !enc.writableEnded && !enc.destroyed) enc.flush(this.#encoder!.flushKind);
    }));
  }

  /** The streamed encoded body: the encoder's output goes to the channel, with its backpressure. */
  #startEncoding(encoder: ContentEncoder): EncoderStream {
    const enc = encoder.create();
    enc.on('data', (out: Buffer) => {
      if (this.#aborted) return;
      if (!this.#transport.body(out) && !this.#encodingPaused) {
        this.#encodingPaused = true;
        enc.pause();
        void this.#transport.writable().then(() => {
          this.#encodingPaused = false;
          enc.resume();
        });
      }
    });
    enc.on('error', () => this.abort());
    this.#encoding = enc;
    return enc;
  }

  sendInformational(status: number, headers: readonly string[]): void {
    if (this.#headersSent || this.#aborted || status < 102 || status > 199) return;
    this.#transport.interim?.(status, headers);
  }

  async flush(): Promise<void> {
    if (this.#aborted) return;
    this.produced = true;
    if (!this.#headersSent) await this.#sendHead(false);
    else if (this.#encoding !== undefined) this.#queueEncoderFlush();
  }

  clearBody(): boolean {
    if (this.#headersSent) return false;
    this.#chunks = [];
    this.#bodyLength = 0;
    this.#file = undefined;
    return true;
  }

  clear(): boolean {
    if (this.#headersSent) return false;
    this.#headers.clear();
    return this.clearBody();
  }

  abort(): void {
    this.#aborted = true;
    this.#chunks = [];
    this.#encoding?.destroy();
  }

  onClientAbort(listener: () => void): void {
    this.#transport.onAbort?.(listener);
  }

  /**
   * Called by the pipeline once every stage ran: send what is left and end the stream. Returns a
   * promise only when something had to wait (an asynchronous SendResponse module, an encoder):
   * the common whole response goes out without a promise or a microtask hop.
   */
  finish(user: string): void | Promise<void> {
    if (this.logUrl !== undefined) this.#transport.logUrl?.(this.logUrl.path, this.logUrl.query);
    const rangeOnly = this.#file !== undefined && this.#file.bytes === undefined ? this.#file.file : undefined;
    if (rangeOnly !== undefined && !this.#aborted && !this.#headersSent) return this.#finishRange(rangeOnly, user);
    return this.#finishNow(user);
  }

  #finishNow(user: string): void | Promise<void> {
    if (!this.#aborted && !this.#headersSent) {
      const head = this.#prepareHead(true);
      if (head instanceof Promise) return head.then((h) => this.#finishWith(h, user));
      return this.#finishWith(head, user);
    }
    return this.#endStream(user);
  }

  /**
   * A range-only file body (writeFile without bytes): SendResponse runs first; if the body is still
   * just the range afterwards it goes by reference, else it is read from the file here.
   */
  async #finishRange(rangeOnly: FileBodyMessage, user: string): Promise<void> {
    const host = this.#hookHost;
    if (host !== undefined) {
      this.#hookHost = undefined; // SendResponse fires once
      const r = host.runSendResponse(this.#hookCtx!);
      if (r !== undefined) await r;
    }
    if (!this.#aborted && !this.#headersSent && this.#file?.file === rangeOnly && (this.#encoder !== undefined || this.#chunks.length !== 0)) {
      try {
        await this.#streamFile(rangeOnly);
      } catch {
        this.abort();
      }
    }
    await this.#finishNow(user);
  }

  #finishWith(head: PreparedHead | undefined, user: string): void | Promise<void> {
    if (head === undefined) return this.#endStream(user);
    // The whole response is known: one frame instead of head, body and end frames.
    this.#headersSent = true;
    const chunks = head.noBody ? [] : this.#chunks;
    this.#chunks = [];
    const wire = this.#wireLength >= 0 ? this.#wireLength : this.#bodyLength;
    const hint = this.cacheHint;
    const kc = this.#kernelCache;
    const file = this.#file;
    let offered = false;
    if (hint !== undefined && (file === undefined || file.bytes !== undefined) && kc?.policy !== 'disabled' && head.status === 200 && wire <= this.maxCacheableBytes && this.#transport.cacheable !== undefined && cacheableHeaders(head.headers)) {
      const encodings = kc?.encodings;
      const ex = kc?.encodingExceptions;
      this.#transport.cacheable(
        encodings === undefined ? hint : { ...hint, encodings, ...(ex?.http10 === true ? { identityForHttp10: true } : {}), ...(ex?.proxies === true ? { identityForProxies: true } : {}) },
      );
      offered = true;
    }
    const info: ResponseEndMessage = {
      subStatus: this.subStatus,
      win32Status: this.win32Status,
      username: user,
      close: this.#closeConnection,
      abort: false,
      log: this.logRequest,
    };
    // The body is still exactly the file's range (no encoder, no module replaced or extended it,
    // the listener's cache does not want it): the listener reads it from the file.
    if (file !== undefined && !offered && !head.noBody && this.#wireLength < 0 && (file.bytes === undefined ? chunks.length === 0 : chunks.length === 1 && chunks[0] === file.bytes)) {
      this.#transport.file!(head.status, this.statusReason, head.headers, file.file, info);
      return;
    }
    this.#transport.complete(head.status, this.statusReason, head.headers, chunks, head.noBody ? 0 : wire, info);
  }

  /** The head went out already (streamed) or the response was aborted: the encoder's tail, then the end frame. */
  #endStream(user: string): void | Promise<void> {
    const enc = this.#encoding;
    if (enc !== undefined && !this.#aborted) {
      // The encoder's last bytes go out before the end frame.
      return new Promise<void>((resolve) => {
        enc.once('end', resolve);
        enc.once('close', resolve);
        enc.end();
      }).then(() => this.#sendEnd(user));
    }
    this.#sendEnd(user);
  }

  #sendEnd(user: string): void {
    this.#transport.end({
      subStatus: this.subStatus,
      win32Status: this.win32Status,
      username: user,
      close: this.#closeConnection,
      abort: this.#aborted,
      log: this.logRequest,
      ...(this.trailers !== undefined ? { trailers: this.trailers } : {}),
    });
  }

  /**
   * Run SendResponse (once) and fix the head; undefined when the response was aborted or sent
   * meanwhile. A promise only when a SendResponse module or the encoder went asynchronous.
   */
  #prepareHead(final: boolean): PreparedHead | undefined | Promise<PreparedHead | undefined> {
    const host = this.#hookHost;
    if (host !== undefined) {
      this.#hookHost = undefined; // SendResponse fires once
      const r = host.runSendResponse(this.#hookCtx!);
      if (r !== undefined) return r.then(() => (this.#aborted || this.#headersSent ? undefined : this.#fixHead(final)));
      if (this.#aborted || this.#headersSent) return undefined;
    }
    return this.#fixHead(final);
  }

  #fixHead(final: boolean): PreparedHead | Promise<PreparedHead | undefined> {
    const status = this.#pinned?.status ?? this.#status;
    // After a 101 the "body" is the new protocol's bytes (a WebSocket tunnel): they still flow.
    if (status === 101) final = false;
    const noBody = status === 204 || status === 304 || (status >= 100 && status < 200 && status !== 101);
    const encoder = this.#encoder;
    if (encoder !== undefined) {
      if (noBody || status === 101 || (final && this.#bodyLength === 0)) {
        this.#encoder = undefined; // nothing to encode: the response goes as it is
      } else if (final) {
        // The whole body is known: encode it in one go and send its length.
        return encodeWhole(encoder, this.#chunks).then((encoded) => {
          if (this.#aborted || this.#headersSent) return undefined;
          this.#chunks = [encoded];
          this.#wireLength = encoded.length;
          this.#headers.set('content-encoding', { name: 'Content-Encoding', value: encoder.coding });
          this.#headers.set('content-length', { name: 'Content-Length', value: String(encoded.length) });
          return this.#flatHead(status, noBody, final);
        });
      } else {
        // Streamed: the length is unknown (chunked), the encoder starts with the head.
        this.#headers.set('content-encoding', { name: 'Content-Encoding', value: encoder.coding });
        this.#headers.delete('content-length');
      }
    }
    return this.#flatHead(status, noBody, final);
  }

  #flatHead(status: number, noBody: boolean, final: boolean): PreparedHead {
    if (final && !noBody && !this.#headers.has('content-length') && !this.#headers.has('transfer-encoding')) {
      this.#headers.set('content-length', { name: 'Content-Length', value: String(this.#bodyLength) });
    }
    const flat: string[] = [];
    for (const e of this.#headers.values()) {
      if (typeof e.value === 'string') flat.push(e.name, e.value);
      else for (const v of e.value) flat.push(e.name, v);
    }
    return { status, headers: flat, noBody };
  }

  async #sendHead(final: boolean): Promise<void> {
    const head = await this.#prepareHead(final);
    if (head === undefined) return;
    this.#headersSent = true;
    this.#transport.head(head.status, this.#pinned?.reason ?? this.statusReason, head.headers);
    const chunks = this.#chunks;
    this.#chunks = [];
    if (head.noBody) return;
    const encoder = this.#encoder;
    if (encoder !== undefined) {
      const enc = this.#startEncoding(encoder);
      for (let i = 0; i < chunks.length; i++) enc.write(chunks[i]!);
      this.#queueEncoderFlush();
      return;
    }
    for (let i = 0; i < chunks.length; i++) this.#transport.body(chunks[i]!);
  }
}

/** A body known whole, encoded in one go (the encoder runs on libuv's thread pool). */
function encodeWhole(encoder: ContentEncoder, chunks: readonly Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const enc = encoder.create();
    const out: Buffer[] = [];
    enc.on('data', (d: Buffer) => out.push(d));
    enc.once('end', () => resolve(out.length === 1 ? out[0]! : Buffer.concat(out)));
    enc.once('error', reject);
    for (let i = 0; i < chunks.length; i++) enc.write(chunks[i]!);
    enc.end();
  });
}

/**
 * The response headers HTTP.sys would still cache (after SendResponse): no Set-Cookie, no
 * Cache-Control private / no-cache / no-store, no Vary but Accept-Encoding.
 */
function cacheableHeaders(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    const value = headers[i + 1]!.toLowerCase();
    if (name === 'set-cookie') return false;
    if (name === 'cache-control' && /(?:^|[\s,])(?:private|no-cache|no-store)(?:$|[\s,=])/.test(value)) return false;
    if (name === 'vary' && value.split(',').some((v) => v.trim() !== 'accept-encoding' && v.trim() !== '')) return false;
  }
  return true;
}

export class WorkerContext implements HttpContext {
  readonly request: WorkerRequest;
  readonly response: WorkerResponse;
  readonly site: SiteConfig;
  /** Both change when rewriteUrl serves the request as another URL. */
  config: ResolvedConfig;
  physicalPath: string;
  #scriptPath: string | undefined;
  get scriptPath(): string {
    return this.#scriptPath ?? this.request.path;
  }
  set scriptPath(v: string) {
    this.#scriptPath = v;
  }
  handler: HandlerMapping | undefined = undefined;
  readonly appPoolName: string;
  user = '';
  identity: Identity | undefined = undefined;
  authType = '';
  readonly isChildRequest: boolean;
  notification: Notification = 'BeginRequest';
  /** Module whose handler is running (recorded by setStatus for the detailed error page). */
  currentModule = 'IIS Web Core';
  #items: Map<string, unknown> | undefined;
  /** Created on first use: most requests never store anything. */
  get items(): Map<string, unknown> {
    return (this.#items ??= new Map());
  }
  errorDetail: ErrorDetail | undefined = undefined;
  finished = false;
  readonly #host: ContextHost;
  readonly parent: WorkerContext | undefined;
  readonly executedBy: string | undefined;
  /**
   * The client's request this context serves: itself, or for a child request the top-level
   * context. It is the `key` of the pipeline's diagnostics events, so a child request's modules
   * are traced within the request that ran it (as FREB shows a default document's child).
   */
  readonly root: WorkerContext;

  constructor(init: {
    request: WorkerRequest;
    response: WorkerResponse;
    config: ResolvedConfig;
    appPoolName: string;
    host: ContextHost;
    parent?: WorkerContext;
  }) {
    this.request = init.request;
    this.response = init.response;
    this.config = init.config;
    this.site = init.config.site;
    this.physicalPath = init.config.physicalPath;
    this.appPoolName = init.appPoolName;
    this.#host = init.host;
    this.parent = init.parent;
    this.isChildRequest = init.parent !== undefined;
    this.executedBy = init.parent?.currentModule;
    this.root = init.parent?.root ?? this;
    // A child request (default document, custom error page) runs as its parent's user.
    if (init.parent !== undefined) {
      this.user = init.parent.user;
      this.identity = init.parent.identity;
      this.authType = init.parent.authType;
    }
  }

  finish(): void {
    this.finished = true;
  }

  setStatus(status: number, subStatus: number, detail?: Partial<ErrorDetail> & { trySkipCustomErrors?: boolean }): void {
    const r = this.response;
    r.clearBody();
    r.statusCode = status;
    r.subStatus = subStatus;
    r.statusReason = '';
    if (detail?.trySkipCustomErrors !== undefined) r.trySkipCustomErrors = detail.trySkipCustomErrors;
    const d: ErrorDetail = {
      module: detail?.module ?? this.currentModule,
      notification: detail?.notification ?? this.notification,
      hresult: detail?.hresult ?? 0,
      description: detail?.description ?? '',
      ...(detail?.configFile !== undefined ? { configFile: detail.configFile } : {}),
      ...(detail?.configLine !== undefined ? { configLine: detail.configLine } : {}),
      ...(detail?.configSource !== undefined ? { configSource: detail.configSource } : {}),
    };
    this.errorDetail = d;
    // A child request's status is the parent's response status too (they share the response).
    let p = this.parent;
    while (p !== undefined) {
      p.errorDetail = d;
      p = p.parent;
    }
    // FREB's MODULE_SET_RESPONSE_ERROR_STATUS / MODULE_SET_RESPONSE_SUCCESS_STATUS.
    if (statusSet.hasSubscribers) {
      statusSet.publish({
        key: this.root,
        module: d.module,
        notification: d.notification,
        status,
        subStatus,
        reason: STATUS_CODES[status] ?? '',
        errorCode: d.hresult,
        description: d.description,
      });
    }
  }

  get tracing(): boolean {
    return moduleTrace.hasSubscribers;
  }

  trace(event: ModuleTrace): void {
    if (!moduleTrace.hasSubscribers) return;
    moduleTrace.publish({ key: this.root, module: this.currentModule, opcode: event.opcode, area: event.area, level: event.level, data: event.data });
  }

  /** Child requests this request ran (a response made by one is not kernel-cached: CHILD_REQUEST). */
  childRequests = 0;

  executeChildRequest(url: string, options?: ChildRequestOptions): Promise<ChildRequestResult> {
    this.childRequests++;
    return this.#host.runChildRequest(this, url, options);
  }

  stat(path: string): Promise<FileInfo | undefined> {
    return this.#host.stat(path);
  }

  statCached(path: string): FileInfo | null | undefined {
    return this.#host.statCached(path);
  }

  log(level: 'info' | 'warn' | 'error', message: string): void {
    this.#host.log(level, `${this.currentModule}: ${message}`);
  }

  #variables: Map<string, string> | undefined;
  #rewritten = false;

  getServerVariable(name: string): string {
    const upper = name.toUpperCase();
    return this.#variables?.get(upper) ?? computeServerVariable(this, upper);
  }

  setServerVariable(name: string, value: string): void {
    const upper = name.toUpperCase();
    const header = headerOfVariable(upper);
    if (header !== undefined) {
      this.request.setHeader(header, value);
      return;
    }
    (this.#variables ??= new Map()).set(upper, value);
  }

  mapUrl(path: string): ResolveResult | undefined {
    return isCanonicalPath(path) ? this.#host.resolve(this.site.id, path) : undefined;
  }

  rewriteUrl(path: string, queryString: string, options?: { readonly cacheable?: boolean }): RewriteRefusal | undefined {
    if (!isCanonicalPath(path)) {
      return { status: 500, subStatus: 0, description: `"${path.replace(/[\0-\x1f]/g, '?')}" is not a canonical URL path (it must start with "/", without "." or ".." segments or control characters).` };
    }
    const resolved = this.#host.resolve(this.site.id, path);
    if (!resolved.ok) {
      const e = resolved.error;
      return { status: 500, subStatus: 19, description: `The configuration for ${path} is invalid: ${e.describe()} (${formatHResult(e.hresult)}).` };
    }
    const pool = resolved.config.application.applicationPool;
    if (pool !== this.#host.poolName) {
      return {
        status: 500,
        subStatus: 50,
        description: `${path} belongs to application ${resolved.config.application.path}, which runs in application pool "${pool}"; a request can be rewritten only to applications of its own pool ("${this.#host.poolName}").`,
      };
    }
    const req = this.request;
    // The first rewrite records the URL the client asked for, as IIS URL Rewrite does, replacing
    // any X-Original-URL the client sent (apps trust it to name the URL before rewriting).
    if (!this.#rewritten) req.setHeader('X-Original-URL', req.rawUrl);
    this.#rewritten = true;
    req.path = path;
    req.queryString = queryString;
    this.config = resolved.config;
    this.physicalPath = resolved.config.physicalPath;
    // The kernel cache keys on the client's URL: a response served for another URL stays out,
    // unless the caller knows the new URL follows from that URL and from files alone.
    if (options?.cacheable !== true) this.response.kernelCache.disable();
    return undefined;
  }
}

/** A decoded path as the listener produces them: '/'-rooted, no '.'/'..' segments, no control characters. */
function isCanonicalPath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f || /[\0-\x1f\x7f\\]/.test(path)) return false;
  return !/(?:^|\/)\.\.?(?:\/|$)/.test(path);
}
