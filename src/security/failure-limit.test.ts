import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressBucket, FailureLimit, MAX_ADDRESSES, MAX_FAILURES } from './failure-limit.js';
import { LOGON_THROTTLE_MS } from '../ipc/credential-messages.js';
import { LogonCache, MAX_LOGON_CACHE } from './logon-cache.js';

test('10 failures within the period throttle an address for the period; the block is reported once', () => {
  let now = 0;
  const limit = new FailureLimit({ now: () => now });
  for (let i = 0; i < MAX_FAILURES - 1; i++) limit.failed('192.0.2.1');
  assert.equal(limit.throttled('192.0.2.1').throttled, false);
  limit.failed('192.0.2.1');
  assert.deepEqual(limit.throttled('192.0.2.1'), { throttled: true, firstTime: true });
  assert.deepEqual(limit.throttled('192.0.2.1'), { throttled: true, firstTime: false });
  assert.equal(limit.throttled('192.0.2.2').throttled, false, 'other addresses are not affected');
  now += LOGON_THROTTLE_MS + 1;
  assert.equal(limit.throttled('192.0.2.1').throttled, false);
});

test('failures spread wider than the period do not add up', () => {
  let now = 0;
  const limit = new FailureLimit({ now: () => now });
  for (let i = 0; i < 30; i++) {
    limit.failed('192.0.2.1');
    now += LOGON_THROTTLE_MS / 5;
  }
  assert.equal(limit.throttled('192.0.2.1').throttled, false);
});

test('an IPv6 client counts per /64; IPv4-mapped addresses count as IPv4', () => {
  assert.equal(addressBucket('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(addressBucket('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(addressBucket('::1'), '0:0:0:0::/64');
  assert.equal(addressBucket('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(addressBucket('::ffff:192.0.2.7'), '192.0.2.7');
  const limit = new FailureLimit();
  for (let i = 0; i < MAX_FAILURES; i++) limit.failed(`2001:db8::${i.toString(16)}`);
  assert.equal(limit.throttled('2001:db8::ffff').throttled, true);
});

test('memory is bounded: beyond MAX_ADDRESSES the oldest address is forgotten', () => {
  const limit = new FailureLimit();
  for (let i = 0; i < MAX_ADDRESSES + 100; i++) limit.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  assert.equal(limit.size, MAX_ADDRESSES);
});

test('the logon cache: keyed by an HMAC (never the password), expires, bounded, forgets one provider', () => {
  let now = 0;
  const cache = new LogonCache({ now: () => now, ttlMs: 1000, max: 3 });
  const k = cache.key(['password', 'system', '', 'alice', 'secret']);
  assert.doesNotMatch(k, /secret|alice/);
  assert.notEqual(k, cache.key(['password', 'system', '', 'alicesecret', '']), 'parts are length-prefixed');
  assert.notEqual(k, new LogonCache().key(['password', 'system', '', 'alice', 'secret']), 'salted per process');
  const ok = { ok: true as const, identity: { name: 'alice', provider: 'system' as const, uid: 1, gid: 1, groups: [] } };
  const wharf = { ok: true as const, identity: { ...ok.identity, provider: 'wharf' as const } };
  cache.set(k, ok);
  assert.equal(cache.get(k), ok);
  now = 1001;
  assert.equal(cache.get(k), undefined);
  for (const n of ['a', 'b', 'c', 'd']) cache.set(n, n === 'd' ? wharf : ok);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('a'), undefined);
  cache.forget('wharf');
  assert.equal(cache.get('d'), undefined);
  assert.equal(cache.get('b'), ok);
  assert.ok(MAX_LOGON_CACHE >= 1000);
});
