/**
 * The CPU-usage thresholds of httpCompression (staticCompressionDisableCpuUsage /
 * EnableCpuUsage, dynamicCompression…): like IIS, whole-machine CPU usage is sampled every few
 * seconds (here from /proc/stat, the sum over all CPUs); compression stops once usage reaches the
 * Disable percentage and resumes only when it falls below the Enable percentage (hysteresis, so it
 * does not flap around one value). The sampler runs only in a worker that compresses, on an
 * unref'd timer.
 */
import { readFileSync } from 'node:fs';

/** How often the machine's CPU usage is sampled. */
export const SAMPLE_INTERVAL_MS = 5000;

/** Busy and total jiffies from /proc/stat's first line; undefined when it cannot be read. */
export function readCpuTimes(text?: string): { busy: number; total: number } | undefined {
  let t = text;
  if (t === undefined) {
    try {
      t = readFileSync('/proc/stat', 'latin1');
    } catch {
      return undefined;
    }
  }
  const line = t.slice(0, t.indexOf('\n'));
  if (!line.startsWith('cpu ')) return undefined;
  const f = line.slice(4).trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  let total = 0;
  for (let i = 0; i < Math.min(f.length, 8); i++) total += f[i] ?? 0;
  if (!Number.isFinite(total) || total <= 0) return undefined;
  return { busy: total - idle, total };
}

/** Machine CPU usage in percent over the last interval (0 until two samples exist). */
export class CpuSampler {
  usage = 0;
  /** Counts samples, so gates know when to re-evaluate. */
  generation = 0;
  #last: { busy: number; total: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #read: () => { busy: number; total: number } | undefined;

  constructor(read: () => { busy: number; total: number } | undefined = () => readCpuTimes()) {
    this.#read = read;
  }

  /** Take a sample now (the timer does it every SAMPLE_INTERVAL_MS once started). */
  sample(): void {
    const now = this.#read();
    if (now === undefined) return;
    const last = this.#last;
    this.#last = now;
    if (last === undefined) return;
    const dt = now.total - last.total;
    if (dt <= 0) return;
    this.usage = Math.max(0, Math.min(100, ((now.busy - last.busy) * 100) / dt));
    this.generation++;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.sample();
    this.#timer = setInterval(() => this.sample(), SAMPLE_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** One threshold pair's state: disabled from `disableAt` percent until usage drops below `enableAt`. */
export class CpuGate {
  disabled = false;
  #seen = -1;

  /** Whether compression is off now (re-evaluated once per new sample). */
  check(sampler: CpuSampler, disableAt: number, enableAt: number): boolean {
    if (sampler.generation !== this.#seen) {
      this.#seen = sampler.generation;
      const u = sampler.usage;
      if (!this.disabled && u >= disableAt && sampler.generation > 0) this.disabled = true;
      else if (this.disabled && u < enableAt) this.disabled = false;
    }
    // A Disable threshold of 0 means "never compress", sampled or not.
    return this.disabled || disableAt === 0;
  }
}

let shared: CpuSampler | undefined;

/** The worker's sampler, started on first use. */
export function machineCpu(): CpuSampler {
  if (shared === undefined) {
    shared = new CpuSampler();
    shared.start();
  }
  return shared;
}
