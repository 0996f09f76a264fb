import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileBody } from './file-body.js';

describe('openFileBody: the listener opens only the file the worker described', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-file-body-'));
  const path = join(dir, 'f.bin');
  writeFileSync(path, Buffer.alloc(50_000, 1));
  // This process plays the worker: the file open here is reached through /proc/<pid>/fd/<fd>.
  const fd = openSync(path, 'r');
  const st = fstatSync(fd);
  const described = { fd, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, offset: 0, length: st.size };

  it('opens a descriptor whose device, inode, size and mtime match', () => {
    const mine = openFileBody(process.pid, described);
    assert.equal(typeof mine, 'number');
    assert.notEqual(mine, fd);
    assert.equal(fstatSync(mine as number).ino, st.ino);
    closeSync(mine as number);
  });

  it('refuses a description that differs in any of them', () => {
    for (const wrong of [{ ino: st.ino + 1 }, { dev: st.dev + 1 }, { size: st.size - 1 }, { mtimeMs: st.mtimeMs + 1 }]) {
      assert.equal(openFileBody(process.pid, { ...described, ...wrong }), 'changed', JSON.stringify(wrong));
    }
  });

  it('refuses a descriptor that is not open, and one that is not a regular file', () => {
    assert.equal(openFileBody(process.pid, { ...described, fd: 987654 }), 'changed');
    const dirFd = openSync(dir, 'r');
    const ds = fstatSync(dirFd);
    assert.equal(openFileBody(process.pid, { ...described, fd: dirFd, dev: ds.dev, ino: ds.ino, size: ds.size, mtimeMs: ds.mtimeMs }), 'changed');
    closeSync(dirFd);
  });

  it('follows the open file, not its path: a file renamed over the path is not the one described', () => {
    const other = join(dir, 'g.bin');
    writeFileSync(other, Buffer.alloc(50_000, 2));
    const otherFd = openSync(other, 'r');
    // The worker's descriptor still names the first file, whatever the path now holds.
    rmSync(path);
    const mine = openFileBody(process.pid, described);
    assert.equal(typeof mine, 'number');
    closeSync(mine as number);
    const os = fstatSync(otherFd);
    assert.equal(openFileBody(process.pid, { ...described, fd: otherFd }), 'changed', 'another file under the described identity');
    const theirs = openFileBody(process.pid, { ...described, fd: otherFd, ino: os.ino, dev: os.dev, mtimeMs: os.mtimeMs });
    assert.equal(typeof theirs, 'number');
    closeSync(theirs as number);
    closeSync(otherFd);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
});
