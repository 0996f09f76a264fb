/**
 * Time as WAS sees it: the wall clock and timers behind one interface, so the activation
 * service's every timer (startup, ping, idle, periodic restart, schedule, drain deadline, retry,
 * spare) can be driven by a test in milliseconds (test/helpers/fake-clock.ts is the tests' one).
 */

/** An armed timer; only the clock that made it can clear it. */
export type TimerHandle = object;

export interface Clock {
  /** Milliseconds since the epoch (Date.now()); schedule times are local times of this. */
  now(): number;
  /** Run `fn` once after `ms`. Real timers never keep the process alive (unref). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Clear a timeout or an interval; undefined and spent handles are ignored. */
  clear(handle: TimerHandle | undefined): void;
}

/** Node's timers and Date.now(). */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t as unknown as TimerHandle;
  },
  setInterval(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return t as unknown as TimerHandle;
  },
  clear(handle) {
    // clearTimeout clears intervals too (one timer list in node).
    if (handle !== undefined) clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};
