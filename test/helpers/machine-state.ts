/**
 * What Wharf servers started by the tests leave on the machine when they run as root, and its
 * removal: the pool users Wharf creates (`wharf-<pool>`, `wharf-localservice` …) with their
 * groups, the `wharf-logs` group, and the runtime folders under /run/wharf.
 *
 * Only what did not exist before the run is removed (scripts/run-tests.js records the state in a
 * file named by $WHARF_TEST_MACHINE_STATE; a test file run on its own records it when it starts
 * its first server), and only for the pools of servers this process started. Test files run two
 * at a time, and other checkouts on the same machine may be testing too, so a user is kept while
 * any Wharf server still running (found in /proc) serves a pool of that user, or while any process
 * runs as it: userdel under a live server would make its next worker fail to switch users.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { poolUserName } from '../../src/was/identity.js';

/** The embedded default configuration (what `wharf start` without --config serves). */
const DEFAULT_CONFIG = fileURLToPath(new URL('../../../assets/default/applicationHost.config', import.meta.url));

export const RUN_DIR = '/run/wharf';
export const POOLS_DIR = '/run/wharf/pools';
const LOG_GROUP = 'wharf-logs';
const SERVICE_USERS = ['wharf-localservice', 'wharf-networkservice'];

export interface MachineState {
  readonly users: readonly string[];
  readonly groups: readonly string[];
  /** Entries of /run/wharf/pools (undefined: the folder did not exist). */
  readonly poolDirs: readonly string[] | undefined;
  readonly runDirExisted: boolean;
}

function names(db: 'passwd' | 'group'): string[] {
  const r = spawnSync('getent', [db], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.split(':')[0]!).filter((n) => n.startsWith('wharf-')) : [];
}

function list(dir: string): string[] | undefined {
  try {
    return readdirSync(dir);
  } catch {
    return undefined;
  }
}

export function machineState(): MachineState {
  return { users: names('passwd'), groups: names('group'), poolDirs: list(POOLS_DIR), runDirExisted: existsSync(RUN_DIR) };
}

export function saveMachineState(file: string): void {
  writeFileSync(file, JSON.stringify(machineState()));
}

let baseline: MachineState | undefined;

/** The state before this test run (the runner's file, else this process's first call). */
export function runBaseline(): MachineState {
  if (baseline !== undefined) return baseline;
  const file = process.env['WHARF_TEST_MACHINE_STATE'];
  if (file !== undefined && file !== '') {
    try {
      baseline = JSON.parse(readFileSync(file, 'utf8')) as MachineState;
      return baseline;
    } catch {
      // fall through: record it now
    }
  }
  baseline = machineState();
  return baseline;
}

/** Pool names of an applicationHost.config (its applicationPools `<add name>` entries). */
export function poolNames(configText: string): string[] {
  const section = /<applicationPools>([\s\S]*?)<\/applicationPools>/.exec(configText)?.[1] ?? '';
  return [...section.matchAll(/<add\s[^>]*?\bname="([^"]+)"/g)].map((m) => m[1]!);
}

/**
 * Pools served by Wharf servers running now: `--config` of every `wharf.js start` in /proc (the
 * embedded default's when none). Undefined when some server's configuration cannot be read.
 */
function livePools(): { pools: Set<string>; any: boolean } | undefined {
  const pools = new Set<string>();
  let any = false;
  for (const d of list('/proc') ?? []) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const bin = argv.findIndex((a) => a.endsWith('/bin/wharf.js') || a.endsWith('/dist/src/cli/main.js'));
    if (bin === -1) continue;
    any = true;
    const args = argv.slice(bin + 1);
    const at = args.findIndex((a) => a === '--config' || a === '-c');
    let file = at === -1 ? DEFAULT_CONFIG : args[at + 1] ?? DEFAULT_CONFIG;
    if (!isAbsolute(file)) {
      try {
        file = resolve(readlinkSync(`/proc/${d}/cwd`), file);
      } catch {
        return undefined;
      }
    }
    try {
      for (const p of poolNames(readFileSync(file, 'utf8'))) pools.add(p.toLowerCase());
    } catch {
      return undefined;
    }
  }
  return { pools, any };
}

/** uids that own a running process. */
function busyUids(): Set<number> {
  const uids = new Set<number>();
  for (const d of list('/proc') ?? []) {
    if (!/^\d+$/.test(d)) continue;
    try {
      uids.add(statSync(`/proc/${d}`).uid);
    } catch {
      // exited
    }
  }
  return uids;
}

function uidOf(user: string): number | undefined {
  const r = spawnSync('getent', ['passwd', user], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.split(':')[2]) : undefined;
}

function retried(cmd: string, args: string[]): boolean {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return true;
    if (!/lock/i.test(r.stderr)) return false;
    spawnSync('sleep', ['0.1']);
  }
  return false;
}

/**
 * Remove what servers of these configurations (applicationHost.config texts) created during this
 * run and nobody uses any more. Returns what was removed and what was kept. Does nothing unless root.
 */
export function cleanUpMachine(configs: Iterable<string>, baseline: MachineState = runBaseline()): { removed: string[]; kept: string[] } {
  const removed: string[] = [];
  const kept: string[] = [];
  if (process.getuid?.() !== 0) return { removed, kept };
  const before = baseline;
  const live = livePools();
  const texts = [...configs];
  const mine = [...new Set(texts.flatMap(poolNames).map((p) => p.toLowerCase()))];
  const busy = busyUids();
  const users = new Set(names('passwd'));
  const groups = new Set(names('group'));
  const candidates = new Set(mine.map((p) => poolUserName(p)));
  // The shared service users, when one of these servers had a pool that uses them.
  if (texts.some((t) => /identityType="LocalService"/.test(t))) candidates.add(SERVICE_USERS[0]!);
  if (texts.some((t) => /identityType="NetworkService"/.test(t))) candidates.add(SERVICE_USERS[1]!);
  for (const user of candidates) {
    if (!users.has(user) || before.users.includes(user)) continue;
    const uid = uidOf(user);
    const inUse =
      live === undefined ||
      (SERVICE_USERS.includes(user) ? live.any : [...live.pools].some((p) => poolUserName(p) === user)) ||
      (uid !== undefined && busy.has(uid));
    if (inUse) {
      kept.push(user);
      continue;
    }
    // Also removes the user's own group (USERGROUPS_ENAB), unless something else joined it.
    if (retried('userdel', [user])) removed.push(user);
    if (groups.has(user) && !before.groups.includes(user) && retried('groupdel', [user])) removed.push(`group ${user}`);
  }
  if (groups.has(LOG_GROUP) && !before.groups.includes(LOG_GROUP)) {
    if (live === undefined || live.any) kept.push(LOG_GROUP);
    else if (retried('groupdel', [LOG_GROUP])) removed.push(`group ${LOG_GROUP}`);
  }
  // Runtime folders: /run/wharf/pools/<user name without wharf->, one per pool.
  const keys = new Set(mine.map((p) => poolUserName(p).slice('wharf-'.length)));
  const liveKeys = new Set([...(live?.pools ?? [])].map((p) => poolUserName(p).slice('wharf-'.length)));
  for (const key of list(POOLS_DIR) ?? []) {
    if (!keys.has(key) || before.poolDirs?.includes(key)) continue;
    if (live === undefined || liveKeys.has(key)) {
      kept.push(join(POOLS_DIR, key));
      continue;
    }
    rmSync(join(POOLS_DIR, key), { recursive: true, force: true });
    removed.push(join(POOLS_DIR, key));
  }
  // The folders above, when this run made them and nothing (an admin socket, another pool) is left.
  for (const [dir, existed] of [
    [POOLS_DIR, before.poolDirs !== undefined],
    [RUN_DIR, before.runDirExisted],
  ] as const) {
    if (existed || list(dir)?.length !== 0) continue;
    try {
      rmdirSync(dir);
      removed.push(dir);
    } catch {
      // refilled meanwhile
    }
  }
  return { removed, kept };
}

/**
 * Users, groups and runtime folders left by earlier test runs (killed runs, older harnesses) for
 * the pools of the test fixtures, removed when no running Wharf or process uses them. Opt-in
 * (`WHARF_TEST_PRUNE=1 node scripts/run-tests.js`): on a machine that also runs Wharf for real, a
 * pool named like a fixture's (DefaultAppPool) would lose its user.
 */
export function pruneStaleTestState(fixtures: string): { removed: string[]; kept: string[] } {
  const texts: string[] = [];
  for (const d of list(fixtures) ?? []) {
    try {
      texts.push(readFileSync(join(fixtures, d, 'applicationHost.config'), 'utf8'));
    } catch {
      // not a server fixture
    }
  }
  texts.push(readFileSync(DEFAULT_CONFIG, 'utf8'));
  return cleanUpMachine(texts, { users: [], groups: [], poolDirs: [], runDirExisted: true });
}
