import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, forwardedFor, inPrefix, MAX_FORWARDED, parseAddress, parsePrefix, type Prefix } from './ip-address.js';

function prefix(ip: string, mask: string): Prefix {
  const p = parsePrefix(ip, mask);
  assert.equal(typeof p, 'object', String(p));
  return p as Prefix;
}
const has = (p: Prefix, a: string): boolean => inPrefix(parseAddress(a)!, p);

test('IPv4 entries: the single address by default, dotted masks and prefix lengths', () => {
  const one = prefix('127.0.0.2', '255.255.255.255');
  assert.ok(has(one, '127.0.0.2'));
  assert.ok(!has(one, '127.0.0.1'));
  assert.ok(has(one, '::ffff:127.0.0.2'), 'an IPv4 client on a dual-stack socket');
  const net = prefix('10.1.2.3', '255.255.0.0');
  assert.ok(has(net, '10.1.200.7'));
  assert.ok(!has(net, '10.2.0.1'));
  assert.deepEqual(prefix('10.1.2.3', '16'), net, 'a prefix length is the same network');
  assert.ok(has(prefix('0.0.0.0', '0'), '203.0.113.9'));
  assert.ok(!has(prefix('0.0.0.0', '0'), '::1'), 'an IPv4 /0 does not cover IPv6 clients');
  assert.ok(has(prefix('192.168.1.128', '255.255.255.128'), '192.168.1.255'));
  assert.ok(!has(prefix('192.168.1.128', '25'), '192.168.1.127'));
});

test('IPv6 entries: exact addresses, prefixes, the :: forms and embedded IPv4', () => {
  assert.ok(has(prefix('::1', '255.255.255.255'), '::1'));
  assert.ok(!has(prefix('::1', '128'), '::2'));
  const p = prefix('2001:db8::', '32');
  assert.ok(has(p, '2001:db8:ffff::1'));
  assert.ok(has(p, '2001:0DB8:0:0:0:0:0:9'));
  assert.ok(!has(p, '2001:db9::1'));
  assert.ok(has(prefix('2001:db8:1:2::', '64'), '2001:db8:1:2:aaaa:bbbb:cccc:dddd'));
  assert.ok(!has(prefix('2001:db8:1:2::', '64'), '2001:db8:1:3::1'));
  assert.ok(has(prefix('fe80::', '10'), 'fe80::1%eth0'), 'a zone is ignored');
  assert.deepEqual(parseAddress('::ffff:10.0.0.1'), parseAddress('10.0.0.1'));
  assert.deepEqual(parseAddress('1:2:3:4:5:6:7:8'), [0x00010002, 0x00030004, 0x00050006, 0x00070008]);
  assert.deepEqual(parseAddress('1::'), [0x00010000, 0, 0, 0]);
});

test('entries IIS could not use are reasons, not matches', () => {
  assert.match(parsePrefix('10.0.0.256', '255.255.255.255') as string, /not an IPv4 or IPv6 address/);
  assert.match(parsePrefix('example.com', '255.255.255.255') as string, /not an IPv4 or IPv6 address/);
  assert.match(parsePrefix('10.0.0.0', '255.0.255.0') as string, /not a contiguous mask/);
  assert.match(parsePrefix('10.0.0.0', '33') as string, /longer than the address/);
  assert.match(parsePrefix('2001:db8::', '129') as string, /longer than the address/);
  assert.match(parsePrefix('2001:db8::', '255.255.0.0') as string, /IPv6 entry takes a prefix length/);
  assert.match(parsePrefix('10.0.0.0', '/8') as string, /neither a dotted IPv4 mask nor a prefix length/);
});

test('addressKey: one text per address whatever its spelling', () => {
  assert.equal(addressKey(parseAddress('::ffff:127.0.0.2')!), '127.0.0.2');
  assert.equal(addressKey(parseAddress('2001:DB8::1')!), addressKey(parseAddress('2001:db8:0:0::1')!));
});

test('X-Forwarded-For: original client first, ports stripped, junk skipped, bounded', () => {
  const keys = (v: string): string[] => forwardedFor(v).map(addressKey);
  assert.deepEqual(keys('203.0.113.7, 10.0.0.1'), ['203.0.113.7', '10.0.0.1']);
  assert.deepEqual(keys('203.0.113.7:5123,[2001:db8::1]:443, unknown, _hidden'), ['203.0.113.7', addressKey(parseAddress('2001:db8::1')!)]);
  assert.deepEqual(keys('2001:db8::2'), [addressKey(parseAddress('2001:db8::2')!)]);
  assert.equal(forwardedFor(Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`).join(',')).length, MAX_FORWARDED);
});
