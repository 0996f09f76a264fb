/**
 * Files of the certificate store, the SSL table and the Central Certificate Store settings are
 * written whole (a temp file in the same folder, fsync, rename): a running server that reads one
 * at the wrong moment sees the old or the new version, never half. Private material gets its mode
 * at creation (never a window where a key is world-readable), and, as root, root ownership.
 */
import { chmodSync, chownSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TlsError } from '../errors.js';

const isRoot = (): boolean => process.geteuid?.() === 0;

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined ? `${e.code}: ${e.message}` : String(err);
}

/** Creates `dir` (and parents) and gives it `mode` (and root ownership as root), also when it existed. */
export function ensureDirectory(dir: string, mode: number): void {
  try {
    mkdirSync(dir, { recursive: true, mode });
    const st = statSync(dir);
    if (!st.isDirectory()) throw Object.assign(new Error(`${dir} is not a folder`), { code: 'ENOTDIR' });
    if ((st.mode & 0o7777) !== mode) chmodSync(dir, mode);
    if (isRoot() && (st.uid !== 0 || st.gid !== 0)) chownSync(dir, 0, 0);
  } catch (err) {
    throw new TlsError('TLS_STORE_WRITE', `cannot create the folder ${dir} (${describe(err)})`, { cause: err });
  }
}

/** Writes `data` to `file` atomically with `mode`; the folder must exist. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode: number): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', mode);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    // The umask may have narrowed the mode, never widened it; set it exactly.
    chmodSync(temp, mode);
    if (isRoot()) chownSync(temp, 0, 0);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw new TlsError('TLS_STORE_WRITE', `cannot write ${file} (${describe(err)})`, { cause: err });
  }
  // The rename is durable once the folder is synced (a crash right after must not lose the file).
  try {
    const dfd = openSync(dirname(file), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some file systems refuse fsync on a folder; the rename itself has happened.
  }
}

/** Removes `file`; missing is fine. */
export function removeFile(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new TlsError('TLS_STORE_WRITE', `cannot remove ${file} (${describe(err)})`, { cause: err });
  }
}

/** A lock older than this was left by a process that died: taken over. */
const STALE_LOCK_MS = 30_000;

/**
 * Runs `fn` holding `<file>.lock` (created exclusively), so two `wharf` commands editing the same
 * table do not lose each other's change (read, modify, write). Waits up to 10 s for the lock.
 */
export async function withFileLock<T>(file: string, fn: () => T | Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TlsError('TLS_STORE_WRITE', `cannot create the lock file ${lock} (${describe(err)})`, { cause: err });
      }
      try {
        if (Date.now() - lstatSync(lock).mtimeMs > STALE_LOCK_MS) {
          rmSync(lock, { force: true });
          continue;
        }
      } catch {
        continue; // removed meanwhile: try again
      }
      if (Date.now() > deadline) {
        throw new TlsError('TLS_STORE_WRITE', `${lock} is held by another wharf command (remove it if no wharf command is running)`);
      }
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
