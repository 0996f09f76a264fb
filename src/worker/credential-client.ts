/**
 * The worker's CredentialClient (WorkerServices.credentials): each check travels to the main
 * process on the control channel (ControlType.CredentialCheck) and resolves with its
 * CredentialResult. A check that gets no answer within CHECK_TIMEOUT_MS, or whose answer is lost
 * because the channel closed, resolves 'unavailable': a module never waits forever.
 *
 * Successful password and account checks are cached here for LOGON_CACHE_TTL_MS, so Basic on a
 * keep-alive connection costs a hash, not a round trip, per request. The key is a salted SHA-256
 * of what was asked (never the password itself); failures are not cached; the cache is bounded
 * and emptied when Wharf's user store changes. A client address the main process throttles is
 * throttled here too, before the cache is looked at: a cache hit must not tell a guesser that a
 * guess was right.
 */
import { hash, randomBytes } from 'node:crypto';
import { LOGON_CACHE_TTL_MS, LOGON_THROTTLE_MS, type CredentialClient, type CredentialRequest, type CredentialResult } from '../ipc/credential-messages.js';

/** A check without an answer after this long resolves 'unavailable'. */
export const CHECK_TIMEOUT_MS = 10_000;
/** Cached logons per worker; the oldest goes first beyond this. */
export const MAX_CACHED_LOGONS = 1000;
/** Throttled client addresses a worker remembers. */
const MAX_THROTTLED = 10_000;

interface Pending {
  readonly resolve: (r: CredentialResult) => void;
  readonly timer: NodeJS.Timeout;
}

export interface CredentialClientOptions {
  readonly timeoutMs?: number;
  readonly now?: () => number;
}

export class ControlCredentialClient implements CredentialClient {
  readonly #send: (id: number, request: CredentialRequest) => void;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #salt = randomBytes(16).toString('base64');
  readonly #pending = new Map<number, Pending>();
  readonly #cache = new Map<string, { readonly result: CredentialResult; readonly until: number }>();
  readonly #throttled = new Map<string, number>();
  #nextId = 1;
  #closed = false;

  constructor(send: (id: number, request: CredentialRequest) => void, options: CredentialClientOptions = {}) {
    this.#send = send;
    this.#timeoutMs = options.timeoutMs ?? CHECK_TIMEOUT_MS;
    this.#now = options.now ?? Date.now;
  }

  cached(request: CredentialRequest): CredentialResult | undefined {
    return this.#local(request, this.#now()).result;
  }

  /** What is known here: the throttled answer or a fresh cached logon (result), and the cache key. */
  #local(request: CredentialRequest, now: number): { result: CredentialResult | undefined; key: string | undefined } {
    const address = 'clientAddress' in request ? request.clientAddress : undefined;
    if (address !== undefined && this.#throttled.size !== 0) {
      const until = this.#throttled.get(address);
      if (until !== undefined) {
        if (until > now) return { result: { ok: false, reason: 'throttled', message: `client ${address} failed to log on too often` }, key: undefined };
        this.#throttled.delete(address);
      }
    }
    const key = this.#keyOf(request);
    if (key !== undefined) {
      const hit = this.#cache.get(key);
      if (hit !== undefined) {
        if (hit.until > now) return { result: hit.result, key };
        this.#cache.delete(key);
      }
    }
    return { result: undefined, key };
  }

  check(request: CredentialRequest): Promise<CredentialResult> {
    const { result, key } = this.#local(request, this.#now());
    if (result !== undefined) return Promise.resolve(result);
    const address = 'clientAddress' in request ? request.clientAddress : undefined;
    if (this.#closed) return Promise.resolve({ ok: false, reason: 'unavailable', message: 'the control channel to the main process is closed' });
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise<CredentialResult>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve({ ok: false, reason: 'unavailable', message: `the main process did not answer a credential check within ${this.#timeoutMs} ms` });
      }, this.#timeoutMs);
      this.#pending.set(id, { resolve, timer });
      this.#send(id, request);
    }).then((r) => this.#settled(r, key, address));
  }

  #settled(result: CredentialResult, key: string | undefined, address: string | undefined): CredentialResult {
    if (result.ok && key !== undefined) {
      if (this.#cache.size >= MAX_CACHED_LOGONS) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(key, { result, until: this.#now() + LOGON_CACHE_TTL_MS });
    } else if (!result.ok && result.reason === 'throttled' && address !== undefined) {
      if (this.#throttled.size >= MAX_THROTTLED) this.#throttled.delete(this.#throttled.keys().next().value!);
      this.#throttled.set(address, this.#now() + LOGON_THROTTLE_MS);
    }
    return result;
  }

  /** The main process answered check `id` (late answers, after a timeout, are dropped). */
  answer(id: number, result: CredentialResult): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(result);
  }

  /** Wharf's users changed: forget every cached logon. */
  flush(): void {
    this.#cache.clear();
  }

  /** The control channel closed: what waits can never be answered. */
  closed(): void {
    this.#closed = true;
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.resolve({ ok: false, reason: 'unavailable', message: 'the control channel to the main process closed' });
    }
  }

  /** Cacheable kinds only (a Digest response and a Negotiate token are single-use). */
  #keyOf(r: CredentialRequest): string | undefined {
    if (r.kind !== 'password' && r.kind !== 'account') return undefined;
    // Length-prefixed fields: no two different requests give the same input. One string and the
    // one-shot hash (no Hash object per request): this runs for every Basic request.
    let input = this.#salt;
    for (const part of r.kind === 'password' ? [r.kind, r.providers.join(','), r.domain, r.user, r.password] : [r.kind, r.providers.join(','), r.user]) input += `${part.length}:${part};`;
    return hash('sha256', input, 'base64');
  }

}
