/**
 * Bandwidth throttling (site `limits maxBandwidth`, `webLimits maxGlobalBandwidth`): responses
 * are paced, not cut — a connection writes a slice, charges it to every bucket that applies, and
 * waits until the buckets are back within their burst allowance before the next slice. As in IIS,
 * a throttled response is never stored in the response cache (Exchange.throttled).
 */

/** How far ahead of its rate a bucket may run: smooths pacing without letting bursts through. */
const BURST_MS = 100;
/** Smallest and largest slice one paced write sends. */
const MIN_SLICE = 1024;
const MAX_SLICE = 64 * 1024;

/** One shared rate: a site's, or the server's. Virtual scheduling (GCRA): no timer of its own. */
export class BandwidthBucket {
  readonly bytesPerSecond: number;
  /** When everything charged so far will have been sent at the rate (performance.now() ms). */
  #busyUntil = 0;

  constructor(bytesPerSecond: number) {
    this.bytesPerSecond = bytesPerSecond;
  }

  /** ms to wait before this bucket takes more bytes (0: now). */
  wait(now: number): number {
    const w = this.#busyUntil - BURST_MS - now;
    return w > 0 ? w : 0;
  }

  charge(bytes: number, now: number): void {
    // An idle bucket earns no credit beyond the burst: max(…, now) forgets the quiet time.
    this.#busyUntil = Math.max(this.#busyUntil, now) + (bytes * 1000) / this.bytesPerSecond;
  }
}

/** The buckets one response is charged to (its site's and/or the global one). */
export class BandwidthThrottle {
  readonly buckets: readonly BandwidthBucket[];
  /** Bytes per paced write: about BURST_MS of the slowest rate. */
  readonly slice: number;

  constructor(buckets: readonly BandwidthBucket[]) {
    this.buckets = buckets;
    const slowest = Math.min(...buckets.map((b) => b.bytesPerSecond));
    this.slice = Math.min(MAX_SLICE, Math.max(MIN_SLICE, Math.floor((slowest * BURST_MS) / 1000)));
  }

  wait(now: number): number {
    let w = 0;
    for (const b of this.buckets) w = Math.max(w, b.wait(now));
    return w;
  }

  charge(bytes: number, now: number): void {
    for (const b of this.buckets) b.charge(bytes, now);
  }
}
