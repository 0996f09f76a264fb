/**
 * Keeps static serving inside the virtual directory: a file whose real path (symbolic links
 * resolved) lies outside the real path of the virtual directory's root is treated as missing.
 */
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';

// Real path of each virtual directory root. Refreshed before any refusal, because deployments
// often repoint a root symlink (…/current → releases/N) while the worker runs.
const rootRealPaths = new Map<string, string>();

function inside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

async function rootRealPath(root: string, refresh: boolean): Promise<string | undefined> {
  let real = refresh ? undefined : rootRealPaths.get(root);
  if (real === undefined) {
    try {
      real = await realpath(root);
    } catch {
      return undefined;
    }
    rootRealPaths.set(root, real);
  }
  return real;
}

/**
 * The real path of `file` when it lies under `root` (both as configured), else undefined. Callers
 * open the returned path, so a link swapped after the check cannot redirect the read.
 */
export async function realPathInsideRoot(file: string, root: string): Promise<string | undefined> {
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    return undefined;
  }
  const cached = await rootRealPath(root, false);
  if (cached !== undefined && inside(real, cached)) return real;
  const fresh = await rootRealPath(root, true);
  return fresh !== undefined && fresh !== cached && inside(real, fresh) ? real : undefined;
}
