/**
 * The worker's switch to its pool's identity. A worker started by a root main process begins as
 * root only so that it can load Wharf's own code; it becomes the pool's user before it reads any
 * configuration, loads a third-party module or serves a request (IIS starts w3wp directly as
 * `IIS AppPool\<pool>`; Linux has no such spawn-as-user-with-groups in Node, hence the drop).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { WasError } from '../errors.js';

export interface PrivilegeTarget {
  readonly uid: number;
  readonly gid: number;
  /** The user name, for initgroups (supplementary groups come from NSS by name). */
  readonly user: string;
  /** Sets HOME when given. */
  readonly home?: string;
}

/**
 * The variables the activation service sets for a worker that must change user
 * (see workerIdentityEnvironment in src/was/identity.ts, which writes the same names).
 */
const ENV_USER = 'WHARF_WORKER_USER';
const ENV_UID = 'WHARF_WORKER_UID';
const ENV_GID = 'WHARF_WORKER_GID';

/** Node has process.initgroups on POSIX, but @types/node 20 does not declare it. */
type InitGroups = (user: string | number, extraGroup: string | number) => void;

/** The target named by WHARF_WORKER_USER/UID/GID, or undefined when none is set. */
export function privilegeTargetFromEnv(env: NodeJS.ProcessEnv): PrivilegeTarget | undefined {
  const user = env[ENV_USER];
  const uid = env[ENV_UID];
  const gid = env[ENV_GID];
  if (user === undefined && uid === undefined && gid === undefined) return undefined;
  const id = (v: string | undefined): number => (v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : NaN);
  const target = { user: user ?? '', uid: id(uid), gid: id(gid) };
  if (target.user === '' || Number.isNaN(target.uid) || Number.isNaN(target.gid)) {
    throw new WasError(
      'WAS_IDENTITY',
      `the worker's identity is incomplete: ${ENV_USER}='${user ?? ''}' ${ENV_UID}='${uid ?? ''}' ${ENV_GID}='${gid ?? ''}' (all three are set by the Wharf server)`,
    );
  }
  return env['HOME'] !== undefined ? { ...target, home: env['HOME'] } : target;
}

/**
 * Become `target`: supplementary groups (initgroups), then the primary group, then the user —
 * in that order because only root may change groups. Then verify that the process really is
 * `target` and that root cannot be regained. No-op when not running as root or already `target`.
 * Throws WasError WAS_IDENTITY if any step fails; the worker must then exit, never serve as root.
 */
export function dropPrivileges(target: PrivilegeTarget): void {
  const { uid, gid, user } = target;
  const getuid = process.getuid;
  const initgroups = (process as { initgroups?: InitGroups }).initgroups;
  if (getuid === undefined || process.setuid === undefined || process.setgid === undefined || initgroups === undefined) return;
  const current = getuid();
  if (current !== 0 || uid === 0) return;
  const who = `${user} (uid ${uid}, gid ${gid})`;
  // initgroups with a name NSS does not know silently gives no supplementary groups; the name
  // must be the uid's (an alias sharing the uid is fine: `id -u` answers the same number).
  const named = uidOfName(user);
  if (named !== uid) {
    throw new WasError(
      'WAS_IDENTITY',
      `the worker cannot switch to ${who}: ${named === undefined ? `there is no user named ${user}` : `the user ${user} has uid ${named}`}`,
    );
  }
  try {
    initgroups.call(process, user, gid);
    process.setgid(gid);
    process.setuid(uid);
  } catch (err) {
    throw new WasError('WAS_IDENTITY', `the worker cannot switch to ${who}: ${(err as Error).message}`, { cause: err });
  }
  const now = { uid: getuid(), euid: process.geteuid?.(), gid: process.getgid?.(), egid: process.getegid?.() };
  if (now.uid !== uid || now.euid !== uid || now.gid !== gid || now.egid !== gid) {
    throw new WasError('WAS_IDENTITY', `the worker asked to become ${who} but runs as uid ${now.uid}/${now.euid}, gid ${now.gid}/${now.egid}`);
  }
  let regained = false;
  try {
    process.setuid(0);
    regained = true;
  } catch {
    // EPERM: as it must be.
  }
  if (regained) throw new WasError('WAS_IDENTITY', `the worker switched to ${who} but could switch back to root`);
  process.env['USER'] = user;
  process.env['LOGNAME'] = user;
  if (target.home !== undefined) process.env['HOME'] = target.home;
}

const ID = existsSync('/usr/bin/id') ? '/usr/bin/id' : 'id';

function uidOfName(user: string): number | undefined {
  // /etc/passwd answers for local users (all users Wharf creates) without starting a process;
  // `id` asks NSS for the rest (LDAP, sssd).
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === user && f[2] !== undefined && /^[0-9]+$/.test(f[2])) return Number(f[2]);
    }
  } catch {
    // no readable /etc/passwd: ask id
  }
  try {
    const out = execFileSync(ID, ['-u', user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
    return /^[0-9]+$/.test(out) ? Number(out) : undefined;
  } catch {
    return undefined;
  }
}
