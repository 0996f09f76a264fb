/**
 * Application pool identities (IIS's processModel identityType) mapped to Linux users.
 *
 * IIS runs each pool's w3wp.exe as `IIS AppPool\<pool>`, a virtual account Windows makes up per
 * pool, so NTFS ACLs can grant a folder to one pool and not another. On Linux the closest thing
 * is a system user per pool, created on first use. The mapping (documented in
 * docs/configuration.md, "Identities (processModel identityType) on Linux"):
 *
 *   ApplicationPoolIdentity → poolUserName(pool), created with useradd --system if missing
 *   SpecificUser            → processModel userName without DOMAIN\ or @domain; must exist
 *   LocalService            → wharf-localservice, created if missing (shared by such pools)
 *   NetworkService          → wharf-networkservice, created if missing (shared by such pools)
 *   LocalSystem             → the user Wharf runs as (no isolation, like LocalSystem)
 *
 * Only a root main process can run workers as other users; otherwise identities are not applied
 * (resolvePoolIdentity returns undefined and identityWarning says so once).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { WasError } from '../errors.js';
import { poolFolderName, poolKey } from '../config/pool-key.js';

export interface PoolIdentity {
  /** The Linux user name the pool's workers run as. */
  readonly user: string;
  readonly uid: number;
  /** The user's primary group. */
  readonly gid: number;
  /** The home directory from the passwd entry (`/nonexistent` for users Wharf creates). */
  readonly home: string;
  /** processModel identityType as configured (`ApplicationPoolIdentity`, `SpecificUser`…). */
  readonly identityType: string;
  /** For logs: `IIS AppPool\DefaultAppPool → wharf-defaultapppool (uid 998)`. */
  readonly description: string;
}

export interface PoolIdentitySource {
  readonly name: string;
  /** processModel identityType. */
  readonly identityType: string;
  /** processModel userName (used by SpecificUser only). */
  readonly userName: string;
}

export interface ResolveIdentityOptions {
  /** Whether Wharf runs as root; defaults to the process's real uid being 0. */
  readonly asRoot?: boolean;
  /**
   * Create missing users for ApplicationPoolIdentity, LocalService and NetworkService (default
   * true). With false a missing user is a WAS_IDENTITY error that says how to create it.
   */
  readonly create?: boolean;
}

const PREFIX = 'wharf-';
/** useradd's limit on Debian (and glibc's utmp), the longest name `ps` and `ls -l` show whole. */
const MAX_USER_NAME = 32;
/** Room for the sanitized name when a hash is appended: 6 + 17 + 1 + 8 = 32. */
const HASHED_NAME_CHARS = 17;
const HASH_CHARS = 8;
/** The shared service users; a pool whose name would produce one gets the hashed form instead. */
const SERVICE_USERS: Readonly<Record<string, string>> = {
  LocalService: 'wharf-localservice',
  NetworkService: 'wharf-networkservice',
};
const RESERVED = new Set(Object.values(SERVICE_USERS));

/**
 * The per-pool user for ApplicationPoolIdentity: `wharf-` + the pool name lower-cased with every
 * character outside [a-z0-9_-] replaced by `-`. If that replacement changed anything, the result
 * exceeds 32 characters, or it is one of the service users, the name is `wharf-` + the first 17
 * sanitized characters + `-` + the first 8 hex digits of sha256(lower-cased pool name), so two
 * pools never share a user. Pool names are case-insensitive in IIS (and in Wharf's configuration),
 * hence the hash of the lower-cased name: renaming `Shop` to `shop` keeps the pool's user.
 */
export function poolUserName(poolName: string): string {
  const lower: string = poolKey(poolName);
  const sanitized = lower.replace(/[^a-z0-9_-]/g, '-');
  const plain = PREFIX + sanitized;
  if (sanitized === lower && plain.length <= MAX_USER_NAME && !RESERVED.has(plain)) return plain;
  const hash = createHash('sha256').update(lower, 'utf8').digest('hex').slice(0, HASH_CHARS);
  return `${PREFIX}${sanitized.slice(0, HASHED_NAME_CHARS)}-${hash}`;
}

/** The part of poolUserName after `wharf-`: the pool's directory name under /run/wharf/pools. */
function poolDirName(poolName: string): string {
  return poolUserName(poolName).slice(PREFIX.length);
}

function runningAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** os.userInfo() throws for a uid without a passwd entry (containers run with --user 1234). */
function currentUser(): { username: string; uid: number; gid: number; homedir: string } {
  try {
    return userInfo();
  } catch {
    const uid = process.getuid?.() ?? 0;
    return { username: String(uid), uid, gid: process.getgid?.() ?? 0, homedir: process.env['HOME'] ?? '/' };
  }
}

/**
 * The one warning the server logs when identities cannot be applied: Wharf is not root and at
 * least one pool asks for an identity other than LocalSystem (for LocalSystem, "the user Wharf
 * runs as" is exactly what it gets). Undefined when there is nothing to say.
 */
export function identityWarning(
  pools: ReadonlyArray<Pick<PoolIdentitySource, 'name' | 'identityType'>>,
  options: { asRoot?: boolean } = {},
): string | undefined {
  if (options.asRoot ?? runningAsRoot()) return undefined;
  const affected = pools.filter((p) => p.identityType !== 'LocalSystem').map((p) => p.name);
  if (affected.length === 0) return undefined;
  const me = currentUser();
  return (
    `Wharf runs as ${me.username} (uid ${me.uid}), not as root: every application pool's workers run as ${me.username}, ` +
    `so processModel identityType is not applied and the pools are not isolated from each other ` +
    `(${affected.join(', ')}). Start Wharf as root to run each pool as its own user.`
  );
}

// ---------------------------------------------------------------------------------------------
// Resolution

interface PasswdEntry {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** One promise per (identityType, user, label): useradd runs once per process, concurrent callers share it. */
const cache = new Map<string, Promise<PoolIdentity>>();

/**
 * The Linux user a pool's workers run as, creating the per-pool (or service) user when missing.
 * Undefined when Wharf is not root: workers then run as the current user.
 * Rejects with WasError WAS_IDENTITY when the identity cannot be resolved or created.
 */
export async function resolvePoolIdentity(
  pool: PoolIdentitySource,
  options: ResolveIdentityOptions = {},
): Promise<PoolIdentity | undefined> {
  if (!(options.asRoot ?? runningAsRoot())) return undefined;
  const create = options.create ?? true;
  const type = pool.identityType;
  let user: string;
  let label: string;
  switch (type) {
    case 'ApplicationPoolIdentity':
      user = poolUserName(pool.name);
      label = `IIS AppPool\\${pool.name}`;
      break;
    case 'LocalService':
    case 'NetworkService':
      user = SERVICE_USERS[type]!;
      label = type;
      break;
    case 'SpecificUser':
      user = specificUserName(pool);
      label = pool.userName;
      break;
    case 'LocalSystem': {
      const me = currentUser();
      return {
        user: me.username,
        uid: me.uid,
        gid: me.gid,
        home: me.homedir,
        identityType: type,
        description: `LocalSystem → ${me.username} (uid ${me.uid}, the user Wharf runs as)`,
      };
    }
    default:
      throw new WasError(
        'WAS_IDENTITY',
        `application pool ${pool.name}: processModel identityType '${type}' is not one of ApplicationPoolIdentity, SpecificUser, LocalService, NetworkService, LocalSystem`,
      );
  }
  // The label is part of the key only for SpecificUser (CONTOSO\web and web@contoso are one
  // user, described as written); the other types have one label per user.
  const key = `${type}:${user}:${label}:${create ? 'create' : 'lookup'}`;
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = lookupOrCreate(pool, type, user, label, create);
    cache.set(key, pending);
    // A failure is not remembered: the administrator may fix it and the next start retries.
    pending.catch(() => {
      if (cache.get(key) === pending) cache.delete(key);
    });
  }
  return pending;
}

function specificUserName(pool: PoolIdentitySource): string {
  // Windows forms: DOMAIN\user and user@domain (UPN). Linux has one flat namespace.
  let name = pool.userName.trim();
  const slash = name.lastIndexOf('\\');
  if (slash !== -1) name = name.slice(slash + 1);
  const at = name.indexOf('@');
  if (at !== -1) name = name.slice(0, at);
  if (name === '') {
    throw new WasError(
      'WAS_IDENTITY',
      `application pool ${pool.name}: identityType SpecificUser needs processModel userName naming an existing Linux user`,
    );
  }
  if (!VALID_USER_NAME.test(name) || /^[0-9]+$/.test(name)) {
    throw new WasError(
      'WAS_IDENTITY',
      `application pool ${pool.name}: processModel userName '${pool.userName}' does not give a valid Linux user name ('${name}')`,
    );
  }
  return name;
}

/** Permissive (allows capitals and dots, as NSS sources do) but never an option or a field separator. */
const VALID_USER_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/;

async function lookupOrCreate(
  pool: PoolIdentitySource,
  type: string,
  user: string,
  label: string,
  create: boolean,
): Promise<PoolIdentity> {
  let entry = await getentPasswd(user);
  if (entry === undefined) {
    const creatable = type !== 'SpecificUser';
    if (!creatable) {
      throw new WasError(
        'WAS_IDENTITY',
        `application pool ${pool.name}: processModel userName '${pool.userName}' names the Linux user '${user}', which does not exist. ` +
          `Create it (useradd --system ${user}) or name an existing user; Linux user names are case-sensitive.`,
      );
    }
    const args = await userAddArguments(user, commentFor(type, pool.name));
    if (!create) {
      throw new WasError(
        'WAS_IDENTITY',
        `application pool ${pool.name}: the user ${user} for ${label} does not exist; create it with: useradd ${args.join(' ')}`,
      );
    }
    await userAdd(pool.name, user, args);
    entry = await getentPasswd(user);
    if (entry === undefined) {
      throw new WasError('WAS_IDENTITY', `application pool ${pool.name}: useradd reported success but getent passwd ${user} finds no user`);
    }
  }
  return {
    user: entry.user,
    uid: entry.uid,
    gid: entry.gid,
    home: entry.home,
    identityType: type,
    description: `${label} → ${entry.user} (uid ${entry.uid})`,
  };
}

function commentFor(type: string, poolName: string): string {
  // useradd refuses ':' and newlines in the GECOS field.
  const name = poolName.replace(/[:\r\n]/g, ' ');
  return type === 'ApplicationPoolIdentity' ? `Wharf application pool ${name}` : `Wharf ${type} identity`;
}

function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(file, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err === null) return resolvePromise({ code: 0, stdout, stderr });
      const code = typeof err.code === 'number' ? err.code : -1;
      resolvePromise({ code, stdout, stderr: stderr !== '' ? stderr : err.message });
    });
  });
}

/** getent covers every NSS source (files, LDAP, sssd…), not just /etc/passwd. Exit 2: no such entry. */
async function getentPasswd(name: string): Promise<PasswdEntry | undefined> {
  const r = await run('getent', ['passwd', name]);
  if (r.code === 2) return undefined;
  if (r.code !== 0) throw new WasError('WAS_IDENTITY', `getent passwd ${name} failed (${r.code}): ${r.stderr.trim()}`);
  return parsePasswdLine(r.stdout.split('\n')[0] ?? '', name);
}

function parsePasswdLine(line: string, name: string): PasswdEntry {
  const f = line.split(':');
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (f.length < 7 || !Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') {
    throw new WasError('WAS_IDENTITY', `getent passwd ${name} returned an entry Wharf cannot read: '${line}'`);
  }
  return { user: f[0]!, uid, gid, home: f[5]! };
}

async function groupExists(name: string): Promise<boolean> {
  const r = await run('getent', ['group', name]);
  if (r.code === 2) return false;
  if (r.code !== 0) throw new WasError('WAS_IDENTITY', `getent group ${name} failed (${r.code}): ${r.stderr.trim()}`);
  return true;
}

const USERADD = existsSync('/usr/sbin/useradd') ? '/usr/sbin/useradd' : 'useradd';

async function userAddArguments(user: string, comment: string): Promise<string[]> {
  // A group of the user's name left behind (or made by the administrator) is used as the primary
  // group; --user-group would refuse to create it again.
  const group = (await groupExists(user)) ? ['--gid', user] : ['--user-group'];
  return [
    '--system',
    ...group,
    '--no-create-home',
    '--home-dir',
    '/nonexistent',
    '--shell',
    '/usr/sbin/nologin',
    '--no-log-init',
    '--comment',
    comment,
    user,
  ];
}

async function userAdd(poolName: string, user: string, args: readonly string[]): Promise<void> {
  // Another process (a second Wharf, a package install) may hold the passwd lock for a moment.
  for (let attempt = 1; ; attempt++) {
    const r = await run(USERADD, args);
    if (r.code === 0) return;
    // 9: the name was taken meanwhile, by someone creating the same user: use it.
    if (r.code === 9 && (await getentPasswd(user)) !== undefined) return;
    if (/lock/i.test(r.stderr) && attempt < 20) {
      await new Promise((resolveTimer) => setTimeout(resolveTimer, 50 * attempt));
      continue;
    }
    const shown = args.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ');
    throw new WasError(
      'WAS_IDENTITY',
      `application pool ${poolName}: cannot create the user ${user} (useradd exit ${r.code}: ${r.stderr.trim()}). ` +
        `Create it yourself (useradd ${shown}) or choose another processModel identityType.`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Runtime directory

/**
 * The pool's private runtime directory (sockets, temporary files of its workers):
 * with an identity (Wharf is root) `/run/wharf/pools/<key>`; without one
 * `$XDG_RUNTIME_DIR/wharf/pools/<key>` or `<tmpdir>/wharf-<uid>/pools/<key>`. `<key>` is
 * poolUserName(pool) without `wharf-`, so it is unique per pool even when pools share a user.
 * `base` replaces the folder that holds the pools' directories.
 */
export function runtimeDirectory(identity: PoolIdentity | undefined, poolName: string, base?: string): string {
  return join(base ?? defaultRuntimeBase(identity), poolDirName(poolName));
}

function defaultRuntimeBase(identity: PoolIdentity | undefined): string {
  if (identity !== undefined) return '/run/wharf/pools';
  const xdg = process.env['XDG_RUNTIME_DIR'];
  if (xdg !== undefined && xdg.startsWith('/')) return join(xdg, 'wharf', 'pools');
  return join(tmpdir(), `wharf-${process.getuid?.() ?? 0}`, 'pools');
}

/**
 * Creates the runtime directory if needed and makes it private to the pool: mode 0700, owned by
 * the identity's uid and gid (by Wharf's user without an identity). A directory found with another
 * owner is emptied before it is re-owned: its content belonged to a former identity of the pool
 * and must not be handed to the new one. It is not emptied otherwise, because the workers of an
 * overlapped recycle or a web garden share it while they run; /run is cleared at boot.
 * Folders above it that Wharf creates are owned by Wharf's user and not writable by anyone else
 * (0711 with an identity so the pool's user can reach its own folder, 0700 without).
 */
export async function ensureRuntimeDirectory(identity: PoolIdentity | undefined, poolName: string, base?: string): Promise<string> {
  const dir = runtimeDirectory(identity, poolName, base);
  const parentMode = identity !== undefined ? 0o711 : 0o700;
  // The folders Wharf owns: the pools folder, and with the default base also the `wharf` folder
  // above it (/run/wharf, $XDG_RUNTIME_DIR/wharf, /tmp/wharf-<uid>).
  const owned = base === undefined ? [dirname(dirname(dir)), dirname(dir)] : [dirname(dir)];
  try {
    await mkdir(dirname(owned[0]!), { recursive: true });
    for (const folder of owned) await ensureOwnedFolder(folder, parentMode);
    const uid = identity?.uid ?? process.getuid?.() ?? 0;
    const gid = identity?.gid ?? process.getgid?.() ?? 0;
    let st: Stats | undefined = await lstat(dir).catch(notFound);
    if (st !== undefined && !st.isDirectory()) {
      await rm(dir, { force: true });
      st = undefined;
    }
    if (st === undefined) {
      await mkdir(dir, { mode: 0o700 });
      st = await lstat(dir);
    } else if (st.uid !== uid || st.gid !== gid) {
      for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
    }
    if (st.uid !== uid || st.gid !== gid) await chown(dir, uid, gid);
    if ((st.mode & 0o7777) !== 0o700) await chmod(dir, 0o700);
  } catch (err) {
    if (err instanceof WasError) throw err;
    throw new WasError(
      'WAS_IDENTITY',
      `application pool ${poolName}: cannot prepare the runtime directory ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return dir;
}

/**
 * The pool's folder for compressed static files under httpCompression's directory (IIS:
 * `IIS Temporary Compressed Files\<AppPoolName>`), created if needed and made the pool's own:
 * mode 0700, owned by the identity's uid and gid, so its worker can write copies there and no
 * other pool can read them. The folders above it are created readable by everyone (0755), so the
 * pool's user can reach its own. Returns the folder.
 */
export async function ensureCompressionDirectory(identity: PoolIdentity | undefined, root: string, poolName: string): Promise<string> {
  const dir = join(root, poolFolderName(poolName));
  await mkdir(root, { recursive: true, mode: 0o755 });
  await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new WasError('WAS_IDENTITY', `application pool ${poolName}: ${dir} is not a directory`);
  const uid = identity?.uid ?? process.getuid?.() ?? 0;
  const gid = identity?.gid ?? process.getgid?.() ?? 0;
  if (st.uid !== uid || st.gid !== gid) {
    // Copies a former identity of the pool made are not handed to the new one.
    for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
    await chown(dir, uid, gid);
  }
  if ((st.mode & 0o7777) !== 0o700) await chmod(dir, 0o700);
  return dir;
}

function notFound(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

async function ensureOwnedFolder(folder: string, mode: number): Promise<void> {
  await mkdir(folder, { mode }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const st = await lstat(folder);
  const me = process.getuid?.() ?? 0;
  // In a shared /tmp anyone could have made the folder first (or a symlink in its place).
  if (!st.isDirectory() || st.uid !== me) {
    throw new WasError(
      'WAS_IDENTITY',
      `${folder} is ${st.isDirectory() ? `owned by uid ${st.uid}` : 'not a directory'}, not a directory of Wharf's user (uid ${me}); remove it so Wharf can create its runtime directories`,
    );
  }
  if ((st.mode & 0o7777) !== mode) await chmod(folder, mode);
}

// ---------------------------------------------------------------------------------------------
// Can the pool's user read a path?

/**
 * Whether `identity` can reach and read `path`: every directory from `/` must be searchable (x)
 * and the final one readable and searchable (r and x), a file readable (r), judged by mode bits,
 * owner and group (the user's primary and supplementary groups). Undefined when it can; otherwise
 * one sentence for a start-up warning, e.g.
 * `/root is not searchable by wharf-defaultapppool (uid 998): mode 0700 owner root group root`.
 * When the mode bits say no and Wharf is root, the answer is confirmed by trying as the user in a
 * short-lived child process, so access granted by a POSIX ACL (setfacl) is not reported.
 */
export function accessProblem(path: string, identity: PoolIdentity): string | undefined {
  const abs = resolve(path);
  if (identity.uid === 0) {
    // root reads everything (CAP_DAC_OVERRIDE); only existence matters.
    return existsSync(abs) ? undefined : `${abs} does not exist`;
  }
  const groups = userGroups(identity);
  let walked = abs;
  let problem = walk(abs, identity, groups);
  if (problem === undefined) {
    // Symbolic links: the directories on the way to the target must be searchable too.
    let real: string | undefined;
    try {
      real = realpathSync(abs);
    } catch {
      real = undefined;
    }
    if (real !== undefined && real !== abs) {
      walked = real;
      problem = walk(real, identity, groups);
    }
  }
  if (problem === undefined) return undefined;
  if (runningAsRoot()) {
    const tried = tryAsUser(walked, identity);
    if (tried === 'ok') return undefined;
    if (tried !== undefined && tried.path !== problem.path) {
      let mode = '';
      try {
        mode = `: ${modeDescription(statSync(tried.path))}`;
      } catch {
        // described without its mode
      }
      return `${tried.path} is not accessible to ${who(identity)} (${tried.code}, from an ACL or security module, not the mode bits)${mode}`;
    }
  }
  return problem.message;
}

interface Problem {
  readonly path: string;
  readonly message: string;
}

function who(identity: PoolIdentity): string {
  return `${identity.user} (uid ${identity.uid})`;
}

function walk(abs: string, identity: PoolIdentity, groups: ReadonlySet<number>): Problem | undefined {
  const parts = abs.split('/').filter((p) => p !== '');
  const prefixes = ['/'];
  for (let i = 0; i < parts.length; i++) prefixes.push('/' + parts.slice(0, i + 1).join('/'));
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    const last = i === prefixes.length - 1;
    let st: Stats;
    try {
      st = statSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const message = code === 'ENOENT' ? `${p} does not exist` : code === 'ENOTDIR' ? `${prefixes[i - 1]} is not a directory` : `${p} cannot be examined (${code})`;
      return { path: p, message };
    }
    const bits = permissionBits(st, identity, groups);
    const describe = (what: string): Problem => ({ path: p, message: `${p} is not ${what} by ${who(identity)}: ${modeDescription(st)}` });
    if (!last) {
      if (!st.isDirectory()) return { path: p, message: `${p} is not a directory` };
      if ((bits & 1) === 0) return describe('searchable');
    } else if (st.isDirectory()) {
      if ((bits & 1) === 0) return describe('searchable');
      if ((bits & 4) === 0) return describe('readable');
    } else if ((bits & 4) === 0) {
      return describe('readable');
    }
  }
  return undefined;
}

/** rwx of the class the kernel applies: owner if the uid matches, else group if any gid does, else other. */
function permissionBits(st: Stats, identity: PoolIdentity, groups: ReadonlySet<number>): number {
  if (st.uid === identity.uid) return (st.mode >> 6) & 7;
  if (groups.has(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

function modeDescription(st: Stats): string {
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  return `mode ${mode} owner ${nameOf('/etc/passwd', st.uid)} group ${nameOf('/etc/group', st.gid)}`;
}

/** Names for messages only: the local files suffice, a number is shown otherwise. */
function nameOf(file: string, id: number): string {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && Number(f[2]) === id && f[2] !== '') return f[0]!;
    }
  } catch {
    // fall through to the number
  }
  return String(id);
}

/** Primary plus supplementary groups as the worker gets them from initgroups (`id -G` asks NSS the same way). */
function userGroups(identity: PoolIdentity): Set<number> {
  const groups = new Set<number>([identity.gid]);
  try {
    const out = execFileSync('id', ['-G', identity.user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
    for (const g of out.trim().split(/\s+/)) if (g !== '') groups.add(Number(g));
  } catch {
    // A user NSS cannot list groups for: the primary group is all that is known.
  }
  return groups;
}

/**
 * Runs the same walk as the user (initgroups, setgid, setuid, then access(2) on every prefix):
 * the kernel's answer, including ACLs and security modules. 'ok', the first prefix that failed,
 * or undefined when the child could not run.
 */
function tryAsUser(abs: string, identity: PoolIdentity): 'ok' | { path: string; code: string } | undefined {
  const script = `
const fs = require('node:fs');
const [p, user, gid, uid] = process.argv.slice(1);
process.initgroups(user, Number(gid));
process.setgid(Number(gid));
process.setuid(Number(uid));
const parts = p.split('/').filter((x) => x !== '');
const prefixes = ['/'];
for (let i = 0; i < parts.length; i++) prefixes.push('/' + parts.slice(0, i + 1).join('/'));
let out = { ok: true };
for (let i = 0; i < prefixes.length; i++) {
  const q = prefixes[i];
  try {
    let mode = fs.constants.X_OK;
    if (i === prefixes.length - 1) mode = fs.statSync(q).isDirectory() ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK;
    fs.accessSync(q, mode);
  } catch (err) { out = { path: q, code: err.code }; break; }
}
process.stdout.write(JSON.stringify(out));
`;
  const r = spawnSync(process.execPath, ['-e', script, abs, identity.user, String(identity.gid), String(identity.uid)], {
    encoding: 'utf8',
    timeout: 10_000,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  if (r.status !== 0) return undefined;
  try {
    const out = JSON.parse(r.stdout) as { ok?: boolean; path?: string; code?: string };
    if (out.ok === true) return 'ok';
    if (typeof out.path === 'string') return { path: out.path, code: out.code ?? 'EACCES' };
  } catch {
    // unreadable answer: keep the mode-bit verdict
  }
  return undefined;
}

/** Currently cached identities are dropped (tests; an administrator changed users). */
export function forgetPoolIdentities(): void {
  cache.clear();
}

/**
 * Environment for a worker of a pool: who to become (read by the worker's dropPrivileges step)
 * and the usual login variables of that user. Empty without an identity.
 */
export function workerIdentityEnvironment(identity: PoolIdentity | undefined): Record<string, string> {
  if (identity === undefined) return {};
  return {
    WHARF_WORKER_USER: identity.user,
    WHARF_WORKER_UID: String(identity.uid),
    WHARF_WORKER_GID: String(identity.gid),
    USER: identity.user,
    LOGNAME: identity.user,
    HOME: identity.home,
  };
}
