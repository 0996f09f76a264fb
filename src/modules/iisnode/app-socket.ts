/**
 * The socket a hosted application's `http.Server` sees for one request: a Duplex given to the
 * server through its documented `'connection'` event ("any Duplex stream can be passed"), so
 * Node's own parser builds a genuine IncomingMessage and ServerResponse, and everything Node
 * does for a real socket — `Expect: 100-continue`, `'upgrade'`, trailers, `flushHeaders`,
 * backpressure — works unchanged. What the server writes goes to a ResponseReader.
 *
 * The readable side carries the request (head, then body) and, after a 101, the client's bytes
 * of the new protocol. `_read` is Node asking for more: the feeder waits for it (backpressure
 * towards the listener). The writable side's callbacks are held while the pipeline's response
 * cannot take more (backpressure towards the app: `res.write()` returns false).
 */
import { Duplex } from 'node:stream';
import type { ResponseReader } from './response-reader.js';

export interface SocketEndpoint {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** What the socket asks of the exchange that owns it. */
export interface SocketOwner {
  /** Called after each write the app made: decide to stream; false = hold the app's writes. */
  afterWrite(): boolean;
  /** Resolves when the response can take more bytes. */
  drained(): Promise<void>;
  /** The app ended (`destroyed` false) or destroyed its side of the socket. */
  socketClosed(error: Error | undefined, destroyed: boolean): void;
}

export class AppSocket extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly remoteFamily: string;
  readonly localAddress: string;
  readonly localPort: number;
  /** TLS ends at the listener: the application's socket is never encrypted (req.protocol 'http'). */
  readonly encrypted = undefined;
  readonly #reader: ResponseReader;
  readonly #owner: SocketOwner;
  #wantRead: (() => void) | undefined;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | undefined;
  bytesRead = 0;
  bytesWritten = 0;

  constructor(endpoint: SocketEndpoint, reader: ResponseReader, owner: SocketOwner) {
    // allowHalfOpen: the request's end is not the response's; the app ends its side itself.
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024, decodeStrings: true });
    this.remoteAddress = endpoint.remoteAddress;
    this.remotePort = endpoint.remotePort;
    this.remoteFamily = endpoint.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.localAddress = endpoint.localAddress;
    this.localPort = endpoint.localPort;
    this.#reader = reader;
    this.#owner = owner;
  }

  /** Request bytes towards the app; false when it should wait for readWanted(). */
  feed(chunk: Buffer): boolean {
    this.bytesRead += chunk.length;
    this.#touch();
    return this.push(chunk);
  }

  /** Resolves when the app's side wants more request bytes. */
  readWanted(): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wantRead = resolve;
    });
  }

  /** No more request bytes (the request ended, or the client half-closed a tunnel). */
  endRequest(): void {
    if (!this.destroyed && !this.readableEnded) this.push(null);
  }

  override _read(): void {
    const w = this.#wantRead;
    if (w !== undefined) {
      this.#wantRead = undefined;
      w();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    this.#touch();
    this.#reader.push(chunk);
    this.#after(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk;
      this.bytesWritten += c.length;
      this.#reader.push(c);
    }
    this.#touch();
    this.#after(callback);
  }

  #after(callback: (error?: Error | null) => void): void {
    if (this.#owner.afterWrite()) callback();
    else this.#owner.drained().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#reader.finish();
    this.#owner.socketClosed(undefined, false);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    const w = this.#wantRead;
    this.#wantRead = undefined;
    w?.();
    this.#owner.socketClosed(error ?? undefined, true);
    callback(error);
  }

  // ---- the net.Socket surface servers and frameworks use ---------------------------------------

  setTimeout(ms: number, callback?: () => void): this {
    this.#timeoutMs = ms;
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    this.#touch();
    return this;
  }

  get timeout(): number {
    return this.#timeoutMs;
  }

  #touch(): void {
    if (this.#timeoutMs === 0) {
      this.#clearTimer();
      return;
    }
    if (this.#timer !== undefined) {
      this.#timer.refresh();
      return;
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.emit('timeout');
    }, this.#timeoutMs);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: this.localAddress.includes(':') ? 'IPv6' : 'IPv4', port: this.localPort };
  }
  get readyState(): string {
    if (this.destroyed) return 'closed';
    return this.readable && this.writable ? 'open' : this.readable ? 'readOnly' : this.writable ? 'writeOnly' : 'closed';
  }
  get connecting(): boolean {
    return false;
  }
  get pending(): boolean {
    return false;
  }
  resetAndDestroy(): this {
    return this.destroy();
  }
}
