/**
 * What WAS reads about a worker process from /proc: memory for periodicRestart memory /
 * privateMemory, CPU time for the cpu limit. Linux's closest analogs of Windows' counters:
 * virtual bytes = VmSize, private bytes = RssAnon + VmSwap (anonymous memory only the process
 * owns), CPU time = utime + stime.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat times (USER_HZ; 100 on every Linux ABI in use). */
const USER_HZ = 100;

export interface ProcessMemory {
  readonly virtualKb: number;
  readonly privateKb: number;
  readonly rssKb: number;
}

export function readMemory(pid: number): ProcessMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  return { virtualKb: kb('VmSize'), privateKb: kb('RssAnon') + kb('VmSwap'), rssKb: kb('VmRSS') };
}

/**
 * The fields of /proc/<pid>/stat after the parenthesised command name (which may itself hold
 * spaces or ')'): [0] state, [1] ppid, … [11] utime, [12] stime, [19] starttime.
 */
export function readStatFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU time consumed so far, in milliseconds. */
export function readCpuMs(pid: number): number | undefined {
  const rest = readStatFields(pid);
  if (rest === undefined) return undefined;
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / USER_HZ;
}
