import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { needs, tool } from '../../test/helpers/skip.js';
import { openssl } from '../../test/helpers/openssl.js';
import { CertificateStore } from './certificate-store.js';
import { DEVELOPMENT_FRIENDLY_NAME, developmentCertificate } from './development-certificate.js';

const dir = mkdtempSync(join(tmpdir(), 'wharf-devcert-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

test('the development certificate: CN=localhost, SAN localhost/127.0.0.1/::1, ECDSA P-256, one year, in the My store; a TLS client trusting it connects', async (t) => {
  const store = new CertificateStore(join(dir, 'sd1'));
  const m = await developmentCertificate(store);
  assert.equal(m.leaf.subject, 'CN=localhost');
  assert.equal(m.leaf.issuer, 'CN=localhost');
  assert.equal(m.key.asymmetricKeyType, 'ec');
  assert.equal(m.key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const days = (Date.parse(m.leaf.validTo) - Date.now()) / 86_400_000;
  assert.ok(days > 364 && days <= 365, String(days));
  assert.ok(m.leaf.checkPrivateKey(m.key));
  const stored = store.list('My').certificates;
  assert.deepEqual(stored.map((c) => [c.thumbprint, c.friendlyName]), [[m.thumbprint, DEVELOPMENT_FRIENDLY_NAME]]);
  if (needs(t, tool('openssl'))) {
    // What openssl reads in the stored file, not what Wharf says about it.
    const text = openssl(['x509', '-in', m.source, '-noout', '-text']);
    assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /TLS Web Server Authentication/);
  }
  const server = createServer({ key: m.keyPem, cert: m.chain }, (s) => s.end('hello'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    for (const host of ['localhost', '127.0.0.1']) {
      const port = (server.address() as AddressInfo).port;
      // servername localhost checks DNS:localhost; none (an IP) checks IP:127.0.0.1.
      const socket = connect(host === 'localhost' ? { port, host: '127.0.0.1', servername: 'localhost', ca: m.chain } : { port, host: '127.0.0.1', ca: m.chain });
      await once(socket, 'secureConnect');
      assert.equal(socket.authorized, true, String(socket.authorizationError));
      socket.destroy();
    }
  } finally {
    server.close();
  }
});

test('reused across starts; a new one when fewer than 30 days remain, and the old one removed', async () => {
  const store = new CertificateStore(join(dir, 'sd2'));
  const first = await developmentCertificate(store);
  const again = await developmentCertificate(store);
  assert.equal(again.thumbprint, first.thumbprint);
  const later = Date.parse(first.leaf.validTo) - 29 * 86_400_000;
  const renewed = await developmentCertificate(store, { now: later });
  assert.notEqual(renewed.thumbprint, first.thumbprint);
  assert.ok(Date.parse(renewed.leaf.validTo) > Date.parse(first.leaf.validTo));
  assert.deepEqual(readdirSync(store.folder('My')).filter((n) => n.endsWith('.crt')), [`${renewed.thumbprint}.crt`]);
  // One an SSL binding names is kept.
  const kept = await developmentCertificate(store, { now: Date.parse(renewed.leaf.validTo) - 86_400_000, inUse: (tp) => tp === renewed.thumbprint });
  assert.notEqual(kept.thumbprint, renewed.thumbprint);
  assert.equal(store.list('My').certificates.length, 2);
});
