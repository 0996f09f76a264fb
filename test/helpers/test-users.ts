/**
 * For tests that need real Linux users (pool identities, privilege drops): root checks, getent,
 * and useradd/userdel retried while another test file holds the passwd lock.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { needs, root } from './skip.js';

export const isRoot = process.getuid?.() === 0;

/** Whether a root-only test can run: skipped loudly elsewhere, a failure under CI=true (test/helpers/skip.ts). */
export function needsRoot(t: TestContext, why: string): boolean {
  return needs(t, root(why));
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
