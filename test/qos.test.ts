// The listener's QoS limits (iis-behavior.md §6.1), each as a client sees it and as httperr logs
// it. The fixture sets small values: connectionTimeout 2 s (site and webLimits), headerWaitTimeout
// 2 s, minBytesPerSecond 4 MB/s, maxConnections 2 (host "limited"), maxBandwidth 16 KiB/s (host
// "throttled"), appConcurrentRequestLimit 8. Timing bounds are generous on purpose.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, get, parseResponse, startWharf, type WharfProcess } from './helpers/wharf.js';

const UNLIMITED = '4294967295';
let w: WharfProcess;
before(async () => {
  w = await startWharf({ fixture: 'qos', vars: { GLOBAL_BANDWIDTH: UNLIMITED } });
  writeFileSync(join(w.root, 'www', '64k.bin'), Buffer.alloc(64 * 1024, 'x'));
  writeFileSync(join(w.root, 'www', '8m.bin'), Buffer.alloc(8 * 1024 * 1024, 'y'));
  assert.equal((await get(w.port, '/ok.txt')).status, 200); // the worker is up
});
after(async () => {
  await w?.stop();
});

/** A raw client socket that records when and how the server closed it. */
interface Client {
  readonly socket: Socket;
  data: string;
  closedAt: number | undefined;
  reset: boolean;
  /** Resolves with the first complete response (Content-Length framed) received after `from`. */
  response(from?: number): Promise<string>;
}

async function open(port: number): Promise<Client> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const c: Client = {
    socket,
    data: '',
    closedAt: undefined,
    reset: false,
    response(from = 0) {
      return eventually(() => {
        const text = c.data.slice(from);
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const m = /content-length: (\d+)/i.exec(text.slice(0, end));
        const len = m === null ? 0 : Number(m[1]);
        return text.length >= end + 4 + len ? text.slice(0, end + 4 + len) : undefined;
      }, 10000);
    },
  };
  socket.on('data', (d: Buffer) => (c.data += d.toString('latin1')));
  socket.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'ECONNRESET') c.reset = true;
  });
  socket.on('close', () => (c.closedAt = Date.now()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return c;
}

function request(path: string, host = 'localhost', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
}

function reasonLines(reason: string): string[] {
  return w.httpErrLines().filter((l) => l.split(' ')[12] === reason);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('connectionTimeout: an idle keep-alive connection is closed silently, httperr Timer_ConnectionIdle', async () => {
  const before = reasonLines('Timer_ConnectionIdle').length;
  const c = await open(w.port);
  c.socket.write(request('/ok.txt'));
  const res = parseResponse(await c.response());
  assert.equal(res.status, 200);
  assert.notEqual(res.headers['connection'], 'close');
  const answeredAt = Date.now();
  await eventually(() => c.closedAt !== undefined, 10000);
  const idle = c.closedAt! - answeredAt;
  assert.ok(idle >= 1500, `closed after ${idle} ms, before the site's 2 s connectionTimeout`);
  assert.equal(c.data.length, res.raw.length, 'nothing was sent before closing');
  // A connection that never sends a byte gets webLimits' connectionTimeout (also 2 s here).
  const quiet = await open(w.port);
  await eventually(() => quiet.closedAt !== undefined, 10000);
  assert.equal(quiet.data, '');
  const lines = await eventually(() => {
    const l = reasonLines('Timer_ConnectionIdle');
    return l.length >= before + 2 ? l : undefined;
  });
  const f = lines[lines.length - 1]!.split(' ');
  assert.equal(f[10], '-', 'no status: nothing was sent');
});

test('connectionTimeout also bounds the wait between request body chunks: reset, httperr Timer_EntityBody', async () => {
  const c = await open(w.port);
  c.socket.write('POST /qos-upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789');
  const started = Date.now();
  await eventually(() => c.closedAt !== undefined, 10000);
  assert.ok(c.closedAt! - started >= 1500, `closed after ${c.closedAt! - started} ms`);
  assert.equal(c.data, '', 'no response: the request never completed');
  const line = await eventually(() => reasonLines('Timer_EntityBody')[0]);
  const f = line.split(' ');
  assert.equal(f[7], 'POST');
  assert.equal(f[8], '/qos-upload');
  assert.equal(f[11], '21');
  assert.equal(f[13], 'QosPool');
  // A body that keeps coming, slower than the timeout in total but never pausing that long, is fine.
  const steady = await open(w.port);
  steady.socket.write('POST /qos-upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nConnection: close\r\n\r\n');
  for (let i = 0; i < 4; i++) {
    await sleep(800);
    steady.socket.write('x');
  }
  const res = parseResponse(await steady.response());
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), '4');
});

test('headerWaitTimeout: slowloris connections are closed with Timer_HeaderWait while normal clients keep being served', async () => {
  const before = reasonLines('Timer_HeaderWait').length;
  const SLOW = 300;
  const slow = await Promise.all(Array.from({ length: SLOW }, () => open(w.port)));
  const head = request('/ok.txt', 'localhost', 'X-Padding: ' + 'a'.repeat(200) + '\r\n');
  let sent = 0;
  let stop = false;
  const trickle = (async () => {
    // One byte per connection every 200 ms: each head would take over a minute to finish.
    while (!stop && sent < head.length - 1) {
      for (const c of slow) if (c.closedAt === undefined) c.socket.write(head[sent]!);
      sent++;
      await sleep(200);
    }
  })();
  const started = Date.now();
  let served = 0;
  while (Date.now() - started < 5000) {
    const r = await get(w.port, '/ok.txt');
    assert.equal(r.status, 200, 'a normal client was not served during the attack');
    served++;
    await sleep(50);
  }
  assert.ok(served > 10);
  await eventually(() => slow.every((c) => c.closedAt !== undefined), 10000);
  stop = true;
  await trickle;
  assert.ok(slow.every((c) => c.data === ''), 'slow clients got no response');
  const lines = await eventually(() => {
    const l = reasonLines('Timer_HeaderWait');
    return l.length >= before + SLOW ? l : undefined;
  });
  assert.equal(lines[lines.length - 1]!.split(' ')[10], '-');
});

test('minBytesPerSecond: a client that stops reading is reset once the response should have been sent, httperr Timer_MinBytesPerSecond', async () => {
  const c = await open(w.port);
  c.socket.pause(); // stop reading (a paused socket also stops noticing the reset, until it reads)
  c.socket.write(request('/8m.bin'));
  const started = Date.now();
  // 8 MiB at 4 MB/s: about 2 s after the bytes were handed to the socket.
  const line = await eventually(() => reasonLines('Timer_MinBytesPerSecond')[0], 15000);
  assert.ok(Date.now() - started >= 1000, `reset after ${Date.now() - started} ms`);
  const f = line.split(' ');
  assert.equal(f[8], '/8m.bin');
  assert.equal(f[11], '21');
  c.socket.resume();
  await eventually(() => c.closedAt !== undefined, 10000);
  assert.ok(c.data.length < 8 * 1024 * 1024, 'the response was cut off');
  // A client that reads gets the whole file.
  const ok = await open(w.port);
  ok.socket.write(request('/8m.bin', 'localhost', 'Connection: close\r\n'));
  await eventually(() => ok.closedAt !== undefined, 15000);
  assert.equal(parseResponse(ok.data).body.length, 8 * 1024 * 1024);
});

test('maxConnections: the site\'s connections beyond the limit get 503 ConnLimit and are closed', async () => {
  const a = await open(w.port);
  const b = await open(w.port);
  a.socket.write(request('/ok.txt', 'limited'));
  assert.equal(parseResponse(await a.response()).status, 200);
  b.socket.write(request('/ok.txt', 'limited'));
  assert.equal(parseResponse(await b.response()).status, 200);
  const c = await open(w.port);
  c.socket.write(request('/ok.txt', 'limited'));
  const refused = parseResponse(await c.response());
  assert.equal(refused.status, 503);
  assert.match(refused.body.toString(), /Service Unavailable/);
  await eventually(() => c.closedAt !== undefined);
  // Another site on the same port is not limited by this one's count.
  assert.equal((await get(w.port, '/ok.txt')).status, 200);
  const line = await eventually(() => reasonLines('ConnLimit')[0]);
  const f = line.split(' ');
  assert.equal(f[10], '503');
  assert.equal(f[11], '22');
  // A counted connection closing frees its place.
  a.socket.destroy();
  await eventually(async () => (await get(w.port, '/ok.txt', { Host: 'limited' })).status === 200);
  b.socket.destroy();
});

test('maxBandwidth: a throttled site\'s responses are paced to its rate', async () => {
  const started = Date.now();
  const r = await get(w.port, '/64k.bin', { Host: 'throttled' });
  const took = Date.now() - started;
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 64 * 1024);
  // 64 KiB at 16 KiB/s is about 4 s; a generous lower bound.
  assert.ok(took >= 2000, `64 KiB at 16 KiB/s took only ${took} ms`);
});

test('appConcurrentRequestLimit: requests beyond the limit in progress get 503.2, logged as 503 2 in the site log', async () => {
  const results = await Promise.all(Array.from({ length: 12 }, () => get(w.port, '/qos-slow')));
  const ok = results.filter((r) => r.status === 200);
  const busy = results.filter((r) => r.status === 503);
  assert.equal(ok.length, 8);
  assert.equal(busy.length, 4);
  assert.match(busy[0]!.body.toString(), /Service Unavailable/);
  const lines = await eventually(() => {
    const l = w.logLines(21).filter((x) => x.includes('/qos-slow') && / 503 2 /.test(x));
    return l.length === 4 ? l : undefined;
  });
  assert.equal(lines.length, 4);
  // Once they finish, the next requests are served again.
  assert.equal((await get(w.port, '/qos-slow')).status, 200);
});

test('maxGlobalBandwidth: every response of the server is paced', async () => {
  const g = await startWharf({ fixture: 'qos', vars: { GLOBAL_BANDWIDTH: '32768' } });
  try {
    writeFileSync(join(g.root, 'www', '64k.bin'), Buffer.alloc(64 * 1024, 'x'));
    const started = Date.now();
    const r = await get(g.port, '/64k.bin');
    const took = Date.now() - started;
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 64 * 1024);
    assert.ok(took >= 1000, `64 KiB at 32 KiB/s took only ${took} ms`);
  } finally {
    await g.stop();
  }
});
