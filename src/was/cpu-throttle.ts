/**
 * CPU throttling for application pools: IIS 8+'s `<cpu limit="N" action="Throttle">` and
 * `action="ThrottleUnderLoad"`, with the cpu controller of a Linux cgroup per pool.
 *
 * IIS puts a pool's w3wp.exe processes in a Windows job object with CPU rate control: Throttle is
 * a hard cap (JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP), ThrottleUnderLoad a cap that applies only
 * while other work wants the CPU. `fraction` is IIS's limit/100000 of the whole machine (all
 * cores). On Linux:
 *
 *   Throttle          → CFS bandwidth control: quota = fraction × cpus × 100 ms per 100 ms period
 *                       (v2 cpu.max, v1 cpu.cfs_quota_us + cpu.cfs_period_us), minimum 1 ms.
 *   ThrottleUnderLoad → no quota; a weight (v2 cpu.weight, v1 cpu.shares) worth fraction × cpus
 *                       ordinary busy processes, so under contention the pool gets about its
 *                       fraction and on an idle machine as much as it wants.
 *
 * A cgroup competes for the CPU as one entity, whatever the number of its processes. So that a
 * Throttle pool under contention is only capped, not also outweighed, it weighs what the
 * processes needed to use its cap would: max(1, fraction × cpus) ordinary processes.
 *
 * Groups are `<Wharf's own cgroup>/wharf/<pool key>`, or `<hierarchy root>/wharf/<pool key>` when
 * Wharf's own cgroup cannot have cpu-controlled children (cgroup v2's "no internal processes"
 * rule). The `wharf` group's weight is kept at the sum of its pools' weights, so that the pools
 * together weigh against the rest of the machine what each of them would alone.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';
import { WasError } from '../errors.js';
import { poolUserName } from './identity.js';

export type ThrottleMode = 'Throttle' | 'ThrottleUnderLoad';

export interface CpuThrottleGroup {
  /** The pool's cgroup directory, e.g. `/sys/fs/cgroup/cpu/wharf/defaultapppool`. */
  readonly path: string;
  readonly version: 1 | 2;
  /**
   * Moves a process into the group. False when the process has already exited (ESRCH). Throws a
   * WasError `WAS_WORKER_START` when the process exists but cannot be moved (the group vanished
   * and cannot be recreated, or the kernel refuses): the worker would otherwise run unthrottled.
   */
  add(pid: number): boolean;
  /**
   * Applies a new limit or action to the group and its processes at once (no restart needed,
   * like IIS). Recreates the group if it vanished; throws a WasError `WAS_WORKER_START` when the
   * kernel refuses the values.
   */
  update(fraction: number, mode: ThrottleMode): void;
  /**
   * Removes the group's directory (and `wharf/` once empty). Moves nothing: the pool's processes
   * must have exited, otherwise the directory stays (EBUSY) and false is returned. Never throws.
   * A later add() or update() creates the group again.
   */
  remove(): boolean;
}

export interface CpuThrottleOptions {
  /** Where procfs is (tests point this at a directory with a fake `self/mountinfo` and `self/cgroup`). */
  readonly proc?: string;
  /** The number of CPUs `fraction` is a share of; default os.availableParallelism(). */
  readonly cpus?: number;
}

/** What one group's control files are set to. */
export interface CpuThrottleSettings {
  /** CFS period, µs. */
  readonly periodUs: number;
  /** CFS quota per period, µs; undefined = unlimited (ThrottleUnderLoad). */
  readonly quotaUs: number | undefined;
  /** cgroup v2 cpu.weight (1–10000, 100 = one ordinary process). */
  readonly weight: number;
  /** cgroup v1 cpu.shares (2–262144, 1024 = one ordinary process). */
  readonly shares: number;
}

const PERIOD_US = 100_000;
/** The kernel's smallest CFS quota (1 ms). */
const MIN_QUOTA_US = 1_000;
const GROUP_DIR = 'wharf';

/** The control-file values for a pool with `fraction` of `cpus` CPUs. */
export function cpuThrottleSettings(fraction: number, mode: ThrottleMode, cpus: number): CpuThrottleSettings {
  checkFraction(fraction);
  // How many ordinary busy processes the group weighs (see the header comment).
  const processes = mode === 'Throttle' ? Math.max(1, fraction * cpus) : fraction * cpus;
  return {
    periodUs: PERIOD_US,
    quotaUs: mode === 'Throttle' ? Math.max(MIN_QUOTA_US, Math.round(fraction * cpus * PERIOD_US)) : undefined,
    weight: clamp(Math.round(processes * 100), 1, 10_000),
    shares: clamp(Math.round(processes * 1024), 2, 262_144),
  };
}

/**
 * Creates (or reuses, after a crash) the pool's cgroup with the cpu controller and applies the
 * limit. `fraction` = IIS limit/100000 of the whole machine. ok:false with a reason when cgroups
 * cannot be used (not root, no cpu controller, read-only mount, v2 controller not delegable).
 */
export function createCpuThrottle(
  poolName: string,
  fraction: number,
  mode: ThrottleMode,
  options: CpuThrottleOptions = {},
): { ok: true; group: CpuThrottleGroup } | { ok: false; reason: string } {
  if (!(Number.isFinite(fraction) && fraction > 0)) {
    return { ok: false, reason: `application pool ${poolName}: cpu limit fraction ${fraction} is not a positive number` };
  }
  // The same key as the pool's user and runtime directory: lower-case [a-z0-9_-], hashed when changed.
  const key = poolUserName(poolName).slice('wharf-'.length);
  if (key === '') return { ok: false, reason: `application pool '${poolName}': an empty name has no cgroup` };
  const cpus = options.cpus ?? availableParallelism();
  const found = findHierarchy(options.proc ?? '/proc');
  if (!found.ok) return { ok: false, reason: `application pool ${poolName}: cannot throttle CPU: ${found.reason}` };
  const h = found.hierarchy;
  if (h.readOnly) {
    return {
      ok: false,
      reason: `application pool ${poolName}: cannot throttle CPU: the cgroup v${h.version} cpu hierarchy at ${h.mountPoint} is mounted read-only`,
    };
  }
  const reasons: string[] = [];
  for (const base of h.bases) {
    const group = new Group(h, base, key, cpus, fraction, mode);
    const problem = group.setUp(true);
    if (problem === undefined) return { ok: true, group };
    reasons.push(problem);
  }
  return { ok: false, reason: `application pool ${poolName}: cannot throttle CPU: ${reasons.join('; ')}` };
}

class Group implements CpuThrottleGroup {
  readonly path: string;
  readonly version: 1 | 2;
  readonly #parent: string;
  readonly #chain: readonly string[];
  readonly #cpus: number;
  #fraction: number;
  #mode: ThrottleMode;

  constructor(h: Hierarchy, base: string, key: string, cpus: number, fraction: number, mode: ThrottleMode) {
    this.version = h.version;
    this.#parent = join(base, GROUP_DIR);
    this.path = join(this.#parent, key);
    // v2 enables the controller top-down: every cgroup from the mount point to base.
    const chain = [h.mountPoint];
    for (const part of posix.relative(h.mountPoint, base).split('/').filter((p) => p !== '')) {
      chain.push(join(chain[chain.length - 1]!, part));
    }
    this.#chain = chain;
    this.#cpus = cpus;
    this.#fraction = fraction;
    this.#mode = mode;
  }

  /** Creates what is missing and applies the settings; a reason on failure. */
  setUp(undoOnFailure: boolean): string | undefined {
    const created: string[] = [];
    const problem = this.#setUp(created);
    if (problem !== undefined && undoOnFailure) {
      for (const dir of created.reverse()) tryRmdir(dir);
    }
    return problem;
  }

  #setUp(created: string[]): string | undefined {
    if (this.version === 2) {
      for (let i = 0; i < this.#chain.length; i++) {
        const problem = enableCpu(this.#chain[i]!, this.#chain[i + 1] ?? this.#parent);
        if (problem !== undefined) return problem;
      }
    }
    for (const dir of [this.#parent, this.path]) {
      try {
        mkdirSync(dir);
        created.push(dir);
      } catch (e) {
        // A directory left by a previous run (or another pool's group) is reused.
        if (errno(e) !== 'EEXIST') return `cannot create ${dir}: ${describe(e)}`;
      }
      if (this.version === 2 && dir === this.#parent) {
        const problem = enableCpu(this.#parent, this.path);
        if (problem !== undefined) return problem;
      }
    }
    try {
      this.#apply();
    } catch (e) {
      return `cannot set ${this.version === 2 ? 'cpu.max/cpu.weight' : 'cpu.cfs_quota_us/cpu.shares'} in ${this.path}: ${describe(e)}`;
    }
    this.#weighParent();
    return undefined;
  }

  #apply(): void {
    const s = cpuThrottleSettings(this.#fraction, this.#mode, this.#cpus);
    if (this.version === 2) {
      write(join(this.path, 'cpu.max'), `${s.quotaUs ?? 'max'} ${s.periodUs}`);
      write(join(this.path, 'cpu.weight'), String(s.weight));
    } else {
      // Quota off first: a new period with the old quota could fail the kernel's hierarchy check.
      write(join(this.path, 'cpu.cfs_quota_us'), '-1');
      write(join(this.path, 'cpu.cfs_period_us'), String(s.periodUs));
      if (s.quotaUs !== undefined) write(join(this.path, 'cpu.cfs_quota_us'), String(s.quotaUs));
      write(join(this.path, 'cpu.shares'), String(s.shares));
    }
  }

  /** wharf/'s weight = the sum of its pools' weights (see the header comment). Best effort. */
  #weighParent(): void {
    const file = this.version === 2 ? 'cpu.weight' : 'cpu.shares';
    let sum = 0;
    try {
      for (const entry of readdirSync(this.#parent, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue;
        const value = Number(readFileSync(join(this.#parent, entry.name, file), 'latin1').trim());
        if (Number.isFinite(value)) sum += value;
      }
      if (sum === 0) return;
      const [min, max] = this.version === 2 ? [1, 10_000] : [2, 262_144];
      write(join(this.#parent, file), String(clamp(sum, min, max)));
    } catch {
      // A pool removed meanwhile, or wharf/ itself: the next create/update/remove weighs again.
    }
  }

  add(pid: number): boolean {
    if (!(Number.isInteger(pid) && pid > 0)) throw new RangeError(`not a process id: ${pid}`); // 0 would move Wharf itself
    const procs = join(this.path, 'cgroup.procs');
    try {
      write(procs, String(pid));
      return true;
    } catch (e) {
      if (errno(e) === 'ESRCH') return false; // exited meanwhile
      if (errno(e) !== 'ENOENT' || existsSync(this.path)) {
        throw new WasError('WAS_WORKER_START', `cannot move process ${pid} into the cpu cgroup ${this.path}: ${describe(e)}`, { cause: e });
      }
    }
    // The group vanished (removed by hand, or by a cgroup manager): create it again once.
    const problem = this.setUp(false);
    if (problem !== undefined) {
      throw new WasError('WAS_WORKER_START', `the cpu cgroup ${this.path} vanished and cannot be recreated: ${problem}`);
    }
    try {
      write(procs, String(pid));
      return true;
    } catch (e) {
      if (errno(e) === 'ESRCH') return false;
      throw new WasError('WAS_WORKER_START', `cannot move process ${pid} into the cpu cgroup ${this.path}: ${describe(e)}`, { cause: e });
    }
  }

  update(fraction: number, mode: ThrottleMode): void {
    checkFraction(fraction);
    this.#fraction = fraction;
    this.#mode = mode;
    let problem: string | undefined;
    try {
      this.#apply();
      this.#weighParent();
    } catch (e) {
      if (errno(e) === 'ENOENT' && !existsSync(this.path)) problem = this.setUp(false);
      else problem = `cannot set the cpu limit in ${this.path}: ${describe(e)}`;
    }
    if (problem !== undefined) throw new WasError('WAS_WORKER_START', problem);
  }

  remove(): boolean {
    let gone = tryRmdir(this.path);
    if (!gone && !existsSync(this.path)) gone = true;
    if (gone) {
      // The last pool takes wharf/ with it; otherwise the remaining pools are weighed again.
      if (!tryRmdir(this.#parent)) this.#weighParent();
    }
    return gone;
  }
}

/** Enables the cpu controller for `child` (existing or about to be created) of `parent`. */
function enableCpu(parent: string, child: string): string | undefined {
  if (words(join(child, 'cgroup.controllers')).includes('cpu')) return undefined;
  if (words(join(parent, 'cgroup.subtree_control')).includes('cpu')) return undefined;
  try {
    write(join(parent, 'cgroup.subtree_control'), '+cpu');
    return undefined;
  } catch (e) {
    if (errno(e) === 'EBUSY') {
      return `cannot enable the cpu controller in ${parent}/cgroup.subtree_control: that cgroup has processes of its own (cgroup v2's "no internal processes" rule)`;
    }
    return `cannot enable the cpu controller in ${parent}/cgroup.subtree_control: ${describe(e)}`;
  }
}

interface Hierarchy {
  readonly version: 1 | 2;
  readonly mountPoint: string;
  readonly readOnly: boolean;
  /** Where wharf/ may go, best first: Wharf's own cgroup, then the hierarchy's root. */
  readonly bases: readonly string[];
}

interface Mount {
  /** The cgroup mounted, relative to our cgroup namespace (`/` for a whole hierarchy). */
  readonly root: string;
  readonly mountPoint: string;
  readonly readOnly: boolean;
  readonly fsType: string;
  readonly superOptions: readonly string[];
}

function findHierarchy(proc: string): { ok: true; hierarchy: Hierarchy } | { ok: false; reason: string } {
  let mounts: Mount[];
  let memberships: Array<{ controllers: string[]; path: string }>;
  try {
    mounts = parseMountinfo(readFileSync(join(proc, 'self/mountinfo'), 'utf8'));
    memberships = readFileSync(join(proc, 'self/cgroup'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((line) => {
        // hierarchy-id:controller,list:/path (the path may contain ':')
        const [, controllers = '', ...path] = line.split(':');
        return { controllers: controllers === '' ? [] : controllers.split(','), path: path.join(':') };
      });
  } catch (e) {
    return { ok: false, reason: `cannot read the process's cgroups from ${proc}/self: ${describe(e)}` };
  }
  const v2 = mounts.filter((m) => m.fsType === 'cgroup2');
  const withCpu = v2.find((m) => words(join(m.mountPoint, 'cgroup.controllers')).includes('cpu'));
  if (withCpu !== undefined) {
    const own = memberships.find((m) => m.controllers.length === 0)?.path;
    return { ok: true, hierarchy: hierarchy(2, withCpu, own) };
  }
  const v1 = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('cpu'));
  if (v1 !== undefined) {
    const own = memberships.find((m) => m.controllers.includes('cpu'))?.path;
    return { ok: true, hierarchy: hierarchy(1, v1, own) };
  }
  const seen = v2.map((m) => `cgroup v2 at ${m.mountPoint} offers '${words(join(m.mountPoint, 'cgroup.controllers')).join(' ')}'`);
  return {
    ok: false,
    reason: `no cgroup hierarchy with the cpu controller is mounted (${[...seen, 'no cgroup v1 cpu hierarchy'].join(', ')})`,
  };
}

function hierarchy(version: 1 | 2, m: Mount, ownPath: string | undefined): Hierarchy {
  // /proc/self/cgroup and the mount's root are both relative to our cgroup namespace; a path
  // outside the mounted subtree (`/../..`) or a directory that is not there means the root.
  let own = m.mountPoint;
  if (ownPath !== undefined && !ownPath.includes('/..')) {
    const rel = m.root === '/' ? ownPath : ownPath === m.root || ownPath.startsWith(m.root + '/') ? ownPath.slice(m.root.length) : undefined;
    if (rel !== undefined && existsSync(join(m.mountPoint, rel))) own = join(m.mountPoint, rel);
  }
  // Only v2 falls back to the root: there Wharf's own cgroup (a systemd service's, say) cannot
  // have cpu-controlled children while Wharf is in it. With v1 a failure under our own cgroup
  // (a quota above the service's own) would only repeat at the root, escaping the service's limits.
  const bases = version === 2 && own !== m.mountPoint ? [own, m.mountPoint] : [own];
  return { version, mountPoint: m.mountPoint, readOnly: m.readOnly, bases };
}

/** proc(5): `id parent major:minor root mountpoint options [optional…] - fstype source superoptions`. */
function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash === -1 || fields.length < dash + 4) continue;
    mounts.push({
      root: unescapeOctal(fields[3]!),
      mountPoint: unescapeOctal(fields[4]!),
      readOnly: fields[5]!.split(',').includes('ro') || fields[dash + 3]!.split(',').includes('ro'),
      fsType: fields[dash + 1]!,
      superOptions: fields[dash + 3]!.split(','),
    });
  }
  return mounts;
}

/** mountinfo writes space, tab, newline and backslash as \040 \011 \012 \134. */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The whitespace-separated words of a small control file; none when it cannot be read. */
function words(file: string): string[] {
  try {
    return readFileSync(file, 'latin1').split(/\s+/).filter((w) => w !== '');
  } catch {
    return [];
  }
}

/** One write(2) per value: cgroup control files take a whole value per write. */
function write(file: string, value: string): void {
  writeFileSync(file, value);
}

/** rmdir that reports whether the directory is gone; EBUSY (still has processes) and the like are not errors here. */
function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return errno(e) === 'ENOENT';
  }
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function describe(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  switch (errno(e)) {
    case 'EACCES':
    case 'EPERM':
      return `${message} (cgroups need root, or a cgroup v2 subtree delegated to Wharf's user)`;
    case 'EROFS':
      return `${message} (the cgroup filesystem is read-only, as in containers without a writable cgroup mount)`;
    case 'EINVAL':
      return `${message} (the kernel refused the value; with cgroup v1 a quota above the parent cgroup's is refused)`;
    default:
      return message;
  }
}

function checkFraction(fraction: number): void {
  if (!(Number.isFinite(fraction) && fraction > 0)) throw new RangeError(`cpu limit fraction must be a positive number, not ${fraction}`);
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
