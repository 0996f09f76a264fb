/**
 * Why this process may not read a configuration file, and the command that fixes it. IIS's
 * 500.19 for 0x80070005 says only "Cannot read configuration file due to insufficient
 * permissions"; on Linux the usual cause is a folder on the way that the pool's user cannot
 * search (x) or a web.config it cannot read (r), and the fix is a permission, not an edit.
 * Runs in the process that failed (a worker runs as its pool's user), so access(2) answers for
 * exactly that user, ACLs included.
 */
import { accessSync, constants } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';

function currentUser(): string {
  const uid = process.getuid?.() ?? -1;
  try {
    return `${userInfo().username} (uid ${uid})`;
  } catch {
    return `uid ${uid}`;
  }
}

function userForAcl(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

function shellQuote(path: string): string {
  return /^[A-Za-z0-9_./@%+=:,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

function allowed(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'EACCES' && code !== 'EPERM';
  }
}

/**
 * "the worker runs as wharf-shop (uid 998), which lacks search (x) permission on the folder
 * /srv/shop/private: …setfacl…", or undefined when no missing right explains the failure.
 */
export function permissionAdvice(file: string): string | undefined {
  const target = resolve(file);
  // Every folder from / down to the file's own must be searchable.
  const folders: string[] = [];
  for (let d = dirname(target); ; d = dirname(d)) {
    folders.unshift(d);
    if (d === '/' || d === '.') break;
  }
  let path: string | undefined;
  let right = '';
  let bit = '';
  for (const folder of folders) {
    if (!allowed(folder, constants.X_OK)) {
      path = folder;
      right = 'search (x) permission on the folder';
      bit = 'x';
      break;
    }
  }
  if (path === undefined && !allowed(target, constants.R_OK)) {
    path = target;
    right = 'read (r) permission on the file';
    bit = 'r';
  }
  if (path === undefined) return undefined;
  const q = shellQuote(path);
  return (
    `the worker runs as ${currentUser()}, which lacks ${right} ${path}. ` +
    `Fix the permission, not the file: setfacl -m u:${userForAcl()}:${bit} ${q} (or chmod o+${bit} ${q} to allow every user); ` +
    'Wharf notices the change within a second'
  );
}
