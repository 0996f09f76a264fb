import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect } from 'node:tls';
import { parseClientHello } from './client-hello.js';

/** The ClientHello bytes Node's own TLS client sends. */
async function captureHello(opts: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const server = createServer((s) => {
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          s.destroy();
          server.close();
          resolve(all);
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port, rejectUnauthorized: false, ...opts });
      c.on('error', () => undefined);
    });
  });
}

test('SNI name and ALPN list are read from a real ClientHello; any shorter prefix is partial', async () => {
  const hello = await captureHello({ servername: 'WWW.Example.test', ALPNProtocols: ['h2', 'http/1.1'] });
  const r = parseClientHello(hello);
  assert.deepEqual(r, { kind: 'hello', serverName: 'www.example.test', alpn: ['h2', 'http/1.1'] });
  for (let i = 0; i < hello.length; i++) assert.equal(parseClientHello(hello.subarray(0, i)).kind, 'partial', `prefix ${i}`);
});

test('a ClientHello split over several records is reassembled', async () => {
  const hello = await captureHello({ servername: 'split.example.test' });
  const body = hello.subarray(5);
  const cut = 40;
  const rec = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 0xff]), b]);
  const two = Buffer.concat([rec(body.subarray(0, cut)), rec(body.subarray(cut))]);
  assert.deepEqual(parseClientHello(two), { kind: 'hello', serverName: 'split.example.test', alpn: [] });
  assert.equal(parseClientHello(two.subarray(0, 5 + cut + 3)).kind, 'partial');
});

test('no SNI; plain HTTP and garbage are told apart', async () => {
  const hello = await captureHello({});
  assert.deepEqual(parseClientHello(hello), { kind: 'hello', serverName: undefined, alpn: [] });
  assert.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'invalid', http: true });
  assert.deepEqual(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0, 0, 0])), { kind: 'invalid', http: false });
  assert.deepEqual(parseClientHello(Buffer.from([0x00, 0x01])), { kind: 'invalid', http: false });
});

test('hostile lengths anywhere in the hello never throw or read past the buffer', async () => {
  const hello = await captureHello({ servername: 'fuzz.example.test', ALPNProtocols: ['h2'] });
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(hello);
    for (let k = 0; k < 3; k++) b[5 + rand(b.length - 5)] = rand(256);
    const r = parseClientHello(b);
    assert.ok(r.kind === 'hello' || r.kind === 'invalid' || r.kind === 'partial');
  }
});
