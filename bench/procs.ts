/**
 * What the bench and the integration tests read about a running Wharf's processes from /proc:
 * its worker processes (by pool) and their memory. One copy, imported by both.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** A process's command line as `ps` shows it (a worker retitles itself `wharf-worker -ap "<pool>"`). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Worker processes of a Wharf server (its children serving a pool; not the spare), or of one pool. */
export function workerPids(serverPid: number, pool?: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (parentPid(pid) !== serverPid) continue;
    const cmd = commandLine(pid);
    // Titled `wharf-worker -ap "<pool>"`; for a moment after spawn still `node … -ap <pool>`.
    const m = / -ap "?(.+?)"?$/.exec(cmd);
    if (m !== null && (pool === undefined || m[1] === pool)) out.push(pid);
  }
  return out;
}

function statusKb(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resident set size in MiB (VmRSS), or undefined when the process is gone. */
export function rssMiB(pid: number): number | undefined {
  const kb = statusKb(pid, 'VmRSS');
  return kb === undefined ? undefined : kb / 1024;
}

/** Private (anonymous) resident memory in MiB: what one more process really costs; file-backed pages (node's binary) are shared. */
export function privateMiB(pid: number): number | undefined {
  const kb = statusKb(pid, 'RssAnon');
  return kb === undefined ? undefined : kb / 1024;
}
