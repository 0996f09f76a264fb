/**
 * `<!--#exec cmd="…"-->`: the command line runs under `/bin/sh -c` (IIS runs it with the system's
 * command interpreter), as the worker runs, i.e. as the pool's user, in the including file's folder
 * and with the pool's environment. Its standard output goes into the page as it comes, with the
 * response's backpressure; standard error is dropped, as ssinc drops it. The command is bounded:
 * after `timeoutMs` or past `maxBytes` of output its whole process group is killed, and so is
 * whatever it left running in the background once the shell exits.
 */
import { spawn } from 'node:child_process';

export interface CommandOptions {
  readonly command: string;
  readonly cwd: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** Each piece of standard output; a returned promise holds the output back until it settles. */
  readonly onOutput: (chunk: Buffer) => void | Promise<void>;
}

export type CommandOutcome =
  | { readonly kind: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly bytes: number }
  | { readonly kind: 'timeout'; readonly bytes: number }
  | { readonly kind: 'too-much-output'; readonly bytes: number }
  | { readonly kind: 'stopped'; readonly bytes: number }
  | { readonly kind: 'failed'; readonly message: string };

export interface RunningCommand {
  readonly done: Promise<CommandOutcome>;
  /** End it now (the client went away). */
  stop(): void;
}

export function runCommand(o: CommandOptions): RunningCommand {
  let stopReason: 'timeout' | 'too-much-output' | 'stopped' | undefined;
  let bytes = 0;
  let killGroup = (): void => undefined;
  const done = new Promise<CommandOutcome>((resolve) => {
    let child;
    try {
      // detached: the shell leads a process group of its own, so one kill reaches everything the
      // command started (a pipeline, a background job), not only the shell.
      child = spawn('/bin/sh', ['-c', o.command], { cwd: o.cwd, stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    } catch (err) {
      resolve({ kind: 'failed', message: (err as Error).message });
      return;
    }
    const pid = child.pid;
    killGroup = (): void => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      stopReason ??= 'timeout';
      killGroup();
    }, o.timeoutMs);
    timer.unref();
    const out = child.stdout;
    out.on('data', (chunk: Buffer) => {
      if (stopReason !== undefined) return;
      const room = o.maxBytes - bytes;
      const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
      bytes += piece.length;
      if (piece.length !== 0) {
        const pending = o.onOutput(piece);
        if (pending !== undefined) {
          out.pause();
          void pending.then(
            () => out.resume(),
            () => {
              stopReason ??= 'stopped';
              killGroup();
              out.resume();
            },
          );
        }
      }
      if (chunk.length > room) {
        stopReason = 'too-much-output';
        killGroup();
      }
    });
    // The shell is gone: end what it left behind, whose open stdout would hold 'close' back.
    child.once('exit', () => killGroup());
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ kind: 'failed', message: err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (stopReason !== undefined) resolve({ kind: stopReason, bytes });
      else resolve({ kind: 'exited', code, signal, bytes });
    });
  });
  return {
    done,
    stop(): void {
      stopReason ??= 'stopped';
      killGroup();
    },
  };
}
