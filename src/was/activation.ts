/**
 * The activation service (WAS): application pools and their worker processes, each with an
 * explicit state machine.
 *
 *   pool:    Started ⇄ Stopping → Stopped → Started
 *   worker:  Starting → Running → Recycling → Draining → Exited
 *                  ╰──────────╰──────────╰─────────────↗  (crash, kill)
 *
 * A pool starts workers on demand (or keeps one running: startMode AlwaysRunning), up to
 * maxProcesses (a web garden). Each Running worker is pinged through its event loop, ended after
 * idleTimeout without requests, and recycled on periodicRestart time / requests / memory /
 * privateMemory / schedule, on a configuration change to its pool and on demand. A recycle is
 * overlapped unless disallowOverlappingRotation: the old worker (Recycling) keeps serving until
 * its replacement is Running, then drains. Draining workers take no new requests and are killed
 * after shutdownTimeLimit. Workers that exit without being asked count against rapid-fail
 * protection, which stops the pool. The listener owns the requests throughout: nothing here
 * ever holds or answers one.
 */
import { boundedProcesses, MAX_HINTED_PROCESSES } from '../ipc/messages.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { AdminError, WasError } from '../errors.js';
import type { PoolSettings, RecycleReason } from './pool-settings.js';
import { readCpuMs, readMemory } from './proc-stats.js';
import { createCpuThrottle, type CpuThrottleGroup, type ThrottleMode } from './cpu-throttle.js';
import { workerBaseEnvironment } from './worker-environment.js';

export type { PoolSettings, RecycleReason } from './pool-settings.js';

export type PoolState = 'Started' | 'Stopping' | 'Stopped';
export type WorkerState = 'Starting' | 'Running' | 'Recycling' | 'Draining' | 'Orphaned' | 'Exited';

/** Allowed worker transitions: anything else is a bug, caught at once. */
const WORKER_TRANSITIONS: Readonly<Record<WorkerState, readonly WorkerState[]>> = {
  Starting: ['Running', 'Draining', 'Exited'],
  Running: ['Recycling', 'Draining', 'Orphaned', 'Exited'],
  Recycling: ['Draining', 'Orphaned', 'Exited'],
  Draining: ['Exited'],
  // failure orphanWorkerProcess: a hung worker left running for a debugger, no longer the pool's.
  Orphaned: ['Exited'],
  Exited: [],
};

export interface WorkerProcessInfo {
  readonly pid: number;
  readonly pool: string;
  readonly state: WorkerState;
  readonly startedAt: number;
  /** Why the worker is recycling or draining ('' while it is not). */
  readonly exitReason: string;
}

/** How a pool's next worker is started: who it runs as (identity.ts) and its private directory. */
export interface WorkerLaunch {
  /** The pool's Linux user when Wharf runs as root (for the log line). */
  readonly user?: string;
  /** Added last to the worker's environment (WHARF_WORKER_UID/GID/USER, HOME, TMPDIR …). */
  readonly environment?: Readonly<Record<string, string>>;
}

export interface ActivationHost {
  /**
   * Give the worker's channel to the listener. `assign` is set for a pre-started spare: the
   * environment (identity included) it takes on before it loads the pool's configuration.
   */
  attach(pool: string, pid: number, channel: Duplex, assign?: Readonly<Record<string, string>>): void;
  /** Stop dispatching to the worker and ask it to finish its requests and exit. */
  drain(pool: string, pid: number): void;
  /** Cut the listener's channel to a hung worker left running (orphanWorkerProcess): its requests are replayed or answered. */
  orphan(pool: string, pid: number): void;
  /** The pool stopped: the listener answers its requests itself (503, or a reset at TcpLevel). */
  poolStopped(pool: string, reason: 'Disabled' | 'AppOffline', resetConnections: boolean): void;
  poolStarted(pool: string): void;
  /** Start attempts keep failing and rapid-fail protection is off: answer what is queued with 503. */
  giveUp(pool: string, reason: string): void;
  /** A worker process is gone: the listener may need another one for waiting requests. */
  exited(pool: string, pid: number): void;
  /** Send a health ping to a worker through its channel. */
  ping(pool: string, pid: number, id: number): void;
  /** Requests in flight on a worker and when it last started or finished one (Date.now() ms). */
  activity(pool: string, pid: number): { readonly outstanding: number; readonly lastActivity: number; readonly served: number } | undefined;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** A line a pool's worker printed (a hosted app's console output): the pool's output log. */
  output?(pool: string, pid: number, stream: 'stdout' | 'stderr', line: string): void;
}

export interface ActivationOptions {
  /** Resolve the pool's identity and runtime directory before each start (identity.ts). */
  readonly prepare?: (pool: PoolSettings) => Promise<WorkerLaunch>;
  /** Extra node flags for workers (--inspect, --cpu-prof …); default: $WHARF_WORKER_NODE_ARGS. */
  readonly nodeArgs?: readonly string[];
  /**
   * Keep one worker process started in advance, not yet given to any pool, so a pool's cold start
   * skips node's start-up and Wharf's module loading. Default: on unless $WHARF_SPARE_WORKER=0.
   */
  readonly spareWorker?: boolean;
}

interface PoolRuntime {
  settings: PoolSettings;
  state: PoolState;
  readonly workers: Map<number, WorkerEntry>;
  /** Starts whose identity is being prepared (they count as Starting). */
  launching: number;
  /** Start failures in a row (reset when a worker becomes Running). */
  consecutiveFailures: number;
  /** Times of recent failures, for rapid-fail protection. */
  failures: number[];
  retryTimer: NodeJS.Timeout | undefined;
  scheduleTimer: NodeJS.Timeout | undefined;
  /** CPU accounting window for cpu limit (pool-wide, like IIS's job object). */
  cpuWindowStart: number;
  cpuWindowUsedMs: number;
  cpuReported: boolean;
  /** cpu action Throttle / ThrottleUnderLoad: the pool's control group (undefined when not throttled). */
  throttle: CpuThrottleGroup | undefined;
  /** Why throttling is unavailable, reported once per pool. */
  throttleProblem: string;
  /** Workers the hosted app asked for (iisnode nodeProcessCountPerApplication), 0 = none. */
  hintedProcesses: number;
}

interface WorkerEntry {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  state: WorkerState;
  exitReason: string;
  /** WAS asked this worker to go (drain, kill): its exit is not a failure. */
  expected: boolean;
  startupTimer: NodeJS.Timeout | undefined;
  /** Health: the next ping, or the deadline of the ping awaiting its pong. */
  pingTimer: NodeJS.Timeout | undefined;
  pingId: number;
  idleTimer: NodeJS.Timeout | undefined;
  timeTimer: NodeJS.Timeout | undefined;
  killTimer: NodeJS.Timeout | undefined;
  /** CPU time at the start of the pool's current accounting window. */
  cpuAtWindowStart: number;
  lastCpuMs: number;
  /** Drain time its hosted app asked for (iisnode gracefulShutdownTimeout), 0 = none. */
  shutdownHintMs: number;
}

let nextPingId = 1;

const WORKER_MAIN = fileURLToPath(new URL('../worker/worker-main.js', import.meta.url));
/** Start failures in a row before the queue is answered with 503 (when rapid-fail protection is off). */
const MAX_START_FAILURES = 5;
/** How often memory and CPU limits are sampled from /proc. */
const MONITOR_INTERVAL_MS = 1000;
/**
 * Node flags every worker gets (before $WHARF_WORKER_NODE_ARGS, which can override them): a small
 * young generation keeps an idle worker near 55 MiB instead of ~100 MiB after a burst of load;
 * request-sized garbage dies young either way.
 */
const WORKER_NODE_FLAGS = ['--max-semi-space-size=4'];
/** A new spare is started this long after the last one was taken (it must not slow the start it serves). */
const SPARE_DELAY_MS = 1000;
/** Spares that die before being used, in a row, before Wharf stops keeping one. */
const MAX_SPARE_FAILURES = 3;

interface Spare {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Where its output is logged from: 'spare' until a pool takes it. */
  readonly label: { name: string };
  readonly onExit: () => void;
}

/** WAS event ids and texts for recycles (IIS writes these to the System event log). */
const RECYCLE_EVENTS: Readonly<Record<RecycleReason, readonly [number, string]>> = {
  Time: [5074, 'reached its allowed processing time limit'],
  Requests: [5075, 'reached its allowed processing request limit'],
  Schedule: [5076, 'reached its scheduled recycle time'],
  Memory: [5077, 'reached its allowed virtual memory limit'],
  IsapiUnhealthy: [5078, 'asked to be recycled'],
  OnDemand: [5079, 'was asked to recycle by an administrator'],
  ConfigChange: [5080, 'had its application pool configuration changed'],
  PrivateMemory: [5117, 'reached its allowed private bytes limit'],
};

export class ActivationService {
  readonly #host: ActivationHost;
  readonly #o: ActivationOptions;
  readonly #pools = new Map<string, PoolRuntime>();
  #stopping = false;
  #monitor: NodeJS.Timeout | undefined;
  #spare: Spare | undefined;
  #spareTimer: NodeJS.Timeout | undefined;
  /** Hung workers left running for debugging (orphanWorkerProcess); killed when Wharf stops. */
  readonly #orphans = new Set<ChildProcess>();
  #spareFailures = 0;
  #sparesEnabled: boolean;

  constructor(host: ActivationHost, options: ActivationOptions = {}) {
    this.#host = host;
    this.#o = options;
    this.#sparesEnabled = options.spareWorker ?? process.env['WHARF_SPARE_WORKER'] !== '0';
  }

  /**
   * Pool settings from the current configuration: new pools appear (started when autoStart),
   * removed ones drain away, and a changed pool's workers recycle (ConfigChange) unless
   * disallowRotationOnConfigChange.
   */
  configure(pools: readonly PoolSettings[]): void {
    const keep = new Set<string>();
    for (const p of pools) {
      const key = p.name.toLowerCase();
      keep.add(key);
      const rt = this.#pools.get(key);
      if (rt === undefined) {
        const fresh: PoolRuntime = {
          settings: p,
          state: p.autoStart ? 'Started' : 'Stopped',
          workers: new Map(),
          launching: 0,
          consecutiveFailures: 0,
          failures: [],
          retryTimer: undefined,
          scheduleTimer: undefined,
          cpuWindowStart: Date.now(),
          cpuWindowUsedMs: 0,
          cpuReported: false,
          throttle: undefined,
          throttleProblem: '',
          hintedProcesses: 0,
        };
        this.#applyThrottle(fresh);
        this.#pools.set(key, fresh);
        if (fresh.state === 'Stopped') this.#host.poolStopped(p.name, 'Disabled', p.failure.loadBalancerCapabilities === 'TcpLevel');
        this.#armSchedule(fresh);
        this.#reconcile(fresh);
        continue;
      }
      const changed = rt.settings.signature !== p.signature;
      rt.settings = p;
      if (!changed) continue;
      this.#armSchedule(rt);
      this.#applyThrottle(rt);
      if (!p.recycling.disallowRotationOnConfigChange) {
        for (const w of [...rt.workers.values()]) if (w.state === 'Running') this.#recycle(rt, w, 'ConfigChange');
      }
      this.#reconcile(rt);
    }
    for (const [key, rt] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      this.#clearPoolTimers(rt);
      if (rt.workers.size === 0) this.#releaseThrottle(rt);
      for (const w of rt.workers.values()) this.#drain(rt, w, 'its application pool was removed from the configuration');
    }
    this.#armMonitor();
    this.#ensureSpare(SPARE_DELAY_MS);
  }

  // ---- queries (admin socket) ------------------------------------------------------------------

  workers(): WorkerProcessInfo[] {
    const out: WorkerProcessInfo[] = [];
    for (const rt of this.#pools.values()) {
      for (const w of rt.workers.values()) {
        out.push({ pid: w.pid, pool: rt.settings.name, state: w.state, startedAt: w.startedAt, exitReason: w.exitReason });
      }
    }
    return out;
  }

  poolState(pool: string): PoolState | undefined {
    return this.#pools.get(pool.toLowerCase())?.state;
  }

  // ---- listener → WAS --------------------------------------------------------------------------

  /**
   * The pool's queue has work no Running worker can take at once: start another worker unless
   * one is already starting or the pool has maxProcesses workers taking requests.
   */
  demand(pool: string): void {
    const rt = this.#pools.get(pool.toLowerCase());
    if (rt === undefined || !this.#canStart(rt)) return;
    let serving = 0;
    const serial = rt.settings.recycling.disallowOverlappingRotation;
    for (const w of rt.workers.values()) {
      if (w.state === 'Starting') return;
      if (w.state === 'Running') serving++;
      // disallowOverlappingRotation: the replacement starts only once the old worker is gone.
      else if (w.state === 'Draining' && serial) return;
    }
    if (rt.launching > 0 || serving >= Math.max(rt.settings.maxProcesses, rt.hintedProcesses)) return;
    this.#spawn(rt);
  }

  /** A worker said it is ready (its configuration loaded, preload pages run). */
  workerReady(pool: string, pid: number): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined || w.state !== 'Starting') return;
    this.#transition(w, 'Running');
    clearTimeout(w.startupTimer);
    w.startupTimer = undefined;
    rt.consecutiveFailures = 0;
    this.#schedulePing(rt, w);
    this.#armIdle(rt, w, rt.settings.idleTimeoutMs);
    const t = rt.settings.recycling.timeMs;
    if (t > 0) {
      w.timeTimer = setTimeout(() => this.#recycle(rt, w, 'Time'), t);
      w.timeTimer.unref();
    }
    w.cpuAtWindowStart = readCpuMs(pid) ?? 0;
    // An overlapped recycle completes: the oldest worker it replaces now drains.
    let oldest: WorkerEntry | undefined;
    for (const o of rt.workers.values()) if (o.state === 'Recycling' && (oldest === undefined || o.startedAt < oldest.startedAt)) oldest = o;
    if (oldest !== undefined) this.#drain(rt, oldest, oldest.exitReason);
    if (rt.state !== 'Started') this.#drain(rt, w, 'its application pool is stopping');
    this.#reconcile(rt);
  }

  /**
   * The listener lost its channel to a worker. A worker without a channel can serve nobody but
   * still counts against maxProcesses, so it must not linger: it gets a moment to exit, then
   * is killed (its 'exit' then lets a replacement start).
   */
  channelClosed(pool: string, pid: number): void {
    const w = this.#pools.get(pool.toLowerCase())?.workers.get(pid);
    if (w === undefined || w.state === 'Exited') return;
    this.#killAfter(w, 1000);
  }

  /** A worker answered a ping. */
  pong(pool: string, pid: number, id: number): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined || w.pingId !== id) return;
    w.pingId = 0;
    clearTimeout(w.pingTimer);
    this.#schedulePing(rt, w);
  }

  /** A worker reached periodicRestart requests (the listener counts dispatches). */
  requestLimitReached(pool: string, pid: number): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt !== undefined && w !== undefined) this.#recycle(rt, w, 'Requests');
  }

  /**
   * A worker asked to be recycled (IIS: an ISAPI extension reporting itself unhealthy, WAS 5078;
   * here a hosted app whose watchedFiles changed or whose app_offline.htm appeared). Overlapped,
   * like every recycle; logged always, since the worker said why.
   */
  recycleRequested(pool: string, pid: number, reason: string): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined || w.state !== 'Running') return;
    this.#host.log('info', `WAS 5078: worker process ${pid} serving application pool '${rt.settings.name}' asked to be recycled (${reason}); recycling it`);
    this.#recycle(rt, w, 'IsapiUnhealthy', true);
  }

  /**
   * The worker's hosted app asked for a process count (a web garden of at least maxProcesses) and
   * a drain time (at most shutdownTimeLimit): iisnode's nodeProcessCountPerApplication and
   * gracefulShutdownTimeout. The pool keeps the process count until a worker says otherwise.
   */
  appHints(pool: string, pid: number, hints: { processes: number; shutdownTimeLimitMs: number }): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined) return;
    // The worker runs the pool's code: what it sends is bounded here, not trusted.
    const wanted = hints.processes;
    const processes = boundedProcesses(wanted);
    if (processes !== rt.hintedProcesses && processes > rt.settings.maxProcesses) {
      const capped = wanted > MAX_HINTED_PROCESSES ? ` (${wanted} asked, at most ${MAX_HINTED_PROCESSES})` : '';
      this.#host.log('info', `application pool '${rt.settings.name}': its Node.js application asks for ${processes} worker processes (nodeProcessCountPerApplication)${capped}`);
    }
    rt.hintedProcesses = processes;
    w.shutdownHintMs = Number.isSafeInteger(hints.shutdownTimeLimitMs) && hints.shutdownTimeLimitMs > 0 ? hints.shutdownTimeLimitMs : 0;
  }

  // ---- admin verbs -----------------------------------------------------------------------------

  startPool(name: string): string {
    const rt = this.#pool(name);
    if (rt.state === 'Started') throw new AdminError('ADM_REQUEST', `application pool "${rt.settings.name}" is already started`);
    rt.state = 'Started';
    rt.failures = [];
    rt.consecutiveFailures = 0;
    clearTimeout(rt.retryTimer);
    rt.retryTimer = undefined;
    this.#host.poolStarted(rt.settings.name);
    this.#host.log('info', `application pool ${rt.settings.name} started`);
    this.#reconcile(rt);
    return `"${rt.settings.name}" successfully started.`;
  }

  stopPool(name: string): string {
    const rt = this.#pool(name);
    if (rt.state !== 'Started') throw new AdminError('ADM_REQUEST', `application pool "${rt.settings.name}" is already stopped`);
    this.#stopPool(rt, 'Disabled', 'an administrator stopped its application pool');
    this.#host.log('info', `application pool ${rt.settings.name} stopped`);
    return `"${rt.settings.name}" successfully stopped.`;
  }

  recyclePool(name: string): string {
    const rt = this.#pool(name);
    if (rt.state !== 'Started') throw new AdminError('ADM_REQUEST', `application pool "${rt.settings.name}" is stopped; start it instead of recycling it`);
    for (const w of [...rt.workers.values()]) {
      if (w.state === 'Running') this.#recycle(rt, w, 'OnDemand');
      else if (w.state === 'Starting') this.#drain(rt, w, RECYCLE_EVENTS.OnDemand[1]);
    }
    this.#reconcile(rt);
    return `"${rt.settings.name}" successfully recycled.`;
  }

  #pool(name: string): PoolRuntime {
    const rt = this.#pools.get(name.toLowerCase());
    if (rt === undefined) throw new AdminError('ADM_NOT_FOUND', `Cannot find APPPOOL object with identifier "${name}".`);
    return rt;
  }

  // ---- the state machines ----------------------------------------------------------------------

  #transition(w: WorkerEntry, to: WorkerState): void {
    if (!WORKER_TRANSITIONS[w.state].includes(to)) {
      throw new WasError('WAS_WORKER_START', `worker ${w.pid}: invalid state change ${w.state} → ${to}`);
    }
    w.state = to;
  }

  #canStart(rt: PoolRuntime): boolean {
    return !this.#stopping && rt.state === 'Started' && rt.retryTimer === undefined;
  }

  /** Start what the pool needs without a request asking: recycle replacements, AlwaysRunning. */
  #reconcile(rt: PoolRuntime): void {
    if (!this.#canStart(rt) || rt.launching > 0) return;
    let running = 0;
    let recycling = 0;
    for (const w of rt.workers.values()) {
      if (w.state === 'Starting') return;
      if (w.state === 'Running') running++;
      else if (w.state === 'Recycling') recycling++;
    }
    if (recycling > 0 || (rt.settings.startMode === 'AlwaysRunning' && running === 0)) this.#spawn(rt);
  }

  #stopPool(rt: PoolRuntime, reason: 'Disabled' | 'AppOffline', why: string): void {
    rt.state = 'Stopping';
    clearTimeout(rt.retryTimer);
    rt.retryTimer = undefined;
    // TcpLevel: a load balancer in front sees the server as down (connection reset), not a 503.
    const reset = rt.settings.failure.loadBalancerCapabilities === 'TcpLevel';
    this.#host.poolStopped(rt.settings.name, reason, reset);
    for (const w of [...rt.workers.values()]) this.#drain(rt, w, why);
    this.#settleStopped(rt);
  }

  #settleStopped(rt: PoolRuntime): void {
    if (rt.state === 'Stopping' && rt.workers.size === 0 && rt.launching === 0) rt.state = 'Stopped';
  }

  /** Recycle one Running worker (overlapped: it serves on until its replacement is Running). */
  #recycle(rt: PoolRuntime, w: WorkerEntry, reason: RecycleReason, logged = false): void {
    if (w.state !== 'Running') return;
    const [event, text] = RECYCLE_EVENTS[reason];
    const why = `worker process ${w.pid} serving application pool '${rt.settings.name}' ${text}`;
    if (!logged && rt.settings.recycling.logEventOn.has(reason)) this.#host.log('info', `WAS ${event}: ${why}; recycling it`);
    if (rt.settings.recycling.disallowOverlappingRotation || rt.state !== 'Started') {
      this.#drain(rt, w, why);
      return;
    }
    this.#transition(w, 'Recycling');
    w.exitReason = why;
    clearTimeout(w.idleTimer);
    clearTimeout(w.timeTimer);
    this.#reconcile(rt);
  }

  /**
   * Ask a worker to finish what it has and exit: the listener dispatches nothing more to it.
   * After shutdownTimeLimit it is killed (WAS event 5013).
   */
  #drain(rt: PoolRuntime, w: WorkerEntry, why: string): void {
    if (w.state === 'Draining' || w.state === 'Exited') return;
    this.#transition(w, 'Draining');
    w.exitReason = why;
    w.expected = true;
    this.#clearTimers(w); // the kill timer is armed just below
    this.#host.drain(rt.settings.name, w.pid);
    const hinted = w.shutdownHintMs;
    const limit = hinted > 0 ? Math.min(hinted, rt.settings.shutdownTimeLimitMs) : rt.settings.shutdownTimeLimitMs;
    w.killTimer = setTimeout(() => {
      this.#host.log('warn', `WAS 5013: worker ${w.pid} of pool ${rt.settings.name} exceeded shutdownTimeLimit (${limit} ms) while shutting down; killing it`);
      w.child.kill('SIGKILL');
    }, limit);
    w.killTimer.unref();
  }

  /**
   * Health (WAS pinging): every pingInterval a ping goes through the worker's event loop; no
   * pong within pingResponseTime means the worker is hung (a busy loop, a deadlock) and it is
   * killed. Its requests are then replayed or answered by the listener, and a new worker starts.
   */
  #schedulePing(rt: PoolRuntime, w: WorkerEntry): void {
    const s = rt.settings;
    if (!s.pingingEnabled || (w.state !== 'Running' && w.state !== 'Recycling') || this.#stopping) return;
    w.pingTimer = setTimeout(() => {
      if (w.state !== 'Running' && w.state !== 'Recycling') return;
      const id = nextPingId++;
      w.pingId = id;
      this.#host.ping(s.name, w.pid, id);
      w.pingTimer = setTimeout(() => {
        if (w.pingId !== id || (w.state !== 'Running' && w.state !== 'Recycling')) return;
        w.exitReason = 'it failed to respond to a ping';
        if (s.failure.orphanWorkerProcess) {
          this.#orphan(rt, w);
          return;
        }
        this.#host.log('warn', `WAS 5010: worker ${w.pid} of pool ${s.name} did not answer a ping within pingResponseTime (${s.pingResponseTimeMs} ms); killing it`);
        w.child.kill('SIGKILL');
      }, s.pingResponseTimeMs);
      w.pingTimer.unref();
    }, s.pingIntervalMs);
    w.pingTimer.unref();
  }

  /**
   * failure orphanWorkerProcess: the hung worker is left running, as it is, for a debugger
   * (`node inspect -p <pid>`, `gcore <pid>`), and orphanActionExe runs with `%1%` replaced by its
   * pid. The pool forgets it (a replacement starts on demand); its requests are replayed or answered
   * by the listener. Orphans are killed only when Wharf stops.
   */
  #orphan(rt: PoolRuntime, w: WorkerEntry): void {
    const s = rt.settings;
    this.#host.log('warn', `WAS 5010: worker ${w.pid} of pool ${s.name} did not answer a ping within pingResponseTime (${s.pingResponseTimeMs} ms); orphaning it (orphanWorkerProcess): it is left running for debugging`);
    this.#transition(w, 'Orphaned');
    w.expected = true;
    this.#clearTimers(w);
    rt.workers.delete(w.pid);
    this.#orphans.add(w.child);
    w.child.once('exit', () => this.#orphans.delete(w.child));
    this.#host.orphan(s.name, w.pid);
    const f = s.failure;
    if (f.orphanActionExe !== '') this.#runAction(rt, 'orphanActionExe', f.orphanActionExe, f.orphanActionParams, w.pid);
    this.#recordFailure(rt);
    this.#host.exited(s.name, w.pid);
    this.#reconcile(rt);
  }

  /** Idle timeout: a Running worker with no request for idleTimeout exits (Terminate). */
  #armIdle(rt: PoolRuntime, w: WorkerEntry, delay: number): void {
    const idle = rt.settings.idleTimeoutMs;
    if (idle <= 0 || w.state !== 'Running') return;
    w.idleTimer = setTimeout(() => {
      if (w.state !== 'Running') return;
      const a = this.#host.activity(rt.settings.name, w.pid);
      if (a === undefined) return;
      const quiet = Date.now() - a.lastActivity;
      if (a.outstanding > 0 || quiet < idle) {
        this.#armIdle(rt, w, a.outstanding > 0 ? idle : idle - quiet);
        return;
      }
      const minutes = Math.round(idle / 60000);
      const why = `was shut down due to inactivity (idleTimeout ${minutes} minute${minutes === 1 ? '' : 's'})`;
      if (rt.settings.logIdleTimeout) this.#host.log('info', `WAS 5186: worker process ${w.pid} serving application pool '${rt.settings.name}' ${why}`);
      this.#drain(rt, w, why);
      // AlwaysRunning keeps a worker: the replacement starts when this one has gone.
    }, Math.max(10, delay));
    w.idleTimer.unref();
  }

  #armSchedule(rt: PoolRuntime): void {
    clearTimeout(rt.scheduleTimer);
    rt.scheduleTimer = undefined;
    const times = rt.settings.recycling.schedule;
    if (times.length === 0) return;
    const now = new Date();
    const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
    const sinceMidnight = now.getTime() - midnight;
    const next = times.find((t) => t > sinceMidnight) ?? times[0]! + 24 * 3600 * 1000;
    rt.scheduleTimer = setTimeout(() => {
      for (const w of [...rt.workers.values()]) this.#recycle(rt, w, 'Schedule');
      this.#armSchedule(rt);
    }, next - sinceMidnight);
    rt.scheduleTimer.unref();
  }

  /**
   * cpu action Throttle / ThrottleUnderLoad: the pool's workers share a control group capped (or
   * weighted) at the limit. Where cgroups cannot be used the reason is logged once and the limit
   * acts as NoAction.
   */
  #applyThrottle(rt: PoolRuntime): void {
    const c = rt.settings.cpu;
    const mode: ThrottleMode | undefined = c.action === 'Throttle' || c.action === 'ThrottleUnderLoad' ? c.action : undefined;
    if (mode === undefined || c.limit <= 0) {
      this.#releaseThrottle(rt);
      return;
    }
    const fraction = c.limit / 100000;
    if (rt.throttle !== undefined) {
      try {
        rt.throttle.update(fraction, mode);
      } catch (err) {
        this.#host.log('warn', `application pool ${rt.settings.name}: cannot change its CPU control group: ${(err as Error).message}`);
      }
      return;
    }
    const made = createCpuThrottle(rt.settings.name, fraction, mode);
    if (!made.ok) {
      if (rt.throttleProblem !== made.reason) this.#host.log('warn', `${made.reason}; its cpu action ${mode} acts as NoAction`);
      rt.throttleProblem = made.reason;
      return;
    }
    rt.throttle = made.group;
    rt.throttleProblem = '';
    const pct = (c.limit / 1000).toFixed(3).replace(/\.?0+$/, '');
    this.#host.log('info', `application pool ${rt.settings.name}: CPU ${mode === 'Throttle' ? 'capped' : 'weighted'} at ${pct}% of the machine (${made.group.path})`);
    for (const w of rt.workers.values()) {
      try {
        made.group.add(w.pid);
      } catch (err) {
        this.#host.log('warn', `application pool ${rt.settings.name}: worker ${w.pid} could not be put in its CPU control group: ${(err as Error).message}`);
      }
    }
  }

  #releaseThrottle(rt: PoolRuntime): void {
    if (rt.throttle === undefined) return;
    // Workers still inside keep the group; it goes when they have gone (remove() is then retried).
    if (rt.throttle.remove()) rt.throttle = undefined;
  }

  /** Sample memory and CPU of workers in pools that limit them. */
  #armMonitor(): void {
    const needed = [...this.#pools.values()].some(
      (rt) =>
        rt.settings.recycling.memoryKb > 0 ||
        rt.settings.recycling.privateMemoryKb > 0 ||
        (rt.settings.cpu.limit > 0 && rt.settings.cpu.resetIntervalMs > 0),
    );
    if (needed && this.#monitor === undefined) {
      this.#monitor = setInterval(() => this.#sample(), MONITOR_INTERVAL_MS);
      this.#monitor.unref();
    } else if (!needed && this.#monitor !== undefined) {
      clearInterval(this.#monitor);
      this.#monitor = undefined;
    }
  }

  #sample(): void {
    const now = Date.now();
    for (const rt of this.#pools.values()) {
      const r = rt.settings.recycling;
      if (r.memoryKb > 0 || r.privateMemoryKb > 0) {
        for (const w of [...rt.workers.values()]) {
          if (w.state !== 'Running') continue;
          const m = readMemory(w.pid);
          if (m === undefined) continue;
          if (r.memoryKb > 0 && m.virtualKb > r.memoryKb) this.#recycle(rt, w, 'Memory');
          else if (r.privateMemoryKb > 0 && m.privateKb > r.privateMemoryKb) this.#recycle(rt, w, 'PrivateMemory');
        }
      }
      this.#checkCpu(rt, now);
    }
  }

  /**
   * cpu limit: the pool's workers together may use limit/1000 % of the machine's CPU time per
   * resetInterval (IIS measures a pool's job object the same way). Over it: NoAction logs once
   * per interval; KillW3wp kills the pool's workers (new ones start on the next request).
   */
  #checkCpu(rt: PoolRuntime, now: number): void {
    const c = rt.settings.cpu;
    if (c.limit <= 0 || c.resetIntervalMs <= 0 || rt.throttle !== undefined) return;
    if (now - rt.cpuWindowStart >= c.resetIntervalMs) {
      rt.cpuWindowStart = now;
      rt.cpuWindowUsedMs = 0;
      rt.cpuReported = false;
      for (const w of rt.workers.values()) w.cpuAtWindowStart = w.lastCpuMs;
    }
    let used = rt.cpuWindowUsedMs;
    for (const w of rt.workers.values()) {
      const cpu = readCpuMs(w.pid);
      if (cpu === undefined) continue;
      w.lastCpuMs = cpu;
      used += cpu - w.cpuAtWindowStart;
    }
    const allowed = (c.limit / 100000) * c.resetIntervalMs * availableParallelism();
    if (used <= allowed || rt.cpuReported) return;
    rt.cpuReported = true;
    const pct = (c.limit / 1000).toFixed(3).replace(/\.?0+$/, '');
    const msg = `application pool ${rt.settings.name} used ${Math.round(used)} ms of CPU time, over its limit of ${pct}% (${Math.round(allowed)} ms) per resetInterval`;
    if (c.action === 'KillW3wp') {
      this.#host.log('warn', `WAS 5021: ${msg}; killing its worker processes (cpu action KillW3wp)`);
      for (const w of rt.workers.values()) {
        // Time spent by a killed worker still counts for the rest of this interval.
        rt.cpuWindowUsedMs += w.lastCpuMs - w.cpuAtWindowStart;
        w.cpuAtWindowStart = w.lastCpuMs;
        w.expected = true;
        w.exitReason = 'it exceeded its pool\'s CPU limit';
        w.child.kill('SIGKILL');
      }
    } else {
      const note = c.action === 'NoAction' ? '' : ` (cpu action ${c.action} acts as NoAction: ${rt.throttleProblem || 'no control group'})`;
      this.#host.log('warn', `WAS 5021: ${msg}${note}`);
    }
  }

  // ---- processes -------------------------------------------------------------------------------

  #spawn(rt: PoolRuntime): void {
    rt.launching++;
    const prepare = this.#o.prepare ?? ((): Promise<WorkerLaunch> => Promise.resolve({}));
    prepare(rt.settings).then(
      (launch) => {
        rt.launching--;
        if (!this.#canStart(rt) || this.#pools.get(rt.settings.name.toLowerCase()) !== rt) {
          this.#settleStopped(rt);
          return;
        }
        this.#launch(rt, launch);
      },
      (err: unknown) => {
        rt.launching--;
        const e = err instanceof WasError ? err : new WasError('WAS_IDENTITY', (err as Error).message);
        this.#startFailed(rt, e);
      },
    );
  }

  #nodeArgs(): string[] {
    const extra = this.#o.nodeArgs ?? (process.env['WHARF_WORKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    return [...WORKER_NODE_FLAGS, ...extra];
  }

  #launch(rt: PoolRuntime, launch: WorkerLaunch): void {
    const s = rt.settings;
    // The launch environment comes last: a pool's environmentVariables cannot change who the
    // worker runs as. The worker loads Wharf's code as root, then drops to the pool's user before
    // it reads any configuration or serves anything (src/worker/privileges.ts).
    const assigned: Record<string, string> = { ...s.environment, APP_POOL_ID: s.name, ...launch.environment };
    let child: ChildProcess;
    let label = { name: s.name };
    // A spare already ran node's start-up and loaded Wharf; it takes the pool's environment from
    // its Init message. NODE_OPTIONS only works at process start, so such pools get a fresh process.
    const spare = 'NODE_OPTIONS' in s.environment || s.runtime !== process.execPath ? undefined : this.#takeSpare();
    if (spare !== undefined) {
      child = spare.child;
      label = spare.label;
      label.name = s.name;
    } else {
      try {
        // The pool's runtime (managedRuntimeVersion as a path to another node), else Wharf's own node.
        child = spawn(s.runtime, [...this.#nodeArgs(), WORKER_MAIN, '-ap', s.name], {
          // fd 3 is the private channel: a socketpair only this child holds.
          stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
          // Never Wharf's whole environment: the allow-list, then the pool's (worker-environment.ts).
          env: { ...workerBaseEnvironment(), ...assigned },
        });
      } catch (err) {
        this.#startFailed(rt, new WasError('WAS_WORKER_START', `cannot start a worker for pool ${s.name}: ${(err as Error).message}`));
        return;
      }
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (err) => this.#startFailed(rt, new WasError('WAS_WORKER_START', `cannot start a worker for pool ${s.name}: ${err.message}`)));
      return;
    }
    const w: WorkerEntry = {
      child,
      pid,
      startedAt: Date.now(),
      state: 'Starting',
      exitReason: '',
      expected: false,
      startupTimer: undefined,
      pingTimer: undefined,
      pingId: 0,
      idleTimer: undefined,
      timeTimer: undefined,
      killTimer: undefined,
      cpuAtWindowStart: 0,
      lastCpuMs: 0,
      shutdownHintMs: 0,
    };
    w.startupTimer = setTimeout(() => {
      this.#host.log('warn', `worker ${pid} of pool ${s.name} did not start within startupTimeLimit (${s.startupTimeLimitMs} ms); killing it`);
      child.kill('SIGKILL');
    }, s.startupTimeLimitMs);
    w.startupTimer.unref();
    rt.workers.set(pid, w);
    if (rt.throttle !== undefined) {
      try {
        rt.throttle.add(pid);
      } catch (err) {
        this.#host.log('warn', `application pool ${s.name}: worker ${pid} could not be put in its CPU control group: ${(err as Error).message}`);
      }
    }
    if (spare === undefined) this.#pipeOutput(child, label, pid);
    child.on('exit', (code, signal) => this.#exited(rt, w, code, signal));
    const as = launch.user !== undefined ? ` as ${launch.user}` : '';
    this.#host.log('info', `started worker ${pid} for pool ${s.name}${as}${spare !== undefined ? ' (pre-started spare)' : ''}`);
    this.#host.attach(s.name, pid, child.stdio[3] as Duplex, spare !== undefined ? assigned : undefined);
    this.#ensureSpare(SPARE_DELAY_MS);
  }

  // ---- the spare worker ------------------------------------------------------------------------

  #takeSpare(): Spare | undefined {
    const spare = this.#spare;
    if (spare === undefined || spare.child.exitCode !== null || spare.child.signalCode !== null) return undefined;
    this.#spare = undefined;
    spare.child.removeListener('exit', spare.onExit);
    this.#spareFailures = 0;
    return spare;
  }

  #ensureSpare(delay: number): void {
    if (!this.#sparesEnabled || this.#stopping || this.#spare !== undefined || this.#spareTimer !== undefined) return;
    if (this.#pools.size === 0) return;
    this.#spareTimer = setTimeout(() => {
      this.#spareTimer = undefined;
      if (!this.#stopping && this.#spare === undefined) this.#startSpare();
    }, delay);
    this.#spareTimer.unref();
  }

  #startSpare(): void {
    let child: ChildProcess;
    try {
      // The same base a fresh worker gets; the pool's variables arrive with its Init message.
      child = spawn(process.execPath, [...this.#nodeArgs(), WORKER_MAIN, '--spare'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: workerBaseEnvironment() });
    } catch (err) {
      this.#spareFailed(`cannot start a spare worker: ${(err as Error).message}`);
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (err) => this.#spareFailed(`cannot start a spare worker: ${err.message}`));
      return;
    }
    const label = { name: 'spare' };
    this.#pipeOutput(child, label, pid);
    const onExit = (): void => {
      if (this.#spare?.child !== child) return;
      this.#spare = undefined;
      if (!this.#stopping) this.#spareFailed(`spare worker ${pid} exited before a pool needed it (exit code ${child.exitCode}, signal ${child.signalCode})`);
    };
    child.on('exit', onExit);
    this.#spare = { child, pid, label, onExit };
  }

  #spareFailed(message: string): void {
    this.#spareFailures++;
    if (this.#spareFailures >= MAX_SPARE_FAILURES) {
      this.#sparesEnabled = false;
      this.#host.log('warn', `${message}; no longer keeping a spare worker (pools start fresh processes)`);
      return;
    }
    this.#host.log('warn', message);
    this.#ensureSpare(SPARE_DELAY_MS * 5);
  }

  #exited(rt: PoolRuntime, w: WorkerEntry, code: number | null, signal: NodeJS.Signals | null): void {
    this.#clearTimers(w);
    const was = w.state;
    this.#transition(w, 'Exited');
    rt.workers.delete(w.pid);
    rt.cpuWindowUsedMs += Math.max(0, w.lastCpuMs - w.cpuAtWindowStart);
    if (rt.workers.size === 0 && (this.#stopping || this.#pools.get(rt.settings.name.toLowerCase()) !== rt)) this.#releaseThrottle(rt);
    if (this.#stopping) return;
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
    const name = rt.settings.name;
    if (was === 'Starting' && !w.expected) {
      this.#startFailed(rt, new WasError('WAS_WORKER_START', `worker ${w.pid} of pool ${name} exited during start-up (${how})`));
    } else if (!w.expected) {
      const why = w.exitReason !== '' ? ` because ${w.exitReason}` : '';
      this.#host.log('warn', `WAS 5009: worker ${w.pid} of pool ${name} terminated unexpectedly${why} (${how})`);
      this.#recordFailure(rt);
    }
    // The channel usually closes before 'exit' arrives; only now may a replacement start.
    this.#host.exited(name, w.pid);
    this.#settleStopped(rt);
    this.#reconcile(rt);
  }

  #startFailed(rt: PoolRuntime, err: WasError): void {
    rt.consecutiveFailures++;
    this.#host.log('error', err.message);
    if (this.#recordFailure(rt)) return;
    if (!rt.settings.failure.rapidFailProtection && rt.consecutiveFailures >= MAX_START_FAILURES) {
      rt.consecutiveFailures = 0;
      this.#host.giveUp(rt.settings.name, err.message);
      return;
    }
    if (rt.state !== 'Started') return;
    // Back off so a broken pool cannot spin the CPU: 100 ms, 200 ms, 400 ms … 5 s.
    const delay = Math.min(5000, 100 * 2 ** (rt.consecutiveFailures - 1));
    clearTimeout(rt.retryTimer);
    rt.retryTimer = setTimeout(() => {
      rt.retryTimer = undefined;
      this.#host.log('info', `retrying start of pool ${rt.settings.name}`);
      this.demand(rt.settings.name);
      this.#reconcile(rt);
    }, delay);
    rt.retryTimer.unref();
  }

  /** Count a failure; true when rapid-fail protection stopped the pool. */
  #recordFailure(rt: PoolRuntime): boolean {
    const f = rt.settings.failure;
    if (!f.rapidFailProtection || rt.state !== 'Started') return false;
    const now = Date.now();
    rt.failures = rt.failures.filter((t) => now - t < f.intervalMs);
    rt.failures.push(now);
    if (rt.failures.length < f.maxCrashes) return false;
    const minutes = Math.round(f.intervalMs / 60000);
    this.#host.log(
      'error',
      `WAS 5002: application pool '${rt.settings.name}' is being automatically disabled due to a series of failures in the process(es) serving it ` +
        `(${rt.failures.length} within ${minutes} minute${minutes === 1 ? '' : 's'}: rapidFailProtection). Start it again with: wharf start apppool "${rt.settings.name}" (WAS_RAPID_FAIL)`,
    );
    rt.failures = [];
    this.#stopPool(rt, 'AppOffline', 'rapid-fail protection stopped its application pool');
    if (f.autoShutdownExe !== '') this.#runAction(rt, 'autoShutdownExe', f.autoShutdownExe, f.autoShutdownParams);
    return true;
  }

  /**
   * Run an administrator's program for a pool event (autoShutdownExe, orphanActionExe): detached,
   * params split on spaces, `%1%` replaced by `pid` when given. Failures are logged, never thrown.
   */
  #runAction(rt: PoolRuntime, attribute: string, exe: string, params: string, pid?: number): void {
    const args = params
      .split(' ')
      .filter((a) => a !== '')
      .map((a) => (pid === undefined ? a : a.replaceAll('%1%', String(pid))));
    const failed = (err: Error): void => this.#host.log('warn', `${attribute} ${exe} for pool ${rt.settings.name} failed: ${err.message}`);
    try {
      const c = spawn(exe, args, { stdio: 'ignore', detached: true });
      c.on('error', failed);
      c.unref();
    } catch (err) {
      failed(err as Error);
    }
  }

  /** Every timer a worker entry may hold. */
  #clearTimers(w: WorkerEntry): void {
    for (const t of [w.startupTimer, w.pingTimer, w.idleTimer, w.timeTimer, w.killTimer]) clearTimeout(t);
  }


  #pipeOutput(child: ChildProcess, label: { readonly name: string }, pid: number): void {
    for (const [stream, level, name] of [
      [child.stdout, 'info', 'stdout'],
      [child.stderr, 'warn', 'stderr'],
    ] as const) {
      if (stream === null) continue;
      let partial = '';
      const emit = (line: string): void => {
        if (line === '') return;
        this.#host.log(level, `[${label.name} pid ${pid}] ${line}`);
        // A spare's own output (before a pool took it) belongs to no pool.
        if (label.name !== 'spare') this.#host.output?.(label.name, pid, name, line);
      };
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        // A line longer than 64 KiB without a newline is cut there: memory stays bounded.
        if (partial.length > 65536) {
          lines.push(partial);
          partial = '';
        }
        for (const line of lines) emit(line);
      });
      // The last words of a crashing worker often lack a final newline.
      stream.on('end', () => {
        emit(partial);
        partial = '';
      });
    }
  }

  #killAfter(w: WorkerEntry, ms: number): void {
    w.expected = w.expected || w.state === 'Draining';
    const t = setTimeout(() => w.child.kill('SIGKILL'), ms);
    t.unref();
    w.child.once('exit', () => clearTimeout(t));
  }

  #clearPoolTimers(rt: PoolRuntime): void {
    clearTimeout(rt.retryTimer);
    clearTimeout(rt.scheduleTimer);
    rt.retryTimer = rt.scheduleTimer = undefined;
  }

  /** Stop everything: workers get `graceMs` to finish after the listener asked them to drain. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    if (this.#monitor !== undefined) clearInterval(this.#monitor);
    clearTimeout(this.#spareTimer);
    const exits: Array<Promise<void>> = [];
    for (const o of this.#orphans) o.kill('SIGKILL');
    const spare = this.#spare;
    if (spare !== undefined && spare.child.exitCode === null && spare.child.signalCode === null) {
      exits.push(new Promise((resolve) => spare.child.once('exit', () => resolve())));
      spare.child.kill('SIGTERM');
    }
    for (const rt of this.#pools.values()) {
      this.#clearPoolTimers(rt);
      for (const w of rt.workers.values()) {
        if (w.state === 'Exited') continue;
        exits.push(new Promise((resolve) => w.child.once('exit', () => resolve())));
        this.#killAfter(w, graceMs);
      }
    }
    await Promise.all(exits);
  }
}
