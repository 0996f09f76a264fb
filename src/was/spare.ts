/**
 * The spare worker: one process started in advance, not yet given to any pool, so a pool's cold
 * start skips node's start-up and Wharf's module loading. A pool takes it with its Init message
 * (environment, identity); a new spare starts SPARE_DELAY_MS later, so it never slows the start
 * it serves. Spares that keep dying stop the keeping (pools then start fresh processes).
 */
import type { Clock, TimerHandle } from './clock.js';
import type { OutputLabel, WorkerProcess } from './worker-process.js';

/** A new spare is started this long after the last one was taken. */
export const SPARE_DELAY_MS = 1000;
/** Spares that die before being used, in a row, before Wharf stops keeping one. */
export const MAX_SPARE_FAILURES = 3;

export interface TakenSpare {
  readonly process: WorkerProcess;
  /** Its output label: the taker renames it to the pool. */
  readonly label: OutputLabel;
}

export interface SpareOptions {
  readonly clock: Clock;
  readonly enabled: boolean;
  /** Start a spare process (undefined when it could not be; `failed` says why). */
  readonly start: (label: OutputLabel, failed: (message: string) => void) => WorkerProcess | undefined;
  readonly warn: (message: string) => void;
}

interface Spare {
  readonly process: WorkerProcess;
  readonly label: OutputLabel;
  readonly onExit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export class SpareWorker {
  readonly #o: SpareOptions;
  #enabled: boolean;
  #spare: Spare | undefined;
  #timer: TimerHandle | undefined;
  #failures = 0;
  #stopped = false;

  constructor(options: SpareOptions) {
    this.#o = options;
    this.#enabled = options.enabled;
  }

  /** The spare's pid, if one is waiting. */
  get pid(): number | undefined {
    return this.#spare?.process.pid;
  }

  /** Have a spare `delay` ms from now, unless one exists or is coming. */
  ensure(delay = SPARE_DELAY_MS): void {
    if (!this.#enabled || this.#stopped || this.#spare !== undefined || this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#stopped && this.#spare === undefined) this.#start();
    }, delay);
  }

  /** Hand the waiting spare over (undefined when none is alive). */
  take(): TakenSpare | undefined {
    const spare = this.#spare;
    if (spare === undefined || spare.process.exited) return undefined;
    this.#spare = undefined;
    spare.process.offExit(spare.onExit);
    this.#failures = 0;
    return { process: spare.process, label: spare.label };
  }

  /** Wharf is stopping: no new spare; the waiting one is asked to exit. Resolves when it has. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clear(this.#timer);
    this.#timer = undefined;
    const spare = this.#spare;
    if (spare === undefined || spare.process.exited) return Promise.resolve();
    return new Promise((resolve) => {
      spare.process.onExit(() => resolve());
      spare.process.kill('SIGTERM');
    });
  }

  #start(): void {
    const label: OutputLabel = { name: 'spare' };
    const p = this.#o.start(label, (message) => this.#failed(`cannot start a spare worker: ${message}`));
    if (p === undefined) return;
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (this.#spare?.process !== p) return;
      this.#spare = undefined;
      if (!this.#stopped) this.#failed(`spare worker ${p.pid} exited before a pool needed it (exit code ${code}, signal ${signal})`);
    };
    p.onExit(onExit);
    this.#spare = { process: p, label, onExit };
  }

  #failed(message: string): void {
    this.#failures++;
    if (this.#failures >= MAX_SPARE_FAILURES) {
      this.#enabled = false;
      this.#o.warn(`${message}; no longer keeping a spare worker (pools start fresh processes)`);
      return;
    }
    this.#o.warn(message);
    this.ensure(SPARE_DELAY_MS * 5);
  }
}
