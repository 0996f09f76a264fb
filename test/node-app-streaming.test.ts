/**
 * 200 MB up and down through a hosted Node.js app: bodies stream with backpressure both ways,
 * so neither the listener's nor the worker's memory grows with the size of the transfer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { startWharf, type WharfProcess } from './helpers/wharf.js';
import { ensureAppInstalled, send } from './helpers/node-apps.js';

const MIB = 1024 * 1024;
const TOTAL_MIB = 200;
/** Growth allowed while 200 MiB pass through: a buffered body would need all of it. */
const MAX_GROWTH_MIB = 64;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** Samples the RSS of some processes until stopped; returns the peak of each. */
function sampleRss(pids: readonly number[]): { stop(): number[] } {
  const peaks = pids.map((p) => rssMiB(p));
  const timer = setInterval(() => pids.forEach((p, i) => (peaks[i] = Math.max(peaks[i]!, rssMiB(p)))), 100);
  return {
    stop() {
      clearInterval(timer);
      return peaks;
    },
  };
}

describe('large bodies through a hosted Node.js app', () => {
  let wharf: WharfProcess;
  let workerPid = 0;

  before(async () => {
    ensureAppInstalled('plain');
    ensureAppInstalled('express');
    wharf = await startWharf({ fixture: 'node-ops', files: { 'www-ops': 'apps/plain', 'www-other': 'apps/express' } });
    workerPid = ((await send(wharf.port, 'ops.test', { path: '/env' })).json() as { pid: number }).pid;
    // Warm both paths so the baseline includes what any transfer allocates once.
    await send(wharf.port, 'ops.test', { path: '/download?mib=8' });
    await send(wharf.port, 'ops.test', { method: 'POST', path: '/upload', body: Buffer.alloc(8 * MIB) });
  });
  after(async () => {
    await wharf?.stop();
  });

  it(`a ${TOTAL_MIB} MiB upload streams through to the app; memory stays flat`, async () => {
    const base = [rssMiB(wharf.child.pid!), rssMiB(workerPid)];
    const sampler = sampleRss([wharf.child.pid!, workerPid]);
    const block = Buffer.alloc(MIB, 'upload-');
    const expected = createHash('sha256');
    const result = await new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: wharf.port, method: 'POST', path: '/upload', agent: false, headers: { host: 'ops.test', 'content-length': TOTAL_MIB * MIB } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as { bytes: number; sha256: string }) : reject(new Error(`status ${res.statusCode}: ${text}`))));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = (): void => {
        while (sent < TOTAL_MIB) {
          sent++;
          expected.update(block);
          if (!req.write(block)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    const [listenerPeak, workerPeak] = sampler.stop();
    assert.equal(result.bytes, TOTAL_MIB * MIB);
    assert.equal(result.sha256, expected.digest('hex'));
    assert.ok(listenerPeak! - base[0]! < MAX_GROWTH_MIB, `listener RSS grew ${(listenerPeak! - base[0]!).toFixed(1)} MiB`);
    assert.ok(workerPeak! - base[1]! < MAX_GROWTH_MIB, `worker RSS grew ${(workerPeak! - base[1]!).toFixed(1)} MiB`);
  });

  it(`a ${TOTAL_MIB} MiB download to a client that reads slowly streams; memory stays flat`, async () => {
    const base = [rssMiB(wharf.child.pid!), rssMiB(workerPid)];
    const sampler = sampleRss([wharf.child.pid!, workerPid]);
    const got = await new Promise<{ bytes: number; sha256: string; length: string | undefined }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: wharf.port, path: `/download?mib=${TOTAL_MIB}`, agent: false, headers: { host: 'ops.test' } }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let sincePause = 0;
        res.on('data', (d: Buffer) => {
          hash.update(d);
          bytes += d.length;
          sincePause += d.length;
          // A client slower than the app: every 8 MiB it stops reading for a moment.
          if (sincePause >= 8 * MIB) {
            sincePause = 0;
            res.pause();
            setTimeout(() => res.resume(), 40);
          }
        });
        res.on('end', () => resolve({ bytes, sha256: hash.digest('hex'), length: res.headers['content-length'] }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const [listenerPeak, workerPeak] = sampler.stop();
    const block = Buffer.alloc(MIB, 'wharf-');
    const expected = createHash('sha256');
    for (let i = 0; i < TOTAL_MIB; i++) expected.update(block);
    assert.equal(got.length, String(TOTAL_MIB * MIB));
    assert.equal(got.bytes, TOTAL_MIB * MIB);
    assert.equal(got.sha256, expected.digest('hex'));
    assert.ok(listenerPeak! - base[0]! < MAX_GROWTH_MIB, `listener RSS grew ${(listenerPeak! - base[0]!).toFixed(1)} MiB`);
    assert.ok(workerPeak! - base[1]! < MAX_GROWTH_MIB, `worker RSS grew ${(workerPeak! - base[1]!).toFixed(1)} MiB`);
  });
});
