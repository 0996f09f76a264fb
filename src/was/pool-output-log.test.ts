import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_FILE_BYTES, MAX_FILES, MEMORY_LINES, PoolOutputLogs } from './pool-output-log.js';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

test('lines land in the pool\'s file of the UTC day and in memory for wharf logs', async () => {
  const root = tracked(mkdtempSync(join(tmpdir(), 'wharf-out-')));
  const reports: string[] = [];
  const logs = new PoolOutputLogs(root, (m) => reports.push(m), () => new Date('2026-12-04T10:00:00.000Z'));
  logs.write('My Pool', 42, 'stdout', 'listening on 3000');
  logs.write('my pool', 42, 'stderr', 'a warning');
  await logs.flushed();
  const file = join(root, 'My Pool', 'output_20261204.log');
  assert.equal(logs.fileOf('MY POOL'), file);
  assert.equal(readFileSync(file, 'utf8'), '2026-12-04T10:00:00.000Z pid 42 stdout: listening on 3000\n2026-12-04T10:00:00.000Z pid 42 stderr: a warning\n');
  assert.deepEqual(logs.tail('My Pool', 1), ['2026-12-04T10:00:00.000Z pid 42 stderr: a warning']);
  assert.deepEqual(reports, []);
});

test('a full file rolls over to _1, a new day to a new file, and only MAX_FILES stay', async () => {
  const root = tracked(mkdtempSync(join(tmpdir(), 'wharf-out-')));
  let now = new Date('2026-12-04T10:00:00.000Z');
  const dir = join(root, 'P');
  mkdirSync(dir);
  for (let d = 1; d <= MAX_FILES + 3; d++) writeFileSync(join(dir, `output_202611${String(d).padStart(2, '0')}.log`), 'old\n');
  writeFileSync(join(dir, 'output_20261204.log'), 'x'.repeat(MAX_FILE_BYTES - 10));
  const logs = new PoolOutputLogs(root, () => undefined, () => now);
  logs.write('P', 1, 'stdout', 'this line does not fit any more');
  await logs.flushed();
  assert.equal(logs.fileOf('P'), join(dir, 'output_20261204_1.log'));
  now = new Date('2026-12-05T00:00:01.000Z');
  logs.write('P', 1, 'stdout', 'next day');
  await logs.flushed();
  assert.equal(logs.fileOf('P'), join(dir, 'output_20261205.log'));
  const names = readdirSync(dir).sort();
  assert.equal(names.length, MAX_FILES);
  assert.ok(!names.includes('output_20261101.log'), 'the oldest went');
  assert.ok(names.includes('output_20261205.log') && names.includes('output_20261204_1.log'));
});

test('an unwritable folder is reported once; lines stay in memory and are written once it works', async () => {
  // A regular file where the folder should be: no user, root included, can create the folder.
  const tmp = tracked(mkdtempSync(join(tmpdir(), 'wharf-out-')));
  const blocker = join(tmp, 'logs');
  writeFileSync(blocker, 'not a folder');
  const reports: string[] = [];
  const logs = new PoolOutputLogs(join(blocker, 'AppPools'), (m) => reports.push(m));
  logs.write('P', 1, 'stdout', 'first');
  await logs.flushed();
  assert.equal(reports.length, 1);
  assert.match(reports[0]!, /cannot write/);
  assert.deepEqual(logs.tail('P', 5).map((l) => l.slice(-5)), ['first']);
  rmSync(blocker);
  logs.write('P', 1, 'stdout', 'second');
  await logs.flushed();
  assert.match(readFileSync(logs.fileOf('P'), 'utf8'), /first\n.*second\n$/s);
  assert.match(reports[1]!, /works again/);
});

test('memory keeps the last MEMORY_LINES lines', async () => {
  const root = tracked(mkdtempSync(join(tmpdir(), 'wharf-out-')));
  const logs = new PoolOutputLogs(root, () => undefined);
  for (let i = 0; i < MEMORY_LINES + 5; i++) logs.write('P', 1, 'stdout', `line ${i}`);
  await logs.flushed();
  const tail = logs.tail('P', MEMORY_LINES * 2);
  assert.equal(tail.length, MEMORY_LINES);
  assert.match(tail[0]!, /line 5$/);
});
