/**
 * dynamicIpSecurity's counters: requests in progress and requests in the current interval, per
 * client address. Bounded: at most `maxClients` addresses are tracked, the least recently
 * (re)started one is forgotten first, so a client rotating through IPv6 addresses costs a fixed
 * amount of memory (it then only ever sees fresh counters, as its addresses each would anyway).
 *
 * The interval is a fixed window per client, started by its first request: more than
 * `maxRequests` requests before it ends → 502. Refused requests count too, so a client that keeps
 * flooding stays refused until it slows down. The clock is injected (milliseconds).
 */
import { IP_DENIED, type DynamicIpPolicy } from './ip-security-rules.js';

/** One client's counts. A request that was admitted keeps a reference, to release it. */
export interface ClientCounter {
  /** Requests admitted and not yet ended. */
  concurrent: number;
  windowStart: number;
  /** Requests seen since windowStart. */
  requests: number;
}

/** Addresses tracked at once by default (about 100 bytes each). */
export const DEFAULT_MAX_CLIENTS = 65_536;

export class DynamicIpCounters {
  readonly #clients = new Map<string, ClientCounter>();
  readonly #max: number;

  constructor(maxClients = DEFAULT_MAX_CLIENTS) {
    this.#max = maxClients;
  }

  get size(): number {
    return this.#clients.size;
  }

  /**
   * Count one request of `client` (a canonical address text) at `now`: the sub-status that
   * denies it (501 concurrent requests, 502 request rate), else 0. `counter` is the client's,
   * to pass to `admitted` when the request goes on (counted as in progress).
   */
  check(policy: DynamicIpPolicy, client: string, now: number): { readonly denial: 0 | 501 | 502; readonly counter: ClientCounter } {
    let c = this.#clients.get(client);
    if (c === undefined) {
      if (this.#clients.size >= this.#max) this.#clients.delete(this.#clients.keys().next().value as string);
      c = { concurrent: 0, windowStart: now, requests: 0 };
      this.#clients.set(client, c);
    } else if (now - c.windowStart >= policy.intervalMs) {
      c.windowStart = now;
      c.requests = 0;
      // Re-inserted: the Map's order is then "least recently active first", what eviction takes.
      this.#clients.delete(client);
      this.#clients.set(client, c);
    }
    c.requests++;
    if (policy.maxConcurrent > 0 && c.concurrent >= policy.maxConcurrent) return { denial: IP_DENIED.concurrentRequests, counter: c };
    if (policy.maxRequests > 0 && c.requests > policy.maxRequests) return { denial: IP_DENIED.requestRate, counter: c };
    return { denial: 0, counter: c };
  }

  /** Forget every client (a changed policy starts afresh). */
  clear(): void {
    this.#clients.clear();
  }
}

/** The request goes on: it counts as in progress until `released`. */
export function admitted(c: ClientCounter): void {
  c.concurrent++;
}

export function released(c: ClientCounter): void {
  if (c.concurrent > 0) c.concurrent--;
}
