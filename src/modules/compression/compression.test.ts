import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ContentTypeList } from './content-types.js';
import { CpuGate, CpuSampler, readCpuTimes } from './cpu-usage.js';
import { mapLevel } from './settings.js';
import { CompressedFiles, copyName } from './compressed-files.js';
import { codingEtag } from './static-compression.js';

const list = (...items: Array<[string, boolean]>): ContentTypeList => new ContentTypeList(items.map(([mimeType, enabled]) => ({ mimeType, enabled })));

test('type lists: exact entries before wildcards, wildcards in written order, first match decides', () => {
  // IIS Express's shipped dynamicTypes: text/event-stream (exact) is written last and still wins.
  const shipped = list(['text/*', true], ['message/*', true], ['application/javascript', true], ['*/*', false], ['text/event-stream', false]);
  assert.equal(shipped.allows('text/html; charset=utf-8'), true);
  assert.equal(shipped.allows('text/event-stream'), false);
  assert.equal(shipped.allows('TEXT/Event-Stream; charset=utf-8'), false);
  assert.equal(shipped.allows('image/png'), false);
  assert.equal(shipped.allows('application/javascript'), true);
  assert.equal(shipped.allows('application/json'), false, 'matched by */* (disabled)');
  // Among wildcards the written order decides.
  assert.equal(list(['*/*', false], ['text/*', true]).allows('text/plain'), false);
  // Later exact entries come before earlier ones; parameters do not count.
  assert.equal(list(['application/json', false], ['application/json; charset=utf-8', true]).allows('application/json'), true);
  assert.equal(list(['application/*+xml', true]).allows('application/atom+xml'), true);
  assert.equal(list(['application/*+xml', true]).allows('application/json'), false);
  assert.equal(list(['text/*', true]).allows('nonsense'), false);
  assert.equal(list().allows('text/plain'), false, 'no entry: not compressed');
});

test('CPU gate: off from the Disable percentage until usage falls below the Enable one', () => {
  let times = { busy: 0, total: 0 };
  const s = new CpuSampler(() => times);
  const gate = new CpuGate();
  const at = (pct: number): void => {
    times = { busy: times.busy + pct, total: times.total + 100 };
    s.sample();
  };
  s.sample();
  assert.equal(gate.check(s, 90, 50), false, 'no usage known yet');
  at(95);
  assert.equal(gate.check(s, 90, 50), true);
  at(70);
  assert.equal(gate.check(s, 90, 50), true, 'between the thresholds: still off');
  at(40);
  assert.equal(gate.check(s, 90, 50), false);
  at(80);
  assert.equal(gate.check(s, 90, 50), false, 'between the thresholds: still on');
  assert.equal(new CpuGate().check(s, 0, 0), true, 'Disable 0: never');
  assert.ok((readCpuTimes('cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1\n')?.busy ?? 0) === 20);
});

test('IIS levels map to zlib levels and brotli qualities per DLL', () => {
  assert.equal(mapLevel('gzip.dll', 'gzip', 0), 1);
  assert.equal(mapLevel('gzip.dll', 'gzip', 7), 7);
  assert.equal(mapLevel('gzip.dll', 'gzip', 10), 9);
  assert.equal(mapLevel('iiszlib.dll', 'gzip', 0), undefined, 'iiszlib level 0 is no compression');
  assert.equal(mapLevel('iiszlib.dll', 'deflate', 4), 4);
  assert.equal(mapLevel('iisbrotli.dll', 'br', 11), 11);
  assert.equal(mapLevel('iisbrotli.dll', 'br', 40), 11);
});

test('a copy is named after its source version; a new version replaces the old copy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-copies-'));
  try {
    const src = join(dir, 'site.css');
    writeFileSync(src, 'body { color: navy; }\n'.repeat(500));
    const st = statSync(src);
    const info = { path: src, isFile: true, isDirectory: false, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
    assert.equal(copyName('gzip', '/srv/www/site.css', info), `$^_gzip_^srv^www^site.css~${st.ino}-${st.size}-${Math.round(st.mtimeMs * 1000)}`);
    assert.match(copyName('gzip', '/x/' + 'a'.repeat(300), info), /^\$\^_gzip_#[0-9a-f]{40}~/);
    const store = new CompressedFiles(join(dir, 'copies', 'pool'), () => undefined);
    const req = { scheme: 'gzip', codec: 'gzip' as const, level: 6, sourcePath: src, info, compress: true, maxDiskBytes: undefined };
    const made = await store.obtain(req);
    assert.equal(made?.how, 'compressed');
    assert.equal(gunzipSync(made!.record.body!).toString(), 'body { color: navy; }\n'.repeat(500));
    assert.equal(store.known('gzip', src, info), made!.record);
    // A second store (another worker) finds the copy on disk.
    const other = new CompressedFiles(join(dir, 'copies', 'pool'), () => undefined);
    assert.equal((await other.obtain({ ...req, compress: false }))?.how, 'copy');
    writeFileSync(src, 'p { margin: 0; }\n'.repeat(400));
    const st2 = statSync(src);
    const info2 = { ...info, size: st2.size, mtimeMs: st2.mtimeMs, ino: st2.ino };
    assert.equal(store.known('gzip', src, info2), undefined, 'the old copy does not match the new version');
    await store.obtain({ ...req, info: info2 });
    const names = readdirSync(join(dir, 'copies', 'pool'));
    assert.equal(names.length, 1, names.join(' '));
    assert.ok(names[0]!.endsWith(`-${st2.size}-${Math.round(st2.mtimeMs * 1000)}`));
    // doDiskSpaceLimiting: a copy larger than the limit stays in memory only.
    const tiny = await new CompressedFiles(join(dir, 'copies', 'tiny'), () => undefined).obtain({ ...req, info: info2, maxDiskBytes: 10 });
    assert.equal(tiny?.record.path, undefined);
    assert.ok(tiny?.record.body);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unwritable folder: compressed in memory, reported once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-copies-'));
  try {
    const src = join(dir, 'a.txt');
    writeFileSync(src, 'x'.repeat(5000));
    writeFileSync(join(dir, 'file'), ''); // a file where the folder should be
    const st = statSync(src);
    const info = { path: src, isFile: true, isDirectory: false, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
    const logs: string[] = [];
    const store = new CompressedFiles(join(dir, 'file', 'pool'), (_l, m) => logs.push(m));
    const req = { scheme: 'gzip', codec: 'gzip' as const, level: 6, sourcePath: src, info, compress: true, maxDiskBytes: undefined };
    const got = await store.obtain(req);
    assert.equal(got?.record.path, undefined);
    assert.equal(gunzipSync(got!.record.body!).toString(), 'x'.repeat(5000));
    await store.obtain({ ...req, scheme: 'gzip2' });
    assert.equal(logs.length, 1, logs.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a coding\'s ETag is the file\'s with the coding appended inside the quotes', () => {
  assert.equal(codingEtag('"1d7a2f3c4b5e6f0:0"', 'gzip'), '"1d7a2f3c4b5e6f0:0-gzip"');
});
