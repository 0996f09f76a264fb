import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { MetricsError } from '../errors.js';
import { parseMetricsAddress, startMetricsServer } from './metrics-server.js';

const quiet = { warn: (): void => undefined };

function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function registry(): Registry {
  const r = new Registry();
  new Counter({ name: 'wharf_test_events_total', help: 'Events.', registers: [r] }).inc(3);
  return r;
}

test('--metrics-address: HOST:PORT, [IPv6]:PORT and :PORT parse; anything else is MET_ADDRESS', () => {
  assert.deepEqual(parseMetricsAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseMetricsAddress('localhost:9464'), { host: 'localhost', port: 9464 });
  assert.deepEqual(parseMetricsAddress('[::1]:9464'), { host: '::1', port: 9464 });
  assert.deepEqual(parseMetricsAddress(':9464'), { host: '', port: 9464 });
  for (const bad of ['9464', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:http', '::1:9464', '[nope]:9464', 'a b:9464', '']) {
    assert.throws(
      () => parseMetricsAddress(bad),
      (err: unknown) => err instanceof MetricsError && err.code === 'MET_ADDRESS' && err.message.includes(`"${bad}"`) && err.message.includes('HOST:PORT'),
      bad,
    );
  }
});

test('GET /metrics answers Prometheus text, or OpenMetrics when Accept asks for it; HEAD has no body; other paths 404, other methods 405', async (t) => {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0 }, registry(), quiet);
  t.after(() => server.close());
  const port = server.address.port;
  const text = await get(port, '/metrics');
  assert.equal(text.status, 200);
  assert.equal(text.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(text.headers['vary'], 'Accept');
  assert.match(text.body, /^wharf_test_events_total 3$/m);
  const open = await get(port, '/metrics?x=1', { Accept: 'application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1' });
  assert.equal(open.status, 200);
  assert.equal(open.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  assert.match(open.body, /^# TYPE wharf_test_events counter$/m);
  assert.match(open.body, /^wharf_test_events_total 3$/m);
  assert.ok(open.body.endsWith('# EOF\n'));
  const head = await get(port, '/metrics', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal((await get(port, '/')).status, 404);
  assert.equal((await get(port, '/metrics/')).status, 404);
  assert.equal((await get(port, '/favicon.ico')).status, 404);
  const post = await get(port, '/metrics', {}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
});

test('a port in use is MET_LISTEN naming the address; so is an address that is not this machine\'s', async (t) => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  await assert.rejects(
    startMetricsServer({ host: '127.0.0.1', port }, registry(), quiet),
    (err: unknown) => err instanceof MetricsError && err.code === 'MET_LISTEN' && err.message.includes(`127.0.0.1:${port}`) && /in use/.test(err.message),
  );
  // TEST-NET-1 (RFC 5737): never assigned to a host.
  await assert.rejects(
    startMetricsServer({ host: '192.0.2.1', port: 9464 }, registry(), quiet),
    (err: unknown) => err instanceof MetricsError && err.code === 'MET_LISTEN' && /not one of this machine's/.test(err.message),
  );
});
