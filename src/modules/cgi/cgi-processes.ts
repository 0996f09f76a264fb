/**
 * The CGI programs a worker runs, so that none outlives what started it. Each program is started
 * in a process group of its own (spawn detached: the group id is its pid), and the whole group is
 * killed when the program exits, times out or loses its client, so a script's own children
 * (`sh` running `sleep`, a backgrounded job) go with it.
 *
 * When the worker itself ends, its groups are killed on the way out ('exit'). A worker killed with
 * SIGKILL (WAS's ping or shutdownTimeLimit) runs no code at all, so a small watchdog, one `sh` per
 * worker started with the first program, keeps the list too: it reads `+pgid`/`-pgid` lines on its
 * stdin and, when that pipe closes (the worker is gone, however it went), kills every group left.
 * Its stdin is close-on-exec in the worker, so no CGI program holds it open.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const WATCHDOG_SCRIPT = [
  // Ctrl-C in Wharf's terminal reaches the whole foreground group: the watchdog must outlive it.
  "trap '' INT TERM HUP",
  "g=' '",
  'while read -r op id; do',
  '  case $op in',
  '    +) g="$g$id " ;;',
  '    -) case $g in *" $id "*) g="${g%% $id *} ${g#* $id }" ;; esac ;;',
  '  esac',
  'done',
  'for id in $g; do kill -s KILL -- "-$id" 2>/dev/null; done',
].join('\n');

class ProcessGroups {
  readonly #groups = new Set<number>();
  #watchdog: ChildProcess | undefined;
  #exitHooked = false;

  /** A program started as the leader of group `pgid`. */
  add(pgid: number): void {
    this.#groups.add(pgid);
    if (!this.#exitHooked) {
      this.#exitHooked = true;
      process.on('exit', () => this.killAll());
    }
    this.#tell(`+ ${pgid}\n`);
  }

  /** Kill what is left of the group (the program exited, timed out, or its client left). */
  kill(pgid: number): void {
    if (!this.#groups.has(pgid)) return;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left in the group.
    }

  }

  /** The group is gone: kill any member still in it, and forget it. */
  release(pgid: number): void {
    if (!this.#groups.has(pgid)) return;
    this.kill(pgid);
    this.#groups.delete(pgid);
    this.#tell(`- ${pgid}\n`);
  }

  get running(): number {
    return this.#groups.size;
  }

  killAll(): void {
    for (const pgid of this.#groups) this.kill(pgid);
  }

  #tell(line: string): void {
    const w = this.#watchdog;
    // A new watchdog is told every live group as it starts, this one included.
    if (w === undefined) this.#startWatchdog();
    else if (w.stdin?.writable) w.stdin.write(line);
  }

  #startWatchdog(): ChildProcess | undefined {
    let w: ChildProcess;
    try {
      w = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], env: {} });
    } catch {
      return undefined;
    }
    // Neither the watchdog nor its pipe may keep a worker that is done from exiting.
    w.unref();
    const stdin = w.stdin!;
    stdin.on('error', () => undefined);
    (stdin as unknown as { unref?: () => void }).unref?.();
    w.on('error', () => undefined);
    w.on('exit', () => {
      // Killed by someone: the next program starts another one, told of every live group.
      if (this.#watchdog === w) this.#watchdog = undefined;
    });
    this.#watchdog = w;
    for (const pgid of this.#groups) stdin.write(`+ ${pgid}\n`);
    return w;
  }
}

/** This worker's CGI process groups. */
export const cgiProcesses = new ProcessGroups();
