/**
 * The HTTP tests every test application passes, run once against the app started directly with
 * node and once under Wharf: the same assertions, so "runs unchanged" means the same answers.
 */
import assert from 'node:assert/strict';
import type { Reply, SendOptions } from './node-apps.js';

export type Call = (o: SendOptions) => Promise<Reply>;

export async function checkContract(framework: string, call: Call): Promise<void> {
  const root = await call({ path: '/' });
  assert.equal(root.status, 200);
  assert.equal(root.text(), 'hello world');
  assert.match(String(root.headers['content-type']), /^text\/plain/);

  const head = await call({ method: 'HEAD', path: '/' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);

  const json = await call({ path: '/json' });
  assert.equal(json.status, 200);
  assert.match(String(json.headers['content-type']), /^application\/json/);
  assert.deepEqual(json.json(), { framework, ok: true });

  const user = await call({ path: '/users/42?tab=posts&x=%C3%A9' });
  assert.deepEqual(user.json(), { id: '42', query: { tab: 'posts', x: 'é' } });

  const payload = { name: 'wharf', list: [1, 2, 3], nested: { ü: true } };
  const echo = await call({ method: 'POST', path: '/echo', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  assert.equal(echo.status, 200);
  assert.deepEqual(echo.json(), { received: payload });

  const headers = await call({ path: '/headers', headers: { 'x-test': 'abc 123' } });
  const h = headers.json() as { test: string; httpVersion: string };
  assert.equal(h.test, 'abc 123');
  assert.equal(h.httpVersion, '1.1');

  const cookies = await call({ path: '/cookies' });
  const set = cookies.headers['set-cookie'] as string[];
  assert.equal(set.length, 2, 'both Set-Cookie headers arrive');
  assert.match(set[0]!, /^a=1/);
  assert.match(set[1]!, /^b=2/);

  const missing = await call({ path: '/no/such/route' });
  assert.equal(missing.status, 404);
  assert.deepEqual(missing.json(), { error: 'not found', path: '/no/such/route' });
}
