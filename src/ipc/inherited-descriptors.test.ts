import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MODULE = new URL('./inherited-descriptors.js', import.meta.url).href;

test('descriptors inherited without close-on-exec are closed; close-on-exec ones, stdio, kept ones and the IPC channel stay', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-fds-'));
  try {
    const file = join(dir, 'left-open');
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    // fds 3 and 4 are within node's close-on-exec range (0-15); 30, 31 and 32 are above a gap.
    const script = `
      const fs = require('node:fs');
      import(${JSON.stringify(MODULE)}).then(({ closeInheritedDescriptors }) => {
        const closed = closeInheritedDescriptors([31]);
        const open = fs.readdirSync('/proc/self/fd').map(Number);
        process.send({ closed, open, channel: process.channel.fd });
      });`;
    const stdio = ['ignore', 'ignore', 'inherit', 'pipe', fd, ...Array(25).fill('ignore'), fd, fd, 'ipc'] as const;
    const child = spawn(process.execPath, ['-e', script], { stdio: [...stdio] });
    closeSync(fd);
    const msg = await new Promise<{ closed: Array<{ fd: number; target: string }>; open: number[]; channel: number }>((resolve) => child.once('message', resolve as never));
    child.kill();
    // (The test's own launcher may have left one more open: a job runner's fd 251, say.)
    assert.deepEqual(msg.closed.find((c) => c.fd === 30), { fd: 30, target: file });
    assert.deepEqual(msg.closed.filter((c) => c.fd <= 32 && c.fd !== 30), []);
    for (const kept of [0, 1, 2, 3, 4, 31, 32]) assert.ok(msg.open.includes(kept), `fd ${kept} is open`);
    assert.equal(msg.channel, 32, 'the IPC channel (an fd above the gap, not close-on-exec) is kept');
    assert.ok(!msg.open.includes(30));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
