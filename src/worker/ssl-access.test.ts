import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TlsInfo } from './module-api.js';
import { ACCESS_SSL_FLAG as F, checkSslAccess, sslAccessCacheable } from './ssl-access.js';

const tls = (over: Partial<TlsInfo> = {}): TlsInfo => ({
  protocol: 'TLSv1.3',
  cipher: 'TLS_AES_128_GCM_SHA256',
  keySize: 128,
  secretKeySize: 256,
  serverSubject: 'CN=www.example.test',
  serverIssuer: 'CN=www.example.test',
  serverName: 'www.example.test',
  alpn: 'http/1.1',
  clientCert: '',
  clientCertError: '',
  ...over,
});
const sub = (flags: number, t: TlsInfo | undefined): string => {
  const d = checkSslAccess(flags, t);
  return d === undefined ? 'ok' : `${d.status}.${d.subStatus} ${d.win32Status}`;
};

test('None lets everything through; Ssl (or Ssl128) refuses plain http with 403.4, win32 5', () => {
  assert.equal(sub(0, undefined), 'ok');
  assert.equal(sub(F.Ssl, undefined), '403.4 5');
  assert.equal(sub(F.Ssl128, undefined), '403.4 5');
  assert.equal(sub(F.Ssl, tls()), 'ok');
});

test('Ssl128: a cipher key under 128 bits is 403.5', () => {
  assert.equal(sub(F.Ssl | F.Ssl128, tls({ keySize: 56, cipher: 'DES' })), '403.5 5');
  assert.equal(sub(F.Ssl | F.Ssl128, tls({ keySize: 256 })), 'ok');
});

test('SslRequireCert: no certificate is 403.7 (over http too); SslNegotiateCert accepts its absence', () => {
  assert.equal(sub(F.Ssl | F.SslNegotiateCert | F.SslRequireCert, tls()), '403.7 5');
  assert.equal(sub(F.SslRequireCert, undefined), '403.7 5');
  assert.equal(sub(F.Ssl | F.SslNegotiateCert, tls()), 'ok');
  assert.match(checkSslAccess(F.SslRequireCert, tls())!.description, /clientcertnegotiation=enable/);
  assert.equal(sub(F.Ssl | F.SslRequireCert, tls({ clientCert: 'MIIB' })), 'ok');
});

test('a certificate that did not verify: 403.16 untrusted, 403.17 expired, 403.13 revoked, with the CryptoAPI error IIS logs', () => {
  const flags = F.Ssl | F.SslNegotiateCert;
  const withError = (e: string): TlsInfo => tls({ clientCert: 'MIIB', clientCertError: e });
  assert.equal(sub(flags, withError('DEPTH_ZERO_SELF_SIGNED_CERT')), `403.16 ${0x800b0109}`);
  assert.equal(sub(flags, withError('UNABLE_TO_GET_ISSUER_CERT_LOCALLY')), `403.16 ${0x800b010a}`);
  assert.equal(sub(flags, withError('SOMETHING_NEW')), `403.16 ${0x800b0109}`);
  assert.equal(sub(flags, withError('CERT_HAS_EXPIRED')), `403.17 ${0x800b0101}`);
  assert.equal(sub(flags, withError('CERT_NOT_YET_VALID')), '403.17 2148204801');
  assert.equal(sub(flags | F.SslRequireCert, withError('CERT_REVOKED')), `403.13 ${0x80092010}`);
  // "Ignore" client certificates: one that the binding negotiated is not looked at.
  assert.equal(sub(F.Ssl, withError('DEPTH_ZERO_SELF_SIGNED_CERT')), 'ok');
});

test('responses that depend on the client certificate or the cipher stay out of the response cache', () => {
  assert.equal(sslAccessCacheable(0), true);
  assert.equal(sslAccessCacheable(F.Ssl), true);
  assert.equal(sslAccessCacheable(F.Ssl | F.SslNegotiateCert), false);
  assert.equal(sslAccessCacheable(F.Ssl | F.Ssl128), false);
});
