/**
 * Digest nonces (RFC 7616 §3.3, §5.4) a worker issues and checks without keeping a list of them:
 * a nonce is base64url(issued-at ‖ random ‖ HMAC-SHA-256(key, issued-at ‖ random)) under a key
 * drawn when the worker starts. A nonce this worker did not make fails its MAC; one older than
 * the lifetime is stale (the client retries with the new nonce of `stale=true`, without asking
 * the user again).
 *
 * Replays: each nonce's highest `nc` is remembered, and a request must send a higher one. The
 * memory is bounded: when a nonce is evicted to make room, every nonce issued no later than it
 * is answered stale from then on, so a forgotten nonce can never be replayed.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a nonce is accepted. */
export const NONCE_LIFETIME_MS = 5 * 60_000;
/** Nonces whose `nc` is remembered; beyond this the oldest used goes first (see above). */
export const MAX_TRACKED_NONCES = 10_000;

const TIME_BYTES = 6;
const RANDOM_BYTES = 8;
const MAC_BYTES = 16;
const NONCE_BYTES = TIME_BYTES + RANDOM_BYTES + MAC_BYTES;

export type NonceVerdict = 'ok' | 'stale' | 'invalid' | 'replay';

export class DigestNonces {
  readonly #key: Buffer;
  readonly #now: () => number;
  readonly #maxTracked: number;
  /** nonce → issued-at and the highest nc seen, in order of first use. */
  readonly #seen = new Map<string, { readonly issued: number; nc: number }>();
  /** Nonces issued at or before this were forgotten: they are stale. */
  #forgottenUpTo = -1;

  constructor(options: { now?: () => number; maxTracked?: number; key?: Buffer } = {}) {
    this.#key = options.key ?? randomBytes(32);
    this.#now = options.now ?? Date.now;
    this.#maxTracked = options.maxTracked ?? MAX_TRACKED_NONCES;
  }

  issue(): string {
    const body = Buffer.allocUnsafe(TIME_BYTES + RANDOM_BYTES);
    body.writeUIntBE(this.#now(), 0, TIME_BYTES);
    randomBytes(RANDOM_BYTES).copy(body, TIME_BYTES);
    return Buffer.concat([body, this.#mac(body)]).toString('base64url');
  }

  /** Check `nonce` with the client's `nc` (8 hex digits) and record it when accepted. */
  use(nonce: string, ncHex: string): NonceVerdict {
    if (nonce.length !== Math.ceil((NONCE_BYTES * 4) / 3) || !/^[A-Za-z0-9_-]+$/.test(nonce)) return 'invalid';
    const raw = Buffer.from(nonce, 'base64url');
    if (raw.length !== NONCE_BYTES) return 'invalid';
    const body = raw.subarray(0, TIME_BYTES + RANDOM_BYTES);
    if (!timingSafeEqual(raw.subarray(TIME_BYTES + RANDOM_BYTES), this.#mac(body))) return 'invalid';
    if (!/^[0-9a-fA-F]{8}$/.test(ncHex)) return 'invalid';
    const nc = parseInt(ncHex, 16);
    const issued = raw.readUIntBE(0, TIME_BYTES);
    const now = this.#now();
    if (issued > now + 1000) return 'invalid';
    if (now - issued > NONCE_LIFETIME_MS) {
      this.#seen.delete(nonce);
      return 'stale';
    }
    const entry = this.#seen.get(nonce);
    if (entry !== undefined) {
      if (nc <= entry.nc) return 'replay';
      entry.nc = nc;
      return 'ok';
    }
    if (issued <= this.#forgottenUpTo) return 'stale';
    if (nc < 1) return 'replay';
    while (this.#seen.size >= this.#maxTracked) {
      const [oldest, e] = this.#seen.entries().next().value!;
      this.#seen.delete(oldest);
      if (e.issued > this.#forgottenUpTo) this.#forgottenUpTo = e.issued;
    }
    this.#seen.set(nonce, { issued, nc });
    return 'ok';
  }

  #mac(body: Buffer): Buffer {
    return createHmac('sha256', this.#key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
