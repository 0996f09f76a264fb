/**
 * The workers as processes (IIS: W3SVC_W3WP and the Process counters of each w3wp.exe): how many a
 * pool has, and each one's CPU time, memory, threads and start time, read from /proc when a
 * scraper asks (never on a timer), labelled by pool and pid. A pid's series go when its worker
 * exits, so the number of series follows the number of live workers.
 */
import { readFileSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import { readMemory, readStatFields, type ProcessMemory } from '../was/proc-stats.js';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux ABI in use). */
const USER_HZ = 100;

/** When the machine booted, seconds since the epoch (/proc/stat `btime`); process start times count from it. */
function bootTimeSeconds(): number | undefined {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

interface Sample {
  readonly pool: string;
  readonly stat: string[] | undefined;
  readonly memory: ProcessMemory | undefined;
}

export interface WorkerProcessMetricsOptions {
  readonly registry: Registry;
  /** The configured pools: each has a worker_processes series, 0 while it has no worker. */
  readonly pools: () => Iterable<string>;
}

export class WorkerProcessMetrics {
  /** Live workers: pid → pool (the configured name). */
  readonly #live = new Map<number, string>();
  readonly #bootTime = bootTimeSeconds();
  /** When /proc was last read for the per-pid series (performance.now()). */
  #sampledAt = -Infinity;

  constructor(o: WorkerProcessMetricsOptions) {
    const registers = [o.registry];
    const live = this.#live;
    new Gauge({
      name: 'wharf_apppool_worker_processes',
      help: 'Worker processes a pool has now (starting, running, recycling or draining). IIS: APP_POOL_WAS Current Worker Processes.',
      labelNames: ['pool'],
      registers,
      collect() {
        this.reset();
        for (const pool of o.pools()) this.set({ pool }, 0);
        for (const pool of live.values()) this.inc({ pool });
      },
    });
    // One /proc read per worker per scrape, shared by the series below: whichever collect() of a
    // scrape comes first reads, the others (within the same 250 ms, while no worker came or went)
    // use what it read.
    let sample = new Map<number, Sample>();
    const read = (): Map<number, Sample> => {
      const now = performance.now();
      if (now - this.#sampledAt < 250) return sample;
      this.#sampledAt = now;
      sample = new Map();
      for (const [pid, pool] of live) {
        const memory = readMemory(pid);
        // A process that has exited but not been reaped yet has no memory lines: no numbers, not zeros.
        sample.set(pid, { pool, stat: readStatFields(pid), memory: memory !== undefined && memory.virtualKb > 0 ? memory : undefined });
      }
      return sample;
    };
    new Counter({
      name: 'wharf_worker_process_cpu_seconds_total',
      help: 'User and system CPU time a worker process has used (/proc/<pid>/stat utime + stime). IIS: Process % Processor Time of w3wp.',
      labelNames: ['pool', 'pid'],
      registers,
      collect() {
        this.reset();
        for (const [pid, s] of read()) {
          if (s.stat === undefined) continue;
          const ticks = Number(s.stat[11]) + Number(s.stat[12]);
          if (Number.isFinite(ticks)) this.inc({ pool: s.pool, pid }, ticks / USER_HZ);
        }
      },
    });
    const gauge = (name: string, help: string, value: (s: Sample) => number | undefined): Gauge<'pool' | 'pid'> =>
      new Gauge({
        name,
        help,
        labelNames: ['pool', 'pid'],
        registers,
        collect() {
          this.reset();
          for (const [pid, s] of read()) {
            const v = value(s);
            if (v !== undefined && Number.isFinite(v)) this.set({ pool: s.pool, pid }, v);
          }
        },
      });
    const bootTime = this.#bootTime;
    const kb = (v: number | undefined): number | undefined => (v === undefined ? undefined : v * 1024);
    gauge('wharf_worker_process_resident_memory_bytes', 'Resident memory of a worker process (VmRSS). IIS: Process Working Set of w3wp.', (s) => kb(s.memory?.rssKb));
    gauge(
      'wharf_worker_process_private_memory_bytes',
      'Memory only this worker owns (RssAnon + VmSwap), what periodicRestart privateMemory watches. IIS: Process Private Bytes of w3wp.',
      (s) => kb(s.memory?.privateKb),
    );
    gauge(
      'wharf_worker_process_virtual_memory_bytes',
      'Virtual memory of a worker process (VmSize), what periodicRestart memory watches. IIS: Process Virtual Bytes of w3wp.',
      (s) => kb(s.memory?.virtualKb),
    );
    gauge('wharf_worker_process_threads', 'Threads of a worker process. IIS: Process Thread Count of w3wp.', (s) => (s.stat === undefined ? undefined : Number(s.stat[17])));
    gauge('wharf_worker_process_start_time_seconds', 'When a worker process started, seconds since the epoch.', (s) =>
      s.stat === undefined || bootTime === undefined ? undefined : bootTime + Number(s.stat[19]) / USER_HZ,
    );
  }

  started(pool: string, pid: number): void {
    this.#live.set(pid, pool);
    this.#sampledAt = -Infinity;
  }

  exited(pid: number): void {
    this.#live.delete(pid);
    this.#sampledAt = -Infinity;
  }
}
