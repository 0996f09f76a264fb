/**
 * Whether a Linux account may read a file: the kernel's rule (acl(5), "Access Check Algorithm")
 * over the file's mode bits and POSIX ACL, for a uid and its groups other than the process's own.
 * IIS checks NTFS ACLs with the authenticated user's token when it opens the file; Wharf's worker
 * runs as the pool's user, so it works the answer out from what the file says.
 */

/** One entry of an access ACL (getfacl's `user:1001:r-x`), permissions as rwx bits (4 2 1). */
export interface AclEntry {
  readonly tag: 'user_obj' | 'user' | 'group_obj' | 'group' | 'mask' | 'other';
  /** uid or gid for named entries, -1 otherwise. */
  readonly id: number;
  readonly perm: number;
}

export interface FileOwnership {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface Account {
  readonly uid: number;
  /** Primary gid first, then every other group. */
  readonly gids: readonly number[];
}

/** The permission bits for `want` (4 read, 1 execute/search) an account has on a file. */
export function permitted(file: FileOwnership, acl: readonly AclEntry[] | undefined, who: Account, want: number): boolean {
  if (who.uid === 0) return true;
  const entries = acl !== undefined && acl.length !== 0 ? acl : minimalAcl(file.mode);
  const mask = entries.find((e) => e.tag === 'mask')?.perm ?? 7;
  if (who.uid === file.uid) return ((entries.find((e) => e.tag === 'user_obj')?.perm ?? 0) & want) === want;
  const named = entries.find((e) => e.tag === 'user' && e.id === who.uid);
  if (named !== undefined) return (named.perm & mask & want) === want;
  // Group entries: access if any matching entry grants it; denied if some matched and none did.
  let groupMatched = false;
  for (const e of entries) {
    const matches = (e.tag === 'group_obj' && who.gids.includes(file.gid)) || (e.tag === 'group' && who.gids.includes(e.id));
    if (!matches) continue;
    groupMatched = true;
    if ((e.perm & mask & want) === want) return true;
  }
  if (groupMatched) return false;
  return ((entries.find((e) => e.tag === 'other')?.perm ?? 0) & want) === want;
}

/** The ACL a file without extended entries has: its mode bits (no mask). */
function minimalAcl(mode: number): AclEntry[] {
  return [
    { tag: 'user_obj', id: -1, perm: (mode >> 6) & 7 },
    { tag: 'group_obj', id: -1, perm: (mode >> 3) & 7 },
    { tag: 'other', id: -1, perm: mode & 7 },
  ];
}

/** `getfacl -c -n` output → entries (undefined when it is not an access ACL). Default entries are skipped. */
export function parseGetfacl(text: string): AclEntry[] | undefined {
  const out: AclEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '' || line.startsWith('default:')) continue;
    const m = /^(user|group|mask|other):(\d*):([r-][w-][x-])$/.exec(line);
    if (m === null) return undefined;
    const [, kind, id, bits] = m;
    const perm = (bits![0] === 'r' ? 4 : 0) | (bits![1] === 'w' ? 2 : 0) | (bits![2] === 'x' ? 1 : 0);
    const named = id !== '';
    const tag = kind === 'user' ? (named ? 'user' : 'user_obj') : kind === 'group' ? (named ? 'group' : 'group_obj') : (kind as 'mask' | 'other');
    out.push({ tag, id: named ? Number(id) : -1, perm });
  }
  return out.some((e) => e.tag === 'user_obj') ? out : undefined;
}
