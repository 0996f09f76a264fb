import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CredentialRequest, CredentialResult } from '../ipc/credential-messages.js';
import { LOGON_CACHE_TTL_MS, LOGON_THROTTLE_MS } from '../ipc/credential-messages.js';
import { ControlCredentialClient, MAX_CACHED_LOGONS } from './credential-client.js';

const alice: CredentialResult = { ok: true, identity: { name: 'alice', provider: 'system', uid: 1000, gid: 1000, groups: [{ name: 'alice', gid: 1000 }] } };
const basic = (password: string, clientAddress = '10.0.0.1'): CredentialRequest => ({ kind: 'password', providers: ['system'], user: 'alice', password, domain: '', clientAddress });

function rig(timeoutMs = 10_000) {
  let now = 1_000_000;
  const sent: { id: number; request: CredentialRequest }[] = [];
  const client = new ControlCredentialClient((id, request) => sent.push({ id, request }), { timeoutMs, now: () => now });
  return { client, sent, advance: (ms: number) => (now += ms) };
}

test('a check travels once; a verified logon is then answered from the cache until its TTL, a wrong password is never cached', async () => {
  const { client, sent, advance } = rig();
  const first = client.check(basic('right'));
  assert.equal(sent.length, 1);
  client.answer(sent[0]!.id, alice);
  assert.deepEqual(await first, alice);
  assert.deepEqual(await client.check(basic('right')), alice);
  assert.equal(sent.length, 1, 'no round trip for a cached logon');
  assert.deepEqual(client.cached(basic('right')), alice, 'and answered synchronously');
  assert.equal(client.cached(basic('other')), undefined);

  const wrong = client.check(basic('wrong'));
  client.answer(sent[1]!.id, { ok: false, reason: 'bad-credentials', message: 'no' });
  assert.equal((await wrong).ok, false);
  void client.check(basic('wrong'));
  assert.equal(sent.length, 3, 'failures are asked again');

  advance(LOGON_CACHE_TTL_MS + 1);
  assert.equal(client.cached(basic('right')), undefined, 'not after the TTL');
  void client.check(basic('right'));
  assert.equal(sent.length, 4, 'expired after the TTL');
});

test('digest and negotiate are never cached; flush() empties the cache (the user store changed)', async () => {
  const { client, sent } = rig();
  const d: CredentialRequest = { kind: 'digest', user: 'a', realm: 'r', algorithm: 'MD5', method: 'GET', uri: '/', nonce: 'n', nc: '00000001', cnonce: 'c', qop: 'auth', response: 'x', clientAddress: '1.1.1.1' };
  for (let i = 0; i < 2; i++) {
    const p = client.check(d);
    client.answer(sent[sent.length - 1]!.id, alice);
    await p;
  }
  assert.equal(sent.length, 2);
  const p = client.check(basic('right'));
  client.answer(sent[2]!.id, alice);
  await p;
  client.flush();
  void client.check(basic('right'));
  assert.equal(sent.length, 4);
});

test('no answer within the timeout, or a closed channel, resolves unavailable; late answers are dropped', async () => {
  const { client, sent } = rig(20);
  const r = await client.check(basic('x'));
  assert.deepEqual([r.ok, !r.ok && r.reason], [false, 'unavailable']);
  client.answer(sent[0]!.id, alice); // late: ignored
  const waiting = client.check(basic('y'));
  client.closed();
  const c = await waiting;
  assert.equal(!c.ok && c.reason, 'unavailable');
  const after = await client.check(basic('z'));
  assert.equal(!after.ok && after.reason, 'unavailable');
  assert.equal(sent.length, 2, 'nothing is sent on a closed channel');
});

test('an address the main process throttled is refused here too, before the cache: a cached password is no oracle', async () => {
  const { client, sent, advance } = rig();
  const p = client.check(basic('right', '10.0.0.1'));
  client.answer(sent[0]!.id, alice);
  await p;
  const t = client.check(basic('guess', '10.0.0.9'));
  client.answer(sent[1]!.id, { ok: false, reason: 'throttled', message: 'too often' });
  await t;
  const r = await client.check(basic('right', '10.0.0.9'));
  assert.equal(!r.ok && r.reason, 'throttled');
  assert.deepEqual(await client.check(basic('right', '10.0.0.1')), alice);
  advance(LOGON_THROTTLE_MS + 1);
  assert.deepEqual(await client.check(basic('right', '10.0.0.9')), alice);
  assert.equal(sent.length, 2);
});

test('the cache is bounded', async () => {
  const { client, sent } = rig();
  for (let i = 0; i <= MAX_CACHED_LOGONS; i++) {
    const p = client.check(basic(`pw${i}`));
    client.answer(sent[sent.length - 1]!.id, alice);
    await p;
  }
  void client.check(basic('pw0'));
  assert.equal(sent.length, MAX_CACHED_LOGONS + 2, 'the oldest entry went');
});
