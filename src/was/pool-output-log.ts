/**
 * What a pool's workers print — a hosted app's console.log and console.error, a crash's stack —
 * kept per pool in rotated files (ANCM's stdoutLogFile, iisnode's logDirectory, PM2's log files)
 * and in memory for `wharf logs apppool NAME`:
 *
 *   <system drive>/inetpub/logs/AppPools/<pool>/output_<yyyymmdd>.log     (UTC day)
 *   … output_<yyyymmdd>_1.log, _2 …                                      (past MAX_FILE_BYTES)
 *
 * Lines are `<ISO time> pid <pid> <stdout|stderr>: <text>`. Writes never block serving: a file
 * that cannot be written is reported once, its lines are still kept in memory, and writing
 * resumes with the next line once the folder is writable again. The oldest files go beyond
 * MAX_FILES per pool.
 */
import { appendFile, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { logAccess, prepareLogFileAt, prepareLogFolder } from '../listener/logging/log-access.js';
import { poolKey, type PoolKey } from '../config/pool-key.js';

/** Rotation by size within a day. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;
/** Files kept per pool. */
export const MAX_FILES = 20;
/** Lines kept in memory per pool for `wharf logs`. */
export const MEMORY_LINES = 1000;

interface PoolLog {
  readonly dir: string;
  readonly recent: string[];
  pending: string[];
  writing: boolean;
  file: string;
  bytes: number;
  day: string;
  part: number;
  failed: boolean;
}

function folderName(pool: string): string {
  // Pool names may hold characters a file name cannot (IIS allows most): keep them readable.
  return pool.replace(/[/\\\0]/g, '_').replace(/^\.+$/, '_');
}

export class PoolOutputLogs {
  readonly #root: string;
  readonly #pools = new Map<PoolKey, PoolLog>();
  readonly #report: (message: string) => void;
  readonly #now: () => Date;

  constructor(root: string, report: (message: string) => void, now: () => Date = () => new Date()) {
    this.#root = root;
    this.#report = report;
    this.#now = now;
  }

  /** Folder of a pool's files. */
  folderOf(pool: string): string {
    return join(this.#root, folderName(pool));
  }

  /** The file being written for a pool ('' before its first line). */
  fileOf(pool: string): string {
    return this.#pools.get(poolKey(pool))?.file ?? '';
  }

  /** The last `count` lines a pool printed (since this server started). */
  tail(pool: string, count: number): string[] {
    const recent = this.#pools.get(poolKey(pool))?.recent ?? [];
    return recent.slice(Math.max(0, recent.length - count));
  }

  write(pool: string, pid: number, stream: 'stdout' | 'stderr', text: string): void {
    const key = poolKey(pool);
    let p = this.#pools.get(key);
    if (p === undefined) {
      p = { dir: this.folderOf(pool), recent: [], pending: [], writing: false, file: '', bytes: 0, day: '', part: 0, failed: false };
      this.#pools.set(key, p);
    }
    const line = `${this.#now().toISOString()} pid ${pid} ${stream}: ${text}`;
    p.recent.push(line);
    if (p.recent.length > MEMORY_LINES) p.recent.splice(0, p.recent.length - MEMORY_LINES);
    p.pending.push(line + '\n');
    if (!p.writing) void this.#drain(p);
  }

  /** Resolves once everything written so far reached its file (or failed). */
  async flushed(): Promise<void> {
    for (;;) {
      const busy = [...this.#pools.values()].some((p) => p.writing || (p.pending.length !== 0 && !p.failed));
      if (!busy) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async #drain(p: PoolLog): Promise<void> {
    p.writing = true;
    try {
      while (p.pending.length !== 0) {
        const text = p.pending.join('');
        const lines = p.pending.length;
        try {
          await this.#rotate(p, Buffer.byteLength(text));
          await appendFile(p.file, text, { mode: logAccess().fileMode });
          p.bytes += Buffer.byteLength(text);
          p.pending.splice(0, lines);
          if (p.failed) {
            p.failed = false;
            this.#report(`application pool output: writing ${p.file} works again`);
          }
        } catch (err) {
          if (!p.failed) {
            p.failed = true;
            this.#report(`application pool output: cannot write to ${p.dir}: ${(err as Error).message}; lines are kept in memory (wharf logs apppool) until it works again`);
          }
          // Keep a bounded backlog; the newest lines are in memory anyway.
          if (p.pending.length > MEMORY_LINES) p.pending.splice(0, p.pending.length - MEMORY_LINES);
          return;
        }
      }
    } finally {
      p.writing = false;
    }
  }

  /** Pick the file for the next write: a new one for a new UTC day or past MAX_FILE_BYTES. */
  async #rotate(p: PoolLog, incoming: number): Promise<void> {
    const day = this.#now().toISOString().slice(0, 10).replace(/-/g, '');
    if (p.file !== '' && p.day === day && p.bytes + incoming <= MAX_FILE_BYTES) return;
    // Folder 0750 and files 0640, owned as the server's log policy says (log-access.ts).
    await prepareLogFolder(p.dir, logAccess());
    if (p.day !== day) {
      p.day = day;
      p.part = 0;
      // Continue today's last file after a restart.
      const names = (await readdir(p.dir)).filter((n) => n.startsWith(`output_${day}`) && n.endsWith('.log'));
      for (const n of names) {
        const m = /_(\d+)\.log$/.exec(n.slice(`output_${day}`.length));
        if (m !== null) p.part = Math.max(p.part, Number(m[1]));
      }
    } else {
      p.part++;
    }
    for (;;) {
      p.file = join(p.dir, p.part === 0 ? `output_${day}.log` : `output_${day}_${p.part}.log`);
      p.bytes = await stat(p.file).then((s) => s.size, () => 0);
      if (p.bytes + incoming <= MAX_FILE_BYTES || p.bytes === 0) break;
      p.part++;
    }
    await prepareLogFileAt(p.file, logAccess());
    await this.#prune(p);
  }

  async #prune(p: PoolLog): Promise<void> {
    // The file about to be written counts, whether or not it exists yet.
    const current = p.file.slice(p.dir.length + 1);
    const names = (await readdir(p.dir)).filter((n) => n !== current && /^output_\d{8}(?:_\d+)?\.log$/.test(n));
    if (names.length <= MAX_FILES - 1) return;
    const order = (n: string): [string, number] => {
      const m = /^output_(\d{8})(?:_(\d+))?\.log$/.exec(n)!;
      return [m[1]!, Number(m[2] ?? 0)];
    };
    names.sort((a, b) => {
      const [da, pa] = order(a);
      const [db, pb] = order(b);
      return da === db ? pa - pb : da < db ? -1 : 1;
    });
    for (const n of names.slice(0, names.length - (MAX_FILES - 1))) await unlink(join(p.dir, n)).catch(() => undefined);
  }
}
