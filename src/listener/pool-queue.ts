/**
 * An application pool's request queue (HTTP.sys keeps one per pool). Requests wait here while no
 * worker is ready — during start-up, after a crash, during a recycle — and survive the death of
 * any worker. Ready workers take requests least-outstanding first (web gardens).
 */
import type { Exchange } from './exchange.js';
import type { WorkerEndpoint } from './worker-endpoint.js';
import type { HttpErrReason } from './logging/httperr-log.js';
import type { HttpSysErrorPage } from './http-response.js';
import { queueEnter, queueLeave, queueReject, type QueueLeaveEvent } from '../diagnostics.js';
import { poolKey, type PoolKey } from '../config/pool-key.js';

export type PoolQueueState = 'Started' | 'Stopped';

export interface PoolQueueHost {
  /** Ask the activation service for a worker for this pool. */
  demand(pool: PoolQueue): void;
  /**
   * Answer an exchange from the listener itself and log the httperr reason; with `reset` the
   * connection is reset instead (loadBalancerCapabilities TcpLevel).
   */
  reject(ex: Exchange, page: HttpSysErrorPage, reason: HttpErrReason, reset?: boolean): void;
  /** A worker was given periodicRestart requests requests: WAS recycles it. */
  requestLimitReached(pool: PoolQueue, w: WorkerEndpoint): void;
  /** How long a request may wait in the queue (its site's connectionTimeout). */
  queueTimeoutMs(ex: Exchange): number;
  /** A request waited longer than that: HTTP.sys drops its connection (httperr Timer_AppPool). */
  expire(ex: Exchange): void;
}

/** How often waiting requests are checked against their queue timeout. */
const QUEUE_SWEEP_MS = 1000;

export class PoolQueue {
  readonly name: string;
  readonly key: PoolKey;
  queueLength: number;
  state: PoolQueueState = 'Started';
  /** Why the pool is stopped: 'Disabled' (admin) or 'AppOffline' (rapid-fail). */
  stopReason: HttpErrReason = 'Disabled';
  /** While stopped: reset connections instead of answering 503 (loadBalancerCapabilities TcpLevel). */
  resetConnections = false;
  /** Web garden size: another worker is demanded while every ready one is busy and there are fewer. */
  maxProcesses = 1;
  /** The hosted app's own process count (iisnode nodeProcessCountPerApplication), 0 = none: the larger counts. */
  hintedProcesses = 0;
  /** periodicRestart requests (0 = no limit). */
  requestLimit = 0;
  readonly #host: PoolQueueHost;
  #pending: Exchange[] = [];
  #head = 0;
  /** Workers that can take requests, as counted by the last #pick(). */
  #readyCount = 0;
  #sweeper: NodeJS.Timeout | undefined;
  /** Requests waiting now (pendingCount also counts cancelled ones until they are skipped). */
  #waiting = 0;
  readonly workers: WorkerEndpoint[] = [];

  constructor(name: string, queueLength: number, host: PoolQueueHost) {
    this.name = name;
    this.key = poolKey(name);
    this.queueLength = queueLength;
    this.#host = host;
  }

  /** Requests waiting for a worker (cancelled ones are skipped lazily). */
  get pendingCount(): number {
    return this.#pending.length - this.#head;
  }

  submit(ex: Exchange): void {
    if (this.state === 'Stopped') {
      if (queueReject.hasSubscribers) queueReject.publish({ key: ex, poolName: this.name, reason: this.stopReason });
      this.#host.reject(ex, 'serviceUnavailable', this.stopReason, this.resetConnections);
      return;
    }
    const w = this.#pick();
    if (w !== undefined && this.pendingCount === 0) {
      // Web garden: every ready worker is busy and the pool may have more, so ask for one.
      if (w.outstanding > 0 && this.#readyCount < Math.max(this.maxProcesses, this.hintedProcesses)) this.#host.demand(this);
      this.#dispatch(w, ex);
      return;
    }
    if (this.pendingCount >= this.queueLength) {
      if (queueReject.hasSubscribers) queueReject.publish({ key: ex, poolName: this.name, reason: 'QueueFull' });
      this.#host.reject(ex, 'serviceUnavailable', 'QueueFull');
      return;
    }
    this.#pending.push(ex);
    this.#enter(ex);
    this.#armSweeper();
    if (w !== undefined) this.#drain();
    else this.#host.demand(this);
  }

  /** While requests wait, drop those older than their site's connectionTimeout (Timer_AppPool). */
  #armSweeper(): void {
    if (this.#sweeper !== undefined) return;
    this.#sweeper = setInterval(() => {
      if (this.pendingCount === 0) {
        clearInterval(this.#sweeper);
        this.#sweeper = undefined;
        return;
      }
      const now = performance.now();
      for (let i = this.#head; i < this.#pending.length; i++) {
        const ex = this.#pending[i]!;
        if (ex.state === 'queued' && now - ex.startedAt > this.#host.queueTimeoutMs(ex)) {
          this.leave(ex, 'expired');
          this.#host.expire(ex);
        }
      }
    }, QUEUE_SWEEP_MS);
    this.#sweeper.unref();
  }

  /** Put a replayed request at the front: it was accepted before anything still waiting. */
  requeueFront(ex: Exchange): void {
    if (this.#head > 0) this.#pending[--this.#head] = ex;
    else this.#pending.unshift(ex);
    this.#enter(ex);
    this.#armSweeper();
  }

  /** `ex` joins the queue (its state becomes queued unless it is already, as a replay's is). */
  #enter(ex: Exchange): void {
    if (ex.state !== 'queued') ex.to('queued');
    ex.queue = this;
    ex.queuedAt = performance.now();
    this.#waiting++;
    if (queueEnter.hasSubscribers) queueEnter.publish({ key: ex, poolName: this.name, length: this.#waiting });
  }

  /** `ex` leaves the queue (once; a cancelled one stays in #pending until skipped). */
  leave(ex: Exchange, outcome: QueueLeaveEvent['outcome']): void {
    if (ex.queue !== this) return;
    ex.queue = undefined;
    this.#waiting--;
    if (queueLeave.hasSubscribers) queueLeave.publish({ key: ex, poolName: this.name, waitedMs: performance.now() - ex.queuedAt, outcome, length: this.#waiting });
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

  /** Stop the pool: waiting requests get 503 with the reason (Disabled / AppOffline), or a reset. */
  stop(reason: HttpErrReason, resetConnections = false): void {
    this.state = 'Stopped';
    this.stopReason = reason;
    this.resetConnections = resetConnections;
    for (const ex of this.#takeAll()) {
      this.leave(ex, 'rejected');
      this.#host.reject(ex, 'serviceUnavailable', reason, resetConnections);
    }
  }

  start(): void {
    this.state = 'Started';
    this.resetConnections = false;
  }

  #dispatch(w: WorkerEndpoint, ex: Exchange): void {
    w.dispatch(ex);
    if (this.requestLimit > 0 && w.dispatched === this.requestLimit) this.#host.requestLimitReached(this, w);
  }

  #takeAll(): Exchange[] {
    const all = this.#pending.slice(this.#head).filter((ex) => ex.state === 'queued');
    this.#pending = [];
    this.#head = 0;
    return all;
  }

  /** Least outstanding requests first (IIS's web garden dispatch is per connection; per request balances better). */
  #pick(): WorkerEndpoint | undefined {
    let best: WorkerEndpoint | undefined;
    let ready = 0;
    for (let i = 0; i < this.workers.length; i++) {
      const w = this.workers[i]!;
      if (w.state !== 'ready') continue;
      ready++;
      if (best === undefined || w.outstanding < best.outstanding) best = w;
    }
    this.#readyCount = ready;
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
      if (w.outstanding > 0 && this.#readyCount < Math.max(this.maxProcesses, this.hintedProcesses)) this.#host.demand(this);
      this.#pending[this.#head++] = undefined as unknown as Exchange;
      this.leave(ex, 'dispatched');
      this.#dispatch(w, ex);
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
