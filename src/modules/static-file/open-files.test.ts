import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OpenFiles } from './open-files.js';

describe('OpenFiles: descriptors kept for responses that name them', () => {
  it('gives the kept file back for the same version, closes it when the file changed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-open-files-'));
    try {
      const path = join(dir, 'a.bin');
      writeFileSync(path, Buffer.alloc(40_000, 1));
      const table = new OpenFiles();
      const handle = await open(path, 'r');
      const st = await handle.stat();
      const kept = table.adopt(path, handle, st);
      const info = { path, isFile: true, isDirectory: false, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
      assert.equal(table.get(path, info), kept);
      assert.equal(table.get(path, { ...info, mtimeMs: st.mtimeMs + 1000 }), undefined);
      assert.equal(table.size, 0);
      // Closed by the table (closing is asynchronous: wait for it).
      await new Promise((r) => setTimeout(r, 50));
      await assert.rejects(handle.stat(), { code: 'EBADF' });
      table.clear();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('past 128 files, one used in the last 30 s is still kept (below 1024)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wharf-open-files-'));
    const table = new OpenFiles();
    try {
      for (let i = 0; i < 200; i++) {
        const path = join(dir, `f${i}`);
        writeFileSync(path, 'x');
        const h = await open(path, 'r');
        table.adopt(path, h, await h.stat());
      }
      // All used just now: none is closed early (a response may still be reading it).
      assert.equal(table.size, 200);
    } finally {
      table.clear();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
