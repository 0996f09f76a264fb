/**
 * A request body as the listener streams it: chunks queue here until the handler reads them.
 * When more than `highWaterMark` bytes wait unread, the worker asks the listener to stop reading
 * the client (RequestPause) and resumes it once the handler catches up.
 *
 * A body of unknown length (chunked) may carry a cap (requestFiltering maxAllowedContentLength):
 * bytes are counted as they arrive, whether or not anyone reads them, and once past the cap the
 * body fails with MOD_BODY_TOO_LARGE: what is queued is dropped, the listener stays paused, and
 * the reader's next read throws, so no handler consumes a byte beyond the cap.
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
  /** Bytes that arrived so far, and the most that may (limit()); Infinity: no cap. */
  #received = 0;
  #max = Number.POSITIVE_INFINITY;
  readonly #flow: BodyFlowControl;
  readonly #highWaterMark: number;

  constructor(flow: BodyFlowControl, highWaterMark = 256 * 1024) {
    this.#flow = flow;
    this.#highWaterMark = highWaterMark;
  }

  /** Cap the body at `maxBytes`; bytes that arrived already count (see the class comment). */
  limit(maxBytes: number): void {
    this.#max = maxBytes;
    this.#checkLimit();
  }

  push(chunk: Buffer): void {
    if (this.#ended) return;
    this.#received += chunk.length;
    if (this.#checkLimit()) return;
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

  /** Past the cap: fail the body (true). The listener stops reading the client until the answer is sent. */
  #checkLimit(): boolean {
    if (this.#received <= this.#max || this.#ended) return false;
    this.#chunks = [];
    this.#queued = 0;
    if (!this.#paused) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.fail(new ModuleError('MOD_BODY_TOO_LARGE', `the request body is longer than the ${this.#max} bytes allowed (requestFiltering maxAllowedContentLength)`));
    return true;
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
