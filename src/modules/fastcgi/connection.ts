/**
 * One connection to a FastCGI application (a php-cgi instance's socket, or a php-fpm address):
 * requests are opened on it, their bodies streamed as STDIN records, and the application's STDOUT,
 * STDERR and END_REQUEST records routed back by request id. Kept open between requests
 * (FCGI_KEEP_CONN). Several requests share it only when the application says it multiplexes
 * (FCGI_MPXS_CONNS, asked with FCGI_GET_VALUES); PHP does not, so a php-cgi connection carries one
 * request at a time.
 */
import type { Socket } from 'node:net';
import {
  decodePairs,
  encodeAbort,
  encodeGetValues,
  encodeRequestStart,
  encodeStdin,
  ProtocolStatus,
  RecordParser,
  RecordType,
} from './records.js';

export interface FcgiRequestEvents {
  /** STDOUT bytes: a view into the received data, valid during the call. */
  stdout(data: Buffer): void;
  stderr(data: Buffer): void;
  /** END_REQUEST: the application finished the request. */
  end(appStatus: number, protocolStatus: number): void;
  /** The connection broke before END_REQUEST. */
  broken(reason: string): void;
}

export interface ConnectionEvents {
  /**
   * The connection closed or broke. Called before the open requests hear of it (broken()), so
   * the owner still sees them open: a process that dies under a request has failed (rapid-fail
   * accounting), one that closes idle has not.
   */
  closed(conn: FcgiConnection, reason: string): void;
  /** The application answered FCGI_GET_VALUES. */
  values?(conn: FcgiConnection, values: Map<string, string>): void;
}

export class FcgiConnection {
  readonly #socket: Socket;
  readonly #events: ConnectionEvents;
  readonly #parser: RecordParser;
  readonly #requests = new Map<number, FcgiRequestEvents>();
  #nextId = 1;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  /** Requests the application accepts at once on this connection (1 unless it multiplexes). */
  capacity = 1;

  constructor(socket: Socket, events: ConnectionEvents) {
    this.#socket = socket;
    this.#events = events;
    this.#parser = new RecordParser({
      record: (type, id, content) => this.#record(type, id, content),
      malformed: (reason) => this.destroy(`the application broke the FastCGI protocol: ${reason}`),
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('drain', () => {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.#close(`the connection failed: ${err.code ?? err.message}`));
    socket.on('close', () => this.#close('the application closed the connection'));
    socket.on('end', () => socket.end());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Requests open on this connection. */
  get active(): number {
    return this.#requests.size;
  }

  /** Ask the application whether it multiplexes (answered through ConnectionEvents.values). */
  askValues(): void {
    if (!this.#closed) this.#socket.write(encodeGetValues(['FCGI_MPXS_CONNS', 'FCGI_MAX_REQS', 'FCGI_MAX_CONNS']));
  }

  /**
   * Open a request: BEGIN_REQUEST and PARAMS (and the end of STDIN when there is no body) in one
   * write. Returns its id.
   */
  begin(events: FcgiRequestEvents, params: Buffer, hasBody: boolean): number {
    let id = 1;
    if (this.capacity > 1) {
      do {
        id = this.#nextId;
        this.#nextId = this.#nextId >= 0xffff ? 1 : this.#nextId + 1;
      } while (this.#requests.has(id));
    }
    this.#requests.set(id, events);
    this.#socket.write(encodeRequestStart(id, true, params, !hasBody));
    return id;
  }

  /** Body bytes for request `id`; false when the caller should await drained(). */
  stdin(id: number, data: Buffer): boolean {
    if (this.#closed || data.length === 0) return !this.#closed;
    const records = encodeStdin(id, data);
    let ok = true;
    for (let i = 0; i < records.length; i++) ok = this.#socket.write(records[i]!);
    return ok;
  }

  endStdin(id: number): void {
    if (!this.#closed) this.#socket.write(encodeStdin(id, Buffer.alloc(0))[0]!);
  }

  drained(): Promise<void> {
    if (this.#closed || !this.#socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Stop reading (the client is slower than the application): TCP backpressure reaches it. */
  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  /** Tell the application to stop request `id` (FCGI_ABORT_REQUEST); its END_REQUEST still comes. */
  abort(id: number): void {
    if (!this.#closed && this.#requests.has(id)) this.#socket.write(encodeAbort(id));
  }

  /** Forget request `id` without waiting for its end (the caller gave up on it). */
  forget(id: number): void {
    this.#requests.delete(id);
  }

  destroy(reason: string): void {
    this.#close(reason);
  }

  #record(type: number, id: number, content: Buffer): void {
    if (id === 0) {
      if (type === RecordType.GetValuesResult) {
        const values = decodePairs(content);
        if (values.get('FCGI_MPXS_CONNS') === '1') {
          const max = Number(values.get('FCGI_MAX_REQS') ?? '');
          this.capacity = Number.isInteger(max) && max > 1 ? Math.min(max, 256) : 16;
        }
        this.#events.values?.(this, values);
      }
      return;
    }
    const req = this.#requests.get(id);
    if (req === undefined) return; // a request we forgot (aborted): its records are dropped
    switch (type) {
      case RecordType.Stdout:
        if (content.length > 0) req.stdout(content);
        return;
      case RecordType.Stderr:
        if (content.length > 0) req.stderr(content);
        return;
      case RecordType.EndRequest: {
        this.#requests.delete(id);
        const appStatus = content.length >= 4 ? content.readUInt32BE(0) : 0;
        const protocolStatus = content.length >= 5 ? content[4]! : ProtocolStatus.RequestComplete;
        req.end(appStatus, protocolStatus);
        return;
      }
      default:
        return;
    }
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#parser.stop();
    this.#socket.destroy();
    const open = [...this.#requests.values()];
    this.#requests.clear();
    this.#events.closed(this, reason);
    for (const r of open) r.broken(reason);
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}
