/**
 * Unmodified Node.js applications (plain http + ws, Express 5, Fastify 5, Koa 3) in application
 * pools: each passes the same HTTP tests run directly with node and under Wharf; WebSockets,
 * Server-Sent Events, trailers, Expect: 100-continue, the <iisnode> section and iisnode's own
 * handler mapping work as a user of those would expect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { needs, tool } from './helpers/skip.js';
import { run, startWharf, WHARF_BIN, type WharfProcess } from './helpers/wharf.js';
import { APPS, ensureAppInstalled, runDirect, send, type SendOptions } from './helpers/node-apps.js';
import { checkContract } from './helpers/app-contract.js';

const APPS_UNDER_TEST = [
  { name: 'plain', framework: 'http', entry: 'server.js' },
  { name: 'express', framework: 'express', entry: 'server.js' },
  { name: 'fastify', framework: 'fastify', entry: 'server.mjs' },
  { name: 'koa', framework: 'koa', entry: 'app.js' },
] as const;

describe('Node.js applications hosted in pools', () => {
  let wharf: WharfProcess;
  const at = (host: string) => (o: SendOptions) => send(wharf.port, host, o);

  before(async () => {
    for (const a of APPS_UNDER_TEST) ensureAppInstalled(a.name);
    wharf = await startWharf({
      fixture: 'node-apps',
      files: {
        'www-plain': 'apps/plain',
        'www-express': 'apps/express',
        'www-fastify': 'apps/fastify',
        'www-koa': 'apps/koa',
        'www-iisnode': 'apps/plain',
        'www-mapped': 'apps/plain',
        'www-runtime': 'apps/plain',
      },
    });
    // RuntimePool's managedRuntimeVersion: a wrapper around this node that marks its children.
    const wrapper = join(wharf.root, 'node-wrapper.sh');
    writeFileSync(wrapper, `#!/bin/sh\nWHARF_TEST_RUNTIME=wrapper exec "${process.execPath}" "$@"\n`);
    chmodSync(wrapper, 0o755);
    // BrokenPool's entry throws while loading, as a typo or a missing module would.
    mkdirSync(join(wharf.root, 'www-broken'), { recursive: true });
    writeFileSync(join(wharf.root, 'www-broken', 'broken.js'), "console.log('starting');\nthrow new Error('broken on purpose');\n");
    // HttpsPool's app: the usual pair of an http server redirecting to https and the https app.
    mkdirSync(join(wharf.root, 'www-https'), { recursive: true });
    writeFileSync(
      join(wharf.root, 'www-https', 'server.js'),
      [
        "const http = require('node:http');",
        "const https = require('node:https');",
        "http.createServer((req, res) => { res.writeHead(301, { location: 'https://' + req.headers.host + req.url }); res.end(); }).listen(80);",
        "https.createServer({}, (req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ url: req.url, encrypted: Boolean(req.socket.encrypted) })); })",
        "  .listen(443, () => console.log('https app listening'));",
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await wharf?.stop();
  });

  for (const a of APPS_UNDER_TEST) {
    it(`${a.name}: passes its HTTP tests when run directly with node`, async () => {
      const direct = await runDirect(a.name, a.entry);
      try {
        await checkContract(a.framework, (o) => send(direct.port, `127.0.0.1:${direct.port}`, o));
      } finally {
        await direct.stop();
      }
    });
    it(`${a.name}: passes the same HTTP tests under Wharf`, async () => {
      await checkContract(a.framework, at(`${a.name}.test`));
      // The request went through the site's W3C log like any other.
      const site = APPS_UNDER_TEST.indexOf(a) + 1;
      await waitFor(() => wharf.logLines(site).some((l) => l.includes(' /users/42 ') && l.includes(' 200 ')));
    });
  }

  it('the app is its own main module, in its own folder, with nothing in its code changed', async () => {
    const env = (await at('plain.test')({ path: '/env' })).json() as { main: boolean; cwd: string; argv1: string };
    assert.equal(env.main, true, 'require.main === module');
    assert.equal(env.cwd, join(wharf.root, 'www-plain'));
    assert.equal(env.argv1, join(wharf.root, 'www-plain', 'server.js'));
  });

  it('a ws WebSocket server works unchanged: upgrade, 1,000 echoed messages in order, close', async () => {
    const WebSocket = createRequire(join(APPS, 'plain', 'package.json'))('ws') as typeof import('ws').default;
    const ws = new WebSocket(`ws://127.0.0.1:${wharf.port}/ws`, { headers: { host: 'plain.test' } });
    const received: string[] = [];
    const closed = new Promise<number>((resolve, reject) => {
      ws.on('close', (code) => resolve(code));
      ws.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const all = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        received.push(data.toString());
        if (received.length === 1000) resolve();
      });
    });
    for (let i = 0; i < 1000; i++) ws.send(`message ${i} ${'x'.repeat(i % 50)}`);
    const binary = Buffer.from([0, 1, 2, 255]);
    await all;
    assert.deepEqual(received, Array.from({ length: 1000 }, (_, i) => `message ${i} ${'x'.repeat(i % 50)}`));
    const echoedBinary = await new Promise<Buffer>((resolve) => {
      ws.once('message', (d, isBinary) => {
        assert.equal(isBinary, true);
        resolve(d as Buffer);
      });
      ws.send(binary);
    });
    assert.deepEqual(echoedBinary, binary);
    ws.close(1000, 'done');
    assert.equal(await closed, 1000);
    // Logged once the tunnel ended, as a 101.
    await waitFor(() => wharf.logLines(1).some((l) => l.includes(' /ws ') && l.includes(' 101 ')));
  });

  it('Server-Sent Events reach the client as they are written, not at the end', async () => {
    const arrivals: Array<{ at: number; text: string }> = [];
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: wharf.port, path: '/sse?n=4&every=300', headers: { host: 'plain.test' }, agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'text/event-stream');
        res.on('data', (d: Buffer) => arrivals.push({ at: Date.now() - started, text: d.toString() }));
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    const text = arrivals.map((a) => a.text).join('');
    assert.equal(text, [0, 1, 2, 3].map((n) => `id: ${n}\ndata: event ${n}\n\n`).join(''));
    const first = arrivals.find((a) => a.text.includes('event 0'))!;
    const last = arrivals.find((a) => a.text.includes('event 3'))!;
    // Four events 300 ms apart: the first arrives long before the last one is written.
    assert.ok(last.at - first.at >= 600, `events arrived spread out (${arrivals.map((a) => a.at).join(', ')} ms)`);
  });

  it("the app's response trailers reach the client", async () => {
    const r = await at('plain.test')({ path: '/trailers' });
    assert.equal(r.text(), 'part one, part two');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });

  it("the client's request trailers reach the app as req.trailers", async () => {
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: wharf.port, method: 'POST', path: '/request-trailers', agent: false, headers: { host: 'plain.test', trailer: 'x-digest' } },
        (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
        },
      );
      req.on('error', reject);
      // No Content-Length: node sends the body chunked, then the trailer section.
      req.write('first, ');
      req.write('second');
      req.addTrailers({ 'X-Digest': 'sha-256=abc', 'X-Count': '2' });
      req.end();
    });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { body: 'first, second', trailers: { 'x-digest': 'sha-256=abc', 'x-count': '2' } });
  });

  it('Expect: 100-continue: the client gets 100 once and the app reads the body', async () => {
    const body = Buffer.alloc(300_000, 'b');
    let continues = 0;
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1', port: wharf.port, method: 'POST', path: '/continue', agent: false,
        headers: { host: 'plain.test', expect: '100-continue', 'content-length': body.length },
      }, (res) => {
        let b = '';
        res.on('data', (d: Buffer) => (b += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      });
      req.on('continue', () => {
        continues++;
        req.end(body);
      });
      req.on('error', reject);
    });
    assert.equal(continues, 1);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { bytes: body.length, expect: '100-continue' });
  });

  it('<iisnode> in web.config: node_env, promoteServerVars and enableXFF reach the app', async () => {
    const env = (await at('iisnode.test')({ path: '/env' })).json() as { nodeEnv: string };
    assert.equal(env.nodeEnv, 'staging');
    const h = (await at('iisnode.test')({ path: '/headers' })).json() as { promoted: string; instance: string };
    assert.equal(h.promoted, '127.0.0.1');
    assert.equal(h.instance, '5');
  });

  it("iisnode's own mapping: the requested file is the entry, other files stay static", async () => {
    const app = await at('mapped.test')({ path: '/server.js' });
    assert.equal(app.status, 404, 'the app answered for its own URL');
    assert.deepEqual(app.json(), { error: 'not found', path: '/server.js' });
    const file = await at('mapped.test')({ path: '/readme.txt' });
    assert.equal(file.status, 200);
    assert.equal(file.text(), 'a static file beside the app\n');
  });

  it("a pool's managedRuntimeVersion names the node its workers run on", async () => {
    const env = (await at('runtime.test')({ path: '/env' })).json() as { runtimeMarker: string | null };
    assert.equal(env.runtimeMarker, 'wrapper');
    const other = (await at('plain.test')({ path: '/env' })).json() as { runtimeMarker: string | null };
    assert.equal(other.runtimeMarker, null);
  });

  it("the app's 103 Early Hints reach an HTTP/1.1 client ahead of the response, not an HTTP/1.0 one", async () => {
    const got = await new Promise<{ infos: Array<{ status: number; link: unknown }>; status: number; body: string }>((resolve, reject) => {
      const infos: Array<{ status: number; link: unknown }> = [];
      const req = request({ host: '127.0.0.1', port: wharf.port, path: '/early-hints', headers: { host: 'plain.test' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ infos, status: res.statusCode ?? 0, body }));
      });
      req.on('information', (i) => infos.push({ status: i.statusCode, link: i.headers['link'] }));
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(got, { infos: [{ status: 103, link: '</style.css>; rel=preload; as=style' }], status: 200, body: 'hinted' });
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client.
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect(wharf.port, '127.0.0.1', () => s.write('GET /early-hints HTTP/1.0\r\nHost: plain.test\r\n\r\n'));
      let text = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(raw, /\r\n\r\nhinted$/);
  });

  it('a second application in the same pool gets 500.35 and the first keeps serving', async () => {
    const second = await at('mapped.test')({ path: '/sub/server.js' });
    assert.equal(second.status, 500);
    assert.match(second.text(), /500\.35/);
    assert.equal((await at('mapped.test')({ path: '/server.js' })).status, 404);
    await waitFor(() => wharf.logLines(6).some((l) => / \/sub\/server\.js .* 500 35 /.test(l)));
  });

  it('an app that pairs an http redirect server with an https server is served by its https one', async (t) => {
    if (!needs(t, tool('ss', 'iproute2'))) return;
    const r = await at('https.test')({ path: '/orders?id=3' });
    assert.equal(r.status, 200, 'not the redirect to https://');
    // TLS ends at the listener: the app's socket is not encrypted.
    assert.deepEqual(r.json(), { url: '/orders?id=3', encrypted: false });
    // Neither server bound its port (the workers run as root here, so they could have): both
    // only look listening to the app, whose listen callback ran.
    await waitFor(() => /https app listening/.test(wharf.output()));
    const bound = await run('ss', ['-ltnH', `( sport = :443 or sport = :80 )`]);
    assert.equal(bound.code, 0, bound.stderr);
    assert.equal(bound.stdout.trim(), '', `the app bound a port:\n${bound.stdout}`);
  });

  it('an entry that throws while loading: 500.30 with the error for a local client, the stack in the pool output log', async () => {
    const r = await at('broken.test')({ path: '/' });
    assert.equal(r.status, 500);
    assert.match(r.text(), /HTTP Error 500\.30/);
    assert.match(r.text(), /Error: broken on purpose/);
    assert.match(r.text(), /broken\.js:2/);
    // Every request gets the same answer until the worker is recycled; the worker stays up.
    const again = await at('broken.test')({ path: '/other' });
    assert.equal(again.status, 500);
    assert.match(again.text(), /500\.30/);
    await waitFor(() => wharf.logLines(8).some((l) => / \/other .* 500 30 /.test(l)));
    const deadline = Date.now() + 15000;
    let out = '';
    while (!(/stderr: Error: broken on purpose/.test(out) && /failed to start \(500\.30\)/.test(out))) {
      if (Date.now() > deadline) assert.fail(`the pool output log lacks the start failure:\n${out}`);
      await new Promise((res) => setTimeout(res, 100));
      out = (await run(process.execPath, [WHARF_BIN, 'logs', 'apppool', 'BrokenPool', '/lines:50', '--config', wharf.configFile], 15000)).stdout;
    }
    assert.match(out, /stdout: starting/);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 50));
  }
}
