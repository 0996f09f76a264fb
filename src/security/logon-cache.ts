/**
 * IIS's logon token cache in the main process: a verified logon is reused for LOGON_CACHE_TTL_MS
 * (UserTokenTTL's default) without asking PAM or hashing again. The key is an HMAC, with a key
 * made at start-up, of what identifies the logon (provider list, domain, user, password): the
 * password itself is never kept. Failures are not cached (a user who fixes a typo is not locked
 * out by the cache). Bounded: the oldest entry goes first.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LOGON_CACHE_TTL_MS, type CredentialResult } from '../ipc/credential-messages.js';

export const MAX_LOGON_CACHE = 10_000;

interface Entry {
  readonly result: CredentialResult & { ok: true };
  readonly until: number;
}

export class LogonCache {
  readonly #secret = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(options: { ttlMs?: number; max?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? LOGON_CACHE_TTL_MS;
    this.#max = options.max ?? MAX_LOGON_CACHE;
    this.#now = options.now ?? Date.now;
  }

  /** The key of one logon: length-prefixed parts, so no two different logons share an input. */
  key(parts: readonly string[]): string {
    const h = createHmac('sha256', this.#secret);
    for (const p of parts) h.update(`${p.length}:${p};`);
    return h.digest('base64');
  }

  get(key: string): (CredentialResult & { ok: true }) | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.until > this.#now()) return e.result;
    this.#entries.delete(key);
    return undefined;
  }

  set(key: string, result: CredentialResult & { ok: true }): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { result, until: this.#now() + this.#ttlMs });
  }

  /** Forget the logons of one provider (Wharf's users changed). */
  forget(provider: 'system' | 'wharf'): void {
    for (const [k, e] of this.#entries) if (e.result.identity.provider === provider) this.#entries.delete(k);
  }

  get size(): number {
    return this.#entries.size;
  }
}
