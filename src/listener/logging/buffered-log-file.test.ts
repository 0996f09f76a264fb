import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BufferedLogFile, type LogFileNaming } from './buffered-log-file.js';
import type { ListenerError } from '../../errors.js';
import { rmSync } from 'node:fs';

/** Temp folders this file made, removed when it is done. */
const tempDirs: string[] = [];
const tracked = (dir: string): string => (tempDirs.push(dir), dir);
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
const daily: LogFileNaming = {
  kind: 'time',
  period(time) {
    const start = Math.floor(time / DAY) * DAY;
    return { name: `day${start / DAY}.log`, start, end: start + DAY };
  },
};

function line(i: number): string {
  return `record-${String(i).padStart(4, '0')}`.padEnd(48, '.') + '\r\n'; // 50 bytes
}

test('while writes fail, memory stays under the cap by dropping the oldest records', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-blf-')));
  const blocker = join(dir, 'blocker');
  await writeFile(blocker, '');
  const errors: ListenerError[] = [];
  const file = new BufferedLogFile({
    directory: blocker,
    naming: daily,
    header: () => '#H\r\n',
    description: 'test log',
    flushThresholdBytes: 500,
    maxBufferedBytes: 1000,
    flushIntervalMs: 3_600_000,
    onError: (err) => errors.push(err),
  });
  await file.flush();
  file.append(0, line(0));
  await file.flush(); // fails: the writer is now in its failing state
  for (let i = 1; i < 100; i++) {
    file.append(0, line(i));
    assert.ok(file.bufferedBytes <= 1000);
  }
  assert.ok(file.droppedRecords > 0);
  assert.equal(errors.length, 1);

  await rm(blocker);
  await file.flush();
  const text = await readFile(join(blocker, 'day0.log'), 'utf8');
  const written = text.split('\r\n').filter((l) => l.startsWith('record-'));
  assert.equal(written.length + file.droppedRecords, 100, 'every record is either written or counted');
  assert.equal(written[written.length - 1], line(99).slice(0, -2), 'the newest records survive');
  assert.ok(!text.includes('record-0000'), 'the oldest records went first');
  await file.close();
});

test('concurrent flushes each wait for their own records, in order', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-blf-')));
  const file = new BufferedLogFile({
    directory: dir,
    naming: daily,
    header: () => '#H\r\n',
    description: 'test log',
    flushIntervalMs: 3_600_000,
  });
  const flushes: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    file.append(0, line(i));
    flushes.push(
      file.flush().then(async () => {
        const text = await readFile(join(dir, 'day0.log'), 'utf8');
        assert.ok(text.includes(line(i)), `record ${i} is on disk when its flush resolves`);
      }),
    );
  }
  await Promise.all(flushes);
  await file.close();
  let expected = '#H\r\n';
  for (let i = 0; i < 20; i++) expected += line(i);
  assert.equal(await readFile(join(dir, 'day0.log'), 'utf8'), expected);
});

test('a throwing onError does not break the writer', async () => {
  const dir = tracked(await mkdtemp(join(tmpdir(), 'wharf-blf-')));
  const blocker = join(dir, 'blocker');
  await writeFile(blocker, '');
  const file = new BufferedLogFile({
    directory: blocker,
    naming: daily,
    header: () => '#H\r\n',
    description: 'test log',
    onError: () => {
      throw new Error('handler bug');
    },
  });
  file.append(0, line(1));
  await file.flush();
  await rm(blocker);
  await file.close();
  assert.equal(await readFile(join(blocker, 'day0.log'), 'utf8'), '#H\r\n' + line(1));
});
