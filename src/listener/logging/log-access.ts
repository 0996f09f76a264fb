/**
 * Who may read Wharf's log files: request logs (W3C, IIS, NCSA, central W3C), the httperr log and
 * the pools' output logs. They hold client addresses, URLs with query strings and cookies (custom
 * fields), so nobody else on the machine reads them: files are 0640 and the folder that holds them
 * 0750, owned by root and the group `wharf-logs` when Wharf runs as root (IIS grants its log
 * folders to Administrators and SYSTEM only). Adding a user to `wharf-logs` lets it read them (a log
 * shipper, GoAccess). `--log-owner user[:group]` ($WHARF_LOG_OWNER) chooses another owner.
 *
 * Only the log's own folder (`W3SVC<id>`, `W3SVC`, `HTTPERR`, `AppPools/<pool>`) is made 0750:
 * folders above it that Wharf has to create get the usual 0755, because they may be shared with
 * content a pool must reach (the default system drive's `inetpub` also holds `wwwroot`).
 * Modes are set with chmod, so the umask does not loosen or tighten them. A file or folder found
 * with other modes or owners (written by an older Wharf) is corrected when Wharf opens it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ListenerError } from '../../errors.js';

export const LOG_FILE_MODE = 0o640;
export const LOG_FOLDER_MODE = 0o750;
/** The group that may read the logs when Wharf runs as root and no owner is configured. */
export const LOG_GROUP = 'wharf-logs';

export interface LogAccess {
  readonly fileMode: number;
  readonly folderMode: number;
  /** Owner and group given to log files and folders; undefined: as created (Wharf's user and group). */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** For the start-up line: `root:wharf-logs (gid 996)`. */
  readonly description: string;
}

const DEFAULT_ACCESS: LogAccess = { fileMode: LOG_FILE_MODE, folderMode: LOG_FOLDER_MODE, description: "Wharf's user" };
let current: LogAccess = DEFAULT_ACCESS;
let report: (message: string) => void = (m) => process.emitWarning(m);
const reported = new Set<string>();

/** The policy every log writer of this process applies (set once by the server at start-up). */
export function logAccess(): LogAccess {
  return current;
}

/** Set the policy, and where to say (once per path) that a mode or owner could not be applied. */
export function setLogAccess(access: LogAccess, warn?: (message: string) => void): void {
  current = access;
  if (warn !== undefined) report = warn;
}

/**
 * chmod/chown of a log file or folder. A file system that refuses (NFS with root_squash, vfat, a
 * file of another user when Wharf is not root) must not stop logging: the log keeps being written
 * and the problem is reported once per path.
 */
async function apply(path: string, what: string, change: () => Promise<void>): Promise<void> {
  try {
    await change();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EROFS' && code !== 'EACCES') throw err;
    const key = `${path}\0${what}`;
    if (reported.has(key)) return;
    reported.add(key);
    report(`log file access: cannot ${what} ${path} (${code}); the log is written regardless`);
  }
}

function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err === null) return resolve({ code: 0, stdout, stderr });
      resolve({ code: typeof err.code === 'number' ? err.code : -1, stdout, stderr: stderr !== '' ? stderr : err.message });
    });
  });
}

async function getent(db: 'passwd' | 'group', name: string): Promise<string[] | undefined> {
  const r = await run('getent', [db, name]);
  if (r.code !== 0) return undefined;
  return r.stdout.split('\n')[0]!.split(':');
}

const GROUPADD = existsSync('/usr/sbin/groupadd') ? '/usr/sbin/groupadd' : 'groupadd';

/** The gid of `wharf-logs`, created (a system group) when missing. */
async function logGroup(): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const found = await getent('group', LOG_GROUP);
    if (found !== undefined) return Number(found[2]);
    const r = await run(GROUPADD, ['--system', LOG_GROUP]);
    // 9: created meanwhile by another process; a held lock (another useradd) is retried.
    if (r.code === 0 || r.code === 9) continue;
    if (/lock/i.test(r.stderr) && attempt < 20) {
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      continue;
    }
    throw new ListenerError('LSN_LOG_OWNER', `cannot create the group ${LOG_GROUP} for the log files (groupadd exit ${r.code}: ${r.stderr.trim()})`);
  }
}

/**
 * The policy for this server: `owner` is `user`, `user:group` or `:group` (from --log-owner);
 * without it, root gets root:wharf-logs (the group created when missing) and anyone else keeps
 * files as created. Throws LSN_LOG_OWNER for a user or group that does not exist, or one a
 * non-root Wharf cannot give files to.
 */
export async function resolveLogAccess(owner: string | undefined, asRoot = process.getuid?.() === 0): Promise<LogAccess> {
  if (owner === undefined || owner === '') {
    if (!asRoot) return DEFAULT_ACCESS;
    let gid: number;
    try {
      gid = await logGroup();
    } catch (err) {
      // No groupadd (a minimal container): root's own group still keeps others out.
      return { ...DEFAULT_ACCESS, uid: 0, gid: 0, description: `root:root (${(err as Error).message})` };
    }
    return { ...DEFAULT_ACCESS, uid: 0, gid, description: `root:${LOG_GROUP} (gid ${gid})` };
  }
  const colon = owner.indexOf(':');
  const userName = colon === -1 ? owner : owner.slice(0, colon);
  const groupName = colon === -1 ? '' : owner.slice(colon + 1);
  let uid = process.getuid?.() ?? 0;
  let gid: number | undefined;
  if (userName !== '') {
    const pw = await getent('passwd', userName);
    if (pw === undefined) throw new ListenerError('LSN_LOG_OWNER', `--log-owner ${owner}: there is no user named ${userName}`);
    uid = Number(pw[2]);
    gid = Number(pw[3]);
  }
  if (groupName !== '') {
    const gr = await getent('group', groupName);
    if (gr === undefined) throw new ListenerError('LSN_LOG_OWNER', `--log-owner ${owner}: there is no group named ${groupName}`);
    gid = Number(gr[2]);
  }
  gid ??= process.getgid?.() ?? 0;
  if (!asRoot) {
    // chown(2) without root: only to oneself, and only to a group one belongs to.
    const groups = process.getgroups?.() ?? [];
    if (uid !== process.getuid?.() || (gid !== process.getgid?.() && !groups.includes(gid))) {
      throw new ListenerError('LSN_LOG_OWNER', `--log-owner ${owner}: only root can give files to another user or to a group it is not in`);
    }
  }
  return { ...DEFAULT_ACCESS, uid, gid, description: `${owner} (uid ${uid}, gid ${gid})` };
}

/**
 * Create the folder a log's files go in (0750, owned as configured), its missing parents with the
 * usual modes, and correct the folder's mode and owner if they differ.
 */
export async function prepareLogFolder(dir: string, access: LogAccess = current): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  await mkdir(dir, { mode: access.folderMode }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await stat(dir);
  const mode = access.folderMode;
  if ((st.mode & 0o7777) !== mode) await apply(dir, `set mode ${mode.toString(8)} on`, () => chmod(dir, mode));
  if (owned(st, access)) return;
  await apply(dir, `change the owner of`, () => chown(dir, access.uid ?? st.uid, access.gid ?? st.gid));
}

function owned(st: { uid: number; gid: number }, access: LogAccess): boolean {
  return (access.uid === undefined || st.uid === access.uid) && (access.gid === undefined || st.gid === access.gid);
}

/** Give an open log file its mode and owner (after open(…, 'a'), which may have created it). */
export async function prepareLogFile(file: FileHandle, access: LogAccess = current, path = `fd ${file.fd}`): Promise<void> {
  const st = await file.stat();
  const mode = access.fileMode;
  if ((st.mode & 0o7777) !== mode) await apply(path, `set mode ${mode.toString(8)} on`, () => file.chmod(mode));
  if (!owned(st, access)) await apply(path, 'change the owner of', () => file.chown(access.uid ?? st.uid, access.gid ?? st.gid));
}

/** Create (or correct) a log file by path, for writers that append by name (the pool output log). */
export async function prepareLogFileAt(path: string, access: LogAccess = current): Promise<void> {
  const file = await open(path, 'a', access.fileMode);
  try {
    await prepareLogFile(file, access, path);
  } finally {
    await file.close();
  }
}
