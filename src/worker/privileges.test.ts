import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { WasError } from '../errors.js';
import { dropPrivileges, privilegeTargetFromEnv } from './privileges.js';
import { admin, getent, isRoot, needsRoot } from '../../test/helpers/test-users.js';

const WHY = 'a child process must start as root to drop to a created user';

const suffix = randomBytes(4).toString('hex');
const user = `wharf-test-${suffix}`;
const extraGroup = `wharf-testg-${suffix}`;
let created = false;

after(() => {
  if (!created) return;
  if (getent('passwd', user) !== undefined) admin('userdel', [user]);
  if (getent('group', extraGroup) !== undefined) admin('groupdel', [extraGroup]);
});

function createUser(): { uid: number; gid: number; extraGid: number } {
  if (!created) {
    created = true;
    admin('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user]);
    admin('groupadd', ['--system', extraGroup]);
    admin('usermod', ['--append', '--groups', extraGroup, user]);
  }
  const pw = getent('passwd', user)!;
  return { uid: Number(pw[2]), gid: Number(pw[3]), extraGid: Number(getent('group', extraGroup)![2]) };
}

interface ChildReport {
  readonly uid?: number;
  readonly euid?: number;
  readonly gid?: number;
  readonly egid?: number;
  readonly groups?: number[];
  readonly env?: { USER?: string; LOGNAME?: string; HOME?: string };
  readonly regain?: string;
  readonly code?: string;
  readonly message?: string;
}

/** A worker-like child: starts as root, has imported privileges.js, drops, reports who it is. */
function runChild(target: { uid: number; gid: number; user: string; home?: string }): ChildReport {
  const moduleUrl = new URL('./privileges.js', import.meta.url).href;
  const script = `
import { dropPrivileges } from ${JSON.stringify(moduleUrl)};
const target = JSON.parse(process.argv[1]);
try {
  dropPrivileges(target);
} catch (err) {
  process.stdout.write(JSON.stringify({ code: err.code, message: err.message }));
  process.exit(0);
}
let regain = 'none';
try { process.setuid(0); regain = 'became root'; } catch (err) { regain = err.code ?? err.message; }
process.stdout.write(JSON.stringify({
  uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), egid: process.getegid(),
  groups: process.getgroups(), regain,
  env: { USER: process.env.USER, LOGNAME: process.env.LOGNAME, HOME: process.env.HOME },
}));
`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(target)], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildReport;
}

test('a root child drops to the user: uid, gid and the user\'s groups, and cannot become root again', (t) => {
  if (!needsRoot(t, WHY)) return;
  const { uid, gid, extraGid } = createUser();
  const report = runChild({ uid, gid, user, home: '/nonexistent' });
  assert.equal(report.code, undefined, report.message);
  assert.equal(report.uid, uid);
  assert.equal(report.euid, uid);
  assert.equal(report.gid, gid);
  assert.equal(report.egid, gid);
  assert.deepEqual([...new Set(report.groups)].sort((a, b) => a - b), [gid, extraGid].sort((a, b) => a - b), 'the user\'s groups, none of root\'s');
  assert.equal(report.regain, 'EPERM');
  assert.deepEqual(report.env, { USER: user, LOGNAME: user, HOME: '/nonexistent' });
});

test('a user name that is unknown or not the uid\'s is a WAS_IDENTITY error (the worker must exit, not serve)', (t) => {
  if (!needsRoot(t, WHY)) return;
  const { uid, gid } = createUser();
  // initgroups alone would accept an unknown name and silently give no supplementary groups.
  const missing = runChild({ uid, gid, user: `wharf-test-missing-${suffix}` });
  assert.equal(missing.code, 'WAS_IDENTITY');
  assert.equal(missing.message, `the worker cannot switch to wharf-test-missing-${suffix} (uid ${uid}, gid ${gid}): there is no user named wharf-test-missing-${suffix}`);
  const mismatch = runChild({ uid: uid + 100_000, gid, user });
  assert.equal(mismatch.code, 'WAS_IDENTITY');
  assert.match(mismatch.message ?? '', new RegExp(`: the user ${user} has uid ${uid}$`));
});

test('no-op when the process already is the target (LocalSystem as root, or any non-root worker)', () => {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const groups = process.getgroups!();
  dropPrivileges({ uid, gid, user: 'whoever' });
  if (!isRoot) dropPrivileges({ uid: uid + 1, gid, user: 'someone-else' });
  assert.equal(process.getuid!(), uid);
  assert.equal(process.getgid!(), gid);
  assert.deepEqual(process.getgroups!(), groups);
});

test('the target comes from WHARF_WORKER_USER/UID/GID; a partial set is an error, none means no switch', () => {
  assert.equal(privilegeTargetFromEnv({ PATH: '/bin' }), undefined);
  assert.deepEqual(privilegeTargetFromEnv({ WHARF_WORKER_USER: 'wharf-a', WHARF_WORKER_UID: '990', WHARF_WORKER_GID: '991' }), {
    user: 'wharf-a',
    uid: 990,
    gid: 991,
  });
  assert.deepEqual(privilegeTargetFromEnv({ WHARF_WORKER_USER: 'wharf-a', WHARF_WORKER_UID: '990', WHARF_WORKER_GID: '991', HOME: '/nonexistent' }), {
    user: 'wharf-a',
    uid: 990,
    gid: 991,
    home: '/nonexistent',
  });
  for (const env of [{ WHARF_WORKER_USER: 'wharf-a' }, { WHARF_WORKER_USER: 'wharf-a', WHARF_WORKER_UID: '-1', WHARF_WORKER_GID: '1' }, { WHARF_WORKER_UID: '5', WHARF_WORKER_GID: '5' }]) {
    assert.throws(
      () => privilegeTargetFromEnv(env),
      (err: unknown) => err instanceof WasError && err.code === 'WAS_IDENTITY' && /identity is incomplete/.test(err.message),
    );
  }
});
