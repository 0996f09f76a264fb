/**
 * The activation service (WAS): application pools and their worker processes.
 *
 * A pool starts workers on demand (or keeps one running: startMode AlwaysRunning), up to
 * maxProcesses (a web garden). Each Running worker is watched by its `WorkerHealth` (ping, idle
 * timeout, periodicRestart time), and recycled on periodicRestart requests / memory /
 * privateMemory / schedule, on a configuration change to its pool and on demand. A recycle is
 * overlapped unless disallowOverlappingRotation: the old worker (Recycling) keeps serving until
 * its replacement is Running, then drains. Draining workers take no new requests and are killed
 * after shutdownTimeLimit. Workers that exit without being asked count against rapid-fail
 * protection, which stops the pool. The listener owns the requests throughout: nothing here ever
 * holds or answers one.
 *
 * The parts, by concern: lifecycle.ts (the state machines and their table), health.ts (the
 * timers of one worker), spare.ts (the pre-started spare), resource-limits.ts (memory and CPU
 * limits), worker-process.ts (processes and their control channel). Time comes from a `Clock`
 * and processes from a `WorkerSpawner`, both injected, so activation.test.ts drives every state
 * and timer with a fake clock and no process.
 *
 * Talking to the rest of Wharf goes through two typed interfaces: the listener asks through
 * `WorkerSupply` (which this class implements) and is told through `RequestRouting` (which the
 * listener implements). Workers talk to WAS on their control channel (`WasControlInbound`).
 */
import type { Duplex } from 'node:stream';
import { AdminError, WasError } from '../errors.js';
import { MAX_HINTED_PROCESSES, type AppHintsMessage, type RecycleRequestMessage, type WasControlInbound } from '../ipc/control-messages.js';
import * as events from '../diagnostics.js';
import { realClock, type Clock, type TimerHandle } from './clock.js';
import { WorkerHealth } from './health.js';
import { RECYCLE_EVENTS, recycleWord, transition, untilNextSchedule, type ExitCause, type PoolState, type WorkerState } from './lifecycle.js';
import { poolKey, type PoolKey } from '../config/pool-key.js';
import type { PoolSettings, RecycleReason } from './pool-settings.js';
import { ResourceLimits, type ResourcePool } from './resource-limits.js';
import { SpareWorker, SPARE_DELAY_MS } from './spare.js';
import { nodeSpawner, type OutputLabel, type WorkerProcess, type WorkerSpawner } from './worker-process.js';
import { CredentialBroker, type CredentialAsker, type CredentialChecker } from './credential-broker.js';

export type { PoolSettings, RecycleReason } from './pool-settings.js';
export type { PoolState, WorkerState } from './lifecycle.js';

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

/** What the listener asks of WAS (HTTP.sys asking WAS for a w3wp). Implemented by ActivationService. */
export interface WorkerSupply {
  /** The pool's queue has work no ready worker can take at once. */
  demand(pool: PoolKey): void;
  /** A worker was given its pool's periodicRestart requests: recycle it. */
  requestLimitReached(pool: PoolKey, pid: number): void;
  /** The listener lost a worker's request channel: the worker can serve nobody any more. */
  requestChannelClosed(pool: PoolKey, pid: number): void;
}

/** What WAS tells the listener about request channels and pools. Implemented by the Listener. */
export interface RequestRouting {
  /**
   * A worker's request channel: open it and send the configuration. `assign` is set for a
   * pre-started spare: the environment (identity included) it takes on before it loads anything.
   */
  attachWorker(pool: PoolKey, poolName: string, pid: number, channel: Duplex, assign?: Readonly<Record<string, string>>): void;
  /** The worker said Ready (on its control channel): dispatch to it. */
  workerReady(pool: PoolKey, pid: number): void;
  /** Stop dispatching to the worker and ask it, behind its last request, to finish and exit. */
  drainWorker(pool: PoolKey, pid: number): void;
  /** Cut the channel to a hung worker left running (orphanWorkerProcess): its requests are replayed or answered. */
  abandonWorker(pool: PoolKey, pid: number): void;
  /** A worker process is gone: the pool may need another one for waiting requests. */
  workerExited(pool: PoolKey, pid: number): void;
  /** Requests in flight on a worker and when it was last busy (Date.now() ms), for idleTimeout. */
  workerActivity(pool: PoolKey, pid: number): { readonly outstanding: number; readonly lastActivity: number } | undefined;
  /** The pool stopped: the listener answers its requests itself (503, or a reset at TcpLevel). */
  poolStopped(pool: PoolKey, reason: 'Disabled' | 'AppOffline', resetConnections: boolean): void;
  poolStarted(pool: PoolKey): void;
  /** Start attempts keep failing and rapid-fail protection is off: answer what is queued with 503. */
  poolGaveUp(pool: PoolKey, reason: string): void;
  /** The hosted app's process count (iisnode nodeProcessCountPerApplication), bounded; 0 = none. */
  poolProcessHint(pool: PoolKey, processes: number): void;
}

/** Where WAS's log lines and the pools' output go. */
export interface ActivationLog {
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
   * Keep one worker process started in advance, not yet given to any pool (spare.ts).
   * Default: on unless $WHARF_SPARE_WORKER=0.
   */
  readonly spareWorker?: boolean;
  /** Time and timers; real ones by default. */
  readonly clock?: Clock;
  /** How processes start; real ones by default. */
  readonly spawner?: WorkerSpawner;
  /** Memory and CPU limits; /proc and cgroups by default. */
  readonly resources?: ResourceLimits;
  /** Who checks the credentials workers ask about (src/security/); none: every check is 'unavailable'. */
  readonly credentials?: CredentialChecker;
}

interface PoolRuntime extends ResourcePool {
  readonly key: PoolKey;
  settings: PoolSettings;
  state: PoolState;
  readonly workers: Map<number, WorkerEntry>;
  /** Starts whose identity is being prepared (they count as Starting). */
  launching: number;
  /** Start failures in a row (reset when a worker becomes Running). */
  consecutiveFailures: number;
  /** Times of recent failures, for rapid-fail protection. */
  failures: number[];
  retryTimer: TimerHandle | undefined;
  scheduleTimer: TimerHandle | undefined;
  /** Workers the hosted app asked for (iisnode nodeProcessCountPerApplication), 0 = none. */
  hintedProcesses: number;
}

interface WorkerEntry {
  readonly process: WorkerProcess;
  readonly pid: number;
  readonly startedAt: number;
  state: WorkerState;
  exitReason: string;
  /** WAS asked this worker to go (drain, kill): its exit is not a failure. */
  expected: boolean;
  startupTimer: TimerHandle | undefined;
  killTimer: TimerHandle | undefined;
  readonly health: WorkerHealth;
  /** CPU time at the start of the pool's current accounting window, and last seen (resource-limits.ts). */
  cpuAtWindowStart: number;
  lastCpuMs: number;
  /** Drain time its hosted app asked for (iisnode gracefulShutdownTimeout), 0 = none. */
  shutdownHintMs: number;
  /** Why WAS let it go, in the words of wharf:worker:exit ('' = nobody asked: a crash). */
  exitCause: ExitCause;
  /** Where its credential checks are answered, and how many wait (credential-broker.ts). */
  readonly asker: CredentialAsker;
}

/** Start failures in a row before the queue is answered with 503 (when rapid-fail protection is off). */
const MAX_START_FAILURES = 5;
/** A worker whose request channel closed gets this long to exit on its own before it is killed. */
const CHANNEL_CLOSED_KILL_MS = 1000;
/**
 * Node flags every worker gets (before $WHARF_WORKER_NODE_ARGS, which can override them), each
 * measured on an idle worker's private memory (RssAnon + VmSwap; docs/architecture.md, "Worker
 * memory"):
 * - a small young generation (2 MiB semi-spaces; V8's default grows them to 16): start-up's
 *   surviving allocations grow them to the maximum, so it is what an idle worker keeps (-2 MiB
 *   against 4 MiB semi-spaces, which already kept ~55 MiB instead of ~100 MiB after a burst of
 *   load); request-sized garbage dies young either way. 1 MiB would save 1.5 MiB more but cost ~7% CPU per hosted
 *   request (Express and node:http, worker CPU per request over 3 A/B rounds); 2 MiB cost none.
 * - one V8 helper thread instead of four: each helper's malloc arena keeps the compiler's and
 *   GC's freed memory, ~1.5 MiB a thread in an idle worker (-4.5 MiB); no CPU cost measured on
 *   the hosted bench, whose server side runs on one core as a busy pool does.
 * Not taken: --optimize-for-size and --lite-mode (-7 and -15 MiB, but +40% CPU per hosted request
 * and, for the second, no optimising compiler).
 */
const WORKER_NODE_FLAGS = ['--max-semi-space-size=2', '--v8-pool-size=1'];

function publishPoolState(rt: PoolRuntime, reason: string): void {
  if (events.poolState.hasSubscribers) events.poolState.publish({ poolName: rt.settings.name, state: rt.state, reason });
}

export class ActivationService implements WorkerSupply {
  readonly #log: ActivationLog;
  readonly #o: ActivationOptions;
  readonly #clock: Clock;
  readonly #spawner: WorkerSpawner;
  readonly #resources: ResourceLimits;
  readonly #credentials: CredentialBroker;
  readonly #spare: SpareWorker;
  readonly #pools = new Map<PoolKey, PoolRuntime>();
  #routing: RequestRouting | undefined;
  #stopping = false;
  /** Hung workers left running for debugging (orphanWorkerProcess); killed when Wharf stops. */
  readonly #orphans = new Set<WorkerProcess>();

  constructor(log: ActivationLog, options: ActivationOptions = {}) {
    this.#log = log;
    this.#o = options;
    this.#clock = options.clock ?? realClock;
    this.#spawner = options.spawner ?? nodeSpawner;
    this.#resources = options.resources ?? new ResourceLimits({ clock: this.#clock, log: (level, m) => log.log(level, m) });
    this.#credentials = new CredentialBroker(options.credentials, (level, m) => log.log(level, m));
    this.#spare = new SpareWorker({
      clock: this.#clock,
      enabled: options.spareWorker ?? process.env['WHARF_SPARE_WORKER'] !== '0',
      // The same base a fresh worker gets; the pool's variables arrive with its Init message.
      start: (label, failed) =>
        this.#spawner.spawn({ runtime: process.execPath, pool: undefined, nodeArgs: this.#nodeArgs(), environment: {}, label, output: this.#output }, failed),
      warn: (m) => log.log('warn', m),
    });
  }

  /** The listener, told about request channels and pool states from now on. */
  serve(routing: RequestRouting): void {
    this.#routing = routing;
  }

  get #to(): RequestRouting {
    if (this.#routing === undefined) throw new WasError('WAS_WORKER_START', 'the activation service has no listener to serve');
    return this.#routing;
  }

  /**
   * Pool settings from the current configuration: new pools appear (started when autoStart),
   * removed ones drain away, and a changed pool's workers recycle (ConfigChange) unless
   * disallowRotationOnConfigChange.
   */
  configure(pools: readonly PoolSettings[]): void {
    const keep = new Set<PoolKey>();
    for (const p of pools) {
      const key = poolKey(p.name);
      keep.add(key);
      const rt = this.#pools.get(key);
      if (rt === undefined) {
        const fresh: PoolRuntime = {
          key,
          settings: p,
          state: p.autoStart ? 'Started' : 'Stopped',
          workers: new Map(),
          launching: 0,
          consecutiveFailures: 0,
          failures: [],
          retryTimer: undefined,
          scheduleTimer: undefined,
          cpuWindowStart: this.#clock.now(),
          cpuWindowUsedMs: 0,
          cpuReported: false,
          throttle: undefined,
          throttleProblem: '',
          hintedProcesses: 0,
        };
        this.#resources.applyThrottle(fresh);
        this.#pools.set(key, fresh);
        publishPoolState(fresh, fresh.state === 'Started' ? 'autoStart' : 'autoStart=false');
        if (fresh.state === 'Stopped') this.#to.poolStopped(key, 'Disabled', p.failure.loadBalancerCapabilities === 'TcpLevel');
        this.#armSchedule(fresh);
        this.#reconcile(fresh);
        continue;
      }
      const changed = rt.settings.signature !== p.signature;
      rt.settings = p;
      if (!changed) continue;
      this.#armSchedule(rt);
      this.#resources.applyThrottle(rt);
      if (!p.recycling.disallowRotationOnConfigChange) {
        for (const w of [...rt.workers.values()]) if (w.state === 'Running') this.#recycle(rt, w, 'ConfigChange');
      }
      this.#reconcile(rt);
    }
    for (const [key, rt] of this.#pools) {
      if (keep.has(key)) continue;
      this.#pools.delete(key);
      this.#clearPoolTimers(rt);
      if (rt.workers.size === 0) this.#resources.releaseThrottle(rt);
      for (const w of rt.workers.values()) this.#drain(rt, w, 'its application pool was removed from the configuration');
    }
    this.#resources.watch(this.#pools.values(), () => this.#sample());
    if (this.#pools.size > 0) this.#spare.ensure(SPARE_DELAY_MS);
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

  poolState(pool: PoolKey): PoolState | undefined {
    return this.#pools.get(pool)?.state;
  }

  /** The pre-started spare's pid, if one is waiting. */
  get sparePid(): number | undefined {
    return this.#spare.pid;
  }

  // ---- WorkerSupply (listener → WAS) -----------------------------------------------------------

  /**
   * The pool's queue has work no Running worker can take at once: start another worker unless
   * one is already starting or the pool has maxProcesses workers taking requests.
   */
  demand(pool: PoolKey): void {
    const rt = this.#pools.get(pool);
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

  /** A worker reached periodicRestart requests (the listener counts dispatches). */
  requestLimitReached(pool: PoolKey, pid: number): void {
    const rt = this.#pools.get(pool);
    const w = rt?.workers.get(pid);
    if (rt !== undefined && w !== undefined) this.#recycle(rt, w, 'Requests');
  }

  /**
   * The listener lost its channel to a worker. A worker without a channel can serve nobody but
   * still counts against maxProcesses, so it must not linger: it gets a moment to exit, then
   * is killed (its exit then lets a replacement start).
   */
  requestChannelClosed(pool: PoolKey, pid: number): void {
    const w = this.#pools.get(pool)?.workers.get(pid);
    if (w === undefined || w.state === 'Exited') return;
    this.#killAfter(w, CHANNEL_CLOSED_KILL_MS);
  }

  // ---- the control channel (worker → WAS) ------------------------------------------------------

  /** The handler of one worker's control messages (WasControlInbound), bound to its entry. */
  #controlOf(rt: PoolRuntime, w: WorkerEntry): WasControlInbound {
    return {
      ready: () => this.#ready(rt, w),
      pong: (id) => {
        const roundTrip = w.health.pong(id);
        if (roundTrip !== undefined && events.workerPing.hasSubscribers) events.workerPing.publish({ poolName: rt.settings.name, pid: w.pid, roundTripMs: roundTrip });
      },
      recycleRequest: (msg) => this.#recycleRequested(rt, w, msg),
      appHints: (msg, asked) => this.#appHints(rt, w, msg, asked),
      // WAS's own reason (a recycle, a missed ping) stays: it is why the worker was told to go.
      exiting: (msg) => {
        if (w.exitReason === '') w.exitReason = msg.reason;
      },
      invalid: (problem) => this.#log.log('warn', `worker ${w.pid} of pool ${rt.settings.name} sent an invalid control message (${problem}); ignored`),
      credentialCheck: (id, request) => this.#credentials.check(w.asker, id, request),
      credentialRefused: (id, problem) => this.#credentials.refuse(w.asker, id, problem),
      // The worker closed its end or died: its exit follows and is handled there.
      closed: () => undefined,
    };
  }

  /** A worker said it is ready (its configuration loaded, preload pages run). */
  #ready(rt: PoolRuntime, w: WorkerEntry): void {
    if (w.state !== 'Starting' || rt.workers.get(w.pid) !== w) return;
    transition(w, 'Running');
    if (events.workerReady.hasSubscribers) events.workerReady.publish({ poolName: rt.settings.name, pid: w.pid });
    this.#clock.clear(w.startupTimer);
    w.startupTimer = undefined;
    rt.consecutiveFailures = 0;
    w.health.start();
    this.#resources.workerRunning(w);
    this.#to.workerReady(rt.key, w.pid);
    // An overlapped recycle completes: the oldest worker it replaces now drains.
    let oldest: WorkerEntry | undefined;
    for (const o of rt.workers.values()) if (o.state === 'Recycling' && (oldest === undefined || o.startedAt < oldest.startedAt)) oldest = o;
    if (oldest !== undefined) this.#drain(rt, oldest, oldest.exitReason);
    if (rt.state !== 'Started') this.#drain(rt, w, 'its application pool is stopping');
    this.#reconcile(rt);
  }

  /**
   * A worker asked to be recycled (IIS: an ISAPI extension reporting itself unhealthy, WAS 5078;
   * here a hosted app whose watchedFiles changed or whose app_offline.htm appeared). Overlapped,
   * like every recycle; logged always, since the worker said why.
   */
  #recycleRequested(rt: PoolRuntime, w: WorkerEntry, msg: RecycleRequestMessage): void {
    if (w.state !== 'Running' || rt.workers.get(w.pid) !== w) return;
    this.#log.log('info', `WAS 5078: worker process ${w.pid} serving application pool '${rt.settings.name}' asked to be recycled (${msg.reason}); recycling it`);
    this.#recycle(rt, w, 'IsapiUnhealthy', true);
  }

  /**
   * The worker's hosted app asked for a process count (a web garden of at least maxProcesses) and
   * a drain time (at most shutdownTimeLimit): iisnode's nodeProcessCountPerApplication and
   * gracefulShutdownTimeout. The pool keeps the process count until a worker says otherwise.
   * Both arrive bounded (control-messages.ts).
   */
  #appHints(rt: PoolRuntime, w: WorkerEntry, hints: AppHintsMessage, asked: number): void {
    if (rt.workers.get(w.pid) !== w) return;
    const processes = hints.processes;
    if (processes !== rt.hintedProcesses && processes > rt.settings.maxProcesses) {
      const capped = asked > MAX_HINTED_PROCESSES ? ` (${asked} asked, at most ${MAX_HINTED_PROCESSES})` : '';
      this.#log.log('info', `application pool '${rt.settings.name}': its Node.js application asks for ${processes} worker processes (nodeProcessCountPerApplication)${capped}`);
    }
    rt.hintedProcesses = processes;
    this.#to.poolProcessHint(rt.key, processes);
    w.shutdownHintMs = hints.shutdownTimeLimitMs;
  }

  /** Wharf's user store changed: every worker drops the logons it cached (a deleted user is out at once). */
  credentialsChanged(): void {
    for (const rt of this.#pools.values()) for (const w of rt.workers.values()) if (w.state !== 'Exited') w.process.control.sendCredentialsChanged();
  }

  // ---- admin verbs -----------------------------------------------------------------------------

  startPool(name: string): string {
    const rt = this.#pool(name);
    if (rt.state === 'Started') throw new AdminError('ADM_REQUEST', `application pool "${rt.settings.name}" is already started`);
    rt.state = 'Started';
    publishPoolState(rt, 'admin');
    rt.failures = [];
    rt.consecutiveFailures = 0;
    this.#clock.clear(rt.retryTimer);
    rt.retryTimer = undefined;
    this.#to.poolStarted(rt.key);
    this.#log.log('info', `application pool ${rt.settings.name} started`);
    this.#reconcile(rt);
    return `"${rt.settings.name}" successfully started.`;
  }

  stopPool(name: string): string {
    const rt = this.#pool(name);
    if (rt.state !== 'Started') throw new AdminError('ADM_REQUEST', `application pool "${rt.settings.name}" is already stopped`);
    this.#stopPool(rt, 'Disabled', 'an administrator stopped its application pool');
    this.#log.log('info', `application pool ${rt.settings.name} stopped`);
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
    const rt = this.#pools.get(poolKey(name));
    if (rt === undefined) throw new AdminError('ADM_NOT_FOUND', `Cannot find APPPOOL object with identifier "${name}".`);
    return rt;
  }

  // ---- the state machines (lifecycle.ts) -------------------------------------------------------

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
    publishPoolState(rt, reason === 'AppOffline' ? 'rapidFailProtection' : 'admin');
    this.#clock.clear(rt.retryTimer);
    rt.retryTimer = undefined;
    // TcpLevel: a load balancer in front sees the server as down (connection reset), not a 503.
    const reset = rt.settings.failure.loadBalancerCapabilities === 'TcpLevel';
    this.#to.poolStopped(rt.key, reason, reset);
    for (const w of [...rt.workers.values()]) this.#drain(rt, w, why);
    this.#settleStopped(rt);
  }

  #settleStopped(rt: PoolRuntime): void {
    if (rt.state !== 'Stopping' || rt.workers.size !== 0 || rt.launching !== 0) return;
    rt.state = 'Stopped';
    publishPoolState(rt, 'drained');
  }

  /** Recycle one Running worker (overlapped: it serves on until its replacement is Running). */
  #recycle(rt: PoolRuntime, w: WorkerEntry, reason: RecycleReason, logged = false): void {
    if (w.state !== 'Running') return;
    const [event, text] = RECYCLE_EVENTS[reason];
    const why = `worker process ${w.pid} serving application pool '${rt.settings.name}' ${text}`;
    if (!logged && rt.settings.recycling.logEventOn.has(reason)) this.#log.log('info', `WAS ${event}: ${why}; recycling it`);
    if (events.poolRecycle.hasSubscribers) events.poolRecycle.publish({ poolName: rt.settings.name, pid: w.pid, reason: recycleWord(reason) });
    w.exitCause = 'recycle';
    if (rt.settings.recycling.disallowOverlappingRotation || rt.state !== 'Started') {
      this.#drain(rt, w, why);
      return;
    }
    transition(w, 'Recycling');
    w.exitReason = why;
    w.health.recycling();
    this.#reconcile(rt);
  }

  /**
   * Ask a worker to finish what it has and exit: the listener dispatches nothing more to it.
   * After shutdownTimeLimit it is killed (WAS event 5013).
   */
  #drain(rt: PoolRuntime, w: WorkerEntry, why: string): void {
    if (w.state === 'Draining' || w.state === 'Exited') return;
    transition(w, 'Draining');
    w.exitReason = why;
    w.expected = true;
    if (w.exitCause === '') w.exitCause = 'stop';
    this.#clearTimers(w); // the kill timer is armed just below
    this.#to.drainWorker(rt.key, w.pid);
    const hinted = w.shutdownHintMs;
    const limit = hinted > 0 ? Math.min(hinted, rt.settings.shutdownTimeLimitMs) : rt.settings.shutdownTimeLimitMs;
    w.killTimer = this.#clock.setTimeout(() => {
      this.#log.log('warn', `WAS 5013: worker ${w.pid} of pool ${rt.settings.name} exceeded shutdownTimeLimit (${limit} ms) while shutting down; killing it`);
      w.exitCause = 'shutdownTimeLimit';
      w.process.kill('SIGKILL');
    }, limit);
  }

  /** A ping went unanswered (health.ts): the worker is hung. Killed, or orphaned for a debugger. */
  #unresponsive(rt: PoolRuntime, w: WorkerEntry): void {
    if (w.state !== 'Running' && w.state !== 'Recycling') return;
    const s = rt.settings;
    w.exitReason = 'it failed to respond to a ping';
    w.exitCause = 'ping';
    if (events.workerPing.hasSubscribers) events.workerPing.publish({ poolName: s.name, pid: w.pid, roundTripMs: -1 });
    if (s.failure.orphanWorkerProcess) {
      this.#orphan(rt, w);
      return;
    }
    this.#log.log('warn', `WAS 5010: worker ${w.pid} of pool ${s.name} did not answer a ping within pingResponseTime (${s.pingResponseTimeMs} ms); killing it`);
    w.process.kill('SIGKILL');
  }

  /**
   * failure orphanWorkerProcess: the hung worker is left running, as it is, for a debugger
   * (`node inspect -p <pid>`, `gcore <pid>`), and orphanActionExe runs with `%1%` replaced by its
   * pid. The pool forgets it (a replacement starts on demand); its requests are replayed or answered
   * by the listener. Orphans are killed only when Wharf stops.
   */
  #orphan(rt: PoolRuntime, w: WorkerEntry): void {
    const s = rt.settings;
    this.#log.log('warn', `WAS 5010: worker ${w.pid} of pool ${s.name} did not answer a ping within pingResponseTime (${s.pingResponseTimeMs} ms); orphaning it (orphanWorkerProcess): it is left running for debugging`);
    transition(w, 'Orphaned');
    w.expected = true;
    w.exitCause = 'orphaned';
    this.#clearTimers(w);
    rt.workers.delete(w.pid);
    this.#orphans.add(w.process);
    w.process.onExit(() => this.#orphans.delete(w.process));
    this.#to.abandonWorker(rt.key, w.pid);
    // The pool is done with it (it is left running): its exit, for the pool, is now.
    if (events.workerExit.hasSubscribers) events.workerExit.publish({ poolName: s.name, pid: w.pid, code: null, signal: null, reason: 'orphaned', failure: true });
    const f = s.failure;
    if (f.orphanActionExe !== '') this.#runAction(rt, 'orphanActionExe', f.orphanActionExe, f.orphanActionParams, w.pid);
    this.#recordFailure(rt);
    this.#to.workerExited(rt.key, w.pid);
    this.#reconcile(rt);
  }

  /** Idle timeout (health.ts): a Running worker with no request for idleTimeout exits (Terminate). */
  #idle(rt: PoolRuntime, w: WorkerEntry): void {
    if (w.state !== 'Running') return;
    const idle = rt.settings.idleTimeoutMs;
    const minutes = Math.round(idle / 60000);
    const why = `was shut down due to inactivity (idleTimeout ${minutes} minute${minutes === 1 ? '' : 's'})`;
    if (rt.settings.logIdleTimeout) this.#log.log('info', `WAS 5186: worker process ${w.pid} serving application pool '${rt.settings.name}' ${why}`);
    w.exitCause = 'idle';
    this.#drain(rt, w, why);
    // AlwaysRunning keeps a worker: the replacement starts when this one has gone.
  }

  #armSchedule(rt: PoolRuntime): void {
    this.#clock.clear(rt.scheduleTimer);
    rt.scheduleTimer = undefined;
    const wait = untilNextSchedule(rt.settings.recycling.schedule, this.#clock.now());
    if (wait === undefined) return;
    rt.scheduleTimer = this.#clock.setTimeout(() => {
      for (const w of [...rt.workers.values()]) this.#recycle(rt, w, 'Schedule');
      this.#armSchedule(rt);
    }, wait);
  }

  /** Memory limits recycle, CPU limits act (resource-limits.ts), sampled every second. */
  #sample(): void {
    for (const rt of this.#pools.values()) {
      for (const [w, reason] of this.#resources.overMemory(rt)) {
        const entry = rt.workers.get(w.pid);
        if (entry !== undefined && entry.state === 'Running') this.#recycle(rt, entry, reason);
      }
      for (const w of this.#resources.checkCpu(rt)) {
        // cpu action KillW3wp: the pool's workers go; new ones start on the next request.
        const entry = rt.workers.get(w.pid);
        if (entry === undefined) continue;
        entry.expected = true;
        entry.exitReason = 'it exceeded its pool\'s CPU limit';
        entry.exitCause = 'cpuLimit';
        entry.process.kill('SIGKILL');
      }
    }
  }

  // ---- processes -------------------------------------------------------------------------------

  #spawn(rt: PoolRuntime): void {
    rt.launching++;
    const prepare = this.#o.prepare ?? ((): Promise<WorkerLaunch> => Promise.resolve({}));
    prepare(rt.settings).then(
      (launch) => {
        rt.launching--;
        if (!this.#canStart(rt) || this.#pools.get(rt.key) !== rt) {
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

  /** A worker's output line: the server log, and the pool's output log once a pool owns it. */
  readonly #output = (label: OutputLabel, pid: number, stream: 'stdout' | 'stderr', line: string): void => {
    this.#log.log(stream === 'stdout' ? 'info' : 'warn', `[${label.name} pid ${pid}] ${line}`);
    // A spare's own output (before a pool took it) belongs to no pool.
    if (label.name !== 'spare') this.#log.output?.(label.name, pid, stream, line);
  };

  #launch(rt: PoolRuntime, launch: WorkerLaunch): void {
    const s = rt.settings;
    // The launch environment comes last: a pool's environmentVariables cannot change who the
    // worker runs as. The worker loads Wharf's code as root, then drops to the pool's user before
    // it reads any configuration or serves anything (src/worker/privileges.ts).
    const assigned: Record<string, string> = { ...s.environment, APP_POOL_ID: s.name, ...launch.environment };
    // A spare already ran node's start-up and loaded Wharf; it takes the pool's environment from
    // its Init message. NODE_OPTIONS only works at process start, so such pools get a fresh process.
    const spare = 'NODE_OPTIONS' in s.environment || s.runtime !== process.execPath ? undefined : this.#spare.take();
    let child: WorkerProcess | undefined;
    if (spare !== undefined) {
      child = spare.process;
      spare.label.name = s.name;
    } else {
      // The pool's runtime (managedRuntimeVersion as a path to another node), else Wharf's own node.
      child = this.#spawner.spawn(
        { runtime: s.runtime, pool: s.name, nodeArgs: this.#nodeArgs(), environment: assigned, label: { name: s.name }, output: this.#output },
        (message) => this.#startFailed(rt, new WasError('WAS_WORKER_START', `cannot start a worker for pool ${s.name}: ${message}`)),
      );
      if (child === undefined) return;
    }
    const p = child;
    const pid = p.pid;
    const w: WorkerEntry = {
      process: p,
      pid,
      startedAt: this.#clock.now(),
      state: 'Starting',
      exitReason: '',
      expected: false,
      startupTimer: undefined,
      killTimer: undefined,
      health: new WorkerHealth(
        this.#clock,
        () => ({ ...rt.settings, timeMs: rt.settings.recycling.timeMs }),
        {
          ping: (id) => p.control.sendPing(id),
          unresponsive: () => this.#unresponsive(rt, w),
          activity: () => this.#to.workerActivity(rt.key, pid),
          idle: () => this.#idle(rt, w),
          timeLimit: () => this.#recycle(rt, w, 'Time'),
        },
      ),
      cpuAtWindowStart: 0,
      lastCpuMs: 0,
      shutdownHintMs: 0,
      exitCause: '',
      asker: {
        pid,
        pool: s.name,
        credentialChecks: 0,
        alive: () => w.state !== 'Exited',
        answer: (id, result) => p.control.sendCredentialResult(id, result),
      },
    };
    w.startupTimer = this.#clock.setTimeout(() => {
      this.#log.log('warn', `worker ${pid} of pool ${s.name} did not start within startupTimeLimit (${s.startupTimeLimitMs} ms); killing it`);
      w.exitCause = 'startup';
      p.kill('SIGKILL');
    }, s.startupTimeLimitMs);
    rt.workers.set(pid, w);
    this.#resources.workerStarted(rt, pid);
    p.onExit((code, signal) => this.#exited(rt, w, code, signal));
    p.control.bind(this.#controlOf(rt, w));
    const as = launch.user !== undefined ? ` as ${launch.user}` : '';
    this.#log.log('info', `started worker ${pid} for pool ${s.name}${as}${spare !== undefined ? ' (pre-started spare)' : ''}`);
    if (events.workerStart.hasSubscribers) events.workerStart.publish({ poolName: s.name, pid, fromSpare: spare !== undefined });
    this.#to.attachWorker(rt.key, s.name, pid, p.requests, spare !== undefined ? assigned : undefined);
    this.#spare.ensure(SPARE_DELAY_MS);
  }

  #exited(rt: PoolRuntime, w: WorkerEntry, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.state === 'Orphaned') {
      // Already forgotten by its pool (#orphan published its exit for the pool).
      transition(w, 'Exited');
      return;
    }
    this.#clearTimers(w);
    const was = w.state;
    transition(w, 'Exited');
    rt.workers.delete(w.pid);
    this.#resources.workerExited(rt, w);
    if (events.workerExit.hasSubscribers) {
      const reason = w.exitCause !== '' ? w.exitCause : this.#stopping ? 'stop' : was === 'Starting' ? 'startup' : 'crash';
      events.workerExit.publish({ poolName: rt.settings.name, pid: w.pid, code, signal, reason, failure: !w.expected && !this.#stopping });
    }
    if (rt.workers.size === 0 && (this.#stopping || this.#pools.get(rt.key) !== rt)) this.#resources.releaseThrottle(rt);
    if (this.#stopping) return;
    const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
    const name = rt.settings.name;
    if (was === 'Starting' && !w.expected) {
      this.#startFailed(rt, new WasError('WAS_WORKER_START', `worker ${w.pid} of pool ${name} exited during start-up (${how})`));
    } else if (!w.expected) {
      const why = w.exitReason !== '' ? ` because ${w.exitReason}` : '';
      this.#log.log('warn', `WAS 5009: worker ${w.pid} of pool ${name} terminated unexpectedly${why} (${how})`);
      this.#recordFailure(rt);
    }
    // The request channel usually closes before the exit arrives; only now may a replacement start.
    this.#to.workerExited(rt.key, w.pid);
    this.#settleStopped(rt);
    this.#reconcile(rt);
  }

  #startFailed(rt: PoolRuntime, err: WasError): void {
    rt.consecutiveFailures++;
    this.#log.log('error', err.message);
    if (this.#recordFailure(rt)) return;
    if (!rt.settings.failure.rapidFailProtection && rt.consecutiveFailures >= MAX_START_FAILURES) {
      rt.consecutiveFailures = 0;
      this.#log.log('error', `pool ${rt.settings.name}: workers keep failing to start (${err.message}); answering its queued requests with 503`);
      this.#to.poolGaveUp(rt.key, err.message);
      return;
    }
    if (rt.state !== 'Started') return;
    // Back off so a broken pool cannot spin the CPU: 100 ms, 200 ms, 400 ms … 5 s.
    const delay = Math.min(5000, 100 * 2 ** (rt.consecutiveFailures - 1));
    this.#clock.clear(rt.retryTimer);
    rt.retryTimer = this.#clock.setTimeout(() => {
      rt.retryTimer = undefined;
      this.#log.log('info', `retrying start of pool ${rt.settings.name}`);
      this.demand(rt.key);
      this.#reconcile(rt);
    }, delay);
  }

  /** Count a failure; true when rapid-fail protection stopped the pool. */
  #recordFailure(rt: PoolRuntime): boolean {
    const f = rt.settings.failure;
    if (!f.rapidFailProtection || rt.state !== 'Started') return false;
    const now = this.#clock.now();
    rt.failures = rt.failures.filter((t) => now - t < f.intervalMs);
    rt.failures.push(now);
    if (rt.failures.length < f.maxCrashes) return false;
    const minutes = Math.round(f.intervalMs / 60000);
    this.#log.log(
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
    this.#spawner.runAction(exe, args, (err) => this.#log.log('warn', `${attribute} ${exe} for pool ${rt.settings.name} failed: ${err.message}`));
  }

  /** Every timer a worker entry may hold. */
  #clearTimers(w: WorkerEntry): void {
    this.#clock.clear(w.startupTimer);
    this.#clock.clear(w.killTimer);
    w.startupTimer = w.killTimer = undefined;
    w.health.stop();
  }

  #killAfter(w: WorkerEntry, ms: number): void {
    w.expected = w.expected || w.state === 'Draining';
    const t = this.#clock.setTimeout(() => w.process.kill('SIGKILL'), ms);
    w.process.onExit(() => this.#clock.clear(t));
  }

  #clearPoolTimers(rt: PoolRuntime): void {
    this.#clock.clear(rt.retryTimer);
    this.#clock.clear(rt.scheduleTimer);
    rt.retryTimer = rt.scheduleTimer = undefined;
  }

  /** Stop everything: workers get `graceMs` to finish after the listener asked them to drain. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#resources.stop();
    const exits: Array<Promise<void>> = [this.#spare.stop()];
    for (const o of this.#orphans) o.kill('SIGKILL');
    for (const rt of this.#pools.values()) {
      this.#clearPoolTimers(rt);
      for (const w of rt.workers.values()) {
        if (w.state === 'Exited') continue;
        exits.push(new Promise((resolve) => w.process.onExit(() => resolve())));
        this.#killAfter(w, graceMs);
      }
    }
    await Promise.all(exits);
  }
}
