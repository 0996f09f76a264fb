/**
 * A pool's memory and CPU limits: periodicRestart memory / privateMemory (a recycle) and the
 * `cpu` element (limit per resetInterval with action NoAction, KillW3wp, Throttle,
 * ThrottleUnderLoad). Workers are sampled from /proc every second while some pool has a limit;
 * Throttle and ThrottleUnderLoad put the pool's workers in a cgroup (cpu-throttle.ts).
 *
 * This decides, the activation service acts: `overMemory` names the workers to recycle and
 * `checkCpu` the ones to kill.
 */
import { availableParallelism } from 'node:os';
import type { Clock, TimerHandle } from './clock.js';
import { createCpuThrottle, type CpuThrottleGroup, type ThrottleMode } from './cpu-throttle.js';
import type { WorkerState } from './lifecycle.js';
import type { PoolSettings, RecycleReason } from './pool-settings.js';
import { readCpuMs, readMemory } from './proc-stats.js';

/** How often memory and CPU limits are sampled from /proc. */
const MONITOR_INTERVAL_MS = 1000;

export interface ResourceWorker {
  readonly pid: number;
  readonly state: WorkerState;
  /** CPU time at the start of the pool's current accounting window. */
  cpuAtWindowStart: number;
  lastCpuMs: number;
}

/** The part of a pool's runtime state this file keeps. */
export interface ResourcePool {
  readonly settings: PoolSettings;
  readonly workers: ReadonlyMap<number, ResourceWorker>;
  /** CPU accounting window for cpu limit (pool-wide, like IIS's job object). */
  cpuWindowStart: number;
  cpuWindowUsedMs: number;
  cpuReported: boolean;
  /** cpu action Throttle / ThrottleUnderLoad: the pool's control group (undefined when not throttled). */
  throttle: CpuThrottleGroup | undefined;
  /** Why throttling is unavailable, reported once per pool. */
  throttleProblem: string;
}

export interface ResourceLimitsOptions {
  readonly clock: Clock;
  readonly log: (level: 'info' | 'warn', message: string) => void;
  /** Process statistics; /proc by default (proc-stats.ts). */
  readonly readCpuMs?: (pid: number) => number | undefined;
  readonly readMemory?: (pid: number) => { readonly virtualKb: number; readonly privateKb: number } | undefined;
  /** cgroups; cpu-throttle.ts by default. */
  readonly createThrottle?: typeof createCpuThrottle;
  readonly cpus?: number;
}

export class ResourceLimits {
  readonly #o: ResourceLimitsOptions;
  readonly #readCpuMs: (pid: number) => number | undefined;
  readonly #readMemory: (pid: number) => { readonly virtualKb: number; readonly privateKb: number } | undefined;
  #monitor: TimerHandle | undefined;

  constructor(options: ResourceLimitsOptions) {
    this.#o = options;
    this.#readCpuMs = options.readCpuMs ?? readCpuMs;
    this.#readMemory = options.readMemory ?? readMemory;
  }

  /** Sample (call `sample`) every second while some pool limits memory or CPU. */
  watch(pools: Iterable<ResourcePool>, sample: () => void): void {
    let needed = false;
    for (const rt of pools) {
      const s = rt.settings;
      if (s.recycling.memoryKb > 0 || s.recycling.privateMemoryKb > 0 || (s.cpu.limit > 0 && s.cpu.resetIntervalMs > 0)) needed = true;
    }
    if (needed && this.#monitor === undefined) {
      this.#monitor = this.#o.clock.setInterval(sample, MONITOR_INTERVAL_MS);
    } else if (!needed && this.#monitor !== undefined) {
      this.stop();
    }
  }

  stop(): void {
    this.#o.clock.clear(this.#monitor);
    this.#monitor = undefined;
  }

  /** A new worker joins its pool's control group, if the pool has one. */
  workerStarted(rt: ResourcePool, pid: number): void {
    if (rt.throttle === undefined) return;
    try {
      rt.throttle.add(pid);
    } catch (err) {
      this.#o.log('warn', `application pool ${rt.settings.name}: worker ${pid} could not be put in its CPU control group: ${(err as Error).message}`);
    }
  }

  /** A worker starts serving: its CPU time counts from now. */
  workerRunning(w: ResourceWorker): void {
    w.cpuAtWindowStart = this.#readCpuMs(w.pid) ?? 0;
  }

  /** Time spent by a worker that has gone still counts for the rest of the interval. */
  workerExited(rt: ResourcePool, w: ResourceWorker): void {
    rt.cpuWindowUsedMs += Math.max(0, w.lastCpuMs - w.cpuAtWindowStart);
  }

  /** Running workers over periodicRestart memory (virtual) or privateMemory, with the reason. */
  overMemory(rt: ResourcePool): Array<[ResourceWorker, RecycleReason]> {
    const r = rt.settings.recycling;
    const out: Array<[ResourceWorker, RecycleReason]> = [];
    if (r.memoryKb <= 0 && r.privateMemoryKb <= 0) return out;
    for (const w of rt.workers.values()) {
      if (w.state !== 'Running') continue;
      const m = this.#readMemory(w.pid);
      if (m === undefined) continue;
      if (r.memoryKb > 0 && m.virtualKb > r.memoryKb) out.push([w, 'Memory']);
      else if (r.privateMemoryKb > 0 && m.privateKb > r.privateMemoryKb) out.push([w, 'PrivateMemory']);
    }
    return out;
  }

  /**
   * cpu limit: the pool's workers together may use limit/1000 % of the machine's CPU time per
   * resetInterval (IIS measures a pool's job object the same way). Over it: NoAction logs once
   * per interval; KillW3wp returns the pool's workers, to be killed (new ones start on the next
   * request).
   */
  checkCpu(rt: ResourcePool): ResourceWorker[] {
    const c = rt.settings.cpu;
    if (c.limit <= 0 || c.resetIntervalMs <= 0 || rt.throttle !== undefined) return [];
    const now = this.#o.clock.now();
    if (now - rt.cpuWindowStart >= c.resetIntervalMs) {
      rt.cpuWindowStart = now;
      rt.cpuWindowUsedMs = 0;
      rt.cpuReported = false;
      for (const w of rt.workers.values()) w.cpuAtWindowStart = w.lastCpuMs;
    }
    let used = rt.cpuWindowUsedMs;
    for (const w of rt.workers.values()) {
      const cpu = this.#readCpuMs(w.pid);
      if (cpu === undefined) continue;
      w.lastCpuMs = cpu;
      used += cpu - w.cpuAtWindowStart;
    }
    const allowed = (c.limit / 100000) * c.resetIntervalMs * (this.#o.cpus ?? availableParallelism());
    if (used <= allowed || rt.cpuReported) return [];
    rt.cpuReported = true;
    const pct = (c.limit / 1000).toFixed(3).replace(/\.?0+$/, '');
    const msg = `application pool ${rt.settings.name} used ${Math.round(used)} ms of CPU time, over its limit of ${pct}% (${Math.round(allowed)} ms) per resetInterval`;
    if (c.action !== 'KillW3wp') {
      const note = c.action === 'NoAction' ? '' : ` (cpu action ${c.action} acts as NoAction: ${rt.throttleProblem || 'no control group'})`;
      this.#o.log('warn', `WAS 5021: ${msg}${note}`);
      return [];
    }
    this.#o.log('warn', `WAS 5021: ${msg}; killing its worker processes (cpu action KillW3wp)`);
    const kill = [...rt.workers.values()];
    for (const w of kill) {
      // Time spent by a killed worker still counts for the rest of this interval.
      rt.cpuWindowUsedMs += w.lastCpuMs - w.cpuAtWindowStart;
      w.cpuAtWindowStart = w.lastCpuMs;
    }
    return kill;
  }

  /**
   * cpu action Throttle / ThrottleUnderLoad: the pool's workers share a control group capped (or
   * weighted) at the limit. Where cgroups cannot be used the reason is logged once and the limit
   * acts as NoAction.
   */
  applyThrottle(rt: ResourcePool): void {
    const c = rt.settings.cpu;
    const mode: ThrottleMode | undefined = c.action === 'Throttle' || c.action === 'ThrottleUnderLoad' ? c.action : undefined;
    if (mode === undefined || c.limit <= 0) {
      this.releaseThrottle(rt);
      return;
    }
    const fraction = c.limit / 100000;
    if (rt.throttle !== undefined) {
      try {
        rt.throttle.update(fraction, mode);
      } catch (err) {
        this.#o.log('warn', `application pool ${rt.settings.name}: cannot change its CPU control group: ${(err as Error).message}`);
      }
      return;
    }
    const made = (this.#o.createThrottle ?? createCpuThrottle)(rt.settings.name, fraction, mode);
    if (!made.ok) {
      if (rt.throttleProblem !== made.reason) this.#o.log('warn', `${made.reason}; its cpu action ${mode} acts as NoAction`);
      rt.throttleProblem = made.reason;
      return;
    }
    rt.throttle = made.group;
    rt.throttleProblem = '';
    const pct = (c.limit / 1000).toFixed(3).replace(/\.?0+$/, '');
    this.#o.log('info', `application pool ${rt.settings.name}: CPU ${mode === 'Throttle' ? 'capped' : 'weighted'} at ${pct}% of the machine (${made.group.path})`);
    for (const w of rt.workers.values()) {
      try {
        made.group.add(w.pid);
      } catch (err) {
        this.#o.log('warn', `application pool ${rt.settings.name}: worker ${w.pid} could not be put in its CPU control group: ${(err as Error).message}`);
      }
    }
  }

  releaseThrottle(rt: ResourcePool): void {
    if (rt.throttle === undefined) return;
    // Workers still inside keep the group; it goes when they have gone (remove() is then retried).
    if (rt.throttle.remove()) rt.throttle = undefined;
  }
}
