/**
 * The failure limit per client address, so Basic and Digest cannot be used to guess passwords
 * quickly: after MAX_FAILURES failed logons within LOGON_THROTTLE_MS, an address is answered
 * 'throttled' (401.1) without asking PAM or the user store, until LOGON_THROTTLE_MS after its last
 * counted failure. An IPv6 client counts per /64 (one host usually has a whole /64 to pick from).
 * Memory is bounded: beyond MAX_ADDRESSES the oldest address is forgotten.
 */
import { isIPv6 } from 'node:net';
import { LOGON_THROTTLE_MS } from '../ipc/credential-messages.js';

export const MAX_FAILURES = 10;
export const MAX_ADDRESSES = 50_000;

interface Record {
  failures: number;
  windowStart: number;
  blockedUntil: number;
  /** The throttle was logged for this block (once per address per period). */
  logged: boolean;
}

/** The bucket an address counts in: itself, or its /64 for IPv6 (IPv4-mapped addresses stay IPv4). */
export function addressBucket(address: string): string {
  const a = address.replace(/%.*$/, '');
  if (!isIPv6(a)) return a;
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(a)) return a.slice(7);
  const [head = '', tail = ''] = a.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = a.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (g.replace(/^0+/, '') || '0').toLowerCase())
    .join(':')}::/64`;
}

export class FailureLimit {
  readonly #records = new Map<string, Record>();
  readonly #now: () => number;
  readonly #periodMs: number;
  readonly #max: number;

  constructor(options: { now?: () => number; periodMs?: number; maxFailures?: number } = {}) {
    this.#now = options.now ?? Date.now;
    this.#periodMs = options.periodMs ?? LOGON_THROTTLE_MS;
    this.#max = options.maxFailures ?? MAX_FAILURES;
  }

  /** Whether this address is throttled now; `firstTime` is true once per block (log it then). */
  throttled(address: string): { throttled: boolean; firstTime: boolean } {
    const r = this.#records.get(addressBucket(address));
    if (r === undefined || r.blockedUntil <= this.#now()) return { throttled: false, firstTime: false };
    const firstTime = !r.logged;
    r.logged = true;
    return { throttled: true, firstTime };
  }

  /** A failed logon from `address` (wrong password, unknown user). */
  failed(address: string): void {
    const key = addressBucket(address);
    const now = this.#now();
    let r = this.#records.get(key);
    if (r === undefined || (now - r.windowStart > this.#periodMs && r.blockedUntil <= now)) {
      if (r === undefined && this.#records.size >= MAX_ADDRESSES) this.#records.delete(this.#records.keys().next().value!);
      r = { failures: 0, windowStart: now, blockedUntil: 0, logged: false };
      this.#records.delete(key);
      this.#records.set(key, r);
    }
    r.failures++;
    if (r.failures >= this.#max) {
      if (r.blockedUntil <= now) r.logged = false;
      r.blockedUntil = now + this.#periodMs;
    }
  }

  /** Addresses tracked. (A successful logon does not clear an address's count: guessing stays slow.) */
  get size(): number {
    return this.#records.size;
  }
}
