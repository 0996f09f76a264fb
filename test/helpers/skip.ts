/**
 * The one way a test may skip. A skip names what the ENVIRONMENT lacks (a tool, root, a file
 * system that takes ACLs, a writable cpu cgroup …), and this file probes the environment itself:
 * never the product's own output, so a regression in Wharf cannot turn a test into a skip.
 *
 * Under CI=true a missing need fails the test, unless its kind is in CI_ALLOWED_SKIPS (needs that
 * CI, which runs as root, cannot meet by construction). scripts/run-tests.js counts every skip,
 * prints them with their reasons, and fails a CI run on any skip outside that list, including
 * skips that bypassed this helper.
 *
 * Unit tests under src/ import it as ../../test/helpers/skip.js (tsconfig compiles both trees).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** Kinds of environment need; the runner reads the kind back from the skip reason. */
export type NeedKind = 'root' | 'not-root' | 'tool' | 'file' | 'acl' | 'cgroup-cpu' | 'other-user';

/**
 * Skips CI may report without failing: CI runs as root, and a test of what an ACL denial looks
 * like to the process that is denied cannot observe it as root (root reads every file). The same
 * denial is covered as root, end to end, by test/identity.test.ts (401.3 in another pool's user).
 */
export const CI_ALLOWED_SKIPS: readonly NeedKind[] = ['not-root'];

export interface Need {
  readonly kind: NeedKind;
  readonly met: boolean;
  /** What is missing and how to provide it (shown in the skip reason and in CI failures). */
  readonly missing: string;
}

/** The prefix of every skip reason this helper writes: `needs <kind>: <what is missing>`. */
export const SKIP_REASON = /^needs ([a-z-]+): /;

const isCi = (): boolean => process.env['CI'] === 'true';

/**
 * True when every need is met. Otherwise the test is skipped (outside CI, or under CI when the
 * need's kind is allowed) or fails (under CI); the caller returns when this gives false.
 */
export function needs(t: TestContext, ...list: Need[]): boolean {
  const unmet = list.find((n) => !n.met);
  if (unmet === undefined) return true;
  const reason = `needs ${unmet.kind}: ${unmet.missing}`;
  if (isCi() && !CI_ALLOWED_SKIPS.includes(unmet.kind)) assert.fail(`CI=true, and this test cannot run here: ${reason}`);
  process.stderr.write(`\n*** SKIPPING "${t.name}": ${reason} ***\n\n`);
  t.skip(reason);
  return false;
}

// ---- Probes: each looks at the machine, never at Wharf ------------------------------------------

export const isRoot = process.getuid?.() === 0;

export function root(why: string): Need {
  return { kind: 'root', met: isRoot, missing: `root (${why}); run the tests as root, as CI does` };
}

/** For what only a process that is not root can observe (root bypasses file permissions). */
export function notRoot(why: string): Need {
  return { kind: 'not-root', met: !isRoot, missing: `a user other than root (${why})` };
}

/** A program on PATH; `pkg` is the Debian package that has it (.ci/run installs them). */
export function tool(name: string, pkg = name): Need {
  const paths = (process.env['PATH'] ?? '').split(':');
  const met = paths.some((p) => p !== '' && existsSync(join(p, name)));
  return { kind: 'tool', met, missing: `${name} is not installed (apt-get install ${pkg}); .ci/run installs it` };
}

/**
 * Where a program is: PATH, then the sbin folders a user's PATH may lack (mariadbd is in
 * /usr/sbin, which is not on a non-root Debian user's PATH).
 */
export function programPath(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) if (d !== '' && existsSync(join(d, name))) return join(d, name);
  return undefined;
}

/** Where Debian's php-cgi is: the fastCgi fullPath of the PHP test fixtures. */
export const PHP_CGI = '/usr/bin/php-cgi';

/**
 * PHP's CGI binary where the fixtures name it (Debian's php-cgi package puts it there), with these
 * extensions loaded, as `php-cgi -m` lists them.
 */
export function phpCgi(...extensions: Array<{ name: string; pkg: string }>): Need {
  try {
    accessSync(PHP_CGI, constants.X_OK);
  } catch {
    return { kind: 'tool', met: false, missing: `${PHP_CGI} is not installed (apt-get install php-cgi); .ci/run installs it` };
  }
  if (extensions.length === 0) return { kind: 'tool', met: true, missing: '' };
  const r = spawnSync(PHP_CGI, ['-m'], { encoding: 'utf8', timeout: 10_000 });
  const loaded = new Set((r.stdout ?? '').split('\n').map((l) => l.trim().toLowerCase()));
  const lacking = extensions.find((e) => !loaded.has(e.name));
  if (lacking === undefined) return { kind: 'tool', met: true, missing: '' };
  return { kind: 'tool', met: false, missing: `php-cgi has no ${lacking.name} extension (apt-get install ${lacking.pkg}); .ci/run installs it` };
}

/** A MariaDB server a test can start in a folder of its own (test/helpers/mariadb.ts). */
export function mariadb(): Need {
  const lacking = ['mariadb-install-db', 'mariadbd', 'mariadb'].find((n) => programPath(n) === undefined);
  if (lacking === undefined) return { kind: 'tool', met: true, missing: '' };
  return { kind: 'tool', met: false, missing: `${lacking} is not installed (apt-get install mariadb-server); .ci/run installs it` };
}

/** Debian's WordPress with its default theme (/usr/share/wordpress, shared with /var/lib/wordpress). */
export function wordpress(): Need {
  const files = ['/usr/share/wordpress/wp-settings.php', '/usr/share/wordpress/wp-content/themes/twentytwentythree/style.css'];
  const lacking = files.find((f) => !existsSync(f));
  if (lacking === undefined) return { kind: 'tool', met: true, missing: '' };
  return { kind: 'tool', met: false, missing: `${lacking} is not there (apt-get install wordpress wordpress-theme-twentytwentythree); .ci/run installs them` };
}

/** A file the test reads from outside the repository (../shared beside the clone in CI). */
export function pathExists(path: string, what: string): Need {
  return { kind: 'file', met: existsSync(path), missing: `${path} (${what}) is not there` };
}

/** Root can start a process as another uid (not so in a user namespace without uid 65534 mapped). */
export function otherUser(): Need {
  const r = isRoot ? spawnSync('true', { uid: 65534, gid: 65534 }) : undefined;
  const met = r !== undefined && r.error === undefined && r.status === 0;
  const why = !isRoot ? 'not root' : (r?.error?.message ?? `exit ${r?.status}`);
  return { kind: 'other-user', met, missing: `running a process as uid 65534 (nobody): ${why}` };
}

/** setfacl works on a file under `dir` (the tool is there and the file system takes ACLs). */
export function acls(dir: string): Need {
  const t = tool('setfacl', 'acl');
  if (!t.met) return { ...t, kind: 'acl' };
  const probe = mkdtempSync(join(dir, 'acl-probe-'));
  try {
    writeFileSync(join(probe, 'f'), '');
    const r = spawnSync('setfacl', ['-m', 'u:65534:r', join(probe, 'f')], { encoding: 'utf8' });
    return { kind: 'acl', met: r.status === 0, missing: `the file system of ${dir} does not take POSIX ACLs: ${(r.stderr ?? '').trim()}` };
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * A cpu controller root may write: a cgroup v2 mount offering `cpu` or a cgroup v1 `cpu`
 * hierarchy, mounted read-write. Read from /proc/self/mountinfo and the mount's own files, as an
 * administrator would check it, not through Wharf's cgroup code.
 */
export function cgroupCpu(): Need {
  if (!isRoot) return root('create cgroups');
  let mountinfo = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    // no /proc: not Linux as we know it
  }
  const seen: string[] = [];
  for (const line of mountinfo.split('\n')) {
    // <id> <parent> <dev> <root> <mount point> <mount options> <optional…> - <fs type> <source> <super options>
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fsType, , superOptions = ''] = right.split(' ');
    const mountPoint = (fields[4] ?? '').replace(/\\040/g, ' ');
    const writable = (fields[5] ?? '').split(',').includes('rw');
    if (fsType === 'cgroup2') {
      let controllers = '';
      try {
        controllers = readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8');
      } catch {
        // unreadable: not usable
      }
      const hasCpu = controllers.split(/\s+/).includes('cpu');
      seen.push(`cgroup2 at ${mountPoint} (${writable ? 'rw' : 'ro'}, controllers '${controllers.trim()}')`);
      if (hasCpu && writable) return { kind: 'cgroup-cpu', met: true, missing: '' };
    } else if (fsType === 'cgroup' && superOptions.split(',').includes('cpu')) {
      seen.push(`cgroup v1 cpu at ${mountPoint} (${writable ? 'rw' : 'ro'})`);
      if (writable) return { kind: 'cgroup-cpu', met: true, missing: '' };
    }
  }
  return {
    kind: 'cgroup-cpu',
    met: false,
    missing: `a writable cgroup with the cpu controller (found: ${seen.join('; ') || 'no cgroup mount'}); in a container, run it with a writable /sys/fs/cgroup`,
  };
}

/** The optional npm module Basic logons of Linux accounts go through (built against libpam0g-dev). */
export function pamModule(): Need {
  let missing = '';
  try {
    createRequire(import.meta.url)('authenticate-pam');
  } catch (err) {
    missing = `the authenticate-pam module (${(err as Error).message.split('\n')[0]}): apt-get install libpam0g-dev, then npm rebuild authenticate-pam; .ci/run installs it`;
  }
  return { kind: 'tool', met: missing === '', missing };
}

/** An executable file at `path` (tools outside PATH, such as /usr/sbin's daemons). */
function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** php-fpm (Debian names it php-fpm<version> in /usr/sbin): the path of the newest, or '' when none. */
export function phpFpmPath(): string {
  let names: string[] = [];
  try {
    names = readdirSync('/usr/sbin').filter((n) => /^php-fpm\d+\.\d+$/.test(n));
  } catch {
    // no /usr/sbin
  }
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const found = names.reverse().find((n) => executable(`/usr/sbin/${n}`));
  return found === undefined ? '' : `/usr/sbin/${found}`;
}

export function phpFpm(): Need {
  return { kind: 'tool', met: phpFpmPath() !== '', missing: 'php-fpm is not installed (/usr/sbin/php-fpm<version>; apt-get install php-fpm); .ci/run installs it' };
}
