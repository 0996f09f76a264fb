/**
 * For tests that need real Linux users (pool identities, privilege drops): root checks, getent,
 * and useradd/userdel retried while another test file holds the passwd lock.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

export const isRoot = process.getuid?.() === 0;

/**
 * Whether a root-only test can run. Elsewhere it is skipped loudly; under CI=true (which runs as
 * root) a skip would hide a regression, so it fails instead.
 */
export function needsRoot(t: TestContext, why: string): boolean {
  if (isRoot) return true;
  if (process.env['CI'] === 'true') assert.fail(`CI=true but the tests do not run as root: ${why}`);
  t.skip(`needs root: ${why} (run the tests as root, as CI does)`);
  return false;
}

export function getent(db: 'passwd' | 'group', name: string): string[] | undefined {
  const r = spawnSync('getent', [db, name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split(':') : undefined;
}

/** useradd, userdel, groupadd … retried while another process holds the passwd lock. */
export function admin(cmd: string, args: string[]): void {
  for (let attempt = 1; ; attempt++) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status === 0) return;
    if (attempt < 20 && /lock/i.test(r.stderr)) {
      execFileSync('sleep', ['0.1']);
      continue;
    }
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  }
}
