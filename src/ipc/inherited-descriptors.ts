/**
 * File descriptors a process inherited from whoever started it, closed before they can reach
 * application code.
 *
 * A descriptor without close-on-exec survives every exec: one the launcher of `wharf start` left
 * open (a job runner's status pipe, a shell's `9>lockfile`, a root session's socket) would stay
 * open in the main process and in every worker, FastCGI/CGI child and script a pool starts. Node
 * marks fds 0–15, and any contiguous ones after them, close-on-exec at start-up (libuv's
 * uv_disable_stdio_inheritance), but nothing above the first gap: an fd 251 from the launcher
 * reached every worker. Node has no fcntl(), so such descriptors cannot be marked; they are closed.
 *
 * Which ones: every fd above 2 that is NOT close-on-exec, read from /proc/self/fdinfo/<fd>
 * (`flags:` includes O_CLOEXEC when the descriptor has it). Everything node and libuv open (epoll,
 * eventfds, signal pipes, files, sockets) is close-on-exec, so those are never touched, and
 * neither are systemd socket-activation fds (3…, contiguous, so marked by node) or node's own IPC
 * channel (`process.channel`, kept explicitly). Without /proc nothing is closed.
 */
import { closeSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** O_CLOEXEC in fdinfo `flags:` (octal): 02000000 on x86, ARM, RISC-V and the other generic ABIs. */
const O_CLOEXEC = 0o2000000;

export interface ClosedDescriptor {
  readonly fd: number;
  /** What it pointed at (`pipe:[123]`, `/tmp/lock`, `socket:[456]`), for the log line. */
  readonly target: string;
}

/**
 * Close the inherited descriptors above 2 that lack close-on-exec, except those in `keep`.
 * Returns what was closed.
 */
export function closeInheritedDescriptors(keep: Iterable<number> = []): ClosedDescriptor[] {
  const kept = new Set(keep);
  const channel = (process as { channel?: { fd?: number } }).channel?.fd;
  if (typeof channel === 'number') kept.add(channel);
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return [];
  }
  const closed: ClosedDescriptor[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || kept.has(fd)) continue;
    let flags: number;
    let target: string;
    try {
      const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (m === null) continue;
      flags = parseInt(m[1]!, 8);
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // Gone meanwhile (the directory listing's own descriptor is one of these).
      continue;
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed.push({ fd, target });
    } catch {
      // Already closed: nothing leaks.
    }
  }
  return closed;
}
