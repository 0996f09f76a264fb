import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitted, DynamicIpCounters, released } from './dynamic-ip-counters.js';
import type { DynamicIpPolicy } from './ip-security-rules.js';

const policy = (o: Partial<DynamicIpPolicy>): DynamicIpPolicy => ({
  kind: 'dynamicIpSecurity',
  denyAction: 'Forbidden',
  enableProxyMode: false,
  loggingOnly: false,
  maxConcurrent: 0,
  maxRequests: 0,
  intervalMs: 200,
  inert: false,
  ...o,
});

test('request rate: more than maxRequests within the interval → 502, per client, until the interval ends', () => {
  const p = policy({ maxRequests: 3, intervalMs: 1000 });
  const c = new DynamicIpCounters();
  const at = (client: string, t: number): number => c.check(p, client, t).denial;
  assert.deepEqual([at('a', 0), at('a', 10), at('a', 20)], [0, 0, 0]);
  assert.equal(at('a', 30), 502);
  assert.equal(at('b', 40), 0, 'another client has its own count');
  assert.equal(at('a', 999), 502, 'refused requests count: a flooder stays refused');
  assert.equal(at('a', 1000), 0, 'a new interval');
});

test('concurrent requests: at most maxConcurrent admitted at once → 501, released at the end', () => {
  const p = policy({ maxConcurrent: 2 });
  const c = new DynamicIpCounters();
  const one = c.check(p, 'a', 0);
  admitted(one.counter);
  const two = c.check(p, 'a', 1);
  admitted(two.counter);
  assert.equal(c.check(p, 'a', 2).denial, 501);
  released(two.counter);
  assert.equal(c.check(p, 'a', 3).denial, 0);
  released(one.counter);
  released(one.counter);
  assert.equal(one.counter.concurrent, 0, 'never below zero');
});

test('bounded: a client rotating addresses never grows the table past its cap; the least recently active goes first', () => {
  const p = policy({ maxRequests: 1, intervalMs: 100 });
  const c = new DynamicIpCounters(1000);
  for (let i = 0; i < 100_000; i++) c.check(p, `2001:db8::${i.toString(16)}`, i);
  assert.equal(c.size, 1000);
  const small = new DynamicIpCounters(2);
  small.check(p, 'old', 0);
  small.check(p, 'busy', 0);
  small.check(p, 'old', 150); // a new interval: now the most recently active
  small.check(p, 'new', 151); // evicts 'busy'
  assert.equal(small.check(p, 'old', 152).denial, 502, "'old' kept its count");
  assert.equal(small.check(p, 'busy', 153).denial, 0, "'busy' was forgotten");
});
