/**
 * A request body as the listener streams it: chunks queue here until the handler reads them.
 * When more than `highWaterMark` bytes wait unread, the worker asks the listener to stop reading
 * the client (RequestPause) and resumes it once the handler catches up.
 */
import { ModuleError } from '../errors.js';

export interface BodyFlowControl {
  pause(): void;
  resume(): void;
}

export class RequestBody implements AsyncIterable<Buffer> {
  /** Trailer fields the client sent after a chunked body (flat name/value pairs). */
  trailers: readonly string[] = [];
  #chunks: Buffer[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | undefined;
  #waiter: (() => void) | undefined;
  #paused = false;
  #iterated = false;
  readonly #flow: BodyFlowControl;
  readonly #highWaterMark: number;

  constructor(flow: BodyFlowControl, highWaterMark = 256 * 1024) {
    this.#flow = flow;
    this.#highWaterMark = highWaterMark;
  }

  push(chunk: Buffer): void {
    if (this.#ended) return;
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (!this.#paused && this.#queued > this.#highWaterMark) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.#wake();
  }

  end(trailers?: readonly string[]): void {
    if (trailers !== undefined) this.trailers = trailers;
    this.#ended = true;
    this.#wake();
  }

  fail(error: Error): void {
    this.#error = error;
    this.#ended = true;
    this.#wake();
  }

  get ended(): boolean {
    return this.#ended;
  }

  #wake(): void {
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w();
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.#iterated) throw new ModuleError('MOD_BODY_CONSUMED', 'the request body can be read once');
    this.#iterated = true;
    for (;;) {
      if (this.#chunks.length > 0) {
        const c = this.#chunks.shift()!;
        this.#queued -= c.length;
        if (this.#paused && this.#queued <= this.#highWaterMark / 2) {
          this.#paused = false;
          this.#flow.resume();
        }
        yield c;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }
}
