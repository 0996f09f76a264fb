/**
 * One coarse timer wheel for every connection timer of the listener (HTTP.sys keeps its
 * connection timers the same way): a single unref'd interval ticks once a `tickMs`, and arming or
 * disarming a timer is O(1) — a link in a doubly linked list of its slot, no allocation. With
 * 10,000 keep-alive connections that is one interval instead of 10,000 setTimeouts re-armed on
 * every request.
 *
 * Resolution is one tick: a timer fires at the first tick at or after its deadline. Timers further
 * away than one turn of the wheel stay in their slot and are skipped until their turn comes.
 */

/** What a timer calls when it fires. One method, so owners need no per-timer closure. */
export interface TimerOwner {
  onTimer(now: number): void;
}

/** One timer; owned by one object (e.g. a connection) and armed again and again. */
export class WheelTimer {
  readonly owner: TimerOwner;
  /** When it fires (the wheel's clock, ms); -1 while not armed. */
  deadline = -1;
  /** @internal list links and slot, maintained by TimerWheel. */
  next: WheelTimer | null = null;
  prev: WheelTimer | null = null;
  slot = -1;

  constructor(owner: TimerOwner) {
    this.owner = owner;
  }

  get armed(): boolean {
    return this.slot !== -1;
  }
}

export interface TimerWheelOptions {
  /** Tick length in ms (default 1000). */
  readonly tickMs?: number;
  /** Slots in the wheel (default 512: one turn ≈ 8.5 min at 1 s ticks). */
  readonly slots?: number;
  /** The clock (default performance.now: monotonic, so a wall-clock step moves no deadline). */
  readonly now?: () => number;
  /** Run the interval (default true). Tests pass false and call advance() with their own clock. */
  readonly autoStart?: boolean;
}

export class TimerWheel {
  readonly tickMs: number;
  readonly #slots: Array<WheelTimer | null>;
  readonly #now: () => number;
  readonly #autoStart: boolean;
  /** The last tick processed (absolute tick number). */
  #cursor: number;
  #count = 0;
  #interval: NodeJS.Timeout | undefined;

  constructor(options: TimerWheelOptions = {}) {
    this.tickMs = options.tickMs ?? 1000;
    this.#slots = new Array<WheelTimer | null>(options.slots ?? 512).fill(null);
    this.#now = options.now ?? (() => performance.now());
    this.#autoStart = options.autoStart ?? true;
    this.#cursor = Math.floor(this.#now() / this.tickMs);
  }

  /** The wheel's clock: deadlines are in this time base. */
  now(): number {
    return this.#now();
  }

  /** Timers armed. */
  get size(): number {
    return this.#count;
  }

  /** Arm (or move) `t` to fire at `deadline`. */
  arm(t: WheelTimer, deadline: number): void {
    if (t.slot !== -1) this.#unlink(t);
    let tick = Math.ceil(deadline / this.tickMs);
    if (tick <= this.#cursor) tick = this.#cursor + 1; // already due: the next tick fires it
    const slot = tick % this.#slots.length;
    const head = this.#slots[slot]!;
    t.deadline = deadline;
    t.slot = slot;
    t.prev = null;
    t.next = head;
    if (head !== null) head.prev = t;
    this.#slots[slot] = t;
    if (++this.#count === 1 && this.#autoStart && this.#interval === undefined) {
      this.#interval = setInterval(() => this.advance(), this.tickMs);
      this.#interval.unref(); // timers never keep the process alive
    }
  }

  disarm(t: WheelTimer): void {
    if (t.slot === -1) return;
    this.#unlink(t);
    t.deadline = -1;
  }

  /** Fire every timer due by `now` (called by the interval; tests call it with their clock). */
  advance(now: number = this.#now()): void {
    const target = Math.floor(now / this.tickMs);
    // After a long stall one turn visits every slot once; more turns would find nothing new.
    const from = Math.max(this.#cursor + 1, target - this.#slots.length + 1);
    // Due timers are unlinked first and fired after: an owner's callback may arm or disarm any
    // timer without disturbing the walk.
    let due: WheelTimer[] | undefined;
    for (let tick = from; tick <= target; tick++) {
      this.#cursor = tick;
      let t: WheelTimer | null = this.#slots[tick % this.#slots.length] ?? null;
      while (t !== null) {
        const next: WheelTimer | null = t.next;
        if (t.deadline <= now) {
          this.#unlink(t);
          t.deadline = -1;
          (due ??= []).push(t);
        }
        t = next;
      }
    }
    if (this.#cursor < target) this.#cursor = target;
    if (due !== undefined) for (const t of due) if (t.slot === -1) t.owner.onTimer(now);
  }

  /** Stop the interval (timers stay armed; advance() still works). */
  stop(): void {
    if (this.#interval !== undefined) clearInterval(this.#interval);
    this.#interval = undefined;
  }

  #unlink(t: WheelTimer): void {
    if (t.prev !== null) t.prev.next = t.next;
    else this.#slots[t.slot] = t.next;
    if (t.next !== null) t.next.prev = t.prev;
    t.prev = null;
    t.next = null;
    t.slot = -1;
    this.#count--;
  }
}
