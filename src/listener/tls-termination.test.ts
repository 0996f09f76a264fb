import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { loadAppHost } from '../config/index.js';
import { RoutingTable } from './routing.js';
import { TimerWheel } from './timer-wheel.js';
import { TlsTermination, type CertificateLookup, type CertificateMaterial, type CertificateProvider, type SecureConnection } from './tls-termination.js';
import { tlsInfoOf } from './tls-info.js';
import { decodeTlsInfo } from '../ipc/messages.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}
const skip = haveOpenssl ? false : process.env['CI'] === 'true' ? false : 'openssl is not installed';

/** A self-signed certificate made by the openssl CLI: ECDSA P-256 or RSA 2048. */
function makeCert(name: string, kind: 'ec' | 'rsa'): CertificateMaterial {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.crt`);
  const keyArgs = kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  execFileSync('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${name}/O=Wharf Test`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  const pem = readFileSync(crt, 'utf8');
  const leaf = new X509Certificate(pem);
  return { key: createPrivateKey(readFileSync(key)), chain: pem, leaf, thumbprint: createHash('sha1').update(leaf.raw).digest('hex').toUpperCase(), source: crt };
}

function table(bindings: string): RoutingTable {
  const text = `<configuration><system.applicationHost>
    <applicationPools><add name="P" /></applicationPools>
    <sites><site name="S" id="1"><application path="/"><virtualDirectory path="/" physicalPath="." /></application>
      <bindings>${bindings}</bindings></site><applicationDefaults applicationPool="P" /></sites>
  </system.applicationHost></configuration>`;
  return new RoutingTable(loadAppHost(join(dir, 'applicationHost.config'), text, { systemDrive: dir }));
}

let certs: Record<string, CertificateMaterial> = {};
before(() => {
  if (!haveOpenssl) return;
  certs = { ip: makeCert('ip.test', 'rsa'), sni: makeCert('www.example.test', 'ec'), ccs: makeCert('ccs.example.test', 'ec') };
});

const ok = (cert: CertificateMaterial): CertificateLookup => ({ ok: true, cert });
const provider = (over: Partial<CertificateProvider> = {}): CertificateProvider => ({
  forIpPort: () => ok(certs['ip']!),
  forHostnamePort: (host) => (host === 'www.example.test' ? ok(certs['sni']!) : undefined),
  forCentralStore: (host) => (host === 'ccs.example.test' ? ok(certs['ccs']!) : undefined),
  ...over,
});

/** A TCP server whose sockets go through TlsTermination, as the listener's do; bindings get its port as {port}. */
async function serve(t: TlsTermination, bindings: string, alpn: readonly string[] = ['http/1.1']): Promise<{ server: Server; port: number; secured: SecureConnection[] }> {
  const secured: SecureConnection[] = [];
  let routing: RoutingTable | undefined;
  const server = createServer((raw) =>
    t.accept(raw, routing!, alpn, (c) => {
      secured.push(c);
      c.socket.end('hello over ' + c.socket.getProtocol() + ' ' + String(c.socket.alpnProtocol));
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  routing = table(bindings.replaceAll('{port}', String(port)));
  return { server, port, secured };
}

function handshake(port: number, opts: { servername?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; ALPNProtocols?: string[] } = {}): Promise<{ socket: TLSSocket; body: string } | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    let body = '';
    socket.on('data', (d: Buffer) => (body += d.toString()));
    socket.on('end', () => resolve({ socket, body }));
    socket.on('error', (err) => resolve(err));
  });
}

async function cn(port: number, servername?: string): Promise<string> {
  const r = await handshake(port, servername === undefined ? {} : { servername });
  if (r instanceof Error) return 'error: ' + r.message;
  const peer = r.socket.getPeerCertificate() as { subject?: { CN?: string } } | null;
  return peer?.subject?.CN ?? 'error: no certificate';
}

const BINDINGS = `<binding protocol="https" bindingInformation="*:{port}:www.example.test" sslFlags="1" />
  <binding protocol="https" bindingInformation="*:{port}:ccs.example.test" sslFlags="3" />
  <binding protocol="https" bindingInformation="*:{port}:" />`;

test('the certificate follows the binding: SSL table hostnameport (sslFlags 1), CCS (sslFlags 2), else ipport', { skip }, async () => {
  const t = new TlsTermination({ provider: provider(), timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
  const { server, port } = await serve(t, BINDINGS);
  try {
    assert.equal(await cn(port, 'www.example.test'), 'www.example.test');
    assert.equal(await cn(port, 'ccs.example.test'), 'ccs.example.test');
    // No SNI, or a name no binding has: the ipport entry.
    assert.equal(await cn(port), 'ip.test');
    assert.equal(await cn(port, 'other.example.test'), 'ip.test');
  } finally {
    server.close();
  }
});

test('TLS 1.2 and 1.3 only, forward-secret AEAD suites; sslFlags 32 turns TLS 1.3 off for its binding', { skip }, async () => {
  const t = new TlsTermination({ provider: provider(), timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
  const { server, port } = await serve(t, `<binding protocol="https" bindingInformation="*:{port}:old.example.test" sslFlags="32" /><binding protocol="https" bindingInformation="*:{port}:" />`);
  try {
    const r13 = await handshake(port, { servername: 'new.example.test' });
    assert.ok(!(r13 instanceof Error));
    assert.equal(r13.socket.getProtocol(), 'TLSv1.3');
    assert.equal(r13.body, 'hello over TLSv1.3 http/1.1'.replace(' http/1.1', ' false'));
    const r12 = await handshake(port, { servername: 'new.example.test', maxVersion: 'TLSv1.2' });
    assert.ok(!(r12 instanceof Error));
    assert.match(r12.socket.getCipher().name, /^ECDHE-(RSA|ECDSA)-(AES\d+-GCM|CHACHA20)/);
    const old = await handshake(port, { servername: 'old.example.test' });
    assert.ok(!(old instanceof Error));
    assert.equal(old.socket.getProtocol(), 'TLSv1.2');
    // TLS 1.1 is refused outright.
    const legacy = await new Promise<Error | undefined>((resolve) => {
      const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' });
      s.on('secureConnect', () => resolve(undefined));
      s.on('error', (e) => resolve(e));
    });
    assert.ok(legacy instanceof Error);
  } finally {
    server.close();
  }
});

test('ALPN: h2 when offered, except on a binding with sslFlags 4', { skip }, async () => {
  const t = new TlsTermination({ provider: provider(), timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
  const { server, port } = await serve(t, `<binding protocol="https" bindingInformation="*:{port}:www.example.test" sslFlags="5" /><binding protocol="https" bindingInformation="*:{port}:" />`, ['h2', 'http/1.1']);
  try {
    const any = await handshake(port, { servername: 'a.example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.ok(!(any instanceof Error));
    assert.equal(any.socket.alpnProtocol, 'h2');
    const noH2 = await handshake(port, { servername: 'www.example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.ok(!(noH2 instanceof Error));
    assert.equal(noH2.socket.alpnProtocol, 'http/1.1');
  } finally {
    server.close();
  }
});

test('a binding without a certificate fails its handshakes alone, with one clear warning', { skip }, async () => {
  const warnings: string[] = [];
  const t = new TlsTermination({
    provider: provider({ forIpPort: () => undefined, forCentralStore: (h) => (h === 'broken.example.test' ? { ok: false, error: new Error('/ccs/broken.example.test.pfx: wrong password') } : undefined) }),
    timers: new TimerWheel({ autoStart: false }),
    warn: (m) => warnings.push(m),
  });
  const { server, port } = await serve(t, `<binding protocol="https" bindingInformation="*:{port}:www.example.test" sslFlags="1" />
    <binding protocol="https" bindingInformation="*:{port}:broken.example.test" sslFlags="2" /><binding protocol="https" bindingInformation="*:{port}:" />`);
  try {
    assert.match(await cn(port, 'broken.example.test'), /^error/);
    assert.match(await cn(port, 'broken.example.test'), /^error/);
    assert.match(await cn(port), /^error/);
    assert.equal(await cn(port, 'www.example.test'), 'www.example.test');
    const broken = warnings.filter((w) => w.includes('broken.example.test'));
    assert.equal(broken.length, 1, warnings.join('\n'));
    assert.match(broken[0]!, /wrong password/);
    assert.ok(warnings.some((w) => w.includes(`*:${port}:`) && w.includes(`wharf sslcert add ipport=0.0.0.0:${port}`)), warnings.join('\n'));
  } finally {
    server.close();
  }
});

test('the worker learns the connection\'s TLS facts: protocol, suite, key sizes, server certificate', { skip }, async () => {
  const t = new TlsTermination({ provider: provider(), timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
  const { server, port, secured } = await serve(t, BINDINGS);
  try {
    const r = await handshake(port, { servername: 'www.example.test' });
    assert.ok(!(r instanceof Error));
    const info = decodeTlsInfo(tlsInfoOf(secured[0]!));
    assert.ok(info !== undefined);
    assert.equal(info.protocol, 'TLSv1.3');
    assert.match(info.cipher, /^TLS_(AES_(128|256)_GCM|CHACHA20_POLY1305)_SHA(256|384)$/);
    assert.ok(info.keySize === 128 || info.keySize === 256);
    assert.equal(info.secretKeySize, 256); // ECDSA P-256
    assert.match(info.serverSubject, /CN=www\.example\.test/);
    assert.equal(info.serverName, 'www.example.test');
    assert.equal(info.clientCert, '');
    const rsa = await handshake(port);
    assert.ok(!(rsa instanceof Error));
    assert.equal(decodeTlsInfo(tlsInfoOf(secured[1]!))!.secretKeySize, 2048);
  } finally {
    server.close();
  }
});

test('clientcertnegotiation=enable on the SSL entry: the handshake asks for a client certificate, verified against the trusted CAs, never refused', { skip }, async () => {
  const { TestPki } = await import('../../test/helpers/openssl.js');
  const pki = new TestPki(join(dir, 'client-pki'));
  const trusted = pki.leaf('alice.client.test', { issuer: 'root', usage: 'client' });
  const stranger = pki.leaf('mallory.client.test', { issuer: 'self', usage: 'client' });
  const expired = pki.leaf('old.client.test', { issuer: 'root', usage: 'client', startDate: '20200101000000Z', endDate: '20200201000000Z' });
  const negotiate = { options: { clientcertnegotiation: 'enable' } };
  const t = new TlsTermination({
    provider: provider({
      forIpPort: () => ({ ok: true, cert: certs['ip']!, binding: negotiate }),
      forHostnamePort: (host) => (host === 'www.example.test' ? { ok: true, cert: certs['sni']!, binding: { options: {} } } : undefined),
      trustedCertificates: () => [readFileSync(pki.root().cert, 'utf8')],
    }),
    timers: new TimerWheel({ autoStart: false }),
    warn: () => undefined,
  });
  const { server, port, secured } = await serve(t, BINDINGS);
  const client = async (servername: string | undefined, who: { cert: string; key: string } | undefined): Promise<ReturnType<typeof decodeTlsInfo>> => {
    const before = secured.length;
    const r = await handshake(port, {
      ...(servername !== undefined ? { servername } : {}),
      ...(who !== undefined ? { cert: readFileSync(who.cert), key: readFileSync(who.key) } : {}),
    } as Parameters<typeof handshake>[1]);
    assert.ok(!(r instanceof Error), String(r));
    return decodeTlsInfo(tlsInfoOf(secured[before]!));
  };
  try {
    const alice = await client(undefined, trusted);
    assert.ok(alice !== undefined && alice.clientCert !== '');
    assert.equal(new X509Certificate(Buffer.from(alice.clientCert, 'base64')).subject, 'CN=alice.client.test');
    assert.equal(alice.clientCertError, '');
    const mallory = await client(undefined, stranger);
    assert.match(mallory!.clientCertError, /SELF_SIGNED/);
    assert.equal((await client(undefined, expired))!.clientCertError, 'CERT_HAS_EXPIRED');
    // A client without a certificate still gets through the handshake (403.7 is the worker's).
    assert.equal((await client(undefined, undefined))!.clientCert, '');
    // The SNI binding's hostnameport entry does not negotiate: nothing is asked, nothing is sent.
    assert.equal((await client('www.example.test', trusted))!.clientCert, '');
    // A Central Certificate Store certificate has no entry of its own: the ipport entry's setting holds.
    const ccs = await client('ccs.example.test', trusted);
    assert.ok(ccs!.clientCert !== '' && ccs!.clientCertError === '');
  } finally {
    server.close();
  }
});

test('a port whose handshake no name can change is left to OpenSSL: same certificate, ALPN and plain-HTTP answer as a port read first', { skip }, async () => {
  const t = new TlsTermination({ provider: provider(), timers: new TimerWheel({ autoStart: false }), warn: () => undefined });
  // One host-less binding without sslFlags 1/2: no name can choose anything, the ClientHello is not read first.
  const plain = await serve(t, `<binding protocol="https" bindingInformation="*:{port}:" />`, ['h2', 'http/1.1']);
  const named = await serve(t, BINDINGS, ['h2', 'http/1.1']);
  try {
    for (const { port } of [plain, named]) {
      assert.equal(await cn(port, 'anything.example.test'), 'ip.test');
      const h2 = await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] });
      assert.ok(!(h2 instanceof Error));
      assert.equal(h2.socket.alpnProtocol, 'h2');
      const answer = await new Promise<string>((resolve) => {
        const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString('latin1')));
        s.on('close', () => resolve(text));
        s.on('error', () => undefined);
      });
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*plain HTTP request was sent to an https port/);
    }
  } finally {
    plain.server.close();
    named.server.close();
  }
});
