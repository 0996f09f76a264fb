// Static files the listener sends from the file the worker named (HTTP.sys's TransmitFile): the
// worker decides everything, the listener moves the bytes. What a client sees must be exactly what
// it saw when the bytes crossed the worker's channel.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { connect } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { eventually, get, startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
const FILES: Record<string, Buffer> = {};
function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed) % 251;
  return b;
}

before(async () => {
  // The listener's response cache is off there: every request goes through the worker.
  w = await startWharf({ fixture: 'file-refs' });
  const dir = join(w.root, 'www');
  mkdirSync(dir, { recursive: true }); // git keeps no empty folder: a fresh clone's fixture has none
  for (const [name, size, seed] of [['a.txt', 100 * 1024, 1], ['b.txt', 200 * 1024, 2], ['small.txt', 4 * 1024, 3], ['edge.txt', 32 * 1024, 4], ['large.txt', 3 * 1024 * 1024 + 17, 5]] as const) {
    FILES[name] = pattern(size, seed);
    writeFileSync(join(dir, name), FILES[name]!);
  }
});
after(async () => {
  await w?.stop();
});

function fetchBody(path: string, agent: Agent, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w.port, path, agent, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('files through the worker arrive byte for byte, 64 clients at once on kept-alive connections', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const names = Object.keys(FILES);
    const jobs: Array<Promise<void>> = [];
    for (let i = 0; i < 512; i++) {
      const name = names[i % names.length]!;
      jobs.push(
        fetchBody(`/${name}`, agent).then((r) => {
          assert.equal(r.status, 200);
          assert.equal(r.headers['content-length'], String(FILES[name]!.length));
          assert.ok(r.body.equals(FILES[name]!), `${name}: body differs`);
        }),
      );
    }
    await Promise.all(jobs);
  } finally {
    agent.destroy();
  }
});

test('a large file (3 MiB) by reference: whole, ranged, and many at once', async () => {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const big = FILES['large.txt']!;
    const all = await Promise.all(Array.from({ length: 24 }, () => fetchBody('/large.txt', agent)));
    for (const r of all) assert.ok(r.body.equals(big));
    const mid = await fetchBody('/large.txt', agent, { Range: 'bytes=1000000-2999999' });
    assert.equal(mid.status, 206);
    assert.ok(mid.body.equals(big.subarray(1000000, 3000000)));
    const head = await get(w.port, '/large.txt', {}, 'HEAD');
    assert.equal(head.headers['content-length'], String(big.length));
  } finally {
    agent.destroy();
  }
});

test('a file body that a module encodes or extends at SendResponse passes through the worker and arrives whole', async () => {
  const agent = new Agent({ keepAlive: true });
  try {
    for (const name of ['large.txt', 'a.txt']) {
      const bytes = FILES[name]!;
      const zipped = await fetchBody(`/${name}?gzip`, agent, { 'Accept-Encoding': 'gzip' });
      assert.equal(zipped.status, 200);
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.ok(gunzipSync(zipped.body).equals(bytes), `${name}: gzip body differs`);
      const tailed = await fetchBody(`/${name}?tail`, agent);
      assert.ok(tailed.body.equals(Buffer.concat([bytes, Buffer.from('-- the end --\n')])), `${name}: extended body differs`);
      const plain = await fetchBody(`/${name}`, agent);
      assert.ok(plain.body.equals(bytes));
    }
  } finally {
    agent.destroy();
  }
});

test('ranges, HEAD and conditional requests answer as before', async () => {
  const agent = new Agent({ keepAlive: true });
  try {
    const a = FILES['a.txt']!;
    const range = await fetchBody('/a.txt', agent, { Range: 'bytes=40000-80000' });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-range'], `bytes 40000-80000/${a.length}`);
    assert.ok(range.body.equals(a.subarray(40000, 80001)));
    const tail = await fetchBody('/a.txt', agent, { Range: 'bytes=-50' });
    assert.ok(tail.body.equals(a.subarray(a.length - 50)));
    const multi = await fetchBody('/a.txt', agent, { Range: 'bytes=0-9,50000-50009' });
    assert.equal(multi.status, 206);
    assert.match(String(multi.headers['content-type']), /^multipart\/byteranges; boundary=/);
    const head = await get(w.port, '/a.txt', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(a.length));
    assert.equal(head.body.length, 0);
    const first = await fetchBody('/a.txt', agent);
    const etag = String(first.headers['etag']);
    const again = await fetchBody('/a.txt', agent, { 'If-None-Match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
  } finally {
    agent.destroy();
  }
});

test('a file rewritten in place (same size) is served whole, then as its new version', async (t) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  const file = join(w.root, 'www', 'b.txt');
  const before = FILES['b.txt']!;
  const next = pattern(before.length, 99);
  try {
    assert.ok((await fetchBody('/b.txt', agent)).body.equals(before));
    // While the worker still trusts its cached stat of the old version (up to a second), the
    // listener finds the file changed under the descriptor the worker named and has the request
    // answered again with bytes: every response is one whole version with its own length.
    const fd = openSync(file, 'r+'); // in place: same inode, same size, a new mtime
    writeSync(fd, next, 0, next.length, 0);
    closeSync(fd);
    const seen = new Set<string>();
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all(Array.from({ length: 16 }, () => fetchBody('/b.txt', agent)));
      for (const r of rs) {
        assert.equal(r.status, 200);
        assert.equal(r.body.length, before.length);
        seen.add(r.body.equals(next) ? 'new' : r.body.equals(before) ? 'old' : 'other');
      }
    }
    t.diagnostic(`versions seen during the change: ${[...seen].join(', ')}`);
    await eventually(async () => (await fetchBody('/b.txt', agent)).body.equals(next), 5000);
  } finally {
    agent.destroy();
    FILES['b.txt'] = next;
  }
});

test('clients that hang up mid-file leave no descriptor open in the listener', async () => {
  const fds = (): number => readdirSync(`/proc/${w.child.pid}/fd`).length;
  const agent = new Agent({ keepAlive: true });
  await fetchBody('/b.txt', agent); // warm: the file is kept, the worker is running
  agent.destroy();
  const baseline = fds();
  await Promise.all(
    Array.from(
      { length: 100 },
      () =>
        new Promise<void>((resolve) => {
          const s = connect(w.port, '127.0.0.1', () => s.write('GET /b.txt HTTP/1.1\r\nHost: x\r\n\r\n'));
          s.once('data', () => s.destroy());
          s.on('close', () => resolve());
          s.on('error', () => resolve());
        }),
    ),
  );
  await eventually(() => fds() <= baseline + 2, 5000);
  // And the server keeps serving.
  const r = await get(w.port, '/a.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body.length, FILES['a.txt']!.length);
});
