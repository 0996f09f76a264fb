/**
 * An application pool's request queue (HTTP.sys keeps one per pool). Requests wait here while no
 * worker is ready — during start-up, after a crash, during a recycle — and survive the death of
 * any worker. Ready workers take requests least-outstanding first (web gardens).
 */
import type { Exchange } from './exchange.js';
import type { WorkerEndpoint } from './worker-endpoint.js';
import type { HttpErrReason } from './httperr-log.js';
import type { HttpSysErrorPage } from './http-response.js';

export type PoolQueueState = 'Started' | 'Stopped';

export interface PoolQueueHost {
  /** Ask the activation service for a worker for this pool. */
  demand(pool: PoolQueue): void;
  /** Answer an exchange from the listener itself and log the httperr reason. */
  reject(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason): void;
}

export class PoolQueue {
  readonly name: string;
  queueLength: number;
  state: PoolQueueState = 'Started';
  /** Why the pool is stopped: 'Disabled' (admin) or 'AppOffline' (rapid-fail). */
  stopReason: HttpErrReason = 'Disabled';
  readonly #host: PoolQueueHost;
  #pending: Exchange[] = [];
  #head = 0;
  readonly workers: WorkerEndpoint[] = [];

  constructor(name: string, queueLength: number, host: PoolQueueHost) {
    this.name = name;
    this.queueLength = queueLength;
    this.#host = host;
  }

  /** Requests waiting for a worker (cancelled ones are skipped lazily). */
  get pendingCount(): number {
    return this.#pending.length - this.#head;
  }

  submit(ex: Exchange): void {
    if (this.state === 'Stopped') {
      this.#host.reject(ex, 'serviceUnavailable', this.stopReason);
      return;
    }
    const w = this.#pick();
    if (w !== undefined && this.pendingCount === 0) {
      w.dispatch(ex);
      return;
    }
    if (this.pendingCount >= this.queueLength) {
      this.#host.reject(ex, 'serviceUnavailable', 'QueueFull');
      return;
    }
    this.#pending.push(ex);
    if (w !== undefined) this.#drain();
    else this.#host.demand(this);
  }

  /** Put a replayed request at the front: it was accepted before anything still waiting. */
  requeueFront(ex: Exchange): void {
    if (this.#head > 0) this.#pending[--this.#head] = ex;
    else this.#pending.unshift(ex);
  }

  workerReady(w: WorkerEndpoint): void {
    if (!this.workers.includes(w)) this.workers.push(w);
    this.#drain();
  }

  /** A worker can take more (one of its requests finished). */
  workerIdle(): void {
    if (this.pendingCount > 0) this.#drain();
  }

  workerGone(w: WorkerEndpoint): void {
    const i = this.workers.indexOf(w);
    if (i !== -1) this.workers.splice(i, 1);
  }

  /** After a worker left: start another when requests are waiting. */
  ensureCapacity(): void {
    if (this.pendingCount > 0 && this.#pick() === undefined && this.state === 'Started') this.#host.demand(this);
    else if (this.pendingCount > 0) this.#drain();
  }

  /** Stop the pool: waiting requests get 503 with the reason (Disabled / AppOffline). */
  stop(reason: HttpErrReason): void {
    this.state = 'Stopped';
    this.stopReason = reason;
    for (const ex of this.#takeAll()) this.#host.reject(ex, 'serviceUnavailable', reason);
  }

  start(): void {
    this.state = 'Started';
  }

  #takeAll(): Exchange[] {
    const all = this.#pending.slice(this.#head).filter((ex) => ex.state === 'queued');
    this.#pending = [];
    this.#head = 0;
    return all;
  }

  #pick(): WorkerEndpoint | undefined {
    let best: WorkerEndpoint | undefined;
    for (let i = 0; i < this.workers.length; i++) {
      const w = this.workers[i]!;
      if (w.state !== 'ready') continue;
      if (best === undefined || w.outstanding < best.outstanding) best = w;
    }
    return best;
  }

  #drain(): void {
    while (this.#head < this.#pending.length) {
      const ex = this.#pending[this.#head]!;
      if (ex.state !== 'queued') {
        this.#head++;
        continue;
      }
      const w = this.#pick();
      if (w === undefined) break;
      this.#pending[this.#head++] = undefined as unknown as Exchange;
      w.dispatch(ex);
    }
    if (this.#head === this.#pending.length) {
      this.#pending = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head);
      this.#head = 0;
    }
  }
}
