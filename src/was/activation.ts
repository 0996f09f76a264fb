/**
 * The activation service (WAS's role, first cut): starts a worker process for a pool when its
 * queue has work (or at start-up for startMode="AlwaysRunning"), hands the worker's private
 * channel to the listener, restarts workers that die while work is waiting, and backs off when
 * a pool's workers keep failing to start. Pings, recycling, identities and rapid-fail protection
 * build on this (see the application-pools issue).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { WasError } from '../errors.js';

export type WorkerProcessState = 'Starting' | 'Running' | 'Exited';

export interface WorkerProcessInfo {
  readonly pid: number;
  readonly pool: string;
  state: WorkerProcessState;
  readonly startedAt: number;
}

export interface ActivationHost {
  /** Give the worker's channel to the listener. */
  attach(pool: string, pid: number, channel: Duplex): void;
  /** Every start attempt failed for a while: the listener answers the pool's queue with 503. */
  giveUp(pool: string, reason: string): void;
  /** A worker process is gone: the listener may need another one for waiting requests. */
  exited(pool: string, pid: number): void;
  /** Send a health ping to a worker through its channel. */
  ping(pool: string, pid: number, id: number): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

export interface PoolSettings {
  readonly name: string;
  readonly maxProcesses: number;
  readonly startupTimeLimitMs: number;
  readonly shutdownTimeLimitMs: number;
  /** processModel pingingEnabled / pingInterval / pingResponseTime (ms). */
  readonly pingingEnabled: boolean;
  readonly pingIntervalMs: number;
  readonly pingResponseTimeMs: number;
  readonly environment: Readonly<Record<string, string>>;
}

interface PoolRuntime {
  settings: PoolSettings;
  readonly workers: Map<number, WorkerEntry>;
  consecutiveFailures: number;
  retryTimer: NodeJS.Timeout | undefined;
}

interface WorkerEntry {
  readonly child: ChildProcess;
  readonly info: WorkerProcessInfo;
  startupTimer: NodeJS.Timeout | undefined;
  /** Health: the next ping, or the deadline of the ping awaiting its pong. */
  pingTimer: NodeJS.Timeout | undefined;
  /** Id of the ping awaiting its pong (0 = none). */
  pingId: number;
}

let nextPingId = 1;

const WORKER_MAIN = fileURLToPath(new URL('../worker/worker-main.js', import.meta.url));
/** Start failures in a row before the queue is answered with 503 instead of waiting. */
const MAX_START_FAILURES = 5;

export class ActivationService {
  readonly #host: ActivationHost;
  readonly #pools = new Map<string, PoolRuntime>();
  #stopping = false;

  constructor(host: ActivationHost) {
    this.#host = host;
  }

  /** Pool settings from the current configuration (new pools appear, removed ones vanish). */
  configure(pools: readonly PoolSettings[]): void {
    const keep = new Set<string>();
    for (const p of pools) {
      const key = p.name.toLowerCase();
      keep.add(key);
      const rt = this.#pools.get(key);
      if (rt === undefined) {
        this.#pools.set(key, { settings: p, workers: new Map(), consecutiveFailures: 0, retryTimer: undefined });
      } else {
        rt.settings = p;
      }
    }
    for (const [key, rt] of this.#pools) {
      if (keep.has(key)) continue;
      if (rt.retryTimer !== undefined) clearTimeout(rt.retryTimer);
      this.#pools.delete(key);
      // Their workers were asked to drain by the listener; make sure they do not linger.
      for (const w of rt.workers.values()) this.#killAfter(w.child, rt.settings.shutdownTimeLimitMs);
    }
  }

  workers(): WorkerProcessInfo[] {
    const out: WorkerProcessInfo[] = [];
    for (const rt of this.#pools.values()) for (const w of rt.workers.values()) out.push(w.info);
    return out;
  }

  /** The pool's queue has work and no worker can take it: start one unless one is coming. */
  demand(pool: string): void {
    const rt = this.#pools.get(pool.toLowerCase());
    if (rt === undefined || this.#stopping || rt.retryTimer !== undefined) return;
    let live = 0;
    let starting = 0;
    for (const w of rt.workers.values()) {
      if (w.info.state === 'Exited') continue;
      live++;
      if (w.info.state === 'Starting') starting++;
    }
    if (starting > 0 || live >= Math.max(1, rt.settings.maxProcesses)) return;
    this.#spawn(rt);
  }

  /**
   * The listener lost its channel to a worker. A worker without a channel can serve nobody but
   * still counts against maxProcesses, so it must not linger: it gets a moment to exit, then
   * is killed (its 'exit' then lets a replacement start).
   */
  channelClosed(pool: string, pid: number): void {
    const w = this.#pools.get(pool.toLowerCase())?.workers.get(pid);
    if (w === undefined || w.info.state === 'Exited') return;
    this.#killAfter(w.child, 1000);
  }

  /** A worker said it is ready (its configuration loaded). */
  workerReady(pool: string, pid: number): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined) return;
    w.info.state = 'Running';
    if (w.startupTimer !== undefined) clearTimeout(w.startupTimer);
    w.startupTimer = undefined;
    rt.consecutiveFailures = 0;
    this.#schedulePing(rt, w);
  }

  /**
   * Health (WAS pinging): every pingInterval a ping goes through the worker's event loop; no
   * pong within pingResponseTime means the worker is hung (a busy loop, a deadlock) and it is
   * killed. Its requests are then replayed or answered by the listener, and a new worker starts.
   */
  #schedulePing(rt: PoolRuntime, w: WorkerEntry): void {
    const s = rt.settings;
    if (!s.pingingEnabled || w.info.state !== 'Running' || this.#stopping) return;
    w.pingTimer = setTimeout(() => {
      if (w.info.state !== 'Running') return;
      const id = nextPingId++;
      w.pingId = id;
      this.#host.ping(s.name, w.info.pid, id);
      w.pingTimer = setTimeout(() => {
        if (w.pingId !== id || w.info.state !== 'Running') return;
        this.#host.log(
          'warn',
          `worker ${w.info.pid} of pool ${s.name} did not answer a ping within pingResponseTime (${rt.settings.pingResponseTimeMs} ms); killing it`,
        );
        w.child.kill('SIGKILL');
      }, s.pingResponseTimeMs);
      w.pingTimer.unref();
    }, s.pingIntervalMs);
    w.pingTimer.unref();
  }

  /** A worker answered a ping. */
  pong(pool: string, pid: number, id: number): void {
    const rt = this.#pools.get(pool.toLowerCase());
    const w = rt?.workers.get(pid);
    if (rt === undefined || w === undefined || w.pingId !== id) return;
    w.pingId = 0;
    if (w.pingTimer !== undefined) clearTimeout(w.pingTimer);
    this.#schedulePing(rt, w);
  }

  #spawn(rt: PoolRuntime): void {
    const s = rt.settings;
    let child: ChildProcess;
    try {
      // WHARF_WORKER_NODE_ARGS passes extra node flags to workers (--inspect, --cpu-prof …).
      const nodeArgs = (process.env['WHARF_WORKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
      child = spawn(process.execPath, [...nodeArgs, WORKER_MAIN, '-ap', s.name], {
        // fd 3 is the private channel: a socketpair only this child holds.
        stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, ...s.environment, APP_POOL_ID: s.name },
      });
    } catch (err) {
      this.#failed(rt, new WasError('WAS_WORKER_START', `cannot start a worker for pool ${s.name}: ${(err as Error).message}`));
      return;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (err) => this.#failed(rt, new WasError('WAS_WORKER_START', `cannot start a worker for pool ${s.name}: ${err.message}`)));
      return;
    }
    const info: WorkerProcessInfo = { pid, pool: s.name, state: 'Starting', startedAt: Date.now() };
    const entry: WorkerEntry = {
      child,
      info,
      pingTimer: undefined,
      pingId: 0,
      startupTimer: setTimeout(() => {
        this.#host.log('warn', `worker ${pid} of pool ${s.name} did not start within startupTimeLimit (${s.startupTimeLimitMs} ms); killing it`);
        child.kill('SIGKILL');
      }, s.startupTimeLimitMs) as NodeJS.Timeout | undefined,
    };
    entry.startupTimer?.unref();
    rt.workers.set(pid, entry);
    this.#pipeOutput(child, s.name, pid);
    child.on('exit', (code, signal) => {
      if (entry.startupTimer !== undefined) clearTimeout(entry.startupTimer);
      if (entry.pingTimer !== undefined) clearTimeout(entry.pingTimer);
      const wasStarting = info.state === 'Starting';
      info.state = 'Exited';
      rt.workers.delete(pid);
      const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      if (this.#stopping) return;
      if (wasStarting) this.#failed(rt, new WasError('WAS_WORKER_START', `worker ${pid} of pool ${s.name} exited during start-up (${how})`));
      else if (code !== 0) this.#host.log('warn', `worker ${pid} of pool ${s.name} exited unexpectedly (${how})`);
      // The channel usually closes before 'exit' arrives; only now may a replacement start.
      this.#host.exited(s.name, pid);
    });
    this.#host.log('info', `started worker ${pid} for pool ${s.name}`);
    this.#host.attach(s.name, pid, child.stdio[3] as Duplex);
  }

  #failed(rt: PoolRuntime, err: WasError): void {
    rt.consecutiveFailures++;
    this.#host.log('error', err.message);
    if (rt.consecutiveFailures >= MAX_START_FAILURES) {
      rt.consecutiveFailures = 0;
      this.#host.giveUp(rt.settings.name, err.message);
      return;
    }
    // Back off so a broken pool cannot spin the CPU: 100 ms, 200 ms, 400 ms …
    const delay = Math.min(5000, 100 * 2 ** (rt.consecutiveFailures - 1));
    rt.retryTimer = setTimeout(() => {
      rt.retryTimer = undefined;
      this.#host.log('info', `retrying start of pool ${rt.settings.name}`);
      this.demand(rt.settings.name);
    }, delay);
    rt.retryTimer.unref();
  }

  #pipeOutput(child: ChildProcess, pool: string, pid: number): void {
    for (const [stream, level] of [
      [child.stdout, 'info'],
      [child.stderr, 'warn'],
    ] as const) {
      if (stream === null) continue;
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (text: string) => {
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) if (line !== '') this.#host.log(level, `[${pool} pid ${pid}] ${line}`);
      });
    }
  }

  #killAfter(child: ChildProcess, ms: number): void {
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    t.unref();
    child.once('exit', () => clearTimeout(t));
  }

  /** Stop everything: workers get `graceMs` to finish after the listener asked them to drain. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    const exits: Array<Promise<void>> = [];
    for (const rt of this.#pools.values()) {
      if (rt.retryTimer !== undefined) clearTimeout(rt.retryTimer);
      for (const w of rt.workers.values()) {
        if (w.info.state === 'Exited') continue;
        exits.push(new Promise((resolve) => w.child.once('exit', () => resolve())));
        this.#killAfter(w.child, graceMs);
      }
    }
    await Promise.all(exits);
  }
}
