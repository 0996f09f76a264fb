import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { startWharf, type WharfProcess } from './helpers/wharf.js';

let w: WharfProcess;
const BIG = randomBytes(24 * 1024 * 1024);
const BIG_SHA = createHash('sha256').update(BIG).digest('hex');
before(async () => {
  w = await startWharf({ fixture: 'stream' });
  mkdirSync(join(w.root, 'www'), { recursive: true }); // git keeps no empty folders
  writeFileSync(join(w.root, 'www', 'big.bin'), BIG);
});
after(async () => {
  await w?.stop();
});

function upload(body: Buffer, options: { chunked: boolean; slow: boolean }): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream' };
    if (!options.chunked) headers['Content-Length'] = String(body.length);
    if (options.slow) headers['X-Slow'] = '1';
    const req = request({ host: '127.0.0.1', port: w.port, method: 'POST', path: '/digest', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}: ${text}`))));
    });
    req.on('error', reject);
    // Write in 256 KiB pieces so chunked framing really has many chunks.
    for (let i = 0; i < body.length; i += 256 * 1024) req.write(body.subarray(i, i + 256 * 1024));
    req.end();
  });
}

test('request bodies stream to the worker intact (Content-Length and chunked, fast and slow consumers)', async () => {
  assert.equal(await upload(BIG, { chunked: false, slow: false }), `${BIG.length} ${BIG_SHA}`);
  assert.equal(await upload(BIG, { chunked: true, slow: false }), `${BIG.length} ${BIG_SHA}`);
  assert.equal(await upload(BIG, { chunked: true, slow: true }), `${BIG.length} ${BIG_SHA}`);
  assert.equal(await upload(Buffer.alloc(0), { chunked: false, slow: false }), `0 ${createHash('sha256').digest('hex')}`);
});

test('a large download reaches a client that stops reading for a while, byte for byte', async () => {
  const got = await new Promise<{ sha: string; size: number }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: w.port, path: '/big.bin' }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['content-length'], String(BIG.length));
      const hash = createHash('sha256');
      let size = 0;
      let paused = false;
      res.on('data', (d: Buffer) => {
        hash.update(d);
        size += d.length;
        if (!paused && size > 4 * 1024 * 1024) {
          // Stall: the listener's socket fills, the worker must be paused, nothing is lost.
          paused = true;
          res.pause();
          setTimeout(() => res.resume(), 700);
        }
      });
      res.on('end', () => resolve({ sha: hash.digest('hex'), size }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(got.size, BIG.length);
  assert.equal(got.sha, BIG_SHA);
});
