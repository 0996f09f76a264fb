/**
 * Who launched this process, and noticing when they go away.
 *
 * `npx wharf start` (npm exec) runs Wharf as npm → `sh -c 'wharf start'` → node. npm passes
 * SIGINT and SIGTERM on to its child only (@npmcli/run-script's signal manager), and that child is
 * the `sh -c` wrapper, which dies of them without passing them on (dash does not exec a lone
 * command): `kill -TERM <npx pid>` used to leave Wharf running, re-parented to init. SIGHUP npm
 * does not pass on at all: npm dies and Wharf never hears of it. `npm start` runs
 * `exec node bin/wharf.js start` (package.json), so there npm's forwarded signals reach Wharf
 * directly and npm waits for the drain; npm's own death on SIGHUP is still silent.
 *
 * So the main process watches the launcher chain it was started under (docs/cli.md, "Stopping
 * and reloading"):
 *   - the `sh -c` wrapper is gone → someone told a launcher to stop (npm forwarded SIGTERM or
 *     SIGINT to it, or the wrapper itself was signalled): drain and exit, as on SIGTERM;
 *   - npm is gone while its wrapper (if any) lives → npm died of a signal it does not forward,
 *     SIGHUP (or SIGKILL/SIGQUIT, which nobody can tell apart from outside): re-read the
 *     configuration, as on SIGHUP, and keep serving.
 * Linux only: it reads /proc. Without /proc, or when not started by a package manager, there is
 * nothing to watch and signals are the only way in.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { readStatFields } from '../was/proc-stats.js';

export type LauncherRole = 'wrapper' | 'manager';

export interface Launcher {
  readonly pid: number;
  readonly role: LauncherRole;
  /** What `ps` shows for it, for log lines: `npm exec wharf start`, `sh -c wharf start`. */
  readonly command: string;
  /** /proc/<pid>/stat's starttime: a recycled pid is a different process. */
  readonly startTime: string;
}

interface ProcInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly startTime: string;
  readonly argv: string[];
  readonly exe: string;
}

function readProc(pid: number): ProcInfo | undefined {
  const fields = readStatFields(pid);
  if (fields === undefined) return undefined;
  let argv: string[] = [];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    while (argv.length > 0 && argv[argv.length - 1] === '') argv.pop();
  } catch {
    // gone, or another user's: no command line
  }
  let exe = '';
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // another user's process, or a zombie
  }
  return { pid, ppid: Number(fields[1]), state: fields[0] ?? '', startTime: fields[19] ?? '', argv, exe };
}

const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'ksh', 'mksh']);

/** `sh -c '<command>'`: how npm, pnpm and yarn run a script or a package's bin. */
function isShellWrapper(p: ProcInfo): boolean {
  const name = basename(p.exe !== '' ? p.exe : (p.argv[0] ?? ''));
  return SHELLS.has(name) && p.argv[1] === '-c';
}

/**
 * npm sets its process title to `npm start`, `npm exec …`, `npm run …` (cmdline shows the title);
 * an npm without a title shows `node …/npm-cli.js`. pnpm and yarn likewise.
 */
function isPackageManager(p: ProcInfo): boolean {
  const first = p.argv[0] ?? '';
  if (/^(npm|npx|pnpm|yarn)( |$)/.test(first)) return true;
  return p.argv.slice(0, 2).some((a) => /(^|\/)(npm|npx|pnpm|yarn)(-cli)?(\.c?js)?$/.test(a));
}

function launcher(p: ProcInfo, role: LauncherRole): Launcher {
  return { pid: p.pid, role, command: p.argv.join(' ').trim() || `pid ${p.pid}`, startTime: p.startTime };
}

/**
 * The launchers this process runs under: [] unless a package manager started it (npm, pnpm and
 * yarn set npm_lifecycle_event for scripts and for npx), else the `sh -c` wrapper (if any) and the
 * package manager above it. A global `wharf` started from a shell, a script or systemd has none.
 */
export function findLaunchers(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): Launcher[] {
  if (env['npm_lifecycle_event'] === undefined && env['npm_command'] === undefined) return [];
  const self = readProc(pid);
  if (self === undefined) return [];
  const parent = readProc(self.ppid);
  if (parent === undefined) return [];
  if (isPackageManager(parent)) return [launcher(parent, 'manager')];
  if (!isShellWrapper(parent)) return [];
  const grandparent = readProc(parent.ppid);
  if (grandparent === undefined || !isPackageManager(grandparent)) return [];
  return [launcher(parent, 'wrapper'), launcher(grandparent, 'manager')];
}

/** Whether the process is gone: no /proc entry, a zombie, or its pid now names another process. */
export function launcherGone(l: Launcher): boolean {
  const p = readProc(l.pid);
  return p === undefined || p.state === 'Z' || p.state === 'X' || p.startTime !== l.startTime;
}

export interface LauncherWatch {
  stop(): void;
}

/** How often the launchers are looked at: /proc reads are cheap; this bounds how late a stop starts. */
export const LAUNCHER_POLL_MS = 250;

/**
 * Calls `stopped(l)` when the wrapper goes (then watches no more), `hungUp(l)` when the package
 * manager goes while the wrapper lives (then watches the wrapper only). The wrapper is looked at
 * first: npm forwards SIGTERM to it and exits only after it died, so a stop never looks like a
 * hang-up.
 */
export function watchLaunchers(
  launchers: readonly Launcher[],
  on: { stopped(l: Launcher): void; hungUp(l: Launcher): void },
): LauncherWatch {
  let watched = [...launchers];
  const timer = setInterval(() => {
    const wrapper = watched.find((l) => l.role === 'wrapper');
    if (wrapper !== undefined && launcherGone(wrapper)) {
      watched = [];
      clearInterval(timer);
      on.stopped(wrapper);
      return;
    }
    const manager = watched.find((l) => l.role === 'manager');
    if (manager !== undefined && launcherGone(manager)) {
      watched = watched.filter((l) => l !== manager);
      if (watched.length === 0) clearInterval(timer);
      on.hungUp(manager);
    }
  }, LAUNCHER_POLL_MS);
  // The server's sockets keep the process alive; this timer alone must not.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
