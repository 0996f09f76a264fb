import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acls, needs } from '../../../test/helpers/skip.js';
import type { Identity } from '../../ipc/credential-messages.js';
import { FileRights, parseGetfacl, permitted } from './index.js';

const owner = { mode: 0o640, uid: 100, gid: 200 };

test('mode bits: owner, group (primary or supplementary), other; root reads everything', () => {
  assert.equal(permitted(owner, undefined, { uid: 100, gids: [1] }, 4), true);
  assert.equal(permitted({ ...owner, mode: 0o040 }, undefined, { uid: 100, gids: [200] }, 4), false, 'the owner class decides for the owner');
  assert.equal(permitted(owner, undefined, { uid: 101, gids: [5, 200] }, 4), true);
  assert.equal(permitted(owner, undefined, { uid: 101, gids: [5] }, 4), false);
  assert.equal(permitted({ ...owner, mode: 0o604 }, undefined, { uid: 101, gids: [200] }, 4), false, 'a matching group without r does not fall through to other');
  assert.equal(permitted(owner, undefined, { uid: 0, gids: [0] }, 4), true);
  assert.equal(permitted({ ...owner, mode: 0o751 }, undefined, { uid: 9, gids: [9] }, 1), true);
});

test('ACL entries: named users and groups under the mask', () => {
  const acl = parseGetfacl('user::rw-\nuser:300:r--\nuser:301:---\ngroup::r--\ngroup:400:r--\t#effective:---\nmask::---\nother::r--\n')!;
  assert.equal(permitted(owner, acl, { uid: 301, gids: [9] }, 4), false, 'a named entry denies though other may read');
  assert.equal(permitted(owner, acl, { uid: 300, gids: [9] }, 4), false, 'the mask takes r away');
  const open = acl.map((e) => (e.tag === 'mask' ? { ...e, perm: 7 } : e));
  assert.equal(permitted(owner, open, { uid: 300, gids: [9] }, 4), true);
  assert.equal(permitted(owner, open, { uid: 302, gids: [400] }, 4), true);
  assert.equal(permitted(owner, open, { uid: 302, gids: [9] }, 4), true, 'other');
  assert.equal(parseGetfacl('user::rw-\nbogus\n'), undefined);
  assert.deepEqual(parseGetfacl('user::rw-\ngroup::r--\nother::---\ndefault:user::rwx\n')?.length, 3);
});

test('FileRights reads a real ACL with getfacl and sees a setfacl change (ctime) at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-rights-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (!needs(t, acls(dir))) return;
  const file = join(dir, 'f.txt');
  writeFileSync(file, 'x');
  chmodSync(file, 0o644);
  if (process.getuid?.() === 0) chownSync(file, 0, 0);
  const fileUid = process.getuid?.() === 0 ? 0 : process.getuid!();
  const who: Identity = { name: 'u', provider: 'system', uid: 65534, gid: 65534, groups: [] };
  let now = 0;
  const rights = new FileRights({ now: () => now });
  assert.deepEqual(await rights.check(who, file), { allowed: true });
  assert.deepEqual(rights.check(who, file), { allowed: true }, 'answered from the cache, without a promise');
  execFileSync('setfacl', ['-m', 'u:65534:---', file]);
  now += 1000;
  const v = await rights.check(who, file);
  assert.equal(v?.allowed, false);
  assert.equal((await rights.check({ ...who, uid: fileUid === 0 ? 12345 : 65533 }, file))?.allowed, true, 'other users still read it');
  assert.equal(await rights.check(who, join(dir, 'missing')), undefined);
});
