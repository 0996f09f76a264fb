import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BandwidthBucket, BandwidthThrottle } from './bandwidth-throttle.js';

test('a bucket paces bytes to its rate with a small burst allowance', () => {
  const b = new BandwidthBucket(10_000); // 10 kB/s
  let now = 1000;
  assert.equal(b.wait(now), 0);
  b.charge(1000, now); // 100 ms worth: within the burst
  assert.equal(b.wait(now), 0);
  b.charge(1000, now); // 200 ms worth: 100 ms to wait
  assert.equal(b.wait(now), 100);
  now += 100;
  assert.equal(b.wait(now), 0);
  // Sending 10 kB in slices takes about a second, whatever the slice size.
  let sent = 0;
  const start = (now = 5000);
  while (sent < 10_000) {
    now += b.wait(now);
    b.charge(500, now);
    sent += 500;
  }
  assert.ok(now - start >= 850 && now - start <= 1000, `took ${now - start} ms`);
});

test('an idle bucket earns no credit beyond the burst', () => {
  const b = new BandwidthBucket(1000);
  b.charge(100, 0);
  // Ten quiet seconds later, a big write still has to wait for its own time.
  b.charge(2000, 10_000);
  assert.ok(b.wait(10_000) > 1800);
});

test('a throttle waits for the slowest of its buckets and charges all of them', () => {
  const site = new BandwidthBucket(2048);
  const global = new BandwidthBucket(1_000_000);
  const t = new BandwidthThrottle([site, global]);
  assert.equal(t.slice, 1024); // 100 ms of 2 kB/s is under the minimum slice
  t.charge(4096, 0);
  assert.ok(t.wait(0) > 1800);
  assert.ok(global.wait(0) === 0);
  assert.equal(new BandwidthThrottle([new BandwidthBucket(100_000_000)]).slice, 64 * 1024);
});
