/**
 * One worker's health timers (WAS pinging, idle timeout, periodicRestart time), started when it
 * becomes Running:
 *
 * - every pingInterval a ping goes to the worker's control channel and is answered from its event
 *   loop; no pong within pingResponseTime means it is hung (a busy loop, a deadlock): `unresponsive`.
 * - idleTimeout without a request in flight: `idle` (the worker drains and exits).
 * - periodicRestart time after it started serving: `timeLimit` (a recycle).
 *
 * Pinging goes on while the worker is Recycling (it still serves); idle and time stop then.
 */
import type { Clock, TimerHandle } from './clock.js';

export interface HealthSettings {
  readonly pingingEnabled: boolean;
  readonly pingIntervalMs: number;
  readonly pingResponseTimeMs: number;
  readonly idleTimeoutMs: number;
  readonly timeMs: number;
}

export interface HealthEvents {
  /** Send ping `id` to the worker. */
  ping(id: number): void;
  /** Ping `id` got no pong within pingResponseTime. */
  unresponsive(id: number): void;
  /** Requests in flight and when the worker was last busy (clock ms), from the listener. */
  activity(): { readonly outstanding: number; readonly lastActivity: number } | undefined;
  idle(): void;
  timeLimit(): void;
}

let nextPingId = 1;

export class WorkerHealth {
  readonly #clock: Clock;
  readonly #settings: () => HealthSettings;
  readonly #on: HealthEvents;
  #ping: TimerHandle | undefined;
  #idle: TimerHandle | undefined;
  #time: TimerHandle | undefined;
  /** The ping awaiting its pong (0: none) and when it was sent. */
  #pingId = 0;
  #pingSentAt = 0;
  #watching = false;

  constructor(clock: Clock, settings: () => HealthSettings, events: HealthEvents) {
    this.#clock = clock;
    this.#settings = settings;
    this.#on = events;
  }

  /** The worker is Running: pinging, idle timeout and periodicRestart time begin. */
  start(): void {
    this.#watching = true;
    this.#schedulePing();
    this.#armIdle(this.#settings().idleTimeoutMs);
    const t = this.#settings().timeMs;
    if (t > 0) this.#time = this.#clock.setTimeout(() => this.#on.timeLimit(), t);
  }

  /** The worker is Recycling: it serves on (and is pinged) until its replacement is Running. */
  recycling(): void {
    this.#clock.clear(this.#idle);
    this.#clock.clear(this.#time);
    this.#idle = this.#time = undefined;
  }

  /** Draining, orphaned or gone: no more timers. */
  stop(): void {
    this.#watching = false;
    for (const t of [this.#ping, this.#idle, this.#time]) this.#clock.clear(t);
    this.#ping = this.#idle = this.#time = undefined;
    this.#pingId = 0;
  }

  /** A pong: the round trip in ms, or undefined when it answers no ping in flight (late or forged). */
  pong(id: number): number | undefined {
    if (this.#pingId === 0 || id !== this.#pingId) return undefined;
    this.#pingId = 0;
    this.#clock.clear(this.#ping);
    this.#ping = undefined;
    this.#schedulePing();
    return this.#clock.now() - this.#pingSentAt;
  }

  #schedulePing(): void {
    const s = this.#settings();
    if (!s.pingingEnabled || !this.#watching) return;
    this.#ping = this.#clock.setTimeout(() => {
      const id = nextPingId++;
      if (nextPingId > 0xfffffff0) nextPingId = 1;
      this.#pingId = id;
      this.#pingSentAt = this.#clock.now();
      this.#on.ping(id);
      this.#ping = this.#clock.setTimeout(() => {
        if (this.#pingId !== id) return;
        this.#pingId = 0;
        this.#ping = undefined;
        this.#on.unresponsive(id);
      }, this.#settings().pingResponseTimeMs);
    }, s.pingIntervalMs);
  }

  #armIdle(delay: number): void {
    const idle = this.#settings().idleTimeoutMs;
    if (idle <= 0 || !this.#watching) return;
    this.#idle = this.#clock.setTimeout(() => {
      this.#idle = undefined;
      const a = this.#on.activity();
      if (a === undefined) return;
      const quiet = this.#clock.now() - a.lastActivity;
      if (a.outstanding > 0 || quiet < idle) {
        this.#armIdle(a.outstanding > 0 ? idle : idle - quiet);
        return;
      }
      this.#on.idle();
    }, Math.max(10, delay));
  }
}
