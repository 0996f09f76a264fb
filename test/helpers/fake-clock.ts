/**
 * A Clock whose time moves only when told (`advance`): WAS's unit tests (src/was/*.test.ts) step through startup
 * timeouts, pings, idle timeouts and schedules in microseconds of real time. Timers fire in due
 * order, each at its own time, as node's would.
 */
import type { Clock, TimerHandle } from '../../src/was/clock.js';

interface FakeTimer {
  at: number;
  readonly seq: number;
  readonly fn: () => void;
  /** Interval period, 0 for a timeout. */
  readonly every: number;
  cleared: boolean;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Set<FakeTimer>();

  constructor(start = Date.UTC(2026, 0, 5, 10, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, Math.max(1, ms), 0);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, Math.max(1, ms), Math.max(1, ms));
  }

  clear(handle: TimerHandle | undefined): void {
    const t = handle as FakeTimer | undefined;
    if (t === undefined) return;
    t.cleared = true;
    this.#timers.delete(t);
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Move time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers) if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.#now = next.at;
      if (next.every > 0) next.at += next.every;
      else this.#timers.delete(next);
      next.fn();
    }
    this.#now = end;
  }

  #add(fn: () => void, ms: number, every: number): FakeTimer {
    const t: FakeTimer = { at: this.#now + ms, seq: this.#seq++, fn, every, cleared: false };
    this.#timers.add(t);
    return t;
  }
}
