import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferedLogFile } from './buffered-log-file.js';
import { LOG_GROUP, prepareLogFolder, resolveLogAccess, type LogAccess } from './log-access.js';
import { WharfError } from '../../errors.js';
import { getent, needsRoot } from '../../../test/helpers/test-users.js';

const root = mkdtempSync(join(tmpdir(), 'wharf-log-access-'));
after(() => rmSync(root, { recursive: true, force: true }));

const mode = (p: string): string => (statSync(p).mode & 0o7777).toString(8);

async function writeOne(dir: string, access?: LogAccess): Promise<string> {
  const log = new BufferedLogFile({
    directory: dir,
    naming: { kind: 'time', period: () => ({ name: 'u_ex240501.log', start: 0, end: Number.MAX_SAFE_INTEGER }) },
    header: () => '#Fields: date\r\n',
    description: 'test log',
    access,
  });
  log.append(Date.now(), 'line\r\n');
  await log.close();
  return join(dir, 'u_ex240501.log');
}

test('files are 0640 and their folder 0750 whatever the umask; folders above keep the usual modes', async () => {
  const old = process.umask(0o077);
  try {
    const file = await writeOne(join(root, 'umask', 'inetpub', 'W3SVC1'));
    assert.equal(mode(file), '640');
    assert.equal(mode(join(root, 'umask', 'inetpub', 'W3SVC1')), '750');
  } finally {
    process.umask(old);
  }
  const file = await writeOne(join(root, 'plain', 'logs', 'W3SVC2'));
  assert.equal(mode(file), '640');
  assert.equal(mode(join(root, 'plain', 'logs')), (0o777 & ~process.umask()).toString(8), 'a parent Wharf creates may hold content too');
});

test('a folder and a file left world-readable by an older Wharf are corrected when the log opens them', async () => {
  const dir = join(root, 'old', 'W3SVC1');
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'u_ex240501.log'), '#Fields: date\r\nold\r\n', { mode: 0o644 });
  chmodSync(join(dir, 'u_ex240501.log'), 0o644);
  const file = await writeOne(dir);
  assert.equal(mode(dir), '750');
  assert.equal(mode(file), '640');
});

test('--log-owner user:group gives files and their folder to that user and group (root)', async (t) => {
  if (!needsRoot(t, 'chown to another user')) return;
  const access = await resolveLogAccess('nobody:nogroup', true);
  const nobody = Number(getent('passwd', 'nobody')![2]);
  const nogroup = Number(getent('group', 'nogroup')![2]);
  assert.equal(access.uid, nobody);
  assert.equal(access.gid, nogroup);
  const dir = join(root, 'owned', 'HTTPERR');
  const file = await writeOne(dir, access);
  for (const p of [dir, file]) {
    assert.equal(statSync(p).uid, nobody, p);
    assert.equal(statSync(p).gid, nogroup, p);
  }
  // `:group` keeps root as the owner.
  const groupOnly = await resolveLogAccess(':nogroup', true);
  assert.deepEqual([groupOnly.uid, groupOnly.gid], [0, nogroup]);
});

test('as root without --log-owner: root and the wharf-logs group, created when missing', async (t) => {
  if (!needsRoot(t, 'groupadd')) return;
  const existed = getent('group', LOG_GROUP) !== undefined;
  const access = await resolveLogAccess(undefined, true);
  const gid = Number(getent('group', LOG_GROUP)![2]);
  assert.deepEqual([access.uid, access.gid], [0, gid]);
  await prepareLogFolder(join(root, 'default', 'W3SVC9'), access);
  assert.equal(statSync(join(root, 'default', 'W3SVC9')).gid, gid);
  // Servers of other test files use the group while they run: only a group this test made goes,
  // and only when no Wharf is running (the test harness's cleanup decides that for them).
  if (!existed && !spawnSync('pgrep', ['-f', 'bin/wharf.js']).stdout?.length) spawnSync('groupdel', [LOG_GROUP]);
});

test('an owner that does not exist, or one a non-root Wharf cannot give files to, is LSN_LOG_OWNER', async () => {
  await assert.rejects(resolveLogAccess('no-such-user-for-logs', true), (e: WharfError) => e.code === 'LSN_LOG_OWNER' && /no user named no-such-user-for-logs/.test(e.message));
  await assert.rejects(resolveLogAccess('nobody:no-such-group-for-logs', true), (e: WharfError) => e.code === 'LSN_LOG_OWNER' && /no group named/.test(e.message));
  if (process.getuid?.() === 0) {
    // Pretending not to be root: chown(2) would refuse to give files to nobody.
    await assert.rejects(resolveLogAccess('nobody', false), (e: WharfError) => e.code === 'LSN_LOG_OWNER' && /only root/.test(e.message));
  }
  assert.deepEqual(readdirSync(root).includes('never'), false);
});

test('a mode or owner the file system refuses to change does not stop logging: written anyway, said once', async (t) => {
  if (!needsRoot(t, 'runs a child as nobody')) return;
  // nobody cannot chmod root's folder or file: exactly what NFS root_squash or a foreign file gives.
  const dir = join(root, 'refused');
  mkdirSync(dir, { mode: 0o777 });
  chmodSync(dir, 0o777);
  writeFileSync(join(dir, 'u_ex240501.log'), '', { mode: 0o666 });
  chmodSync(join(dir, 'u_ex240501.log'), 0o666);
  chmodSync(root, 0o755);
  const script = `
    const { BufferedLogFile } = await import(${JSON.stringify(new URL('./buffered-log-file.js', import.meta.url).href)});
    const { setLogAccess, logAccess } = await import(${JSON.stringify(new URL('./log-access.js', import.meta.url).href)});
    const warnings = [];
    setLogAccess(logAccess(), (m) => warnings.push(m));
    const errors = [];
    const log = new BufferedLogFile({ directory: ${JSON.stringify(dir)}, description: 'test log', header: () => '',
      naming: { kind: 'time', period: () => ({ name: 'u_ex240501.log', start: 0, end: Number.MAX_SAFE_INTEGER }) },
      onError: (e) => errors.push(e.message) });
    log.append(Date.now(), 'one\\r\\n');
    await log.flush();
    log.append(Date.now(), 'two\\r\\n');
    await log.close();
    process.stdout.write(JSON.stringify({ warnings, errors }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', uid: Number(getent('passwd', 'nobody')![2]), gid: Number(getent('group', 'nogroup')![2]) });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { warnings: string[]; errors: string[] };
  assert.deepEqual(out.errors, []);
  assert.equal(out.warnings.length, 2, out.warnings.join('\n'));
  assert.match(out.warnings[0]!, /cannot set mode 750 on .*refused \(EPERM\); the log is written regardless/);
  assert.match(out.warnings[1]!, /cannot set mode 640 on .*u_ex240501\.log \(EPERM\)/);
  assert.equal(readFileSync(join(dir, 'u_ex240501.log'), 'utf8'), 'one\r\ntwo\r\n');
});
