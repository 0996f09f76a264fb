/**
 * A worker process as WAS holds it, and the one place that starts processes. The activation
 * service sees only `WorkerProcess` and `WorkerSpawner`, so its unit tests run with a spawner of
 * their own and no process at all; `nodeSpawner` is the real one.
 *
 * A worker inherits two private socketpairs and nothing else (inherited-descriptors.ts closes the
 * rest): fd 3, the request channel, which WAS hands to the listener, and fd 4, the control
 * channel (src/ipc/control-messages.ts), which WAS keeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { WasControlChannel } from '../ipc/control-channel.js';
import type { WasControlInbound } from '../ipc/control-messages.js';
import type { CredentialResult } from '../ipc/credential-messages.js';
import { workerBaseEnvironment } from './worker-environment.js';
import { readOutputLines } from '../output-lines.js';

/** WAS's end of a worker's control channel. */
export interface ControlPort {
  /** Where the worker's control messages go from now on (a spare's are bound when a pool takes it). */
  bind(handlers: WasControlInbound): void;
  sendPing(id: number): void;
  /** The answer to the worker's CredentialCheck `id`. */
  sendCredentialResult(id: number, result: CredentialResult): void;
  /** Wharf's users changed: the worker drops its cached logons. */
  sendCredentialsChanged(): void;
}

export interface WorkerProcess {
  readonly pid: number;
  /** fd 3: the request channel, given to the listener. */
  readonly requests: Duplex;
  /** fd 4: the control channel, WAS's own. */
  readonly control: ControlPort;
  /** The process has exited (its exit listeners ran or are running). */
  readonly exited: boolean;
  kill(signal: 'SIGKILL' | 'SIGTERM'): void;
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
  offExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

/** Where a worker's output lines are credited: 'spare' until a pool takes it, then the pool's name. */
export interface OutputLabel {
  name: string;
}

export interface SpawnRequest {
  /** The node executable (the pool's runtime). */
  readonly runtime: string;
  /** The pool's name, or undefined for a spare (a pool is assigned by its Init message). */
  readonly pool: string | undefined;
  /** Flags for node before the worker's script (WORKER_NODE_FLAGS, $WHARF_WORKER_NODE_ARGS). */
  readonly nodeArgs: readonly string[];
  /** Added to the worker's base environment (the pool's variables, APP_POOL_ID, identity). */
  readonly environment: Readonly<Record<string, string>>;
  readonly label: OutputLabel;
  /** One line the worker printed (a hosted app's console output). */
  readonly output: (label: OutputLabel, pid: number, stream: 'stdout' | 'stderr', line: string) => void;
}

export interface WorkerSpawner {
  /**
   * Start a worker. Undefined when it could not be started; `failed` then says why (at once, or
   * on the next turn when the system refused the process).
   */
  spawn(req: SpawnRequest, failed: (message: string) => void): WorkerProcess | undefined;
  /**
   * Run an administrator's program for a pool event (autoShutdownExe, orphanActionExe), detached;
   * failures go to `failed`, never thrown.
   */
  runAction(exe: string, args: readonly string[], failed: (err: Error) => void): void;
}

const WORKER_MAIN = fileURLToPath(new URL('../worker/worker-main.js', import.meta.url));

class NodeWorkerProcess implements WorkerProcess {
  readonly pid: number;
  readonly requests: Duplex;
  readonly control: WasControlChannel;
  readonly #child: ChildProcess;

  constructor(child: ChildProcess, pid: number) {
    this.#child = child;
    this.pid = pid;
    this.requests = child.stdio[3] as Duplex;
    this.control = new WasControlChannel(child.stdio[4] as Duplex);
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }
  kill(signal: 'SIGKILL' | 'SIGTERM'): void {
    this.#child.kill(signal);
  }
  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.#child.on('exit', listener);
  }
  offExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.#child.removeListener('exit', listener);
  }
}

function pipeOutput(child: ChildProcess, req: SpawnRequest, pid: number): void {
  // Lines past 64 KiB without a newline are cut there; a crashing worker's last words, often
  // without a final newline, still come out.
  if (child.stdout !== null) readOutputLines(child.stdout, 65536, (line) => req.output(req.label, pid, 'stdout', line));
  if (child.stderr !== null) readOutputLines(child.stderr, 65536, (line) => req.output(req.label, pid, 'stderr', line));
}

/** Real processes: `node <flags> worker-main.js -ap <pool>` (or `--spare`). */
export const nodeSpawner: WorkerSpawner = {
  spawn(req, failed) {
    let child: ChildProcess;
    try {
      child = spawn(req.runtime, [...req.nodeArgs, WORKER_MAIN, ...(req.pool === undefined ? ['--spare'] : ['-ap', req.pool])], {
        // fd 3 the request channel, fd 4 the control channel: socketpairs only this child holds.
        stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
        // Never Wharf's whole environment: the allow-list, then the pool's (worker-environment.ts).
        env: { ...workerBaseEnvironment(), ...req.environment },
      });
    } catch (err) {
      failed((err as Error).message);
      return undefined;
    }
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (err) => failed(err.message));
      return undefined;
    }
    pipeOutput(child, req, pid);
    return new NodeWorkerProcess(child, pid);
  },
  runAction(exe, args, failed) {
    try {
      const c = spawn(exe, [...args], { stdio: 'ignore', detached: true });
      c.on('error', failed);
      c.unref();
    } catch (err) {
      failed(err as Error);
    }
  },
};
