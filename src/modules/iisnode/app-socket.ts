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
import { Server as HttpsServer } from 'node:https';
import type { AppServer } from './in-process-host.js';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { TlsInfo } from '../../worker/module-api.js';

export interface SocketEndpoint {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** The client connection's TLS facts when the request came over https. */
  readonly tls?: TlsInfo | undefined;
}

/** What tls.TLSSocket#getPeerCertificate() returns for the client certificate (or {} without one). */
function peerCertificate(t: TlsInfo): PeerCertificate | Record<string, never> {
  if (t.clientCert === '') return {};
  try {
    return new X509Certificate(Buffer.from(t.clientCert, 'base64')).toLegacyObject() as unknown as PeerCertificate;
  } catch {
    return {};
  }
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
  // The client's and the listener's addresses of the request being served: a socket serves one
  // request at a time and is kept alive between them (see SocketPool), so these move with it.
  remoteAddress = '';
  remotePort = 0;
  remoteFamily = 'IPv4';
  localAddress = '';
  localPort = 0;
  /**
   * TLS ends at the listener, but the app sees what a TLS socket would show for an https request
   * (Express's req.secure and req.protocol read `encrypted`), and nothing of it for plain http:
   * these are set per request, since a pooled socket serves both.
   */
  encrypted: true | undefined = undefined;
  authorized: boolean | undefined = undefined;
  authorizationError: string | undefined = undefined;
  alpnProtocol: string | false | undefined = undefined;
  getPeerCertificate: ((detailed?: boolean) => PeerCertificate | Record<string, never>) | undefined = undefined;
  getProtocol: (() => string) | undefined = undefined;
  getCipher: (() => { name: string; standardName: string; version: string }) | undefined = undefined;
  #reader: ResponseReader | undefined;
  #owner: SocketOwner | undefined;
  #wantRead: (() => void) | undefined;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The duration #timer was made with; #armed: whether its expiry counts (see #touch). */
  #timerMs = 0;
  #armed = false;
  bytesRead = 0;
  bytesWritten = 0;

  constructor() {
    // allowHalfOpen: the request's end is not the response's; the app ends its side itself.
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024, decodeStrings: true });
  }

  /** Serve the next request on this socket: its addresses, where its response goes. */
  attach(endpoint: SocketEndpoint, reader: ResponseReader, owner: SocketOwner): void {
    this.remoteAddress = endpoint.remoteAddress;
    this.remotePort = endpoint.remotePort;
    this.remoteFamily = endpoint.remoteAddress.includes(':') ? 'IPv6' : 'IPv4';
    this.localAddress = endpoint.localAddress;
    this.localPort = endpoint.localPort;
    const t = endpoint.tls;
    if (t !== undefined) {
      this.encrypted = true;
      this.authorized = t.clientCert !== '' && t.clientCertError === '';
      this.authorizationError = t.clientCertError === '' ? undefined : t.clientCertError;
      this.alpnProtocol = t.alpn === '' ? false : t.alpn;
      let peer: PeerCertificate | Record<string, never> | undefined;
      this.getPeerCertificate = () => (peer ??= peerCertificate(t));
      this.getProtocol = () => t.protocol;
      this.getCipher = () => ({ name: t.cipher, standardName: t.cipher, version: t.protocol });
    } else if (this.encrypted !== undefined) {
      this.encrypted = undefined;
      this.authorized = undefined;
      this.authorizationError = undefined;
      this.alpnProtocol = undefined;
      this.getPeerCertificate = undefined;
      this.getProtocol = undefined;
      this.getCipher = undefined;
    }
    this.#reader = reader;
    this.#owner = owner;
  }

  /** The request is over and the socket idles (kept alive) until the next one. */
  detach(): void {
    this.#reader = undefined;
    this.#owner = undefined;
  }

  /** Request bytes towards the app; false when it should wait for readWanted(). */
  feed(chunk: Buffer): boolean {
    this.bytesRead += chunk.length;
    this.#touch();
    try {
      // Node's parser and the app's request handler run inside push().
      return this.push(chunk);
    } catch (err) {
      // A request handler that throws ends the process under `node`: the same here, so the
      // pool's crash rules apply (instead of the exception surfacing in Wharf's pipeline).
      process.nextTick(() => {
        throw err;
      });
      return false;
    }
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
    // Between requests nothing should be written; what is (Node's own 400 for bytes it could not
    // parse) has no client to go to.
    this.#reader?.push(chunk);
    this.#after(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const reader = this.#reader;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!.chunk;
      this.bytesWritten += c.length;
      reader?.push(c);
    }
    this.#touch();
    this.#after(callback);
  }

  #after(callback: (error?: Error | null) => void): void {
    const owner = this.#owner;
    if (owner === undefined || owner.afterWrite()) callback();
    else owner.drained().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#reader?.finish();
    this.#owner?.socketClosed(undefined, false);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearTimer();
    const w = this.#wantRead;
    this.#wantRead = undefined;
    w?.();
    this.#owner?.socketClosed(error ?? undefined, true);
    this.emit('wharf:destroyed');
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

  /**
   * Node's server disarms the timeout when a request arrives (setTimeout(0)) and arms its
   * keepAliveTimeout again after the response: a disarmed timer is kept, and fires without effect
   * if it is not armed again first, so the next arming refreshes it instead of allocating a timer
   * per request.
   */
  #touch(): void {
    const ms = this.#timeoutMs;
    if (ms === 0) {
      this.#armed = false;
      return;
    }
    this.#armed = true;
    const t = this.#timer;
    if (t !== undefined && this.#timerMs === ms) {
      t.refresh();
      return;
    }
    if (t !== undefined) clearTimeout(t);
    this.#timerMs = ms;
    this.#timer = setTimeout(this.#onTimer, ms);
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#armed) this.emit('timeout');
  };

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

/**
 * Idle sockets of one application's server, kept alive between requests like a proxy's upstream
 * connections: Node's connection set-up (parser, listeners, state) is paid once per socket, not
 * once per request. Node itself ends an idle socket after its server's keepAliveTimeout; such a
 * socket leaves the pool as it closes.
 */
export class SocketPool {
  readonly #server: AppServer;
  /** An https.Server takes its connections as 'secureConnection' (TLS ended at the listener). */
  readonly #event: 'connection' | 'secureConnection';
  readonly #idle: AppSocket[] = [];
  readonly #max: number;

  constructor(server: AppServer, maxIdle = 128) {
    this.#server = server;
    this.#event = server instanceof HttpsServer ? 'secureConnection' : 'connection';
    this.#max = maxIdle;
  }

  take(): AppSocket {
    for (;;) {
      const s = this.#idle.pop();
      if (s === undefined) break;
      if (!s.destroyed && s.writable && !s.readableEnded) return s;
    }
    const s = new AppSocket();
    s.once('wharf:destroyed', () => {
      const i = this.#idle.indexOf(s);
      if (i !== -1) this.#idle.splice(i, 1);
    });
    // The documented way to give an http.Server a connection it did not accept itself.
    this.#server.emit(this.#event, s);
    return s;
  }

  release(s: AppSocket): void {
    s.detach();
    if (this.#idle.length >= this.#max || s.destroyed) {
      s.destroy();
      return;
    }
    this.#idle.push(s);
  }
}
