import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasError } from '../errors.js';
import { privilegeTargetFromEnv } from '../worker/privileges.js';
import {
  accessProblem,
  ensureRuntimeDirectory,
  identityWarning,
  poolUserName,
  resolvePoolIdentity,
  runtimeDirectory,
  workerIdentityEnvironment,
  type PoolIdentity,
} from './identity.js';
import { admin, getent, isRoot, needsRoot } from '../../test/helpers/test-users.js';
import { acls, needs } from '../../test/helpers/skip.js';

const WHY = 'identity tests create Linux users with useradd';




/** Users and groups this file created, removed in after(). useradd/userdel retry while another test holds the lock. */
const createdUsers = new Set<string>();
const createdGroups = new Set<string>();


after(() => {
  for (const u of createdUsers) if (getent('passwd', u) !== undefined) admin('userdel', [u]);
  for (const g of createdGroups) if (getent('group', g) !== undefined) admin('groupdel', [g]);
});

/** A pool name unique to this run whose user name is plain: `test-<hex>` → `wharf-test-<hex>`. */
function testPool(): string {
  const name = `test-${randomBytes(4).toString('hex')}`;
  createdUsers.add(poolUserName(name));
  return name;
}

describe('poolUserName', () => {
  test('plain names: wharf- + the lower-cased pool name', () => {
    assert.equal(poolUserName('DefaultAppPool'), 'wharf-defaultapppool');
    assert.equal(poolUserName('shop_api-2'), 'wharf-shop_api-2');
    // Pool names compare ignoring case in IIS, so case alone never changes the user.
    assert.equal(poolUserName('SHOP'), poolUserName('shop'));
  });

  test('a replaced character or an overlong name gets a hash suffix, still at most 32 characters', () => {
    const spaced = poolUserName('My Pool');
    assert.match(spaced, /^wharf-my-pool-[0-9a-f]{8}$/);
    // 'my-pool' is a different pool from 'My Pool' and must not share its user.
    assert.equal(poolUserName('my-pool'), 'wharf-my-pool');
    assert.notEqual(poolUserName('my-pool'), spaced);
    assert.notEqual(poolUserName('My.Pool'), spaced);
    assert.equal(poolUserName('my pool'), spaced, 'same pool, different case → same user');

    const net = poolUserName('.NET v4.5 Classic');
    assert.match(net, /^wharf--net-v4-5-classic-[0-9a-f]{8}$/);
    assert.equal(net.length, 6 + 17 + 1 + 8);

    assert.equal(poolUserName('a'.repeat(26)), 'wharf-' + 'a'.repeat(26)); // exactly 32
    const long = poolUserName('a'.repeat(27));
    assert.match(long, /^wharf-a{17}-[0-9a-f]{8}$/);
    assert.notEqual(poolUserName('a'.repeat(28)), long);

    for (const name of ['x', 'Ünïcode Pool', 'a/b', '..', 'DefaultAppPool', 'z'.repeat(200), 'Clr4IntegratedAppPool']) {
      const user = poolUserName(name);
      assert.ok(user.length <= 32, `${user} is longer than 32`);
      assert.match(user, /^wharf-[a-z0-9_-]+$/);
    }
  });

  test('pools named like the service users do not share their users', () => {
    assert.match(poolUserName('LocalService'), /^wharf-localservice-[0-9a-f]{8}$/);
    assert.match(poolUserName('NetworkService'), /^wharf-networkservice-[0-9a-f]{8}$/);
  });
});

describe('without root', () => {
  test('resolvePoolIdentity returns undefined: workers run as the current user', async () => {
    const id = await resolvePoolIdentity({ name: 'DefaultAppPool', identityType: 'ApplicationPoolIdentity', userName: '' }, { asRoot: false });
    assert.equal(id, undefined);
  });

  test('identityWarning names the pools that lose their identity, and is silent as root or for LocalSystem only', () => {
    const pools = [
      { name: 'DefaultAppPool', identityType: 'ApplicationPoolIdentity' },
      { name: 'Admin', identityType: 'LocalSystem' },
      { name: 'Shop', identityType: 'SpecificUser' },
    ];
    const w = identityWarning(pools, { asRoot: false });
    assert.ok(w !== undefined);
    assert.match(w, /not as root/);
    assert.match(w, /\(DefaultAppPool, Shop\)/);
    assert.match(w, /Start Wharf as root/);
    assert.equal(identityWarning(pools, { asRoot: true }), undefined);
    assert.equal(identityWarning([{ name: 'Admin', identityType: 'LocalSystem' }], { asRoot: false }), undefined);
  });

  test('runtime directory without an identity: $XDG_RUNTIME_DIR, else the temp folder per uid', () => {
    const saved = process.env['XDG_RUNTIME_DIR'];
    try {
      process.env['XDG_RUNTIME_DIR'] = '/run/user/1000';
      assert.equal(runtimeDirectory(undefined, 'DefaultAppPool'), '/run/user/1000/wharf/pools/defaultapppool');
      delete process.env['XDG_RUNTIME_DIR'];
      assert.equal(runtimeDirectory(undefined, 'My Pool'), join(tmpdir(), `wharf-${process.getuid!()}`, 'pools', poolUserName('My Pool').slice(6)));
      assert.equal(runtimeDirectory(undefined, 'X', '/srv/rt'), '/srv/rt/x');
    } finally {
      if (saved === undefined) delete process.env['XDG_RUNTIME_DIR'];
      else process.env['XDG_RUNTIME_DIR'] = saved;
    }
  });

  test('runtime directory with an identity lives under /run/wharf/pools, one per pool even when pools share a user', () => {
    const shared: PoolIdentity = { user: 'wharf-localservice', uid: 990, gid: 990, home: '/nonexistent', identityType: 'LocalService', description: '' };
    assert.equal(runtimeDirectory(shared, 'A'), '/run/wharf/pools/a');
    assert.equal(runtimeDirectory(shared, 'B'), '/run/wharf/pools/b');
  });

  test('the worker environment carries who to become, in the names the worker reads', () => {
    const id: PoolIdentity = { user: 'wharf-x', uid: 991, gid: 992, home: '/nonexistent', identityType: 'ApplicationPoolIdentity', description: '' };
    const env = workerIdentityEnvironment(id);
    assert.deepEqual(privilegeTargetFromEnv(env), { user: 'wharf-x', uid: 991, gid: 992, home: '/nonexistent' });
    assert.equal(env['USER'], 'wharf-x');
    assert.deepEqual(workerIdentityEnvironment(undefined), {});
    assert.equal(privilegeTargetFromEnv({}), undefined);
  });
});

describe('as root: users', () => {
  test('ApplicationPoolIdentity creates a locked-down system user once, and concurrent callers share it', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const pool = testPool();
    const user = poolUserName(pool);
    assert.equal(getent('passwd', user), undefined);
    const source = { name: pool, identityType: 'ApplicationPoolIdentity', userName: '' };
    const [a, b] = await Promise.all([resolvePoolIdentity(source), resolvePoolIdentity(source)]);
    assert.ok(a !== undefined);
    assert.equal(a, b, 'one promise, one useradd');
    const pw = getent('passwd', user)!;
    assert.deepEqual(pw.slice(4), [`Wharf application pool ${pool}`, '/nonexistent', '/usr/sbin/nologin']);
    assert.equal(a.user, user);
    assert.equal(a.uid, Number(pw[2]));
    assert.ok(a.uid < 1000, `system uid expected, got ${a.uid}`);
    assert.equal(a.gid, Number(getent('group', user)![2]), 'its own group');
    assert.equal(a.home, '/nonexistent');
    assert.equal(a.description, `IIS AppPool\\${pool} → ${user} (uid ${a.uid})`);
    assert.equal(existsSync('/nonexistent'), false);
    assert.equal(await resolvePoolIdentity(source), a, 'cached');
  });

  test('an existing user is used as it is (how an administrator chooses the uid)', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const pool = testPool();
    const user = poolUserName(pool);
    admin('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/bin/false', '--comment', 'made by the admin', user]);
    const id = await resolvePoolIdentity({ name: pool, identityType: 'ApplicationPoolIdentity', userName: '' });
    const pw = getent('passwd', user)!;
    assert.equal(id?.uid, Number(pw[2]));
    assert.equal(pw[4], 'made by the admin');
    assert.equal(pw[6], '/bin/false');
  });

  test('create: false reports a missing user with the useradd command to run, and creates nothing', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const pool = testPool();
    const user = poolUserName(pool);
    await assert.rejects(resolvePoolIdentity({ name: pool, identityType: 'ApplicationPoolIdentity', userName: '' }, { create: false }), (err: unknown) => {
      assert.ok(err instanceof WasError);
      assert.equal(err.code, 'WAS_IDENTITY');
      assert.match(err.message, new RegExp(`create it with: useradd --system --user-group .*--no-log-init .*${user}$`));
      return true;
    });
    assert.equal(getent('passwd', user), undefined);
  });

  test('SpecificUser: DOMAIN\\ and @domain are stripped; a missing user is an error and is never created', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const user = `wharf-test-${randomBytes(4).toString('hex')}`;
    createdUsers.add(user);
    admin('useradd', ['--system', '--user-group', '--no-create-home', user]);
    const uid = Number(getent('passwd', user)![2]);
    const viaDomain = await resolvePoolIdentity({ name: 'P1', identityType: 'SpecificUser', userName: `CONTOSO\\${user}` });
    assert.equal(viaDomain?.uid, uid);
    assert.equal(viaDomain?.description, `CONTOSO\\${user} → ${user} (uid ${uid})`);
    const viaUpn = await resolvePoolIdentity({ name: 'P2', identityType: 'SpecificUser', userName: `${user}@contoso.com` });
    assert.equal(viaUpn?.uid, uid);

    const missing = `wharf-test-${randomBytes(4).toString('hex')}`;
    createdUsers.add(missing);
    await assert.rejects(resolvePoolIdentity({ name: 'P3', identityType: 'SpecificUser', userName: `CONTOSO\\${missing}` }), (err: unknown) => {
      assert.ok(err instanceof WasError && err.code === 'WAS_IDENTITY');
      assert.match(err.message, new RegExp(`names the Linux user '${missing}', which does not exist`));
      return true;
    });
    assert.equal(getent('passwd', missing), undefined, 'SpecificUser never creates users');
    await assert.rejects(resolvePoolIdentity({ name: 'P4', identityType: 'SpecificUser', userName: '' }), /needs processModel userName/);
    await assert.rejects(resolvePoolIdentity({ name: 'P5', identityType: 'SpecificUser', userName: '-rf' }), /does not give a valid Linux user name/);
  });

  test('LocalService and NetworkService get their own shared users; LocalSystem is the user Wharf runs as', async (t) => {
    if (!needsRoot(t, WHY)) return;
    for (const u of ['wharf-localservice', 'wharf-networkservice']) if (getent('passwd', u) === undefined) createdUsers.add(u);
    const ls1 = await resolvePoolIdentity({ name: 'A', identityType: 'LocalService', userName: 'ignored' });
    const ls2 = await resolvePoolIdentity({ name: 'B', identityType: 'LocalService', userName: '' });
    const ns = await resolvePoolIdentity({ name: 'C', identityType: 'NetworkService', userName: '' });
    assert.equal(ls1?.user, 'wharf-localservice');
    assert.equal(ls1, ls2, 'one user for every LocalService pool');
    assert.equal(ns?.user, 'wharf-networkservice');
    assert.notEqual(ns?.uid, ls1?.uid);
    assert.equal(getent('passwd', 'wharf-localservice')![4], 'Wharf LocalService identity');
    assert.equal(ls1?.description, `LocalService → wharf-localservice (uid ${ls1?.uid})`);

    const system = await resolvePoolIdentity({ name: 'D', identityType: 'LocalSystem', userName: '' });
    assert.equal(system?.uid, 0);
    assert.equal(system?.user, 'root');
    assert.match(system!.description, /^LocalSystem → root \(uid 0, the user Wharf runs as\)$/);
  });

  test('an unknown identityType is reported, not ignored', async (t) => {
    if (!needsRoot(t, WHY)) return;
    await assert.rejects(resolvePoolIdentity({ name: 'E', identityType: 'Guest', userName: '' }), (err: unknown) => {
      assert.ok(err instanceof WasError && err.code === 'WAS_IDENTITY');
      assert.match(err.message, /identityType 'Guest' is not one of/);
      return true;
    });
  });
});

describe('as root: runtime directory and access', () => {
  let identity: PoolIdentity;
  let other: PoolIdentity;
  let pool: string;
  let tmp: string;

  before(async () => {
    if (!isRoot) return;
    pool = testPool();
    identity = (await resolvePoolIdentity({ name: pool, identityType: 'ApplicationPoolIdentity', userName: '' }))!;
    const second = testPool();
    other = (await resolvePoolIdentity({ name: second, identityType: 'ApplicationPoolIdentity', userName: '' }))!;
    tmp = mkdtempSync(join(tmpdir(), 'wharf-identity-'));
    chmodSync(tmp, 0o755);
  });
  after(() => {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  });

  test('the runtime directory is 0700, owned by the pool user, re-owned and emptied when found with another owner', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const base = join(tmp, 'run', 'pools');
    const dir = await ensureRuntimeDirectory(identity, pool, base);
    assert.equal(dir, join(base, pool));
    let st = statSync(dir);
    assert.equal(st.mode & 0o7777, 0o700);
    assert.equal(st.uid, identity.uid);
    assert.equal(st.gid, identity.gid);
    assert.equal(statSync(base).mode & 0o7777, 0o711, 'the pool user can reach its folder, not list the others');
    assert.equal(statSync(base).uid, 0);
    assert.equal(accessProblem(dir, identity), undefined);
    assert.match(accessProblem(dir, other) ?? '', /is not searchable by/);

    // Same owner: content survives (overlapped workers share it).
    writeFileSync(join(dir, 'keep'), 'x');
    chmodSync(dir, 0o755);
    await ensureRuntimeDirectory(identity, pool, base);
    assert.equal(existsSync(join(dir, 'keep')), true);
    assert.equal(statSync(dir).mode & 0o7777, 0o700);

    // Another owner (the pool's identity changed): emptied, then handed over.
    chownSync(dir, other.uid, other.gid);
    mkdirSync(join(dir, 'old-session'));
    writeFileSync(join(dir, 'old-session', 'secret'), 'y');
    await ensureRuntimeDirectory(identity, pool, base);
    st = statSync(dir);
    assert.equal(st.uid, identity.uid);
    assert.equal(existsSync(join(dir, 'old-session')), false);
    assert.equal(existsSync(join(dir, 'keep')), false);
  });

  test('accessProblem: mode bits, owner, primary and supplementary groups along the whole path', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const site = join(tmp, 'site');
    const file = join(site, 'index.html');
    mkdirSync(site);
    writeFileSync(file, '<p>hi</p>');
    chmodSync(site, 0o755);
    chmodSync(file, 0o644);
    assert.equal(accessProblem(file, identity), undefined);
    assert.equal(accessProblem(site, identity), undefined);

    chmodSync(site, 0o700);
    assert.equal(
      accessProblem(file, identity),
      `${site} is not searchable by ${identity.user} (uid ${identity.uid}): mode 0700 owner root group root`,
    );

    chmodSync(site, 0o711);
    assert.equal(accessProblem(file, identity), undefined, 'traversal is enough to reach the file');
    assert.match(accessProblem(site, identity) ?? '', /is not readable by .*: mode 0711 owner root group root$/);

    chmodSync(site, 0o755);
    chmodSync(file, 0o600);
    assert.match(accessProblem(file, identity) ?? '', new RegExp(`^${file} is not readable by ${identity.user} \\(uid ${identity.uid}\\): mode 0600`));

    // Owner class wins even when "other" would allow: the kernel does not fall through.
    chownSync(file, identity.uid, 0);
    chmodSync(file, 0o044);
    assert.match(accessProblem(file, identity) ?? '', /is not readable by .*mode 0044 owner wharf-test-/);

    // The pool's own group.
    chownSync(file, 0, identity.gid);
    chmodSync(file, 0o640);
    assert.equal(accessProblem(file, identity), undefined);
    assert.match(accessProblem(file, other) ?? '', /is not readable by/);

    // A supplementary group (as initgroups gives the worker).
    const group = `wharf-test-${randomBytes(4).toString('hex')}`;
    createdGroups.add(group);
    admin('groupadd', ['--system', group]);
    admin('usermod', ['--append', '--groups', group, other.user]);
    chownSync(file, 0, Number(getent('group', group)![2]));
    assert.equal(accessProblem(file, other), undefined);
    assert.match(accessProblem(file, identity) ?? '', new RegExp(`mode 0640 owner root group ${group}$`));

    assert.equal(accessProblem(join(site, 'missing.html'), identity), `${join(site, 'missing.html')} does not exist`);
    assert.equal(accessProblem(join(file, 'x'), identity), `${file} is not a directory`);
  });

  test('accessProblem follows symbolic links: the target\'s directories must be searchable too', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const hidden = join(tmp, 'hidden');
    mkdirSync(join(hidden, 'www'), { recursive: true });
    writeFileSync(join(hidden, 'www', 'a.txt'), 'a');
    chmodSync(hidden, 0o700);
    const link = join(tmp, 'www-link');
    execFileSync('ln', ['-s', join(hidden, 'www'), link]);
    assert.match(accessProblem(join(link, 'a.txt'), identity) ?? '', new RegExp(`^${hidden} is not searchable by`));
    chmodSync(hidden, 0o755);
    assert.equal(accessProblem(join(link, 'a.txt'), identity), undefined);
  });

  test('accessProblem honours a POSIX ACL that grants what the mode bits do not', async (t) => {
    if (!needsRoot(t, WHY) || !needs(t, acls(tmp))) return;
    const dir = join(tmp, 'acl');
    mkdirSync(dir);
    chmodSync(dir, 0o700);
    assert.match(accessProblem(dir, identity) ?? '', /is not searchable/);
    const r = spawnSync('setfacl', ['-m', `u:${identity.user}:rx`, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(accessProblem(dir, identity), undefined);
  });

  test('root (LocalSystem) only needs the path to exist', async (t) => {
    if (!needsRoot(t, WHY)) return;
    const root = (await resolvePoolIdentity({ name: 'Sys', identityType: 'LocalSystem', userName: '' }))!;
    const dir = join(tmp, 'private');
    mkdirSync(dir, { mode: 0o700 });
    assert.equal(accessProblem(dir, root), undefined);
    assert.equal(accessProblem(join(dir, 'nope'), root), `${join(dir, 'nope')} does not exist`);
  });
});
