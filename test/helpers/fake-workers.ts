/**
 * Stand-ins for what surrounds the activation service in its unit tests (src/was/*.test.ts): a
 * spawner whose "processes" exit when the test says (or when killed), and a listener side that
 * records what WAS told it. Nothing here starts a process or opens a socket.
 */
import { PassThrough } from 'node:stream';
import type { WasControlInbound } from '../../src/ipc/control-messages.js';
import type { CredentialResult } from '../../src/ipc/credential-messages.js';
import type { RequestRouting } from '../../src/was/activation.js';
import type { PoolKey } from '../../src/config/pool-key.js';
import type { ControlPort, SpawnRequest, WorkerProcess, WorkerSpawner } from '../../src/was/worker-process.js';

type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

export class FakeControl implements ControlPort {
  handlers: WasControlInbound | undefined;
  readonly pings: number[] = [];
  bind(handlers: WasControlInbound): void {
    this.handlers = handlers;
  }
  sendPing(id: number): void {
    this.pings.push(id);
  }
  readonly credentialResults: { id: number; result: CredentialResult }[] = [];
  credentialsChanged = 0;
  sendCredentialResult(id: number, result: CredentialResult): void {
    this.credentialResults.push({ id, result });
  }
  sendCredentialsChanged(): void {
    this.credentialsChanged++;
  }
  /** The worker answers the last ping. */
  pong(): void {
    this.handlers!.pong(this.pings[this.pings.length - 1]!);
  }
}

export class FakeProcess implements WorkerProcess {
  readonly requests = new PassThrough();
  readonly control = new FakeControl();
  readonly signals: string[] = [];
  exited = false;
  readonly #listeners = new Set<ExitListener>();
  constructor(
    readonly pid: number,
    readonly request: SpawnRequest,
  ) {}
  kill(signal: 'SIGKILL' | 'SIGTERM'): void {
    this.signals.push(signal);
    // A killed process is gone at once here: real ones follow within milliseconds.
    this.exit(null, signal);
  }
  onExit(listener: ExitListener): void {
    this.#listeners.add(listener);
  }
  offExit(listener: ExitListener): void {
    this.#listeners.delete(listener);
  }
  /** The process ends (a crash when WAS did not ask for it). */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    for (const l of [...this.#listeners]) l(code, signal);
  }
  /** It sends Ready on its control channel. */
  ready(): void {
    this.control.handlers!.ready();
  }
}

export class FakeSpawner implements WorkerSpawner {
  readonly spawned: FakeProcess[] = [];
  readonly actions: Array<{ exe: string; args: readonly string[] }> = [];
  /** Make the next spawn fail with this message. */
  failNext: string | undefined;
  #pid = 1000;

  spawn(req: SpawnRequest, failed: (message: string) => void): WorkerProcess | undefined {
    if (this.failNext !== undefined) {
      const m = this.failNext;
      this.failNext = undefined;
      failed(m);
      return undefined;
    }
    const p = new FakeProcess(++this.#pid, req);
    this.spawned.push(p);
    return p;
  }

  runAction(exe: string, args: readonly string[]): void {
    this.actions.push({ exe, args });
  }

  /** Processes started for `pool` (undefined: spares), in order. */
  of(pool: string | undefined): FakeProcess[] {
    return this.spawned.filter((p) => p.request.pool === pool);
  }

  get last(): FakeProcess {
    return this.spawned[this.spawned.length - 1]!;
  }
}

/** The listener's side of WAS, as a record of calls. */
export class RecordingRouting implements RequestRouting {
  readonly calls: string[] = [];
  /** What workerActivity answers, by pid (default: idle since the start). */
  readonly activity = new Map<number, { outstanding: number; lastActivity: number }>();
  idleSince = 0;
  attachWorker(_pool: PoolKey, poolName: string, pid: number, _channel: unknown, assign?: Readonly<Record<string, string>>): void {
    this.calls.push(`attach ${poolName} ${pid}${assign !== undefined ? ' assign' : ''}`);
  }
  workerReady(pool: PoolKey, pid: number): void {
    this.calls.push(`ready ${pool} ${pid}`);
  }
  drainWorker(pool: PoolKey, pid: number): void {
    this.calls.push(`drain ${pool} ${pid}`);
  }
  abandonWorker(pool: PoolKey, pid: number): void {
    this.calls.push(`abandon ${pool} ${pid}`);
  }
  workerExited(pool: PoolKey, pid: number): void {
    this.calls.push(`exited ${pool} ${pid}`);
  }
  workerActivity(_pool: PoolKey, pid: number): { outstanding: number; lastActivity: number } {
    return this.activity.get(pid) ?? { outstanding: 0, lastActivity: this.idleSince };
  }
  poolStopped(pool: PoolKey, reason: string, reset: boolean): void {
    this.calls.push(`stopped ${pool} ${reason}${reset ? ' reset' : ''}`);
  }
  poolStarted(pool: PoolKey): void {
    this.calls.push(`started ${pool}`);
  }
  poolGaveUp(pool: PoolKey): void {
    this.calls.push(`gaveUp ${pool}`);
  }
  poolProcessHint(pool: PoolKey, processes: number): void {
    this.calls.push(`hint ${pool} ${processes}`);
  }
  /** Calls that start with `prefix`. */
  only(prefix: string): string[] {
    return this.calls.filter((c) => c.startsWith(prefix));
  }
}
