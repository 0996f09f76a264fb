/**
 * File rights of the authenticated user (IIS's 401.3 "denied by ACL"): before a handler serves a
 * file or runs a script for an identity with a Linux account, IIS Web Core asks here whether that
 * account may read it (a folder: search it), by its mode bits and POSIX ACL (acl.ts). The worker
 * itself still reads the file as the pool's user, which must be able to.
 *
 * Node has no call for extended attributes, so a file's ACL comes from `getfacl` (the acl
 * package), run once per file and change: answers are kept per path with the file's inode and
 * ctime (setfacl and chmod change the ctime), for at most MAX_ENTRIES files, and concurrent
 * requests for one file share one run. A file whose ACL cannot be read is refused (and logged):
 * access control must not fail open.
 */
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Identity } from '../../ipc/credential-messages.js';
import { parseGetfacl, permitted, type AclEntry, type FileOwnership } from './acl.js';

export { parseGetfacl, permitted } from './acl.js';
export type { AclEntry, Account, FileOwnership } from './acl.js';

const MAX_ENTRIES = 10_000;
/** A stat is trusted this long, as the worker's stat cache trusts its own. */
const STAT_TTL_MS = 1000;
const GETFACL_TIMEOUT_MS = 5000;

interface Entry {
  readonly at: number;
  readonly ino: number;
  readonly ctimeMs: number;
  readonly owner: FileOwnership;
  readonly isDirectory: boolean;
  /** undefined: the file has only its mode bits; 'error': unreadable (refuse). */
  readonly acl: readonly AclEntry[] | 'error';
}

export type RightsVerdict = { readonly allowed: true } | { readonly allowed: false; readonly why: string };

export class FileRights {
  readonly #entries = new Map<string, Entry>();
  readonly #pending = new Map<string, Promise<Entry | undefined>>();
  readonly #now: () => number;
  readonly #log: (message: string) => void;

  constructor(options: { now?: () => number; log?: (message: string) => void } = {}) {
    this.#now = options.now ?? Date.now;
    this.#log = options.log ?? (() => undefined);
  }

  /**
   * May `identity` read `path` (search it, for a folder)? undefined when the path does not exist
   * (the handler answers that). Synchronous when the answer is cached and fresh.
   */
  check(identity: Identity, path: string): RightsVerdict | undefined | Promise<RightsVerdict | undefined> {
    const e = this.#entries.get(path);
    if (e !== undefined && this.#now() - e.at < STAT_TTL_MS) return verdict(e, identity);
    let p = this.#pending.get(path);
    if (p === undefined) {
      p = this.#load(path, e).finally(() => this.#pending.delete(path));
      this.#pending.set(path, p);
    }
    return p.then((loaded) => (loaded === undefined ? undefined : verdict(loaded, identity)));
  }

  async #load(path: string, previous: Entry | undefined): Promise<Entry | undefined> {
    let s;
    try {
      s = await stat(path);
    } catch {
      this.#entries.delete(path);
      return undefined;
    }
    const owner = { mode: s.mode, uid: s.uid, gid: s.gid };
    // Same file, same ctime: its ACL has not changed.
    const acl =
      previous !== undefined && previous.ino === s.ino && previous.ctimeMs === s.ctimeMs && previous.acl !== 'error'
        ? previous.acl
        : await this.#readAcl(path);
    const entry: Entry = { at: this.#now(), ino: s.ino, ctimeMs: s.ctimeMs, owner, isDirectory: s.isDirectory(), acl };
    if (!this.#entries.has(path) && this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(path, entry);
    return entry;
  }

  #readAcl(path: string): Promise<readonly AclEntry[] | 'error'> {
    return new Promise((resolve) => {
      execFile('getfacl', ['-c', '-n', '-p', '--', path], { timeout: GETFACL_TIMEOUT_MS, maxBuffer: 256 * 1024 }, (err, stdout, stderr) => {
        const acl = err === null ? parseGetfacl(stdout) : undefined;
        if (acl === undefined) {
          this.#log(`cannot read the ACL of ${path} (access is refused): ${err === null ? 'unexpected getfacl output' : `${err.message} ${stderr}`.trim()}`);
          resolve('error');
        } else resolve(acl);
      });
    });
  }
}

function verdict(e: Entry, identity: Identity): RightsVerdict {
  if (e.acl === 'error') return { allowed: false, why: 'its ACL could not be read' };
  const account = { uid: identity.uid, gids: [identity.gid, ...identity.groups.map((g) => g.gid)] };
  const want = e.isDirectory ? 1 : 4;
  return permitted(e.owner, e.acl, account, want)
    ? { allowed: true }
    : { allowed: false, why: `${identity.name} (uid ${identity.uid}) may not ${e.isDirectory ? 'open the folder' : 'read the file'}` };
}
